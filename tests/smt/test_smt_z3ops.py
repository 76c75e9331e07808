"""The z3 interpretation of the ops layer means exactly what the explicit one means."""

from __future__ import annotations

import pytest
import z3
from hypothesis import given, settings
from hypothesis import strategies as st

from pfmodel.model.ops import EWord, ExplicitOps, ModelTypeError
from pfmodel.model.z3ops import SWord, Z3Ops

WORD_OPS = ("band", "bor", "bxor", "add", "sub")
CMP_OPS = ("eq", "ne", "ult", "ule", "ugt", "uge")


def _value(model: z3.ModelRef, x, width: int):
    """The Python value of a Z3Ops result under ``model``."""
    if x is True or x is False:
        return x
    if isinstance(x, EWord):
        return x.v
    if isinstance(x, SWord):
        return model.eval(x.t, model_completion=True).as_long()
    if isinstance(x, z3.BoolRef):
        return z3.is_true(model.eval(x, model_completion=True))
    raise AssertionError(x)


def _explicit(x):
    return ExplicitOps().concrete(x)


def _pin(width: int, a: int, b: int):
    """Two symbolic words and a model that gives them the values a and b."""
    x, y = z3.BitVec("x", width), z3.BitVec("y", width)
    s = z3.Solver()
    s.add(x == a, y == b)
    assert s.check() == z3.sat
    return SWord.of(x, width), SWord.of(y, width), s.model()


@settings(max_examples=150, deadline=None)
@given(width=st.sampled_from([32, 64]), data=st.data())
def test_every_word_operation_agrees_with_the_explicit_one(width, data):
    a = data.draw(st.integers(0, (1 << width) - 1))
    b = data.draw(st.integers(0, (1 << width) - 1))
    n = data.draw(st.integers(0, width - 1))
    zo, eo = Z3Ops(), ExplicitOps()
    x, y, model = _pin(width, a, b)
    ea, eb = eo.word(a, width), eo.word(b, width)
    for op in WORD_OPS + CMP_OPS:
        got = _value(model, getattr(zo, op)(x, y), width)
        assert got == _explicit(getattr(eo, op)(ea, eb)), (op, hex(a), hex(b))
        # A constant on one side folds, or pairs with the symbolic side at its width.
        got_k = _value(model, getattr(zo, op)(x, b), width)
        assert got_k == _explicit(getattr(eo, op)(ea, b)), (op, "const", hex(a), hex(b))
    assert _value(model, zo.shl(x, n), width) == _explicit(eo.shl(ea, n))
    assert _value(model, zo.lshr(x, n), width) == _explicit(eo.lshr(ea, n))
    assert _value(model, zo.bnot(x), width) == _explicit(eo.bnot(ea))
    assert _value(model, zo.test(x, b), width) == _explicit(eo.test(ea, b))


@settings(max_examples=100, deadline=None)
@given(parts=st.lists(st.sampled_from([0x1, 0x2, 0x4, 0x8, 0x10, 0x300]), min_size=1, max_size=4, unique=True),
       fixed=st.sampled_from([0, 0x40, 0x1000]), mask=st.integers(0, 0xFFFF), c=st.integers(0, 0xFFFF),
       data=st.data())
def test_a_word_of_parts_is_the_or_of_its_parts(parts, fixed, mask, c, data):
    """Masking, ORing and comparing a bit-group word (error_code-like) keeps its value."""
    zo, eo = Z3Ops(), ExplicitOps()
    terms = [(z3.BitVec(f"g{k}", 64), m) for k, m in enumerate(parts)]
    values = [data.draw(st.sampled_from([0, m])) for m in parts]
    s = z3.Solver()
    s.add(*[t == v for (t, _), v in zip(terms, values)])
    assert s.check() == z3.sat
    model = s.model()
    w = zo.fragments(64, fixed, terms)
    whole = fixed
    for v in values:
        whole |= v
    e = eo.word(whole, 64)
    assert _value(model, zo.band(w, mask), 64) == whole & mask
    assert _value(model, zo.test(w, mask), 64) == _explicit(eo.test(e, mask))
    assert _value(model, zo.eq(zo.band(w, mask), c), 64) == _explicit(eo.eq(eo.band(e, mask), c))
    assert _value(model, zo.eq(zo.bor(w, 0x20), c), 64) == _explicit(eo.eq(eo.bor(e, 0x20), c))
    assert _value(model, zo.ult(zo.band(w, mask), c), 64) == _explicit(eo.ult(eo.band(e, mask), c))


def test_comparisons_are_unsigned_not_z3_signed():
    """z3's ``<`` on bit-vectors is signed; the ops layer must use ULT and friends."""
    zo = Z3Ops()
    x = z3.BitVec("x", 64)
    s = z3.Solver()
    # Is there an x with x < 1 (unsigned) and x != 0?  Unsigned: no.  Signed: every negative.
    s.add(zo.ult(SWord.of(x), 1), x != 0)
    assert s.check() == z3.unsat
    s = z3.Solver()
    s.add(zo.ugt(SWord.of(x), 0x7FFFFFFFFFFFFFFF))  # the "negative" half is large, unsigned
    assert s.check() == z3.sat


def test_the_stack_cushion_check_wraps_like_the_explicit_one():
    """address + 65792 < sp at the very top of the address space: the sum wraps."""
    zo = Z3Ops()
    a = z3.BitVec("a", 64)
    sp = z3.BitVec("sp", 64)
    exceeded = zo.ult(zo.add(SWord.of(a), 65792), SWord.of(sp))
    s = z3.Solver()
    s.add(a == 0xFFFFFFFFFFFFFF00, sp == 0x100000, exceeded)
    assert s.check() == z3.sat
    eo = ExplicitOps()
    assert eo.concrete(eo.ult(eo.add(eo.word(0xFFFFFFFFFFFFFF00, 64), 65792), eo.word(0x100000, 64))) is True


def test_constants_fold_to_python_values():
    zo = Z3Ops()
    assert zo.and_(True, lambda: zo.eq(zo.word(3, 32), 3)) is True
    assert zo.or_(False, False) is False
    assert isinstance(zo.add(zo.word(0xFFFFFFFF, 32), 1), EWord)
    assert zo.concrete(zo.add(zo.word(0xFFFFFFFF, 32), 1)) == 0


def test_short_circuit_skips_the_callable_when_a_constant_decides():
    zo = Z3Ops()

    def boom():
        raise AssertionError("evaluated")
    assert zo.and_(False, boom) is False
    assert zo.or_(True, boom) is True
    assert zo.implies(False, boom) is True
    assert zo.ite(True, 1, boom) == 1


def test_width_mismatch_and_symbolic_concrete_are_errors():
    zo = Z3Ops()
    with pytest.raises(ModelTypeError):
        zo.add(SWord.of(z3.BitVec("p", 32)), SWord.of(z3.BitVec("q", 64)))
    with pytest.raises(ModelTypeError):
        zo.concrete(SWord.of(z3.BitVec("p", 32)))
    with pytest.raises(ModelTypeError):
        zo.add(1, 2)          # two constants: no width
    with pytest.raises(ModelTypeError):
        bool(SWord.of(z3.BitVec("p", 32)))   # a symbolic word cannot be truth-tested
