"""The operations layer: the only vocabulary the model's actions compute with.

The model's guards and updates are written ONCE against this small set of
operations (DESIGN.md "one definition, two interpretations"):

* boolean connectives: ``and_``, ``or_``, ``not_``, ``implies``, ``ite``;
* fixed-width words (bit-vectors): ``band``, ``bor``, ``bxor``, ``bnot``, ``shl``,
  ``lshr``, ``add``, ``sub`` with wrap-around, and UNSIGNED comparisons ``ult``,
  ``ule``, ``ugt``, ``uge``, plus ``eq`` / ``ne``;
* constants: ``word(value, width)``, ``true``, ``false``, ``bool_(b)``.

``ExplicitOps`` interprets them over plain Python ints masked to the word's width,
so that a result means exactly what the z3 bit-vector result would mean (a later
``Z3Ops`` implements the same methods over z3 terms).  Values of this layer refuse
to be truth-tested or compared with Python's ``==`` (like claripy): a decision must
go through the machine's ``decide``/``split`` so that every engine sees it.

Operands may be plain Python ints or bools where a constant is meant
(``o.band(flags, VM_WRITE)``); they take the width of the other operand.

Laziness (explicit interpretation only).  An input word may be made of *groups* of
bits, each bound separately by the exhaustive explorer the first time an operation
needs it (``LazyWord``).  ``band``/``bor`` with a constant keep the word lazy and only
narrow the bits that matter, so ``(error_code & PF_WRITE) != 0`` binds only the
PF_WRITE group.  ``and_``/``or_`` accept zero-argument callables for operands that must
only be evaluated when needed (the kernel's ``&&``/``||`` short-circuit), so an input
read only on the right of ``||`` is not bound when the left side decides.
"""

from __future__ import annotations

from typing import Any, Callable, Protocol


class ModelTypeError(TypeError):
    """An ops value was used like a Python value (truth test, ==, int())."""


# ---------------------------------------------------------------------------------
# Explicit values
# ---------------------------------------------------------------------------------

class _Value:
    __slots__ = ()

    def __bool__(self) -> bool:
        raise ModelTypeError(
            "truth-testing a model value: take decisions with m.decide()/m.split(), "
            "or read a concrete value with ops.concrete() outside the model")

    def __eq__(self, other: object) -> bool:  # noqa: D105
        raise ModelTypeError("comparing model values with ==: use ops.eq()")

    def __ne__(self, other: object) -> bool:  # noqa: D105
        raise ModelTypeError("comparing model values with !=: use ops.ne()")

    __hash__ = None  # type: ignore[assignment]

    def __int__(self) -> int:
        raise ModelTypeError("int() of a model value: use ops.concrete()")

    __index__ = __int__


class EBool(_Value):
    """A concrete boolean of the explicit interpretation."""

    __slots__ = ("v",)

    def __init__(self, v: bool) -> None:
        self.v = v

    def __repr__(self) -> str:
        return f"EBool({self.v})"


class EWord(_Value):
    """A concrete fixed-width word: ``0 <= v < 2**w``."""

    __slots__ = ("v", "w")

    def __init__(self, v: int, w: int) -> None:
        self.v = v
        self.w = w

    def __repr__(self) -> str:
        return f"EWord({self.v:#x}, {self.w})"


class LazyWord(_Value):
    """``(input & keep) | setbits`` for an input word whose bit groups are bound lazily.

    ``decl`` names the input and its groups (``pfmodel.model.inputs.WordDecl``);
    the bindings of the current path are reached through the ops object, so a lazy
    value stored in the state stays valid when the explorer forks the path.
    """

    __slots__ = ("decl", "keep", "setbits")

    def __init__(self, decl: Any, keep: int, setbits: int) -> None:
        self.decl = decl
        self.keep = keep
        self.setbits = setbits

    @property
    def w(self) -> int:
        return self.decl.width

    def __repr__(self) -> str:
        return f"LazyWord({self.decl.name}, keep={self.keep:#x}, set={self.setbits:#x})"


Operand = Any  # an ops value, or a Python int/bool constant


