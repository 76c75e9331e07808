"""The z3 interpretation of the operations layer (``pfmodel.model.ops``).

The model's actions are written once against the ops layer; ``ExplicitOps`` runs them
on plain Python values for the exhaustive engine, and ``Z3Ops`` runs the very same
definitions on z3 terms for the SMT engine (DESIGN.md "one definition, two
interpretations").  Nothing of the transition logic is repeated here: only what each
operation means.

Values:

* a boolean is a Python ``bool`` (a constant) or a ``z3.BoolRef``;
* a word is an ``EWord`` (a constant, the explicit interpretation's own type) or a
  ``z3.BitVecRef`` of the word's width.

Constants are folded in Python, so a guard on inputs that the scope fixes never reaches
the solver, and ``Machine.decide`` sees a plain ``True``/``False``.  Everything else
becomes a z3 term with z3's bit-vector semantics, which are exactly the explicit ones:
fixed width, wrap-around ``add``/``sub``, and UNSIGNED comparisons (``z3.ULT`` ...,
never Python's ``<`` on a BitVec, which z3 reads as signed).

``and_``/``or_``/``implies``/``ite`` accept zero-argument callables like the explicit
interpretation; a callable is evaluated only when the operands before it do not already
decide the result as constants (the kernel's ``&&``/``||``).  When an earlier operand is
symbolic the callable is evaluated too: its value then matters on some inputs.
"""

from __future__ import annotations

from typing import Any, Callable

import z3

from .ops import EBool, EWord, LazyWord, ModelTypeError, _Value


def _mask(width: int) -> int:
    return (1 << width) - 1


