"""``pfmodel find``: ask the SMT engine for a scenario by what it does, or a proof that none exists.

A *query* says which paths are wanted and, optionally, what to optimise:

* ``--outcome OUTCOME``: how the fault ends (``sigbus``, ``sigsegv(si_code=SEGV_ACCERR)``,
  ``oops(reason=bad_pagetable)``, ``handled(via=vmalloc_fault)`` ...); repeat for "any of";
* ``--mode user|kernel``: the CPU mode of the fault;
* ``--trace STEP``: a decision the path takes, ``"access_error → false"`` (``->`` and ``=``
  work too; a label alone means any value; ``!`` in front: a decision it does NOT take);
* ``--where EXPR``: a condition on the inputs and the path (the small language below);
* ``--minimize TERM`` / ``--maximize TERM``: the witness with the smallest / largest value
  of a word term (unsigned), e.g. ``address`` or ``sp - address``.

Every option must hold (they are ANDed).  The engine enumerates the feasible paths of
the full symbolic space (``pfmodel.explore.smt``: every address and sp value), keeps
those whose outcome and decisions match, and asks z3 for inputs meeting the conditions
on each.  The answer, per architecture, is the smallest witness -- the fewest
decisions, then the most ordinary inputs (z3 Optimize, soft constraints towards each
input's default) or the optimum of the objective -- saved as a scenario file and replayed
on the simulator; or a proof that none exists: every matching path's query is
unsatisfiable.  "None" is only claimed when every query was answered; a solver
``unknown`` makes the answer inconclusive (exit status 3).

The condition language (``--where``): Python-like expressions, evaluated with the
model's operations layer, so words are fixed-width and every comparison is UNSIGNED.

* names: every model input (``address``, ``sp``, ``error_code``, ``T.flags``, ``A.flags``, ``pte``,
  ``pmd``, ``kpte``, ``user_mode``, ``cpu.smap``, ``regs.IF``, ``task.context``, ``T.kind``,
  ``env.mmap_sem`` ...: ``pfmodel find --list-names``); the path's ``vma.flags`` (the VMA
  find_vma returned, 0 if none), ``final.pte`` and ``final.pmd`` (after the fault);
* constants: ``PF_*``, ``VM_*``, ``_PAGE_*``, ``FAULT_FLAG_*``, ``PAGE_SIZE``, ``TASK_SIZE_MAX``,
  ``cushion`` (65536 + 32 * sizeof(long)), ``T.start``, ``T.end``, ``A.start``, ``A.end``,
  ``VMALLOC_START``, ``VMALLOC_END``, numbers (``0x7f0000000000``, ``4096``) and strings for
  choice inputs (``T.kind == "file"``);
* operators: ``+ - & | ^ ~ << >>`` (wrapping at the word's width), ``== != < <= > >=``
  (unsigned), ``and or not``;
* keywords: ``user``, ``kernel``, ``read``, ``write``, ``fetch``, ``kernel_address``,
  ``user_address``, ``writable``, ``readonly``, ``executable``, ``stack``, ``shared`` (the VMA
  the fault found), ``anonymous``, ``file``, ``hugetlb`` (T's kind), ``present`` (the PTE),
  ``grown`` (the stack grew).  A sentence of keywords is their conjunction, with small
  words ignored: ``"user write to writable VMA"`` = ``user and write and writable``.
"""

from __future__ import annotations

import ast
import os
import re
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import z3

from ..errors import UsageError
from ..model.inputs import ARCHES, DEFAULT_SCOPES, SCOPES, build_space, make_layout
from ..model.ops import EWord
from ..model.z3ops import SWord
from ..outcome import KINDS, Outcome
from ..sim import constants as simc
from ..trace import DECISIONS
from ..x86 import constants as x86c
from .smt import (
    DEFAULT_TIMEOUT_MS,
    SAT,
    UNKNOWN,
    UNSAT,
    NeedChoice,
    SmtExplorer,
    SymPath,
    SymSpace,
    SymView,
    exclusions,
    replay,
    save_witness,
    witness_model,
)

ARROWS = ("→", "->", "=")

# ---------------------------------------------------------------------------------
# The query
# ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Query:
    """What ``pfmodel find`` was asked (plain strings: it travels to worker processes)."""

    outcomes: tuple[str, ...] = ()
    mode: str | None = None
    trace: tuple[str, ...] = ()
    where: tuple[str, ...] = ()
    minimize: str | None = None
    maximize: str | None = None

    def describe(self) -> str:
        parts = []
        if self.outcomes:
            parts.append("ends in " + " or ".join(self.outcomes))
        if self.mode:
            parts.append(f"{self.mode} mode")
        parts.extend(f"takes {t}" if not t.startswith("!") else f"does not take {t[1:]}" for t in self.trace)
        parts.extend(f"where {w}" for w in self.where)
        if self.minimize:
            parts.append(f"minimizing {self.minimize}")
        if self.maximize:
            parts.append(f"maximizing {self.maximize}")
        return "; ".join(parts) or "any fault"