class Ops(Protocol):
    """What every interpretation provides (see the module docstring)."""

    true: Any
    false: Any

    def bool_(self, b: bool) -> Any: ...
    def word(self, value: int, width: int) -> Any: ...
    def not_(self, a: Operand) -> Any: ...
    def and_(self, *args: Operand | Callable[[], Operand]) -> Any: ...
    def or_(self, *args: Operand | Callable[[], Operand]) -> Any: ...
    def implies(self, a: Operand, b: Operand | Callable[[], Operand]) -> Any: ...
    def ite(self, c: Operand, a: Operand, b: Operand) -> Any: ...
    def eq(self, a: Operand, b: Operand) -> Any: ...
    def ne(self, a: Operand, b: Operand) -> Any: ...
    def ult(self, a: Operand, b: Operand) -> Any: ...
    def ule(self, a: Operand, b: Operand) -> Any: ...
    def ugt(self, a: Operand, b: Operand) -> Any: ...
    def uge(self, a: Operand, b: Operand) -> Any: ...
    def band(self, a: Operand, b: Operand) -> Any: ...
    def bor(self, a: Operand, b: Operand) -> Any: ...
    def bxor(self, a: Operand, b: Operand) -> Any: ...
    def bnot(self, a: Operand) -> Any: ...
    def shl(self, a: Operand, n: int) -> Any: ...
    def lshr(self, a: Operand, n: int) -> Any: ...
    def add(self, a: Operand, b: Operand) -> Any: ...
    def sub(self, a: Operand, b: Operand) -> Any: ...
    def test(self, a: Operand, mask: int) -> Any: ...
    def zext(self, a: Operand, width: int) -> Any: ...
    def concrete(self, a: Operand) -> Any: ...


