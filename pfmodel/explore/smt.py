"""The SMT engine: the model's actions over z3 terms, every feasible path with its condition.

The model's actions run unchanged on ``Z3Ops`` (``pfmodel.model.z3ops``): inputs are z3
variables, guards are z3 formulas, and each decision whose condition is not constant
under the path so far asks the solver which way(s) it can go.  A path is therefore a
sequence of decisions with its *path condition* (the conjunction of the branch
constraints that forked it); two paths part at a fork with complementary constraints,
so the conditions partition the input space (``prove_partition`` checks that with z3).

Two input spaces (``SymSpace``):

* ``scope``: every input ranges over exactly the domain the exhaustive engine
  enumerates (addresses as boundary classes, sp at the cushion's edge).  The set of
  feasible paths must then equal the exhaustive engine's (``compare_paths``).
* ``full`` (what ``check --engine smt`` and ``find`` use): the faulting address and sp
  are free words -- every one of the 2^64 (x86-64) or 2^32 (i386-pae) values, wrap-around
  included -- and every other input ranges over its scope's domain.  Two exclusions, both
  stated in every report: on x86-64 the address is canonical (a non-canonical access
  raises #GP, never #PF), and it is not inside the helper VMA ``A`` (the model only
  faults on ``T``; ``A`` is there as ``T``'s vm_prev).

Choice inputs (``T.kind``, ``env.oom`` ...) are read by the actions as Python values: the
engine forks once per value the solver finds feasible.  Everything the solver is asked
has a time limit; ``unknown`` and timeouts are carried to the verdicts as UNKNOWN, never
as "holds".
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator

import z3

from ..model.actions import ACTIONS, initial_state
from ..model.inputs import ARCHES, NeedInput, Space, build_space
from ..model.ops import EWord
from ..model.state import EXIT, Machine, State, StepRec
from ..model.z3ops import SWord, Z3Ops
from ..outcome import Outcome

MODES = ("full", "scope")
DEFAULT_TIMEOUT_MS = 10_000

SAT, UNSAT, UNKNOWN = "sat", "unsat", "unknown"


class SmtUnknown(Exception):
    """A solver query ended in ``unknown`` (or a timeout) where an answer was required."""


# ---------------------------------------------------------------------------------
# The symbolic input space
# ---------------------------------------------------------------------------------

class SymSpace:
    """z3 variables for every input of one (architecture, scope), and their domains.

    ``constraints`` say that each input takes a value of its domain given the inputs
    the domain depends on (``regs.IF`` is true in user mode, ``pte.rw`` is 0 unless the
    PTE is present, ...).  An input whose domain is one value independent of the others
    is folded to that constant (``const``); it still has its variable and constraint.
    """

    def __init__(self, arch: str, scope: str, mode: str = "full", *, error_codes: str = "hardware",
                 space: Space | None = None) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; expected one of {', '.join(MODES)}")
        self.arch = arch
        self.scope = scope
        self.mode = mode
        self.error_codes = error_codes
        self.space = space or build_space(arch, scope, error_codes=error_codes)
        self.layout = self.space.layout
        self.W = self.layout.width
        self.ops = Z3Ops()
        self.vars: dict[str, Any] = {}
        self.kind: dict[str, str] = {}
        self.values: dict[str, list] = {}            # choice inputs: index -> value
        self.const: dict[str, Any] = {}
        self.deps: dict[str, set[str]] = {}
        self.cases: dict[str, list[tuple[dict, list]]] = {}
        self.constraints: list[z3.BoolRef] = []
        self.free_words = ("address", "sp") if mode == "full" else ()
        self._words: dict[str, Any] = {}
        self._build()

    # -- construction ----------------------------------------------------------------
    def _build(self) -> None:
        sp = self.space
        for name in sorted(sp.inputs):
            inp = sp.inputs[name]
            self.kind[name] = inp.kind
            if inp.kind == "bool":
                self.vars[name] = z3.Bool(name)
            elif inp.kind == "choice":
                self.vars[name] = z3.BitVec(name, 8)
            else:
                self.vars[name] = z3.BitVec(name, inp.width)
        for name in sorted(sp.inputs):
            if name in self.free_words:
                self.deps[name] = set()
                self.cases[name] = []
                continue
            cases = self._cases(name, {})
            self.cases[name] = cases
            self.deps[name] = {d for asg, _ in cases for d in asg}
            if self.kind[name] == "choice":
                vals: list = []
                for _, vs in cases:
                    for v in vs:
                        if v not in vals:
                            vals.append(v)
                self.values[name] = vals
            if len(cases) == 1 and not cases[0][0] and len(cases[0][1]) == 1:
                self.const[name] = cases[0][1][0]
        for name in sorted(sp.inputs):
            self.constraints.extend(self._domain_constraints(name))
        if self.mode == "full":
            self._check_address_dependence()

    def _getter(self, asg: dict) -> Callable[[str], Any]:
        def get(n: str) -> Any:
            try:
                return asg[n]
            except KeyError:
                raise NeedInput(n) from None
        return get

    def _cases(self, target: str, asg: dict) -> list[tuple[dict, list]]:
        """Every assignment of the inputs ``target``'s domain reads, with the domain it gives."""
        try:
            return [(asg, self.space.domain(target, self._getter(asg)))]
        except NeedInput as e:
            dep = e.name
        out: list[tuple[dict, list]] = []
        for asg2, dvals in self._dep_cases(dep, asg):
            for v in dvals:
                out.extend(self._cases(target, {**asg2, dep: v}))
        return out

    def _dep_cases(self, dep: str, asg: dict) -> list[tuple[dict, list]]:
        if dep in self.free_words:
            if dep != "address":
                raise ValueError(f"a domain depends on the free word {dep!r}; the SMT engine "
                                 "only knows how to split on the address (inside T or not)")
            t = self.layout.vma("T")
            return [(asg, [t.start, t.end])]      # representatives: inside T, outside T
        return self._cases(dep, asg)

    def in_t(self) -> z3.BoolRef:
        t = self.layout.vma("T")
        a = self.vars["address"]
        return z3.And(z3.UGE(a, t.start), z3.ULT(a, t.end))

    def is_value(self, name: str, v: Any) -> Any:
        """The condition "input ``name`` has value ``v``" (a z3 Bool)."""
        var = self.vars[name]
        k = self.kind[name]
        if name == "address" and self.mode == "full":
            t = self.layout.vma("T")
            return self.in_t() if t.start <= v < t.end else z3.Not(self.in_t())
        if k == "bool":
            return var if v else z3.Not(var)
        if k == "choice":
            return var == self.values[name].index(v)
        return var == v

    def _domain_constraints(self, name: str) -> list[z3.BoolRef]:
        if name in self.free_words:
            return self._free_word_constraints(name)
        out: list[z3.BoolRef] = []
        if self.kind[name] == "choice":
            out.append(z3.ULT(self.vars[name], len(self.values[name])))
        for asg, vals in self.cases[name]:
            member = z3.Or(*[self.is_value(name, v) for v in vals]) if vals else z3.BoolVal(False)
            if asg:
                out.append(z3.Implies(z3.And(*[self.is_value(d, v) for d, v in sorted(asg.items())]), member))
            else:
                out.append(member)
        return out

    def _free_word_constraints(self, name: str) -> list[z3.BoolRef]:
        if name != "address":
            return []
        a = self.vars["address"]
        out = []
        if self.arch == "x86_64":
            # Canonical addresses only: a non-canonical access is #GP, never #PF.
            out.append(z3.Or(z3.ULT(a, 1 << 47), z3.UGE(a, 0xFFFF800000000000)))
        A = self.layout.vma("A")
        out.append(z3.Or(z3.ULT(a, A.start), z3.UGE(a, A.end)))
        return out

    def _check_address_dependence(self) -> None:
        """The full space splits address-dependent domains on "inside T or not"; make sure
        that is all they depend on (every address class gives the same domain as the
        representative on its side of T)."""
        t = self.layout.vma("T")
        for name, cases in self.cases.items():
            for asg, vals in cases:
                if "address" not in asg:
                    continue
                for cls, a in self.layout.addresses:
                    if (t.start <= a < t.end) != (t.start <= asg["address"] < t.end):
                        continue
                    try:
                        got = self.space.domain(name, self._getter({**asg, "address": a}))
                    except NeedInput:
                        got = None
                    if got != vals:
                        raise ValueError(f"the domain of {name} depends on the address beyond "
                                         f"'inside T or not' (class {cls}); the SMT engine's full "
                                         "space cannot represent it")

    # -- terms the model reads ---------------------------------------------------------
    def bool_term(self, name: str) -> Any:
        if name in self.const:
            return bool(self.const[name])
        return self.vars[name]

    def word_term(self, name: str) -> Any:
        t = self._words.get(name)
        if t is not None:
            return t
        decl = self.space.words.get(name)
        if decl is None:
            inp = self.space.inputs[name]
            t = EWord(self.const[name], inp.width) if name in self.const else SWord.of(self.vars[name], inp.width)
        else:
            k = decl.fixed
            parts = []
            for gname, gmask in decl.groups:
                if gname in self.const:
                    k |= self.const[gname]
                else:
                    parts.append((self.vars[gname], gmask & ((1 << decl.width) - 1)))
            t = self.ops.fragments(decl.width, k, parts)
        self._words[name] = t
        return t

    def word_inputs(self, name: str) -> list[str]:
        decl = self.space.words.get(name)
        return [g for g, _ in decl.groups] if decl is not None else [name]

    # -- models back to the model's vocabulary ------------------------------------------
    def value_in(self, model: z3.ModelRef, name: str) -> Any:
        if name in self.const:
            return self.const[name]
        v = model.eval(self.vars[name], model_completion=True)
        k = self.kind[name]
        if k == "bool":
            return z3.is_true(v)
        if k == "choice":
            return self.values[name][v.as_long()]
        return v.as_long()

    def closure(self, names: Iterable[str]) -> set[str]:
        """``names`` and every input their domains depend on."""
        out: set[str] = set()
        todo = list(names)
        while todo:
            n = todo.pop()
            if n in out:
                continue
            out.add(n)
            todo.extend(self.deps.get(n, ()))
        return out

    def bindings(self, model: z3.ModelRef, names: Iterable[str]) -> dict[str, Any]:
        """Input values from ``model`` for ``names`` (and what their domains depend on),
        in the exhaustive engine's binding format (concretize takes it)."""
        return {n: self.value_in(model, n) for n in sorted(self.closure(names))}

    def prefer_defaults(self) -> list[z3.BoolRef]:
        """Soft constraints: each input at its domain's first value (the exhaustive engine's
        default), the address at a class representative, sp at the cushion's edge."""
        out = []
        for name in sorted(self.space.inputs):
            if name in self.const:
                continue
            if name in self.free_words:
                continue
            for asg, vals in self.cases[name]:
                if not vals:
                    continue
                first = self.is_value(name, vals[0])
                if asg:
                    out.append(z3.Implies(z3.And(*[self.is_value(d, v) for d, v in sorted(asg.items())]), first))
                else:
                    out.append(first)
        if self.mode == "full":
            a = self.vars["address"]
            out.append(z3.Or(*[a == v for _, v in self.layout.addresses]))
            out.append(self.vars["sp"] == a + self.layout.cushion)
        return out


