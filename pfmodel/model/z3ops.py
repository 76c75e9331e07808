"""The z3 interpretation of the operations layer (``pfmodel.model.ops``).

The model's actions are written once against the ops layer; ``ExplicitOps`` runs them
on plain Python values for the exhaustive engine, and ``Z3Ops`` runs the very same
definitions on z3 terms for the SMT engine (DESIGN.md "one definition, two
interpretations").  Nothing of the transition logic is repeated here: only what each
operation means.

Values:

* a boolean is a Python ``bool`` (a constant) or a ``z3.BoolRef``;
* a word is an ``EWord`` (a constant: the explicit interpretation's own type) or an
  ``SWord``: a z3 bit-vector term of the word's width.

Everything symbolic has z3's bit-vector semantics, which are exactly the explicit
ones: fixed width, wrap-around ``add``/``sub``, and UNSIGNED comparisons (``z3.ULT`` and
friends -- never Python's ``<`` on a BitVec, which z3 reads as signed).

Two things keep the formulas small, which is what makes the engine fast:

* constants are folded in Python, so a guard on inputs the scope fixes never reaches
  the solver and ``Machine.decide`` sees a plain ``True``/``False``;
* an input word made of bit groups (``error_code`` = ``ec.P | ec.W | ...``) stays a
  list of *parts* ``(term, mask)`` plus constant bits, as long as it is only masked or
  ORed with constants.  ``test(error_code, PF_WRITE)`` is then the term ``ec.W != 0``
  -- the same z3 term every time the handler asks, whatever was ORed into the word
  before -- rather than a formula over the whole word.

``and_``/``or_``/``implies``/``ite`` accept zero-argument callables like the explicit
interpretation; a callable is evaluated only when the operands before it do not already
decide the result as constants (the kernel's ``&&``/``||``).  When an earlier operand is
symbolic the callable is evaluated too: its value matters on some inputs.
"""

from __future__ import annotations

from typing import Any, Callable

import z3

from .ops import EBool, EWord, LazyWord, ModelTypeError, _Value


def _mask(width: int) -> int:
    return (1 << width) - 1


class SWord(_Value):
    """A symbolic word: ``k | part_1 | ... | part_n``, each part a z3 term that only sets
    bits inside its mask; or (``parts`` None) the opaque term ``t``."""

    __slots__ = ("w", "k", "parts", "_t")

    def __init__(self, w: int, k: int = 0, parts: tuple[tuple[z3.BitVecRef, int], ...] | None = None,
                 t: z3.BitVecRef | None = None) -> None:
        self.w = w
        self.k = k
        self.parts = parts
        self._t = t

    @property
    def t(self) -> z3.BitVecRef:
        """The whole value as one z3 term."""
        if self._t is None:
            terms = [p for p, _ in self.parts or ()]
            t = terms[0] if terms else z3.BitVecVal(self.k, self.w)
            for p in terms[1:]:
                t = t | p
            if self.k and terms:
                t = t | z3.BitVecVal(self.k, self.w)
            self._t = t
        return self._t

    @classmethod
    def of(cls, term: z3.BitVecRef, w: int | None = None) -> "SWord":
        return cls(w if w is not None else term.size(), 0, None, term)

    def __repr__(self) -> str:
        return f"SWord({self.t}, {self.w})"