class ExplicitOps:
    """Plain-Python interpretation with fixed-width wrap-around semantics.

    ``resolve_group`` is set by the engine: it returns the bound fragment of one bit
    group of a lazy input word (raising the engine's "need input" signal when the
    group is still unbound).
    """

    def __init__(self) -> None:
        self.true = EBool(True)
        self.false = EBool(False)
        self.resolve_group: Callable[[str], int] | None = None

    # -- constants ---------------------------------------------------------------
    def bool_(self, b: bool) -> EBool:
        return self.true if b else self.false

    def word(self, value: int, width: int) -> EWord:
        return EWord(value & ((1 << width) - 1), width)

    # -- helpers -------------------------------------------------------------------
    def _b(self, a: Any) -> bool:
        if callable(a) and not isinstance(a, _Value):
            a = a()
        if isinstance(a, EBool):
            return a.v
        if a is True or a is False:
            return a
        raise ModelTypeError(f"expected a boolean, got {a!r}")

    def _lazy_value(self, a: LazyWord, mask: int) -> int:
        """The bits of ``a`` under ``mask``, binding only the groups that overlap it."""
        need = a.keep & mask
        value = a.setbits & mask
        if need:
            resolve = self.resolve_group
            for gname, gmask in a.decl.groups:
                if gmask & need:
                    value |= resolve(gname) & need  # type: ignore[misc]
        return value

    def _w(self, a: Any, width: int | None = None) -> tuple[int, int]:
        """(value, width) of a word operand; Python ints take ``width``."""
        if isinstance(a, EWord):
            return a.v, a.w
        if isinstance(a, LazyWord):
            return self._lazy_value(a, (1 << a.w) - 1), a.w
        if isinstance(a, int) and not isinstance(a, bool):
            if width is None:
                raise ModelTypeError(f"constant {a:#x} needs a width: pair it with a word operand")
            return a & ((1 << width) - 1), width
        raise ModelTypeError(f"expected a word, got {a!r}")

    @staticmethod
    def _width_of(*args: Any) -> int | None:
        for a in args:
            if isinstance(a, (EWord, LazyWord)):
                return a.w
        return None

    def _pair(self, a: Any, b: Any) -> tuple[int, int, int]:
        w = self._width_of(a, b)
        av, aw = self._w(a, w)
        bv, bw = self._w(b, w)
        if aw != bw:
            raise ModelTypeError(f"width mismatch: {aw} vs {bw} bits (use ops.zext)")
        return av, bv, aw

    # -- booleans ------------------------------------------------------------------
    def not_(self, a: Any) -> EBool:
        return self.false if self._b(a) else self.true

    def and_(self, *args: Any) -> EBool:
        for a in args:
            if not self._b(a):
                return self.false
        return self.true

    def or_(self, *args: Any) -> EBool:
        for a in args:
            if self._b(a):
                return self.true
        return self.false

    def implies(self, a: Any, b: Any) -> EBool:
        return self.true if not self._b(a) else self.bool_(self._b(b))

    def ite(self, c: Any, a: Any, b: Any) -> Any:
        """``a`` if ``c`` else ``b``; either may be a zero-argument callable (evaluated lazily)."""
        r = a if self._b(c) else b
        return r() if callable(r) and not isinstance(r, _Value) else r

    # -- comparisons ---------------------------------------------------------------
    def eq(self, a: Any, b: Any) -> EBool:
        if isinstance(a, EBool) or isinstance(b, EBool) or isinstance(a, bool) and isinstance(b, bool):
            return self.bool_(self._b(a) == self._b(b))
        av, bv, _ = self._pair(a, b)
        return self.bool_(av == bv)

    def ne(self, a: Any, b: Any) -> EBool:
        return self.not_(self.eq(a, b))

    def ult(self, a: Any, b: Any) -> EBool:
        av, bv, _ = self._pair(a, b)
        return self.bool_(av < bv)

    def ule(self, a: Any, b: Any) -> EBool:
        av, bv, _ = self._pair(a, b)
        return self.bool_(av <= bv)

    def ugt(self, a: Any, b: Any) -> EBool:
        av, bv, _ = self._pair(a, b)
        return self.bool_(av > bv)

    def uge(self, a: Any, b: Any) -> EBool:
        av, bv, _ = self._pair(a, b)
        return self.bool_(av >= bv)

    # -- bit operations ------------------------------------------------------------
    def band(self, a: Any, b: Any) -> Any:
        # Keep a lazy word lazy when masked by a constant: only the masked groups matter.
        if isinstance(a, LazyWord) and isinstance(b, int) and not isinstance(b, bool):
            m = b & ((1 << a.w) - 1)
            return LazyWord(a.decl, a.keep & m, a.setbits & m)
        if isinstance(b, LazyWord) and isinstance(a, int) and not isinstance(a, bool):
            return self.band(b, a)
        av, bv, w = self._pair(a, b)
        return EWord(av & bv, w)

    def bor(self, a: Any, b: Any) -> Any:
        if isinstance(a, LazyWord) and isinstance(b, int) and not isinstance(b, bool):
            m = b & ((1 << a.w) - 1)
            return LazyWord(a.decl, a.keep & ~m, a.setbits | m)
        if isinstance(b, LazyWord) and isinstance(a, int) and not isinstance(a, bool):
            return self.bor(b, a)
        av, bv, w = self._pair(a, b)
        return EWord(av | bv, w)

    def bxor(self, a: Any, b: Any) -> EWord:
        av, bv, w = self._pair(a, b)
        return EWord(av ^ bv, w)

    def bnot(self, a: Any) -> EWord:
        av, w = self._w(a)
        return EWord(~av & ((1 << w) - 1), w)

    def shl(self, a: Any, n: int) -> EWord:
        av, w = self._w(a)
        return EWord((av << n) & ((1 << w) - 1), w)

    def lshr(self, a: Any, n: int) -> EWord:
        av, w = self._w(a)
        return EWord(av >> n, w)

    def add(self, a: Any, b: Any) -> EWord:
        av, bv, w = self._pair(a, b)
        return EWord((av + bv) & ((1 << w) - 1), w)

    def sub(self, a: Any, b: Any) -> EWord:
        av, bv, w = self._pair(a, b)
        return EWord((av - bv) & ((1 << w) - 1), w)

    def test(self, a: Any, mask: int) -> EBool:
        """``(a & mask) != 0``, binding only the groups under ``mask``."""
        if isinstance(a, LazyWord):
            return self.bool_(self._lazy_value(a, mask) != 0)
        av, _ = self._w(a)
        return self.bool_(av & mask != 0)

    def zext(self, a: Any, width: int) -> EWord:
        av, w = self._w(a)
        if width < w:
            raise ModelTypeError("zext to a narrower width")
        return EWord(av, width)

    # -- leaving the model ---------------------------------------------------------
    def concrete(self, a: Any) -> Any:
        """The Python value of an ops value (binds every group of a lazy word)."""
        if isinstance(a, EBool):
            return a.v
        if isinstance(a, (EWord, LazyWord)):
            return self._w(a)[0]
        if isinstance(a, (bool, int)):
            return a
        raise ModelTypeError(f"not an ops value: {a!r}")