# ---------------------------------------------------------------------------------
# An incremental solver following the depth-first search
# ---------------------------------------------------------------------------------

class PCNode:
    """One constraint of a path condition; the condition is the chain up to the root."""

    __slots__ = ("parent", "cons", "depth")

    def __init__(self, parent: "PCNode | None", cons: z3.BoolRef) -> None:
        self.parent = parent
        self.cons = cons
        self.depth = 1 if parent is None else parent.depth + 1

    def chain(self) -> list["PCNode"]:
        out = []
        n: PCNode | None = self
        while n is not None:
            out.append(n)
            n = n.parent
        out.reverse()
        return out


def path_formula(node: PCNode | None) -> z3.BoolRef:
    if node is None:
        return z3.BoolVal(True)
    cons = [n.cons for n in node.chain()]
    return cons[0] if len(cons) == 1 else z3.And(*cons)


class IncSolver:
    """A z3 solver whose scopes mirror the current path condition (push/pop by prefix)."""

    def __init__(self, constraints: list[z3.BoolRef], timeout_ms: int) -> None:
        # The plain incremental SMT core: measured faster here than the QF_BV tactic
        # pipeline, whose preprocessing is redone after every push/pop.
        self.s = z3.SimpleSolver()
        self.s.set("timeout", int(timeout_ms))
        self.s.add(*constraints)
        self.stack: list[PCNode] = []
        self.queries = 0
        self.unknowns = 0
        self.seconds = 0.0

    def _sync(self, node: PCNode | None) -> None:
        chain = node.chain() if node is not None else []
        k = 0
        stack = self.stack
        n = min(len(stack), len(chain))
        while k < n and stack[k] is chain[k]:
            k += 1
        if len(stack) > k:
            self.s.pop(len(stack) - k)
            del stack[k:]
        for c in chain[k:]:
            self.s.push()
            self.s.add(c.cons)
            stack.append(c)

    def check(self, node: PCNode | None, *extra: Any) -> tuple[str, z3.ModelRef | None]:
        self._sync(node)
        t0 = time.perf_counter()
        r = self.s.check(*extra)
        self.seconds += time.perf_counter() - t0
        self.queries += 1
        if r == z3.sat:
            return SAT, self.s.model()
        if r == z3.unsat:
            return UNSAT, None
        self.unknowns += 1
        return UNKNOWN, None

    def reason(self) -> str:
        return self.s.reason_unknown()