class Z3Ops:
    """The ops layer over z3 terms (see the module docstring)."""

    def __init__(self, ctx: z3.Context | None = None) -> None:
        self.ctx = ctx
        self.true = True
        self.false = False

    # -- constants -------------------------------------------------------------------
    def bool_(self, b: bool) -> bool:
        return bool(b)

    def word(self, value: int, width: int) -> EWord:
        return EWord(value & _mask(width), width)

    # -- operand helpers -------------------------------------------------------------
    @staticmethod
    def _call(a: Any) -> Any:
        if callable(a) and not isinstance(a, (_Value, z3.ExprRef)):
            return a()
        return a

    def _b(self, a: Any) -> Any:
        """A boolean operand: Python bool or z3 BoolRef."""
        a = self._call(a)
        if a is True or a is False:
            return a
        if isinstance(a, z3.BoolRef):
            if z3.is_true(a):
                return True
            if z3.is_false(a):
                return False
            return a
        if isinstance(a, EBool):
            return a.v
        raise ModelTypeError(f"expected a boolean, got {a!r}")

    @staticmethod
    def _width_of(*args: Any) -> int | None:
        for a in args:
            if isinstance(a, EWord):
                return a.w
            if isinstance(a, z3.BitVecRef):
                return a.size()
        return None

    def _w(self, a: Any, width: int | None) -> tuple[bool, Any, int]:
        """(is_constant, int value or z3 term, width) of a word operand."""
        if isinstance(a, EWord):
            return True, a.v, a.w
        if isinstance(a, z3.BitVecRef):
            if z3.is_bv_value(a):
                return True, a.as_long(), a.size()
            return False, a, a.size()
        if isinstance(a, int) and not isinstance(a, bool):
            if width is None:
                raise ModelTypeError(f"constant {a:#x} needs a width: pair it with a word operand")
            return True, a & _mask(width), width
        if isinstance(a, LazyWord):
            raise ModelTypeError("a lazy word of the explicit interpretation reached Z3Ops")
        raise ModelTypeError(f"expected a word, got {a!r}")

    def _pair(self, a: Any, b: Any) -> tuple[tuple[bool, Any, int], tuple[bool, Any, int], int]:
        w = self._width_of(a, b)
        x = self._w(a, w)
        y = self._w(b, w)
        if x[2] != y[2]:
            raise ModelTypeError(f"width mismatch: {x[2]} vs {y[2]} bits (use ops.zext)")
        return x, y, x[2]

    @staticmethod
    def _term(x: tuple[bool, Any, int]) -> z3.BitVecRef:
        const, v, w = x
        return z3.BitVecVal(v, w) if const else v

    # -- booleans --------------------------------------------------------------------
    def not_(self, a: Any) -> Any:
        a = self._b(a)
        if a is True or a is False:
            return not a
        return z3.Not(a)

    def and_(self, *args: Any) -> Any:
        terms = []
        for a in args:
            v = self._b(a)
            if v is False:
                return False
            if v is not True:
                terms.append(v)
        if not terms:
            return True
        return terms[0] if len(terms) == 1 else z3.And(*terms)

    def or_(self, *args: Any) -> Any:
        terms = []
        for a in args:
            v = self._b(a)
            if v is True:
                return True
            if v is not False:
                terms.append(v)
        if not terms:
            return False
        return terms[0] if len(terms) == 1 else z3.Or(*terms)

    def implies(self, a: Any, b: Any) -> Any:
        a = self._b(a)
        if a is False:
            return True
        b = self._b(b)
        if a is True:
            return b
        if b is True:
            return True
        if b is False:
            return z3.Not(a)
        return z3.Implies(a, b)

    def ite(self, c: Any, a: Any, b: Any) -> Any:
        """``a`` if ``c`` else ``b``; either may be a callable (evaluated when needed)."""
        c = self._b(c)
        if c is True:
            return self._call(a)
        if c is False:
            return self._call(b)
        a = self._call(a)
        b = self._call(b)
        if self._is_bool(a) or self._is_bool(b):
            x, y = self._b(a), self._b(b)
            if x is y and isinstance(x, bool):
                return x
            return z3.If(c, self._bterm(x), self._bterm(y))
        x, y, _ = self._pair(a, b)
        if x[0] and y[0] and x[1] == y[1]:
            return EWord(x[1], x[2])
        return z3.If(c, self._term(x), self._term(y))

    @staticmethod
    def _is_bool(a: Any) -> bool:
        return a is True or a is False or isinstance(a, (z3.BoolRef, EBool))

    @staticmethod
    def _bterm(a: Any) -> z3.BoolRef:
        return z3.BoolVal(a) if isinstance(a, bool) else a

    # -- comparisons -----------------------------------------------------------------
    def eq(self, a: Any, b: Any) -> Any:
        if self._is_bool(a) or self._is_bool(b):
            x, y = self._b(a), self._b(b)
            if isinstance(x, bool) and isinstance(y, bool):
                return x == y
            if isinstance(x, bool):
                return y if x else z3.Not(y)
            if isinstance(y, bool):
                return x if y else z3.Not(x)
            return x == y
        x, y, _ = self._pair(a, b)
        if x[0] and y[0]:
            return x[1] == y[1]
        return self._term(x) == self._term(y)

    def ne(self, a: Any, b: Any) -> Any:
        return self.not_(self.eq(a, b))

    def _cmp(self, a: Any, b: Any, py: Callable[[int, int], bool], zf: Callable[[Any, Any], Any]) -> Any:
        x, y, _ = self._pair(a, b)
        if x[0] and y[0]:
            return py(x[1], y[1])
        return zf(self._term(x), self._term(y))

    def ult(self, a: Any, b: Any) -> Any:
        return self._cmp(a, b, lambda p, q: p < q, z3.ULT)

    def ule(self, a: Any, b: Any) -> Any:
        return self._cmp(a, b, lambda p, q: p <= q, z3.ULE)

    def ugt(self, a: Any, b: Any) -> Any:
        return self._cmp(a, b, lambda p, q: p > q, z3.UGT)

    def uge(self, a: Any, b: Any) -> Any:
        return self._cmp(a, b, lambda p, q: p >= q, z3.UGE)

    # -- bit operations --------------------------------------------------------------
    def band(self, a: Any, b: Any) -> Any:
        x, y, w = self._pair(a, b)
        if x[0] and y[0]:
            return EWord(x[1] & y[1], w)
        if x[0]:
            x, y = y, x
        if y[0]:                       # symbolic & constant
            if y[1] == 0:
                return EWord(0, w)
            if y[1] == _mask(w):
                return x[1]
        return self._term(x) & self._term(y)

    def bor(self, a: Any, b: Any) -> Any:
        x, y, w = self._pair(a, b)
        if x[0] and y[0]:
            return EWord(x[1] | y[1], w)
        if x[0]:
            x, y = y, x
        if y[0]:
            if y[1] == 0:
                return x[1]
            if y[1] == _mask(w):
                return EWord(_mask(w), w)
        return self._term(x) | self._term(y)

    def bxor(self, a: Any, b: Any) -> Any:
        x, y, w = self._pair(a, b)
        if x[0] and y[0]:
            return EWord(x[1] ^ y[1], w)
        return self._term(x) ^ self._term(y)

    def bnot(self, a: Any) -> Any:
        const, v, w = self._w(a, None)
        if const:
            return EWord(~v & _mask(w), w)
        return ~v

    def shl(self, a: Any, n: int) -> Any:
        const, v, w = self._w(a, None)
        if const:
            return EWord((v << n) & _mask(w), w)
        return v << n

    def lshr(self, a: Any, n: int) -> Any:
        const, v, w = self._w(a, None)
        if const:
            return EWord(v >> n, w)
        return z3.LShR(v, n)

    def add(self, a: Any, b: Any) -> Any:
        x, y, w = self._pair(a, b)
        if x[0] and y[0]:
            return EWord((x[1] + y[1]) & _mask(w), w)
        if y[0] and y[1] == 0:
            return x[1]
        if x[0] and x[1] == 0:
            return y[1]
        return self._term(x) + self._term(y)

    def sub(self, a: Any, b: Any) -> Any:
        x, y, w = self._pair(a, b)
        if x[0] and y[0]:
            return EWord((x[1] - y[1]) & _mask(w), w)
        if y[0] and y[1] == 0:
            return x[1]
        return self._term(x) - self._term(y)

    def test(self, a: Any, mask: int) -> Any:
        """``(a & mask) != 0``."""
        return self.ne(self.band(a, mask), 0)

    def zext(self, a: Any, width: int) -> Any:
        const, v, w = self._w(a, None)
        if width < w:
            raise ModelTypeError("zext to a narrower width")
        if const:
            return EWord(v, width)
        return v if width == w else z3.ZeroExt(width - w, v)

    # -- leaving the model -----------------------------------------------------------
    def concrete(self, a: Any) -> Any:
        """The Python value of a constant; a symbolic value has none."""
        if a is True or a is False:
            return a
        if isinstance(a, EWord):
            return a.v
        if isinstance(a, int):
            return a
        if isinstance(a, z3.BoolRef) and (z3.is_true(a) or z3.is_false(a)):
            return z3.is_true(a)
        if isinstance(a, z3.BitVecRef) and z3.is_bv_value(a):
            return a.as_long()
        raise ModelTypeError(f"{a} is symbolic: evaluate it in a z3 model instead")

    # -- helpers for engines ---------------------------------------------------------
    def as_bool_term(self, a: Any) -> z3.BoolRef:
        """A boolean value as a z3 term (constants become BoolVal)."""
        return self._bterm(self._b(a))

    def as_word_term(self, a: Any, width: int | None = None) -> z3.BitVecRef:
        return self._term(self._w(a, width))


__all__ = ["Z3Ops"]
