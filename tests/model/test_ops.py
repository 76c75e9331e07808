"""The explicit interpretation of the operations layer means what z3 bit-vectors mean."""

from __future__ import annotations

import pytest

from pfmodel.model.inputs import NeedInput, WordDecl
from pfmodel.model.ops import EBool, EWord, ExplicitOps, LazyWord, ModelTypeError


@pytest.fixture
def o() -> ExplicitOps:
    return ExplicitOps()


def v(o: ExplicitOps, x) -> object:
    return o.concrete(x)


def test_add_wraps_around_at_the_width(o):
    a = o.word(0xFFFFFFFFFFFFF000, 64)
    assert v(o, o.add(a, 0x2000)) == 0x1000
    assert v(o, o.add(o.word(0xFFFFFFFF, 32), 1)) == 0


def test_sub_wraps_below_zero(o):
    assert v(o, o.sub(o.word(0, 32), 1)) == 0xFFFFFFFF


def test_comparisons_are_unsigned(o):
    big = o.word(0xFFFFFFFFFFFFFFFF, 64)  # -1 if it were signed
    assert v(o, o.ult(o.word(1, 64), big)) is True
    assert v(o, o.ugt(big, 0)) is True
    assert v(o, o.ule(big, big)) is True
    assert v(o, o.uge(o.word(0, 64), big)) is False


def test_the_stack_cushion_check_wraps_like_the_kernel(o):
    # address + 65792 < sp with the address near the top: the sum wraps to a small number.
    addr = o.word(0xFFFFFFFFFFFFFF00, 64)
    assert v(o, o.ult(o.add(addr, 65792), o.word(0x100000, 64))) is True


def test_shifts_and_bit_operations_stay_in_width(o):
    assert v(o, o.shl(o.word(0x80000000, 32), 1)) == 0
    assert v(o, o.lshr(o.word(0x80000000, 32), 31)) == 1
    assert v(o, o.bnot(o.word(0, 16))) == 0xFFFF
    assert v(o, o.bxor(o.word(0b1100, 8), 0b1010)) == 0b0110


def test_width_mismatch_is_an_error(o):
    with pytest.raises(ModelTypeError):
        o.add(o.word(1, 32), o.word(1, 64))


def test_constant_needs_a_word_partner(o):
    with pytest.raises(ModelTypeError):
        o.add(1, 2)


def test_truth_testing_a_model_value_raises(o):
    with pytest.raises(ModelTypeError):
        bool(o.true)
    with pytest.raises(ModelTypeError):
        if o.word(1, 64):
            pass


def test_python_equality_on_model_values_raises(o):
    with pytest.raises(ModelTypeError):
        _ = o.word(1, 64) == o.word(1, 64)
    with pytest.raises(ModelTypeError):
        int(o.word(1, 64))


def test_connectives_short_circuit_on_thunks(o):
    called = []

    def boom():
        called.append(1)
        return o.true

    assert v(o, o.and_(o.false, boom)) is False
    assert v(o, o.or_(o.true, boom)) is True
    assert v(o, o.implies(o.false, boom)) is True
    assert called == []
    assert v(o, o.and_(o.true, boom)) is True
    assert called == [1]


def test_ite_evaluates_only_the_taken_branch(o):
    assert v(o, o.ite(o.true, o.word(1, 8), lambda: 1 / 0)) == 1
    assert v(o, o.ite(o.false, lambda: 1 / 0, o.word(2, 8))) == 2


def test_test_is_mask_nonzero(o):
    assert v(o, o.test(o.word(0b1010, 8), 0b0010)) is True
    assert v(o, o.test(o.word(0b1010, 8), 0b0101)) is False


class _Bindings:
    def __init__(self, values):
        self.values = values
        self.asked: list[str] = []

    def __call__(self, name):
        self.asked.append(name)
        if name not in self.values:
            raise NeedInput(name)
        return self.values[name]


def _lazy(o, values):
    decl = WordDecl("ec", 64, (("ec.P", 1), ("ec.W", 2), ("ec.U", 4)), fixed=0x100)
    b = _Bindings(values)
    o.resolve_group = b
    return LazyWord(decl, 0b111, decl.fixed), b


def test_a_lazy_word_binds_only_the_groups_an_operation_looks_at(o):
    ec, b = _lazy(o, {"ec.W": 2})
    assert v(o, o.test(ec, 2)) is True
    assert b.asked == ["ec.W"]
    # masking keeps it lazy; only the masked group is then needed
    masked = o.band(ec, 2)
    assert isinstance(masked, LazyWord)
    assert v(o, o.eq(masked, 2)) is True
    with pytest.raises(NeedInput) as e:
        o.test(ec, 1)
    assert e.value.name == "ec.P"


def test_or_with_a_constant_keeps_a_lazy_word_lazy(o):
    ec, b = _lazy(o, {"ec.P": 0, "ec.W": 0})
    ored = o.bor(ec, 4)  # error_code |= PF_USER
    assert isinstance(ored, LazyWord)
    assert v(o, ored) == 0x104  # the fixed bit, PF_USER; ec.U never asked
    assert "ec.U" not in b.asked


def test_concrete_values_round_trip(o):
    assert isinstance(o.bool_(True), EBool)
    assert isinstance(o.word(5, 8), EWord)
    assert v(o, o.bool_(False)) is False