# ---------------------------------------------------------------------------------
# Path enumeration
# ---------------------------------------------------------------------------------

class _Fork(Exception):
    """Several ways are feasible at a choice point: (value, constraint, model) each.
    ``cond`` is the branch condition of a two-way fork (None for a choice input)."""

    def __init__(self, alts: list[tuple[Any, z3.BoolRef, z3.ModelRef | None]],
                 cond: z3.BoolRef | None = None) -> None:
        super().__init__("fork")
        self.alts = alts
        self.cond = cond


@dataclass
class SymPath:
    """One feasible path: its decisions, outcome, final state and path condition."""

    index: int
    steps: list[StepRec]
    outcome: Outcome
    final: State
    pc: PCNode | None
    choices: dict[str, Any]
    reads: frozenset[str]
    model: z3.ModelRef | None     # satisfies the path condition (None after an unknown)
    uncertain: bool = False       # some fork on the way was decided by an unknown answer
    bindings: dict[str, Any] = field(default_factory=dict)   # a witness, once computed

    def keys(self) -> list[tuple[str, str]]:
        return [st.key for st in self.steps]

    @property
    def signature(self) -> tuple[tuple[tuple[str, str], ...], str]:
        return tuple(self.keys()), str(self.outcome)

    def formula(self) -> z3.BoolRef:
        return path_formula(self.pc)