class Z3Ops:
    """The ops layer over z3 terms (see the module docstring)."""

    def __init__(self) -> None:
        self.true = True
        self.false = False
        self._neg: dict[int, z3.BoolRef] = {}
        # Terms built from long-lived input variables, by the Python identity of their
        # operands (kept alive in the value, so an identity is never reused): the same
        # test on the same bit group is one z3 term, built once.
        self._memo: dict[tuple, tuple[Any, Any]] = {}

    def _cached(self, key_obj: Any, tag: Any, build: Callable[[], Any]) -> Any:
        key = (id(key_obj), tag)
        hit = self._memo.get(key)
        if hit is not None and hit[0] is key_obj:
            return hit[1]
        value = build()
        self._memo[key] = (key_obj, value)
        return value

    # -- constants -------------------------------------------------------------------
    def bool_(self, b: bool) -> bool:
        return bool(b)

    def word(self, value: int, width: int) -> EWord:
        return EWord(value & _mask(width), width)

    def fragments(self, width: int, k: int, parts: list[tuple[Any, int]]) -> Any:
        """An input word made of bit groups: constant bits ``k`` and ``(term, mask)`` parts."""
        if not parts:
            return EWord(k & _mask(width), width)
        return SWord(width, k & _mask(width), tuple(parts))

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
            return a
        if isinstance(a, EBool):
            return a.v
        raise ModelTypeError(f"expected a boolean, got {a!r}")

    @staticmethod
    def _width_of(a: Any, b: Any) -> int | None:
        if isinstance(a, (EWord, SWord)):
            return a.w
        if isinstance(b, (EWord, SWord)):
            return b.w
        return None

    @staticmethod
    def _norm(a: Any, width: int | None) -> Any:
        """EWord or SWord for a word operand (Python ints take ``width``)."""
        if isinstance(a, (EWord, SWord)):
            return a
        if isinstance(a, int) and not isinstance(a, bool):
            if width is None:
                raise ModelTypeError(f"constant {a:#x} needs a width: pair it with a word operand")
            return EWord(a & _mask(width), width)
        if isinstance(a, z3.BitVecRef):
            return SWord.of(a)
        if isinstance(a, LazyWord):
            raise ModelTypeError("a lazy word of the explicit interpretation reached Z3Ops")
        raise ModelTypeError(f"expected a word, got {a!r}")

    def _pair(self, a: Any, b: Any) -> tuple[Any, Any, int]:
        w = self._width_of(a, b)
        x = self._norm(a, w)
        y = self._norm(b, w)
        if x.w != y.w:
            raise ModelTypeError(f"width mismatch: {x.w} vs {y.w} bits (use ops.zext)")
        return x, y, x.w

    @staticmethod
    def _t(x: Any) -> z3.BitVecRef:
        return z3.BitVecVal(x.v, x.w) if isinstance(x, EWord) else x.t

    # -- booleans --------------------------------------------------------------------
    def not_(self, a: Any) -> Any:
        a = self._b(a)
        if a is True or a is False:
            return not a
        key = a.get_id()
        n = self._neg.get(key)
        if n is None:
            n = z3.Not(a)
            self._neg[key] = n
            self._neg[n.get_id()] = a
        return n

    def negation(self, a: z3.BoolRef) -> z3.BoolRef:
        """``not_`` for engines: the same term object every time."""
        return self.not_(a)

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
            return self.not_(a)
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
            if isinstance(x, bool) and isinstance(y, bool) and x == y:
                return x
            return z3.If(c, self._bterm(x), self._bterm(y))
        x, y, w = self._pair(a, b)
        if isinstance(x, EWord) and isinstance(y, EWord) and x.v == y.v:
            return x
        return SWord.of(z3.If(c, self._t(x), self._t(y)), w)

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
                return y if x else self.not_(y)
            if isinstance(y, bool):
                return x if y else self.not_(x)
            return x == y
        x, y, w = self._pair(a, b)
        if isinstance(x, EWord) and isinstance(y, EWord):
            return x.v == y.v
        if isinstance(x, EWord):
            x, y = y, x
        if isinstance(y, EWord) and x.parts is not None:
            return self._parts_eq(x, y.v)
        return self._t(x) == self._t(y)

    def _parts_eq(self, x: SWord, c: int) -> Any:
        """``x == c`` for a word of parts: decided when a bit rules it out; ``== 0`` is
        "every part is 0"."""
        union = x.k
        for _, m in x.parts:  # type: ignore[union-attr]
            union |= m
        if x.k & ~c or c & ~union:
            return False                      # a bit always set is not in c, or c needs a bit never set
        if c == 0:
            terms = [self._cached(p, "==0", lambda p=p: p == 0) for p, _ in x.parts]  # type: ignore[union-attr]
            return terms[0] if len(terms) == 1 else z3.And(*terms)
        return x.t == c

    def ne(self, a: Any, b: Any) -> Any:
        return self.not_(self.eq(a, b))

    def _cmp(self, a: Any, b: Any, py: Callable[[int, int], bool], zf: Callable[[Any, Any], Any]) -> Any:
        x, y, _ = self._pair(a, b)
        if isinstance(x, EWord) and isinstance(y, EWord):
            return py(x.v, y.v)
        return zf(self._t(x), self._t(y))

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
        if isinstance(x, EWord) and isinstance(y, EWord):
            return EWord(x.v & y.v, w)
        if isinstance(x, EWord):
            x, y = y, x
        if isinstance(y, EWord):                   # symbolic & constant
            m = y.v
            if m == 0:
                return EWord(0, w)
            if m == _mask(w):
                return x
            if x.parts is not None:
                parts = []
                for p, pm in x.parts:
                    keep = pm & m
                    if keep:
                        parts.append((p if keep == pm else self._cached(p, ("&", keep), lambda p=p, k=keep: p & k),
                                      keep))
                return self.fragments(w, x.k & m, parts)
        return SWord.of(self._t(x) & self._t(y), w)

    def bor(self, a: Any, b: Any) -> Any:
        x, y, w = self._pair(a, b)
        if isinstance(x, EWord) and isinstance(y, EWord):
            return EWord(x.v | y.v, w)
        if isinstance(x, EWord):
            x, y = y, x
        if isinstance(y, EWord):
            if y.v == 0:
                return x
            if y.v == _mask(w):
                return EWord(y.v, w)
            if x.parts is not None:
                return SWord(w, x.k | y.v, x.parts)
        elif x.parts is not None and y.parts is not None:
            return SWord(w, x.k | y.k, x.parts + y.parts)
        return SWord.of(self._t(x) | self._t(y), w)

    def bxor(self, a: Any, b: Any) -> Any:
        x, y, w = self._pair(a, b)
        if isinstance(x, EWord) and isinstance(y, EWord):
            return EWord(x.v ^ y.v, w)
        return SWord.of(self._t(x) ^ self._t(y), w)

    def bnot(self, a: Any) -> Any:
        x = self._norm(a, None)
        if isinstance(x, EWord):
            return EWord(~x.v & _mask(x.w), x.w)
        return SWord.of(~x.t, x.w)

    def shl(self, a: Any, n: int) -> Any:
        x = self._norm(a, None)
        if isinstance(x, EWord):
            return EWord((x.v << n) & _mask(x.w), x.w)
        return SWord.of(x.t << n, x.w)

    def lshr(self, a: Any, n: int) -> Any:
        x = self._norm(a, None)
        if isinstance(x, EWord):
            return EWord(x.v >> n, x.w)
        return SWord.of(z3.LShR(x.t, n), x.w)

    def add(self, a: Any, b: Any) -> Any:
        x, y, w = self._pair(a, b)
        if isinstance(x, EWord) and isinstance(y, EWord):
            return EWord((x.v + y.v) & _mask(w), w)
        if isinstance(y, EWord) and y.v == 0:
            return x
        if isinstance(x, EWord) and x.v == 0:
            return y
        return SWord.of(self._t(x) + self._t(y), w)

    def sub(self, a: Any, b: Any) -> Any:
        x, y, w = self._pair(a, b)
        if isinstance(x, EWord) and isinstance(y, EWord):
            return EWord((x.v - y.v) & _mask(w), w)
        if isinstance(y, EWord) and y.v == 0:
            return x
        return SWord.of(self._t(x) - self._t(y), w)

    def test(self, a: Any, mask: int) -> Any:
        """``(a & mask) != 0``."""
        return self.ne(self.band(a, mask), 0)

    def zext(self, a: Any, width: int) -> Any:
        x = self._norm(a, None)
        if width < x.w:
            raise ModelTypeError("zext to a narrower width")
        if isinstance(x, EWord):
            return EWord(x.v, width)
        return x if width == x.w else SWord.of(z3.ZeroExt(width - x.w, x.t), width)

    # -- leaving the model -----------------------------------------------------------
    def concrete(self, a: Any) -> Any:
        """The Python value of a constant; a symbolic value has none."""
        if a is True or a is False:
            return a
        if isinstance(a, EWord):
            return a.v
        if isinstance(a, int):
            return a
        raise ModelTypeError(f"{a!r} is symbolic: evaluate it in a z3 model instead")

    # -- helpers for engines ---------------------------------------------------------
    def bool_term(self, a: Any) -> z3.BoolRef:
        """A boolean value as a z3 term (constants become BoolVal)."""
        return self._bterm(self._b(a))

    def word_term(self, a: Any, width: int | None = None) -> z3.BitVecRef:
        """A word value as a z3 term."""
        return self._t(self._norm(a, width))


__all__ = ["Z3Ops", "SWord"]