def parse_outcome(text: str) -> tuple[str, dict[str, Any]]:
    """``sigsegv(si_code=SEGV_ACCERR)`` -> ("sigsegv", {"si_code": "SEGV_ACCERR"})."""
    m = re.fullmatch(r"\s*([a-z_]+)\s*(?:\((.*)\))?\s*", text)
    if not m or m.group(1) not in KINDS:
        raise UsageError(f"--outcome {text!r}: not an outcome", todo="use one of: " + ", ".join(KINDS) +
                         ", optionally with fields: sigsegv(si_code=SEGV_ACCERR), oops(reason=bad_pagetable), "
                         "handled(via=vmalloc_fault, major=true)")
    fields: dict[str, Any] = {}
    if m.group(2):
        for part in m.group(2).split(","):
            if "=" not in part:
                raise UsageError(f"--outcome {text!r}: field {part.strip()!r} needs a value (name=value)")
            k, v = (x.strip() for x in part.split("=", 1))
            if k not in ("via", "major", "si_code", "reason"):
                raise UsageError(f"--outcome {text!r}: unknown field {k!r}",
                                 todo="the fields are via, major, si_code, reason")
            fields[k] = {"true": True, "false": False}.get(v.lower(), v) if k == "major" else v
    try:
        probe = {"via": "handle_mm_fault", "major": False} if m.group(1) == "handled" else {}
        if m.group(1) == "sigsegv":
            probe = {"si_code": "SEGV_MAPERR"}
        elif m.group(1) == "sigbus":
            probe = {"si_code": "BUS_ADRERR"}
        elif m.group(1) == "oops":
            probe = {"reason": "bug"}
        Outcome(m.group(1), **{**probe, **fields})
    except (ValueError, TypeError) as e:
        raise UsageError(f"--outcome {text!r}: {e}") from None
    return m.group(1), fields


def outcome_matches(outcome: Outcome, wanted: list[tuple[str, dict[str, Any]]]) -> bool:
    if not wanted:
        return True
    for kind, fields in wanted:
        if outcome.kind == kind and all(getattr(outcome, k) == v for k, v in fields.items()):
            return True
    return False


def parse_step(text: str) -> tuple[bool, str, str | None]:
    """``"access_error → false"`` -> (True, "access_error", "false"); ``!`` negates."""
    t = text.strip()
    negate = t.startswith("!")
    if negate:
        t = t[1:].strip()
    label, value = t, None
    for arrow in ARROWS:
        if arrow in t:
            label, value = (x.strip() for x in t.split(arrow, 1))
            break
    d = DECISIONS.get(label)
    if d is None:
        near = [k for k in DECISIONS if label.replace("-", "_") in k][:6]
        raise UsageError(f"--trace {text!r}: no decision is labelled {label!r}",
                         todo="known labels include: " + ", ".join(near or sorted(DECISIONS)[:8]) + " ...")
    if value is not None and d.values and value not in d.values:
        raise UsageError(f"--trace {text!r}: {label} never takes the value {value!r}",
                         todo="its values: " + ", ".join(d.values))
    return negate, label, value


def trace_matches(path: SymPath, steps: list[tuple[bool, str, str | None]]) -> bool:
    keys = path.keys()
    for negate, label, value in steps:
        found = any(k == label and (value is None or v == value) for k, v in keys)
        if found == negate:
            return False
    return True


# ---------------------------------------------------------------------------------
# The condition language
# ---------------------------------------------------------------------------------

FILLER = {"a", "an", "the", "to", "in", "on", "at", "of", "from", "into", "vma", "fault", "faults", "access",
          "page", "with", "by", "that", "is", "address", "mapping", "memory"}
ALIASES = {"read-only": "readonly", "kernel-space": "kernel_address", "user-space": "user_address",
           "kernel-mode": "kernel", "user-mode": "user", "anon": "anonymous", "writeable": "writable",
           "exec": "executable", "non-executable": "not executable"}