class SymInputs:
    """The inputs as the model reads them during symbolic execution."""

    def __init__(self, explorer: "SmtExplorer") -> None:
        self.x = explorer
        self.sym = explorer.sym

    def bool(self, name: str) -> Any:
        self.x.reads.add(name)
        return self.sym.bool_term(name)

    def word(self, name: str) -> Any:
        self.x.reads.update(self.sym.word_inputs(name))
        return self.sym.word_term(name)

    def choice(self, name: str) -> Any:
        self.x.reads.add(name)
        return self.x.choose(name)


@dataclass
class _Item:
    state: State
    pc: PCNode | None
    choices: dict[str, Any]
    reads: set[str]
    forced: list[Any]
    model: z3.ModelRef | None
    uncertain: bool
    facts: dict[int, bool]


class SmtExplorer:
    """Depth-first symbolic execution of the model over one ``SymSpace``."""

    def __init__(self, sym: SymSpace, *, timeout_ms: int = DEFAULT_TIMEOUT_MS,
                 solver: IncSolver | None = None) -> None:
        self.sym = sym
        self.timeout_ms = timeout_ms
        self.solver = solver or IncSolver(sym.constraints, timeout_ms)
        self.inputs = SymInputs(self)
        self.machine = Machine(sym.ops, self.inputs, sym.layout, branch=self._branch)
        self.states = 0
        self.forks = 0
        self.unknown_reasons: list[str] = []
        # per-action context
        self.pc: PCNode | None = None
        self.choices: dict[str, Any] = {}
        self.reads: set[str] = set()
        self.forced: list[Any] = []
        self.taken: list[Any] = []
        self.model: z3.ModelRef | None = None
        self.uncertain = False
        self.facts: dict[int, bool] = {}

    # -- choice points ------------------------------------------------------------------
    def _next_forced(self) -> tuple[bool, Any]:
        if self.forced:
            v = self.forced.pop(0)
            self.taken.append(v)
            return True, v
        return False, None

    def _note_unknown(self, what: str) -> None:
        self.uncertain = True
        self.unknown_reasons.append(f"{what}: {self.solver.reason()}")

    def _decided(self, c: z3.BoolRef, value: bool) -> None:
        """Remember on this path that ``c`` has ``value`` (and its negation the other)."""
        self.facts[c.get_id()] = value
        self.facts[self.sym.ops.negation(c).get_id()] = not value

    def _branch(self, cond: Any) -> bool:
        forced, v = self._next_forced()
        if forced:
            return v
        c = self.sym.ops._b(cond)
        if c is True or c is False:
            self.taken.append(c)
            return c
        known = self.facts.get(c.get_id())
        if known is not None:
            self.taken.append(known)
            return known
        neg = self.sym.ops.negation(c)
        alts: list[tuple[Any, z3.BoolRef, z3.ModelRef | None]] = []
        if self.model is not None:
            holds = z3.is_true(self.model.eval(c, model_completion=True))
            first = (holds, c if holds else neg, self.model)
            other_c = neg if holds else c
            r, mod = self.solver.check(self.pc, other_c)
            if r == UNSAT:
                self.taken.append(holds)
                self._decided(c, holds)
                return holds
            if r == UNKNOWN:
                self._note_unknown("branch feasibility")
            second = (not holds, other_c, mod)
            alts = [first, second] if holds else [second, first]
        else:
            for value, cc in ((True, c), (False, neg)):
                r, mod = self.solver.check(self.pc, cc)
                if r == UNKNOWN:
                    self._note_unknown("branch feasibility")
                if r != UNSAT:
                    alts.append((value, cc, mod))
            if len(alts) == 1:
                self.taken.append(alts[0][0])
                self._decided(c, alts[0][0])
                if alts[0][2] is not None:
                    self.model = alts[0][2]
                return alts[0][0]
            if not alts:
                raise RuntimeError("neither side of a branch is feasible on a feasible path")
        raise _Fork(alts, c)

    def choose(self, name: str) -> Any:
        if name in self.choices:
            return self.choices[name]
        sym = self.sym
        if name in sym.const:
            self.choices[name] = sym.const[name]
            return sym.const[name]
        forced, v = self._next_forced()
        if forced:
            self.choices[name] = v
            return v
        var = sym.vars[name]
        values = sym.values[name]
        found: dict[int, z3.ModelRef | None] = {}
        if self.model is not None:
            found[self.model.eval(var, model_completion=True).as_long()] = self.model
        while len(found) < len(values):
            excl = [var != k for k in sorted(found)]
            r, mod = self.solver.check(self.pc, *excl)
            if r == UNSAT:
                break
            if r == UNKNOWN:
                # Cannot tell which values remain: explore them all, marked uncertain.
                self._note_unknown(f"values of {name}")
                for k in range(len(values)):
                    found.setdefault(k, None)
                break
            found[mod.eval(var, model_completion=True).as_long()] = mod
        if len(found) == 1:
            (k, mod), = found.items()
            value = values[k]
            self.taken.append(value)
            self.choices[name] = value
            if mod is not None:
                self.model = mod
            return value
        raise _Fork([(values[k], var == k, found[k]) for k in sorted(found)])

    # -- the search ----------------------------------------------------------------------
    def paths(self) -> Iterator[SymPath]:
        """Every feasible path, depth first, in a deterministic order."""
        m = self.machine
        r, model0 = self.solver.check(None)
        if r == UNSAT:
            return
        if r == UNKNOWN:
            self._note_unknown("the input space")
        s0 = initial_state(m)
        stack = [_Item(s0, None, {}, set(), [], model0, r == UNKNOWN, {})]
        actions = ACTIONS
        index = 0
        self.states = 0
        while stack:
            it = stack.pop()
            s, pc, choices, reads, forced = it.state, it.pc, it.choices, it.reads, it.forced
            model, uncertain, facts = it.model, it.uncertain, it.facts
            while s.pc != EXIT:
                s2 = s.copy()
                self.pc = pc
                self.choices = dict(choices)
                self.reads = set(reads)
                self.forced = list(forced)
                self.taken = []
                self.model = model
                self.uncertain = uncertain
                self.facts = facts
                try:
                    actions[s.pc](m, s2)
                except _Fork as f:
                    self.forks += 1
                    prefix = list(self.taken)
                    unc = self.uncertain
                    alts = []
                    for value, cons, mod in f.alts:
                        fx = dict(self.facts)
                        if f.cond is not None:
                            fx[f.cond.get_id()] = value
                            fx[self.sym.ops.negation(f.cond).get_id()] = not value
                        alts.append(_Item(s, PCNode(pc, cons), choices, reads, prefix + [value], mod,
                                          unc or mod is None, fx))
                    stack.extend(reversed(alts[1:]))
                    first = alts[0]
                    pc, forced, model, uncertain, facts = (first.pc, first.forced, first.model,
                                                           first.uncertain, first.facts)
                    continue
                self.states += 1
                s = s2
                choices = self.choices
                reads = self.reads
                forced = []
                model = self.model
                uncertain = self.uncertain
                facts = self.facts
            yield SymPath(index, s.steps(), s.outcome, s, pc, dict(choices), frozenset(reads),  # type: ignore[arg-type]
                          model, uncertain)
            index += 1


# ---------------------------------------------------------------------------------
# Partition and path-set comparison
# ---------------------------------------------------------------------------------

@dataclass
class PartitionProof:
    arch: str
    scope: str
    mode: str
    paths: int
    disjoint: str          # sat/unsat/unknown of "two path conditions hold at once"
    cover: str             # of "no path condition holds"
    seconds: float
    method: str = "at-least-two"

    @property
    def proved(self) -> bool:
        return self.disjoint == UNSAT and self.cover == UNSAT


def prove_partition(sym: SymSpace, paths: list[SymPath], *, timeout_ms: int = DEFAULT_TIMEOUT_MS,
                    pairwise: bool = False) -> PartitionProof:
    """Prove with z3 that the path conditions are pairwise disjoint and cover the space.

    Disjointness is one query, "at least two conditions hold" (unsat), or with
    ``pairwise`` one query per pair; cover is "none holds" (unsat), both within the
    space's domain constraints."""
    t0 = time.perf_counter()
    conds = [p.formula() for p in paths]
    s = z3.SolverFor("QF_BV")
    s.set("timeout", int(timeout_ms))
    s.add(*sym.constraints)
    if pairwise:
        disjoint = UNSAT
        for i in range(len(conds)):
            for j in range(i + 1, len(conds)):
                r = s.check(conds[i], conds[j])
                if r == z3.sat:
                    disjoint = SAT
                    break
                if r != z3.unsat:
                    disjoint = UNKNOWN
            if disjoint == SAT:
                break
    else:
        r = s.check(z3.AtLeast(*conds, 2)) if len(conds) > 1 else z3.unsat
        disjoint = _res(r)
    cover = _res(s.check(z3.Not(z3.Or(*conds)) if conds else z3.BoolVal(True)))
    return PartitionProof(sym.arch, sym.scope, sym.mode, len(paths), disjoint, cover,
                          time.perf_counter() - t0, "pairwise" if pairwise else "at-least-two")