def _constants(arch: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for mod in (x86c, simc):
        for k, v in vars(mod).items():
            if isinstance(v, int) and not isinstance(v, bool) and (
                    k.startswith(("VM_", "PF_", "FAULT_FLAG_")) or (k.startswith("_PAGE_") and "_BIT_" not in k)):
                out[k] = v
    lay = make_layout(arch)
    out.update({"PAGE_SIZE": x86c.PAGE_SIZE, "TASK_SIZE_MAX": lay.task_size_max, "cushion": lay.cushion,
                "VMALLOC_START": lay.vmalloc[0], "VMALLOC_END": lay.vmalloc[1]})
    for v in lay.vmas:
        out[f"{v.name}.start"] = v.start
        out[f"{v.name}.end"] = v.end
    return out


def _dotted(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return None if base is None else f"{base}.{node.attr}"
    return None


def normalize_where(text: str) -> str:
    """A keyword sentence ("user write to writable VMA") becomes "user and write and writable";
    anything else is returned as is."""
    words = text.replace(",", " ").split()
    if not words:
        raise UsageError("--where: empty condition")
    out = []
    for w in words:
        lw = ALIASES.get(w.lower(), w.lower())
        if lw in FILLER:
            continue
        for part in lw.split():
            if part != "not" and part not in KEYWORDS:
                return text
            out.append(part)
    if not out:
        return text
    # "not" binds to the keyword after it.
    expr, neg = [], False
    for part in out:
        if part == "not":
            neg = True
            continue
        expr.append(("not " if neg else "") + part)
        neg = False
    return " and ".join(expr)


def _vma_test(flag: int, want: bool) -> Callable[[SymView], Any]:
    def fn(v: SymView) -> Any:
        flags = v.vma_flags
        if flags is None:
            return False
        t = v.o.test(flags, flag)
        return t if want else v.o.not_(t)
    return fn


def _kind_is(kind: str) -> Callable[[SymView], Any]:
    return lambda v: v.choice("T.kind") == kind


def _ec_bit(bit: int, want: bool) -> Callable[[SymView], Any]:
    def fn(v: SymView) -> Any:
        t = v.o.test(v.word("error_code"), bit)
        return t if want else v.o.not_(t)
    return fn


KEYWORDS: dict[str, Callable[[SymView], Any]] = {
    "user": lambda v: v.bool("user_mode"),
    "kernel": lambda v: v.o.not_(v.bool("user_mode")),
    "write": _ec_bit(x86c.PF_WRITE, True),
    "fetch": _ec_bit(x86c.PF_INSTR, True),
    "read": lambda v: v.o.and_(_ec_bit(x86c.PF_WRITE, False)(v), _ec_bit(x86c.PF_INSTR, False)(v)),
    "kernel_address": lambda v: v.o.uge(v.word("address"), v.layout.task_size_max),
    "user_address": lambda v: v.o.ult(v.word("address"), v.layout.task_size_max),
    "writable": _vma_test(simc.VM_WRITE, True),
    "readonly": _vma_test(simc.VM_WRITE, False),
    "executable": _vma_test(simc.VM_EXEC, True),
    "stack": _vma_test(simc.VM_GROWSDOWN, True),
    "shared": _vma_test(simc.VM_SHARED, True),
    "anonymous": _kind_is("anon"),
    "file": _kind_is("file"),
    "hugetlb": _kind_is("hugetlb"),
    "present": lambda v: v.o.test(v.word("pte"), x86c._PAGE_PRESENT),
    "grown": lambda v: bool(v.changes("stack_grown")),
}


class Expr:
    """One ``--where`` condition or objective, compiled from its text."""

    def __init__(self, text: str, *, what: str = "--where") -> None:
        self.text = text
        self.what = what
        src = normalize_where(text) if what == "--where" else text
        try:
            self.tree = ast.parse(src.replace("→", "->"), mode="eval").body
        except SyntaxError as e:
            words = text.replace(",", " ").split()
            if len(words) > 1 and all(re.fullmatch(r"[A-Za-z_-]+", w) for w in words):
                unknown = [w for w in words if ALIASES.get(w.lower(), w.lower()) not in KEYWORDS
                           and w.lower() not in FILLER and w.lower() != "not"]
                raise UsageError(f"{what} {text!r}: unknown word(s) {', '.join(map(repr, unknown))} in a "
                                 "keyword sentence", todo="keywords: " + ", ".join(KEYWORDS)) from None
            raise UsageError(f"{what} {text!r}: not an expression ({e.msg})",
                             todo="see `pfmodel find --help` for the condition language") from None
        self._check(self.tree)

    _ALLOWED = (ast.BoolOp, ast.BinOp, ast.UnaryOp, ast.Compare, ast.Name, ast.Attribute, ast.Constant,
                ast.And, ast.Or, ast.Not, ast.Invert, ast.USub, ast.UAdd, ast.Add, ast.Sub, ast.BitAnd,
                ast.BitOr, ast.BitXor, ast.LShift, ast.RShift, ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt,
                ast.GtE, ast.Load)

    def _check(self, node: ast.AST) -> None:
        for n in ast.walk(node):
            if not isinstance(n, self._ALLOWED):
                raise UsageError(f"{self.what} {self.text!r}: {type(n).__name__} is not part of the condition "
                                 "language", todo="use names, numbers, strings, + - & | ^ ~ << >>, "
                                                  "comparisons, and/or/not (`pfmodel find --help`)")
            if isinstance(n, ast.Constant) and not isinstance(n.value, (int, str)):
                raise UsageError(f"{self.what} {self.text!r}: {n.value!r} is not a number or a string")

    def validate_names(self, names: set[str]) -> None:
        for n in ast.walk(self.tree):
            if isinstance(n, (ast.Name, ast.Attribute)):
                d = _dotted(n)
                if d is not None and d not in names and not any(x.startswith(d + ".") for x in names):
                    raise UsageError(f"{self.what} {self.text!r}: unknown name {d!r}",
                                     todo="`pfmodel find --list-names` lists the inputs, path values, "
                                          "constants and keywords")

    def evaluate(self, view: SymView, consts: dict[str, int]) -> Any:
        return _Eval(view, consts, self).run(self.tree)


class _Eval:
    def __init__(self, view: SymView, consts: dict[str, int], expr: Expr) -> None:
        self.v = view
        self.o = view.o
        self.c = consts
        self.expr = expr

    def err(self, msg: str) -> UsageError:
        return UsageError(f"{self.expr.what} {self.expr.text!r}: {msg}")

    def run(self, n: ast.AST) -> Any:
        o = self.o
        if isinstance(n, ast.Constant):
            return n.value
        if isinstance(n, (ast.Name, ast.Attribute)):
            name = _dotted(n)
            if name is None:
                raise self.err("only dotted names are allowed")
            return self.name(name)
        if isinstance(n, ast.BoolOp):
            vals = [self.boolean(self.run(x)) for x in n.values]
            return o.and_(*vals) if isinstance(n.op, ast.And) else o.or_(*vals)
        if isinstance(n, ast.UnaryOp):
            x = self.run(n.operand)
            if isinstance(n.op, ast.Not):
                return o.not_(self.boolean(x))
            if isinstance(n.op, ast.Invert):
                return ~x if isinstance(x, int) else o.bnot(x)
            if isinstance(n.op, ast.USub):
                return -x if isinstance(x, int) else o.sub(0, x)
            return x
        if isinstance(n, ast.BinOp):
            a, b = self.run(n.left), self.run(n.right)
            if isinstance(a, str) or isinstance(b, str):
                raise self.err("arithmetic on a string")
            if isinstance(a, int) and isinstance(b, int) and not isinstance(a, bool) and not isinstance(b, bool):
                return {ast.Add: a + b, ast.Sub: a - b, ast.BitAnd: a & b, ast.BitOr: a | b, ast.BitXor: a ^ b,
                        ast.LShift: a << b if b < 256 else 0, ast.RShift: a >> b}[type(n.op)]
            if isinstance(n.op, (ast.LShift, ast.RShift)):
                if not isinstance(b, int):
                    raise self.err("shift by a constant only")
                return o.shl(a, b) if isinstance(n.op, ast.LShift) else o.lshr(a, b)
            self.fits(a, b)
            fn = {ast.Add: o.add, ast.Sub: o.sub, ast.BitAnd: o.band, ast.BitOr: o.bor, ast.BitXor: o.bxor}
            return fn[type(n.op)](a, b)
        if isinstance(n, ast.Compare):
            left = self.run(n.left)
            out = []
            for op, right_node in zip(n.ops, n.comparators):
                right = self.run(right_node)
                out.append(self.compare(op, left, right))
                left = right
            return o.and_(*out)
        raise self.err(f"{type(n).__name__} is not supported")

    def boolean(self, x: Any) -> Any:
        if x is True or x is False or isinstance(x, z3.BoolRef):
            return x
        if isinstance(x, (EWord, SWord)) or (isinstance(x, int) and not isinstance(x, bool)):
            raise self.err("a word where a condition is expected (compare it: `x != 0`)")
        raise self.err(f"{x!r} is not a condition")

    def compare(self, op: ast.cmpop, a: Any, b: Any) -> Any:
        o = self.o
        if isinstance(a, str) or isinstance(b, str):
            if not isinstance(op, (ast.Eq, ast.NotEq)):
                raise self.err("strings compare with == and != only")
            eq = a == b
            return eq if isinstance(op, ast.Eq) else not eq
        if self._is_bool(a) or self._is_bool(b):
            if not isinstance(op, (ast.Eq, ast.NotEq)):
                raise self.err("conditions compare with == and != only")
            eq = o.eq(a, b)
            return eq if isinstance(op, ast.Eq) else o.not_(eq)
        table = {ast.Eq: lambda p, q: p == q, ast.NotEq: lambda p, q: p != q, ast.Lt: lambda p, q: p < q,
                 ast.LtE: lambda p, q: p <= q, ast.Gt: lambda p, q: p > q, ast.GtE: lambda p, q: p >= q}
        if isinstance(a, int) and isinstance(b, int):
            return table[type(op)](a, b)
        # A number too wide for the word: compare mathematically (a 32-bit sp never equals
        # 0x7f0000000000, and is always below it).
        if isinstance(b, int) and b >= 1 << a.w:
            return table[type(op)](0, 1)          # every value of the word is below b
        if isinstance(a, int) and a >= 1 << b.w:
            return table[type(op)](1, 0)          # a is above every value of the word
        self.fits(a, b)
        fn = {ast.Eq: o.eq, ast.NotEq: o.ne, ast.Lt: o.ult, ast.LtE: o.ule, ast.Gt: o.ugt, ast.GtE: o.uge}
        return fn[type(op)](a, b)

    def fits(self, a: Any, b: Any) -> None:
        """A number paired with a word must fit its width (negative numbers: two's complement)."""
        for x, y in ((a, b), (b, a)):
            if isinstance(x, int) and not isinstance(x, bool) and isinstance(y, (EWord, SWord)):
                if not -(1 << y.w) <= x < (1 << y.w):
                    raise self.err(f"{x:#x} does not fit in a {y.w}-bit word on {self.v.arch} "
                                   "(choose the architecture with --arch)")

    @staticmethod
    def _is_bool(x: Any) -> bool:
        return x is True or x is False or isinstance(x, z3.BoolRef)

    def name(self, name: str) -> Any:
        v = self.v
        if name in KEYWORDS:
            return KEYWORDS[name](v)
        if name == "vma.flags":
            flags = v.vma_flags
            return flags if flags is not None else EWord(0, v.sym.W)
        if name in ("final.pte", "final.pmd"):
            value = getattr(v.final, name.split(".")[1])
            return value
        space = v.space
        if name in space.words:
            return v.word(name)
        if name in space.inputs:
            kind = space.inputs[name].kind
            if kind == "bool":
                return v.bool(name)
            if kind == "choice":
                return v.choice(name)
            return v.word(name)
        if name in self.c:
            return self.c[name]
        raise self.err(f"unknown name {name!r}")


def known_names(arch: str) -> dict[str, str]:
    """Every name the condition language knows, with what it is."""
    space = build_space(arch, "full")
    out: dict[str, str] = {}
    for name, d in space.words.items():
        out[name] = f"input word: {d.doc}"
    for name, inp in space.inputs.items():
        out.setdefault(name, f"input {inp.kind}: {inp.doc}")
    out["vma.flags"] = "path: vm_flags of the VMA find_vma returned (0 if none)"
    out["final.pte"] = "path: the PTE after the fault"
    out["final.pmd"] = "path: the pmd after the fault"
    for k in KEYWORDS:
        out[k] = "keyword"
    for k, v in _constants(arch).items():
        out.setdefault(k, f"constant {v:#x}")
    return out


# ---------------------------------------------------------------------------------
# The search
# ---------------------------------------------------------------------------------

@dataclass
class Witness:
    """A matching scenario: inputs, the path it takes, and what the simulator did with it."""

    arch: str
    scope: str
    index: int
    keys: list[tuple[str, str]]
    outcome: str
    calls: int
    bindings: dict[str, Any]
    objective: int | None = None
    replay: str = ""                 # "" when the simulator agrees, else the disagreement
    file: str = ""

    @property
    def rank(self) -> tuple:
        scope_order = DEFAULT_SCOPES.index(self.scope) if self.scope in DEFAULT_SCOPES else len(DEFAULT_SCOPES)
        return (len(self.keys), scope_order, self.index)


@dataclass
class ScopeAnswer:
    arch: str
    scope: str
    paths: int = 0
    matching: int = 0            # paths whose outcome and decisions match
    satisfiable: int = 0         # ... on which the conditions can hold
    unknown: int = 0
    reasons: list[str] = field(default_factory=list)
    witness: Witness | None = None
    seconds: float = 0.0


@dataclass
class ArchAnswer:
    arch: str
    scopes: list[ScopeAnswer]
    witness: Witness | None = None
    has_objective: bool = False

    @property
    def unknown(self) -> int:
        return sum(s.unknown for s in self.scopes)

    @property
    def status(self) -> str:
        """found / none / unknown: "none" only when every query was answered."""
        if self.witness is not None:
            return "found"
        return "unknown" if self.unknown else "none"

    @property
    def conclusive(self) -> bool:
        """A witness is conclusive; an optimum only when no query was left unknown."""
        if self.witness is not None:
            return not (self.has_objective and self.unknown)
        return not self.unknown


@dataclass
class FindReport:
    query: Query
    answers: list[ArchAnswer]
    scopes: tuple[str, ...]
    timeout_ms: int
    error_codes: str
    seconds: float = 0.0
    out: str = ""

    @property
    def exit_code(self) -> int:
        if any(a.witness is not None and a.witness.replay for a in self.answers):
            return 1
        if not all(a.conclusive for a in self.answers):
            return 3
        return 0


@dataclass(frozen=True)
class _Task:
    arch: str
    scope: str
    query: Query
    timeout_ms: int
    error_codes: str


def _compile(query: Query, arch: str) -> tuple[list, list, list[Expr], Expr | None, dict[str, int]]:
    outcomes = [parse_outcome(t) for t in query.outcomes]
    steps = [parse_step(t) for t in query.trace]
    wheres = [Expr(t) for t in query.where]
    objective = None
    if query.minimize and query.maximize:
        raise UsageError("--minimize and --maximize together", todo="give one objective")
    if query.minimize or query.maximize:
        objective = Expr(query.minimize or query.maximize, what="--minimize" if query.minimize else "--maximize")
    if query.mode not in (None, "user", "kernel"):
        raise UsageError(f"--mode {query.mode!r}: expected user or kernel")
    names = set(known_names(arch))
    for e in wheres + ([objective] if objective else []):
        e.validate_names(names)
    return outcomes, steps, wheres, objective, _constants(arch)


def _conditions(view: SymView, query: Query, wheres: list[Expr], consts: dict[str, int]) -> Any:
    o = view.o
    conds: list[Any] = []
    if query.mode == "user":
        conds.append(view.bool("user_mode"))
    elif query.mode == "kernel":
        conds.append(o.not_(view.bool("user_mode")))
    for e in wheres:
        value = e.evaluate(view, consts)
        if not (value is True or value is False or isinstance(value, z3.BoolRef)):
            raise UsageError(f"--where {e.text!r}: is a word, not a condition", todo="compare it, e.g. `x != 0`")
        conds.append(value)
    return o.and_(*conds) if conds else True


def _cases(sym: SymSpace, path: SymPath, fn: Callable[[SymView], Any]) -> list[tuple[dict[str, Any], Any, set[str]]]:
    """``fn`` on the path, once per value of each choice input it reads that the path left open."""
    out = []
    todo: list[dict[str, Any]] = [{}]
    while todo:
        extra = todo.pop()
        view = SymView(path, sym, extra)
        try:
            value = fn(view)
        except NeedChoice as e:
            todo.extend({**extra, e.name: v} for v in reversed(sym.values[e.name]))
            continue
        out.append((extra, value, view.reads))
    return out


def search_scope(task: _Task) -> ScopeAnswer:
    """Every matching path of one (architecture, scope); the best witness among them."""
    t0 = time.perf_counter()
    query = task.query
    outcomes, steps, wheres, objective, consts = _compile(query, task.arch)
    sym = SymSpace(task.arch, task.scope, "full", error_codes=task.error_codes)
    ex = SmtExplorer(sym, timeout_ms=task.timeout_ms)
    ans = ScopeAnswer(task.arch, task.scope)
    o = sym.ops
    found: list[tuple[SymPath, Any, set[str], Any]] = []     # path, formula, reads, objective term
    def question(view: SymView) -> tuple[Any, Any]:
        cond = _conditions(view, query, wheres, consts)
        if objective is None:
            return cond, None
        value = objective.evaluate(view, consts)
        if isinstance(value, int) and not isinstance(value, bool):
            value = EWord(value, sym.W)
        if not isinstance(value, (EWord, SWord)):
            raise UsageError(f"{objective.what} {objective.text!r}: is not a word (a number to optimise)")
        return cond, value

    for path in ex.paths():
        ans.paths += 1
        if not outcome_matches(path.outcome, outcomes) or not trace_matches(path, steps):
            continue
        ans.matching += 1
        sat_here = False
        for extra, (cond, value), reads in _cases(sym, path, question):
            conds = [sym.is_value(n, v) for n, v in sorted(extra.items())]
            f = o.and_(cond, *conds) if conds else cond
            if f is False:
                continue
            if f is True and path.model is not None:
                r = SAT
            else:
                r, _ = ex.solver.check(path.pc, o.bool_term(f))
            if r == UNKNOWN:
                ans.unknown += 1
                if len(ans.reasons) < 3:
                    ans.reasons.append(f"path {path.index}: {ex.solver.reason()}")
                continue
            if r == UNSAT:
                continue
            term = None if value is None else o.word_term(value)
            found.append((path, f, reads, term))
            sat_here = True
            if objective is None:
                break            # one case is enough to make the path a candidate
        ans.satisfiable += sat_here
    if found:
        ans.witness = _best_witness(sym, found, objective is not None and query.minimize is not None,
                                    objective is not None, task.timeout_ms, ans)
    ans.seconds = time.perf_counter() - t0
    return ans


def _best_witness(sym: SymSpace, found: list, minimize: bool, has_objective: bool, timeout_ms: int,
                  ans: ScopeAnswer) -> Witness | None:
    o = sym.ops
    if not has_objective:
        path, f, reads, _ = min(found, key=lambda x: (len(x[0].steps), x[0].index))
        r, model = witness_model(sym, [path.formula(), f], timeout_ms=timeout_ms)
        if model is None:
            ans.unknown += 1
            return None
        return _witness(sym, path, model, reads, None)
    # The optimum over every matching path: a fresh word equal to the objective on the
    # path whose condition holds.
    goal = z3.BitVec("find.objective", found[0][3].size())
    choices = [z3.And(p.formula(), o.bool_term(f), goal == term) for p, f, _, term in found]
    r, model = witness_model(sym, [z3.Or(*choices)], timeout_ms=timeout_ms,
                             minimize=goal if minimize else None, maximize=None if minimize else goal)
    if model is None:
        ans.unknown += 1
        return None
    for (path, f, reads, term), c in zip(found, choices):
        if z3.is_true(model.eval(c, model_completion=True)):
            return _witness(sym, path, model, reads, model.eval(goal, model_completion=True).as_long())
    return None


def _witness(sym: SymSpace, path: SymPath, model: z3.ModelRef, reads: set[str], objective: int | None) -> Witness:
    bindings = sym.bindings(model, set(path.reads) | set(reads))
    _, dis = replay(sym, path, bindings)
    return Witness(sym.arch, sym.scope, path.index, path.keys(), str(path.outcome), path.final.call, bindings,
                   objective, "" if dis is None else dis.describe())


def find(query: Query, *, arches: tuple[str, ...] = ARCHES, scopes: tuple[str, ...] = DEFAULT_SCOPES,
         timeout_ms: int = DEFAULT_TIMEOUT_MS, error_codes: str = "hardware", workers: int | None = None,
         out: str | None = None) -> FindReport:
    """Answer ``query`` on each architecture: its smallest witness, or a proof that none exists."""
    for a in arches:
        if a not in ARCHES:
            raise UsageError(f"unknown architecture {a!r}", todo="use one of: " + ", ".join(ARCHES))
    for sc in scopes:
        if sc not in SCOPES:
            raise UsageError(f"unknown scope {sc!r}", todo="use one of: " + ", ".join(SCOPES))
    for a in arches:
        _compile(query, a)          # bad input fails here, before any work
    t0 = time.perf_counter()
    tasks = [_Task(a, sc, query, timeout_ms, error_codes) for a in arches for sc in scopes]
    n = max(1, min(workers or min(os.cpu_count() or 1, 4), len(tasks)))
    if n == 1:
        results = [search_scope(t) for t in tasks]
    else:
        order = sorted(tasks, key=lambda t: (0 if t.scope == "mm" else 1, t.arch, t.scope))
        with ProcessPoolExecutor(max_workers=n) as pool:
            done = dict(zip(order, pool.map(search_scope, order)))
        results = [done[t] for t in tasks]
    answers = []
    has_obj = query.minimize is not None or query.maximize is not None
    for a in arches:
        per = [r for r in results if r.arch == a]
        cands = [r.witness for r in per if r.witness is not None]
        best = None
        if cands:
            if has_obj:
                pick = min if query.minimize is not None else max
                value = pick(c.objective for c in cands)  # type: ignore[type-var]
                best = min((c for c in cands if c.objective == value), key=lambda c: c.rank)
            else:
                best = min(cands, key=lambda c: c.rank)
        answers.append(ArchAnswer(a, per, best, has_obj))
    report = FindReport(query, answers, scopes, timeout_ms, error_codes, time.perf_counter() - t0)
    if out:
        write_witnesses(report, out)
    return report


def write_witnesses(report: FindReport, out: str) -> None:
    folder = Path(out)
    report.out = str(folder)
    for ans in report.answers:
        w = ans.witness
        if w is None:
            continue
        file = folder / f"find-{w.arch}.json"
        save_witness(w.arch, w.scope, w.bindings, w.keys, w.outcome, w.calls, file,
                     name=f"find ({w.arch}): {report.query.describe()}",
                     description=f"A witness found by `pfmodel find`: {report.query.describe()}.",
                     error_codes=report.error_codes)
        w.file = str(file)


# ---------------------------------------------------------------------------------
# Output
# ---------------------------------------------------------------------------------

def _show_value(space: Any, name: str, value: Any) -> str:
    inp = space.inputs.get(name)
    if inp is not None:
        return inp.show(value)
    return hex(value) if isinstance(value, int) and not isinstance(value, bool) else str(value)


def interesting_inputs(w: Witness) -> list[tuple[str, str]]:
    """The witness's inputs that differ from their defaults (plus address and sp)."""
    space = build_space(w.arch, w.scope)
    out = []
    for name in sorted(w.bindings):
        value = w.bindings[name]
        if name in ("address", "sp"):
            out.append((name, hex(value)))
            continue
        try:
            default = space.domain(name, w.bindings.__getitem__)[0]
        except Exception:  # noqa: BLE001 - a domain that needs an unbound input: show the value
            default = object()
        if value != default:
            out.append((name, _show_value(space, name, value)))
    return out


def report_json(report: FindReport) -> dict[str, Any]:
    from .. import __version__

    answers = []
    for a in report.answers:
        w = a.witness
        answers.append({
            "arch": a.arch, "status": a.status, "space": exclusions(a.arch),
            "paths": sum(s.paths for s in a.scopes), "matching_paths": sum(s.matching for s in a.scopes),
            "satisfiable_paths": sum(s.satisfiable for s in a.scopes), "unknown_queries": a.unknown,
            "reasons": [r for s in a.scopes for r in s.reasons][:5],
            "witness": None if w is None else {
                "scope": w.scope, "path": w.index, "outcome": w.outcome,
                "trace": [f"{label} → {value}" for label, value in w.keys],
                "inputs": {k: v for k, v in interesting_inputs(w)},
                "objective": w.objective, "simulator": "agrees" if not w.replay else w.replay,
                "file": w.file, "replay": f"pfmodel run {w.file}" if w.file else ""},
        })
    return {"pfmodel": __version__, "query": report.query.describe(), "scopes": list(report.scopes),
            "smt_timeout_ms": report.timeout_ms, "error_codes": report.error_codes,
            "exit_status": report.exit_code, "seconds": round(report.seconds, 3), "answers": answers}


def print_report(report: FindReport) -> None:
    import click

    q = report.query
    click.echo(f"query: {q.describe()}")
    for a in report.answers:
        w = a.witness
        paths = sum(s.paths for s in a.scopes)
        matching = sum(s.matching for s in a.scopes)
        where = f"{paths} feasible paths in scopes {', '.join(report.scopes)}"
        if a.status == "none":
            click.echo(f"{a.arch}: none exists (proved: {matching} of {where} match the outcome and "
                       f"decisions, and the conditions are unsatisfiable on every one)")
        elif w is None:
            click.echo(f"{a.arch}: inconclusive: {a.unknown} solver queries ended in unknown "
                       f"({'; '.join(r for s in a.scopes for r in s.reasons[:1])})")
        else:
            obj = ""
            if w.objective is not None:
                word = "minimum" if q.minimize else "maximum"
                text = q.minimize or q.maximize
                obj = f"; {word} of {text} = {w.objective:#x} ({w.objective})"
                if a.unknown:
                    obj += f" (not proved optimal: {a.unknown} queries unknown)"
            click.echo(f"{a.arch}: found in scope {w.scope} (smt path {w.index}, {len(w.keys)} decisions), "
                       f"ends {w.outcome}{obj}")
            click.echo("  inputs: " + ", ".join(f"{k}={v}" for k, v in interesting_inputs(w)))
            click.echo("  path: " + " / ".join(f"{label} → {value}" for label, value in w.keys[-6:])
                       + (" (last 6)" if len(w.keys) > 6 else ""))
            click.echo("  the simulator agrees" if not w.replay else f"  the simulator DISAGREES: {w.replay}")
            if w.file:
                click.echo(f"  pfmodel run {w.file}")
        click.echo(f"  ({exclusions(a.arch)})")


__all__ = ["Query", "find", "FindReport", "Expr", "parse_outcome", "parse_step", "known_names",
           "report_json", "print_report", "normalize_where", "KEYWORDS"]


# ---------------------------------------------------------------------------------
# The command
# ---------------------------------------------------------------------------------

def _find_command() -> Any:
    import click

    @click.command("find")
    @click.option("--outcome", "outcomes", multiple=True, metavar="OUTCOME",
                  help="How the fault ends: sigbus, sigsegv(si_code=SEGV_ACCERR), oops(reason=bad_pagetable), "
                       "handled(via=vmalloc_fault), fixup, oom, fatal_signal (repeat: any of them).")
    @click.option("--mode", type=click.Choice(["user", "kernel"]), default=None, help="The CPU mode of the fault.")
    @click.option("--trace", "trace", multiple=True, metavar="STEP",
                  help="A decision the path takes: \"access_error → false\" (or ->, =; a label alone: any value; "
                       "a leading ! : a decision it does not take). Repeatable: all of them.")
    @click.option("--where", "where", multiple=True, metavar="EXPR",
                  help="A condition on the inputs and the path (see below). Repeatable: all of them.")
    @click.option("--minimize", default=None, metavar="TERM", help="The witness with the smallest value of TERM.")
    @click.option("--maximize", default=None, metavar="TERM", help="The witness with the largest value of TERM.")
    @click.option("--arch", "arches", multiple=True, type=click.Choice(ARCHES), help="Architecture (default: both).")
    @click.option("--scope", "scopes", multiple=True, type=click.Choice(sorted(SCOPES)),
                  help="Input-space scope (default: " + ", ".join(DEFAULT_SCOPES) + ").")
    @click.option("--all-error-codes", is_flag=True, help="Also error codes the hardware never produces.")
    @click.option("--smt-timeout", "smt_timeout", type=click.IntRange(1, None), default=DEFAULT_TIMEOUT_MS,
                  show_default=True, metavar="MS", help="Time limit of each solver query (ms).")
    @click.option("--expect", type=click.Choice(["found", "none"]), default=None,
                  help="Exit 1 unless every architecture's answer is this.")
    @click.option("--out", "out", default="pfmodel-out", show_default=True, type=click.Path(path_type=Path),
                  metavar="DIR", help="Where the witness scenarios are written (find-ARCH.json).")
    @click.option("--workers", type=click.IntRange(1, 64), default=None, help="Worker processes (default: CPUs, max 4).")
    @click.option("--json", "as_json", is_flag=True, help="Print the answer as JSON.")
    @click.option("--list-names", is_flag=True, help="List the names the condition language knows, and exit.")
    @click.pass_context
    def find_cmd(ctx: click.Context, outcomes: tuple[str, ...], mode: str | None, trace: tuple[str, ...],
                 where: tuple[str, ...], minimize: str | None, maximize: str | None, arches: tuple[str, ...],
                 scopes: tuple[str, ...], all_error_codes: bool, smt_timeout: int, expect: str | None, out: Path,
                 workers: int | None, as_json: bool, list_names: bool) -> None:
        """Find the smallest scenario that does something, or prove that none exists.

        The SMT engine explores every feasible path of the model over every address and
        sp value, keeps the paths whose outcome and decisions match, and asks z3 for
        inputs that meet the conditions.  Per architecture the answer is a witness (the
        fewest decisions, the most ordinary inputs, or the optimum of --minimize /
        --maximize), saved as a scenario, replayed on the simulator -- or "none exists",
        proved (every matching path's conditions are unsatisfiable).

        \b
        Examples:
          pfmodel find --outcome sigbus --mode kernel
          pfmodel find --outcome oops --where "user write to writable VMA"
          pfmodel find --trace "access_error → false" --mode user --where "address < T.start"
          pfmodel find --mode user --trace "expand_stack → false" --where "sp == 0x7f0000010000" \\
                       --minimize address --arch x86_64

        \b
        The condition language (--where, --minimize, --maximize), Python-like, unsigned:
          names      every input (address, sp, error_code, T.flags, pte, pmd, user_mode,
                     cpu.smap, T.kind, env.mmap_sem ...), vma.flags (the VMA found, 0 if
                     none), final.pte, final.pmd  -- see --list-names
          constants  PF_*, VM_*, _PAGE_*, FAULT_FLAG_*, PAGE_SIZE, TASK_SIZE_MAX, cushion,
                     T.start, T.end, A.start, A.end, VMALLOC_START, VMALLOC_END, numbers,
                     "strings" for choice inputs (T.kind == "file")
          operators  + - & | ^ ~ << >> (wrap at the word's width), == != < <= > >=
                     (unsigned), and or not
          keywords   user kernel read write fetch kernel_address user_address writable
                     readonly executable stack shared anonymous file hugetlb present grown;
                     a sentence of keywords is their conjunction, small words ignored:
                     "user write to writable VMA" = user and write and writable

        Exit status: 0 answered (found, or none proved) and every witness replays; 1 a
        witness the simulator disagrees with (or an answer other than --expect); 2 bad
        input; 3 inconclusive (a solver query ended in unknown).
        """
        import json

        if list_names:
            for name, what in sorted(known_names((arches or ARCHES)[0]).items()):
                click.echo(f"{name:28} {what}")
            ctx.exit(0)
        query = Query(tuple(outcomes), mode, tuple(trace), tuple(where), minimize, maximize)
        report = find(query, arches=arches or ARCHES, scopes=scopes or DEFAULT_SCOPES, timeout_ms=smt_timeout,
                      error_codes="all" if all_error_codes else "hardware", workers=workers, out=str(out))
        if as_json:
            click.echo(json.dumps(report_json(report), indent=2))
        else:
            print_report(report)
        code = report.exit_code
        if code == 0 and expect is not None and any(a.status != expect for a in report.answers):
            code = 1
        ctx.exit(code)

    return find_cmd


find_cmd = _find_command()
__all__.append("find_cmd")