def _res(r: Any) -> str:
    if r == z3.sat:
        return SAT
    if r == z3.unsat:
        return UNSAT
    return UNKNOWN


@dataclass
class PathSetComparison:
    arch: str
    scope: str
    smt_paths: int
    exhaustive_paths: int
    signatures: int
    only_smt: list[tuple]
    only_exhaustive: list[tuple]
    uncertain: int = 0

    @property
    def equal(self) -> bool:
        return not self.only_smt and not self.only_exhaustive and not self.uncertain


def exhaustive_signatures(arch: str, scope: str, error_codes: str = "hardware") -> tuple[set, int]:
    from .exhaustive import Explorer

    sigs: set = set()
    n = 0
    for p in Explorer(arch, scope, error_codes=error_codes).paths():
        sigs.add((tuple(p.keys()), str(p.outcome)))
        n += 1
    return sigs, n


def compare_paths(arch: str, scope: str, *, error_codes: str = "hardware",
                  timeout_ms: int = DEFAULT_TIMEOUT_MS) -> tuple[PathSetComparison, list[SymPath], SymSpace]:
    """The SMT engine's feasible paths over the scope's own domains against the exhaustive
    engine's paths: the two sets of signatures (decisions + outcome) must be equal."""
    sym = SymSpace(arch, scope, "scope", error_codes=error_codes)
    paths = list(SmtExplorer(sym, timeout_ms=timeout_ms).paths())
    mine = {p.signature for p in paths}
    theirs, n = exhaustive_signatures(arch, scope, error_codes)
    cmp = PathSetComparison(arch, scope, len(paths), n, len(mine),
                            sorted(mine - theirs), sorted(theirs - mine),
                            sum(1 for p in paths if p.uncertain))
    return cmp, paths, sym


__all__ = ["SymSpace", "SmtExplorer", "SymPath", "PCNode", "IncSolver", "prove_partition",
           "compare_paths", "PathSetComparison", "PartitionProof", "MODES", "DEFAULT_TIMEOUT_MS",
           "SAT", "UNSAT", "UNKNOWN", "ARCHES"]
