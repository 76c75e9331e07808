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
  raises #GP, never #PF).  ``addresses="model"`` also leaves out faults that grow the
  helper VMA ``A`` (an address below it while it is a stack); that exclusion hid a model
  bug (the THP range check after a growth) until it was fixed, and is off by default.

Choice inputs (``T.kind``, ``env.oom`` ...) are read by the actions as Python values: the
engine forks once per value the solver finds feasible.  Everything the solver is asked
has a time limit; ``unknown`` and timeouts are carried to the verdicts as UNKNOWN, never
as "holds".
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import z3

from ..model.actions import ACTIONS, initial_state
from ..model.inputs import ARCHES, NeedInput, Space, build_space
from ..model.ops import EWord
from ..model.state import EXIT, Machine, State, StepRec
from ..errors import PfmodelError, PropertyError, UsageError
from ..model.ops import EBool
from ..model.z3ops import SWord, Z3Ops
from ..outcome import Outcome
from ..sim.constants import VM_GROWSDOWN
from ..properties import HOLDS, VIOLATED, Property, RunView, load_properties, select
from .check import Judged
from .conformance import Disagreement, check_path

MODES = ("full", "scope")
DEFAULT_TIMEOUT_MS = 10_000
MAX_SAVED_DISAGREEMENTS = 10
UNKNOWN_VERDICT = "unknown"

SAT, UNSAT, UNKNOWN = "sat", "unsat", "unknown"


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
                 space: Space | None = None, addresses: str = "all") -> None:
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; expected one of {', '.join(MODES)}")
        if addresses not in ("model", "all"):
            raise ValueError(f"addresses={addresses!r}: expected 'model' or 'all'")
        self.addresses = addresses
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
        if self.addresses == "model":
            # Growing the helper VMA A (a fault below it while it is a stack) is left out:
            # the model's THP decision after such a growth does not follow the simulator's
            # (conformance on this space finds it; addresses="all" shows it).
            A = self.layout.vma("A")
            grows = self.ops.bool_term(self.ops.test(self.word_term(A.flags), VM_GROWSDOWN))
            out.append(z3.Or(z3.UGE(a, A.start), z3.Not(grows)))
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
        self.reads = set()
        s0 = initial_state(m)      # reads the input words the state starts from
        stack = [_Item(s0, None, {}, set(self.reads), [], model0, r == UNKNOWN, {})]
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
# Properties over symbolic paths
# ---------------------------------------------------------------------------------

class NeedChoice(Exception):
    """A predicate read a choice input its path never bound: evaluate it once per value."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


class SymView(RunView):
    """A ``RunView`` over a symbolic path: inputs are z3 terms, ops are ``Z3Ops``.

    Structural facts (outcome, decisions, changes) are the path's own; ``word``/``bool``
    give the inputs as the model read them.  With ``values`` (a witness's bindings) the
    inputs read as those constants instead, for predicates judged on a simulator run."""

    def __init__(self, path: SymPath, sym: SymSpace, choices: dict[str, Any] | None = None,
                 sim: Any = None, values: dict[str, Any] | None = None) -> None:
        super().__init__(path, sym.space, None, sim)
        self.o = sym.ops  # type: ignore[assignment]
        self.sym = sym
        self.choices = {**path.choices, **(choices or {})}
        self.reads: set[str] = set()
        self.values_of = values

    def _concrete(self, name: str) -> Any:
        from ..model.concretize import Resolver

        r = Resolver(self.space, self.values_of or {})
        return r(name)

    def word(self, name: str) -> Any:  # type: ignore[override]
        if self.values_of is not None:
            decl = self.space.words.get(name)
            if decl is None:
                return EWord(self._concrete(name), self.space.inputs[name].width)
            from ..model.concretize import Resolver
            return EWord(Resolver(self.space, self.values_of).word(name), decl.width)
        self.reads.update(self.sym.word_inputs(name))
        return self.sym.word_term(name)

    def bool(self, name: str) -> Any:  # type: ignore[override]
        if self.values_of is not None:
            return bool(self._concrete(name))
        self.reads.add(name)
        return self.sym.bool_term(name)

    def choice(self, name: str) -> Any:
        if self.values_of is not None:
            return self._concrete(name)
        self.reads.add(name)
        if name in self.choices:
            return self.choices[name]
        if name in self.sym.const:
            return self.sym.const[name]
        raise NeedChoice(name)


def _as_bool(value: Any, prop: Property) -> Any:
    if value is True or value is False or isinstance(value, z3.BoolRef):
        return value
    if isinstance(value, EBool):
        return value.v
    raise PropertyError(f"property {prop.name}: a predicate returned {value!r}; it must return a bool "
                        "or an ops Bool", where=prop.source)


@dataclass
class _Case:
    """One evaluation of a property on a path (per value of the choices it read)."""

    choices: dict[str, Any]
    when: Any
    holds: Any
    reads: set[str]


def evaluate_symbolic(prop: Property, path: SymPath, sym: SymSpace, view: SymView | None = None) -> list[_Case]:
    """The premise and predicate of ``prop`` on ``path`` as formulas, once per value of
    every choice input the predicate reads and the path left open.  ``view``: a view of
    the path to share between properties (used while no open choice is read)."""
    out: list[_Case] = []
    todo: list[dict[str, Any]] = [{}]
    while todo:
        extra = todo.pop()
        view = view if (view is not None and not extra) else SymView(path, sym, extra)
        try:
            w = True if prop.when is None else _as_bool(prop.when(view), prop)
            if w is False:
                continue
            h = _as_bool(prop.predicate(view), prop)
        except NeedChoice as e:
            todo.extend({**extra, e.name: v} for v in reversed(sym.values[e.name]))
            continue
        except (PropertyError, _Fork):
            raise
        except Exception as e:  # a bug in a property file: name it, with the path
            raise PropertyError(f"property {prop.name} raised {type(e).__name__}: {e}", where=prop.source,
                                why=f"on {sym.arch}/{sym.scope} (smt) path {path.index}",
                                todo="fix the predicate") from e
        out.append(_Case(extra, w, h, view.reads))
    return out


def violation_formula(sym: SymSpace, case: _Case) -> Any:
    """Premise and not predicate, under the case's choice values (True/False when constant)."""
    o = sym.ops
    f = o.and_(case.when, o.not_(case.holds))
    if f is False:
        return False
    conds = [sym.is_value(n, v) for n, v in sorted(case.choices.items())]
    return o.and_(f, *conds) if conds else f


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


# ---------------------------------------------------------------------------------
# Witnesses: a z3 model becomes a scenario, replayed on the simulator
# ---------------------------------------------------------------------------------

def witness_model(sym: SymSpace, formulas: list[Any], *, timeout_ms: int = DEFAULT_TIMEOUT_MS,
                  minimize: Any = None, maximize: Any = None) -> tuple[str, z3.ModelRef | None]:
    """A model of ``formulas`` (within the space's domains) as ordinary as z3 can make it:
    soft constraints put every input at its default where the formulas allow (and an
    objective, if given, comes first)."""
    opt = z3.Optimize()
    opt.set("timeout", int(timeout_ms))
    opt.add(*sym.constraints)
    opt.add(*[sym.ops.bool_term(f) for f in formulas])
    if minimize is not None:
        opt.minimize(minimize)
    if maximize is not None:
        opt.maximize(maximize)
    for c in sym.prefer_defaults():
        opt.add_soft(c)
    r = opt.check()
    if r == z3.sat:
        return SAT, opt.model()
    if r == z3.unsat:
        return UNSAT, None
    # Optimize may give up on the soft constraints: fall back to any model.
    plain = z3.SimpleSolver()
    plain.set("timeout", int(timeout_ms))
    plain.add(*sym.constraints)
    plain.add(*[sym.ops.bool_term(f) for f in formulas])
    r = plain.check()
    if r == z3.sat and minimize is None and maximize is None:
        return SAT, plain.model()
    return (UNSAT, None) if r == z3.unsat else (UNKNOWN, None)


def replay(sym: SymSpace, path: SymPath, bindings: dict[str, Any]) -> tuple[Any, Disagreement | None]:
    """Run the witness ``bindings`` of ``path`` on the simulator; a Disagreement if the
    simulator's first fault does not take the path's decisions to its outcome."""
    path.bindings = dict(bindings)
    return check_path(sym.space, sym.scope, path)


def hardware_error_code(sym: SymSpace, bindings: dict[str, Any]) -> bool:
    """Could the CPU push this error code for this access (KF 3.8)?"""
    if sym.error_codes == "hardware":
        return True
    hw = build_space(sym.arch, sym.scope, error_codes="hardware")
    values: dict[str, Any] = {}
    for name in ("user_mode", "ec.P", "ec.W", "ec.U", "ec.RSVD", "ec.I"):
        if name not in bindings:
            return True
        values[name] = bindings[name]
        try:
            if values[name] not in hw.domain(name, values.__getitem__):
                return False
        except KeyError:
            return True
    return True


# ---------------------------------------------------------------------------------
# pfmodel check --engine smt
# ---------------------------------------------------------------------------------

SIM_REASON = ("needs the simulator's run: judged on one witness scenario per feasible path, "
              "which z3 cannot generalise to every input")


@dataclass
class SmtPropertyResult(Judged):
    prop: Property
    applicable: int = 0        # paths on which the premise can hold
    checked: int = 0
    violations: int = 0        # paths with a satisfiable violation
    unknown: int = 0           # paths whose query ended in unknown / timeout
    witnesses: int = 0         # simulator properties: witness scenarios judged
    seconds: float = 0.0
    reasons: list[str] = field(default_factory=list)
    counterexample: Any = None          # check.Counterexample
    replay: str = ""                    # "" (agrees) or the conformance disagreement
    hardware: bool = True               # the counterexample's error code is one the CPU produces

    @property
    def verdict(self) -> str:
        if self.violations:
            return VIOLATED
        if self.unknown or self.prop.needs_simulator:
            return UNKNOWN_VERDICT
        return HOLDS

    @property
    def reason(self) -> str:
        if self.verdict != UNKNOWN_VERDICT:
            return ""
        if self.prop.needs_simulator and not self.unknown:
            return f"{SIM_REASON} ({self.witnesses} witnesses, no violation)"
        first = self.reasons[0] if self.reasons else "unknown"
        return f"z3 answered unknown on {self.unknown} path(s): {first}"


@dataclass
class SmtScopeStats:
    arch: str
    scope: str
    paths: int = 0
    signatures: int = 0
    states: int = 0
    forks: int = 0
    queries: int = 0
    solver_seconds: float = 0.0
    seconds: float = 0.0
    uncertain: int = 0
    unknown_reasons: list[str] = field(default_factory=list)


@dataclass
class SmtCheckReport:
    arches: tuple[str, ...]
    scopes: tuple[str, ...]
    results: list[SmtPropertyResult]
    conformance: bool
    timeout_ms: int
    error_codes: str
    engine: str = "smt"
    stats: list[SmtScopeStats] = field(default_factory=list)
    sim_runs: int = 0
    conformance_checked: int = 0
    disagreements: list[Disagreement] = field(default_factory=list)
    disagreement_count: int = 0
    seconds: float = 0.0
    out: str = ""
    addresses: str = "all"

    @property
    def paths(self) -> int:
        return sum(s.paths for s in self.stats)

    @property
    def inconclusive(self) -> bool:
        return any(r.verdict == UNKNOWN_VERDICT for r in self.results) or any(s.uncertain for s in self.stats)

    @property
    def ok(self) -> bool:
        return (self.disagreement_count == 0
                and all(r.as_expected or r.verdict == UNKNOWN_VERDICT for r in self.results))

    @property
    def exit_code(self) -> int:
        if not self.ok:
            return 1
        return 3 if self.inconclusive else 0


@dataclass
class _SmtTask:
    arch: str
    scope: str
    folders: tuple[str, ...]
    builtin: bool
    names: tuple[str, ...]
    conformance: bool
    timeout_ms: int
    error_codes: str
    addresses: str = "all"


@dataclass
class _SmtChunk:
    stats: SmtScopeStats
    results: dict[str, SmtPropertyResult]
    sim_runs: int = 0
    conformance_checked: int = 0
    disagreements: list[Disagreement] = field(default_factory=list)
    disagreement_count: int = 0


def _path_rank(path: SymPath) -> tuple[int, int]:
    return (len(path.steps), path.index)


def run_smt_chunk(task: _SmtTask, props: list[Property] | None = None) -> _SmtChunk:
    """Every property on every feasible path of one (architecture, scope), full space."""
    from .check import Counterexample, unusual

    if props is None:
        props = select(load_properties(task.folders, builtin=task.builtin), task.names)
    t_start = time.perf_counter()
    sym = SymSpace(task.arch, task.scope, "full", error_codes=task.error_codes, addresses=task.addresses)
    ex = SmtExplorer(sym, timeout_ms=task.timeout_ms)
    st = SmtScopeStats(task.arch, task.scope)
    results = {p.name: SmtPropertyResult(p) for p in props}
    chunk = _SmtChunk(st, results)
    best: dict[str, tuple[tuple, SymPath, Any, set[str]]] = {}
    sim_best: dict[str, tuple[tuple, SymPath, dict[str, Any], Any]] = {}
    sigs: set = set()

    seen_paths: set[int] = set()

    def add_disagreement(d: Disagreement) -> None:
        if d.index in seen_paths:     # one per path (a witness of a property may repeat it)
            return
        seen_paths.add(d.index)
        chunk.disagreement_count += 1
        if len(chunk.disagreements) < MAX_SAVED_DISAGREEMENTS:
            chunk.disagreements.append(d)

    for path in ex.paths():
        st.paths += 1
        sigs.add(path.signature)
        if path.uncertain:
            st.uncertain += 1
        run = None
        witness: dict[str, Any] | None = None
        if task.conformance and path.model is not None:
            witness = sym.bindings(path.model, path.reads)
            run, dis = replay(sym, path, witness)
            chunk.sim_runs += 1
            chunk.conformance_checked += 1
            if dis is not None:
                add_disagreement(dis)
                witness = run = None     # not a run of this path: simulator properties look again
        shared = SymView(path, sym)
        for p in props:
            res = results[p.name]
            t0 = time.perf_counter()
            res.checked += 1
            cases = evaluate_symbolic(p, path, sym, shared)
            if cases:
                res.applicable += 1
            if p.needs_simulator:
                _simulator_property(sym, ex, p, res, path, cases, witness, run, sim_best, chunk,
                                    add_disagreement)
                res.seconds += time.perf_counter() - t0
                continue
            for case in cases:
                f = violation_formula(sym, case)
                if f is False:
                    continue
                if f is True and path.model is not None:
                    r = SAT
                else:
                    r, _ = ex.solver.check(path.pc, sym.ops.bool_term(f))
                if r == SAT:
                    res.violations += 1
                    rank = _path_rank(path)
                    if p.name not in best or rank < best[p.name][0]:
                        best[p.name] = (rank, path, f, case.reads)
                    break
                if r == UNKNOWN:
                    res.unknown += 1
                    if len(res.reasons) < 3:
                        res.reasons.append(f"{task.arch}/{task.scope} path {path.index}: {ex.solver.reason()}")
            res.seconds += time.perf_counter() - t0
    st.signatures = len(sigs)
    st.states = ex.states
    st.forks = ex.forks
    st.queries = ex.solver.queries
    st.solver_seconds = ex.solver.seconds
    st.unknown_reasons = ex.unknown_reasons[:3]

    # The best violating path of each property: an ordinary witness, replayed.
    for name, (_, path, f, reads) in sorted(best.items()):
        res = results[name]
        r, model = witness_model(sym, [path.formula(), f], timeout_ms=task.timeout_ms)
        if model is None:
            res.violations -= 1   # cannot happen for a satisfiable query, unless z3 gives up
            res.unknown += 1
            res.reasons.append(f"no witness model for {task.arch}/{task.scope} path {path.index}: {r}")
            continue
        bindings = sym.bindings(model, set(path.reads) | set(reads))
        _finish_counterexample(sym, res, path, bindings, chunk, add_disagreement, Counterexample, unusual)
    for name, (_, path, bindings, run) in sorted(sim_best.items()):
        _finish_counterexample(sym, results[name], path, bindings, chunk, add_disagreement,
                               Counterexample, unusual)
    st.seconds = time.perf_counter() - t_start
    return chunk


def _finish_counterexample(sym: SymSpace, res: SmtPropertyResult, path: SymPath, bindings: dict[str, Any],
                           chunk: _SmtChunk, add_disagreement: Callable[[Disagreement], None],
                           counterexample_cls: Any, unusual: Callable[..., int]) -> None:
    run, dis = replay(sym, path, bindings)
    chunk.sim_runs += 1
    if dis is not None:
        add_disagreement(dis)
    res.counterexample = counterexample_cls(sym.arch, sym.scope, path.index, bindings, path.keys(),
                                            str(path.outcome), path.final.call, unusual(sym.space, bindings))
    res.replay = "" if dis is None else dis.describe()
    res.hardware = hardware_error_code(sym, bindings)


def _simulator_property(sym: SymSpace, ex: SmtExplorer, p: Property, res: SmtPropertyResult, path: SymPath,
                        cases: list[_Case], witness: dict[str, Any] | None, run: Any,
                        sim_best: dict, chunk: _SmtChunk,
                        add_disagreement: Callable[[Disagreement], None]) -> None:
    """A property judged on the simulator's run: one witness of the premise per path."""
    for case in cases:
        prem = case.when
        conds = [sym.is_value(n, v) for n, v in sorted(case.choices.items())]
        if prem is True and not conds and witness is not None:
            bindings, r_run, model = witness, run, path.model
        else:
            f = sym.ops.and_(prem, *conds) if conds else prem
            r, model = ex.solver.check(path.pc, sym.ops.bool_term(f))
            if r == UNSAT:
                continue
            if r == UNKNOWN or model is None:
                res.unknown += 1
                continue
            bindings = sym.bindings(model, set(path.reads) | set(case.reads))
            r_run = None
        if r_run is None:
            r_run, dis = replay(sym, path, bindings)
            chunk.sim_runs += 1
            if dis is not None:
                # The simulator does not take the model's path on this witness: that is a
                # conformance violation, and the property cannot be judged on this run.
                add_disagreement(dis)
                res.unknown += 1
                if len(res.reasons) < 3:
                    res.reasons.append(f"{sym.arch}/{sym.scope} path {path.index}: the simulator left the "
                                       "model's path on the witness")
                continue
        view = SymView(path, sym, case.choices, sim=r_run, values=bindings)
        res.witnesses += 1
        try:
            holds = _as_bool(p.predicate(view), p)
        except PropertyError:
            raise
        except Exception as e:
            raise PropertyError(f"property {p.name} raised {type(e).__name__}: {e}", where=p.source,
                                why=f"on {sym.arch}/{sym.scope} (smt) path {path.index}",
                                todo="fix the predicate") from e
        if isinstance(holds, z3.BoolRef):     # it read the path's (symbolic) final state
            holds = z3.is_true(model.eval(holds, model_completion=True)) if model is not None else True
        if holds is False:
            res.violations += 1
            rank = _path_rank(path)
            if p.name not in sim_best or rank < sim_best[p.name][0]:
                sim_best[p.name] = (rank, path, dict(bindings), r_run)
        return


def _run_smt_task(task: _SmtTask) -> _SmtChunk:
    chunk = run_smt_chunk(task)
    for r in chunk.results.values():
        r.prop = None  # type: ignore[assignment]  # property files' functions do not pickle
    return chunk


# Rough relative cost of each scope, to start the longest first when running in parallel.
_COST = {"mm": 0, "handler": 1, "stack": 2, "hooks": 3, "thp": 4, "alloc": 5, "seed": 6}


def check_smt(*, names: Iterable[str] = (), folders: Iterable[str] = (), builtin: bool = True,
              arches: Iterable[str] = ARCHES, scopes: Iterable[str] | None = None,
              conformance: bool = False, workers: int | None = None, out: str | None = None,
              error_codes: str = "hardware", timeout_ms: int = DEFAULT_TIMEOUT_MS,
              progress: Callable[[int, int, str], None] | None = None,
              addresses: str = "all") -> SmtCheckReport:
    """Prove or refute every property over the full space of each (architecture, scope).

    ``conformance`` also replays one witness of every feasible path on the simulator
    (counterexamples are always replayed).  ``addresses="all"`` lifts the full space's
    exclusion of faults that grow the helper VMA A (see ``SymSpace``)."""
    from ..model.inputs import DEFAULT_SCOPES, SCOPES

    arches = tuple(arches)
    scopes = tuple(scopes) if scopes else DEFAULT_SCOPES
    for a in arches:
        if a not in ARCHES:
            raise UsageError(f"unknown architecture {a!r}", todo="use one of: " + ", ".join(ARCHES))
    for sc in scopes:
        if sc not in SCOPES:
            raise UsageError(f"unknown scope {sc!r}", todo="use one of: " + ", ".join(SCOPES))
    if timeout_ms <= 0:
        raise UsageError(f"--smt-timeout {timeout_ms}: the time limit must be positive (milliseconds)")
    folders = tuple(str(f) for f in folders)
    names = tuple(names)
    props = select(load_properties(folders, builtin=builtin), names)
    if not props:
        raise UsageError("no properties to check", todo="give --properties DIR or drop --no-builtin")
    if out:
        _check_out_folder(Path(out))
    tasks = [_SmtTask(a, sc, folders, builtin, tuple(p.name for p in props), conformance, timeout_ms, error_codes,
                      addresses) for a in arches for sc in scopes]
    if workers is None:
        workers = min(os.cpu_count() or 1, 4)
    workers = max(1, min(workers, len(tasks)))
    t0 = time.perf_counter()
    chunks: list[_SmtChunk] = []
    if workers == 1:
        for i, t in enumerate(tasks):
            chunks.append(run_smt_chunk(t, props))
            if progress:
                progress(i + 1, len(tasks), f"{t.arch}/{t.scope}")
    else:
        order = sorted(tasks, key=lambda t: (_COST.get(t.scope, 9), ARCHES.index(t.arch)))
        with ProcessPoolExecutor(max_workers=workers) as pool:
            futures = [pool.submit(_run_smt_task, t) for t in order]
            for i, fut in enumerate(as_completed(futures)):
                c = fut.result()
                chunks.append(c)
                if progress:
                    progress(i + 1, len(tasks), f"{c.stats.arch}/{c.stats.scope}")
    report = _merge_smt(props, chunks, arches, scopes, conformance, timeout_ms, error_codes, addresses)
    report.seconds = time.perf_counter() - t0
    if out:
        write_smt_counterexamples(report, out)
    return report


def _check_out_folder(folder: Path) -> None:
    probe = folder
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir() or not os.access(probe, os.W_OK):
        raise UsageError("cannot write counterexamples there", where=str(folder),
                         todo="give a writable folder with --out")


def _merge_smt(props: list[Property], chunks: list[_SmtChunk], arches: tuple[str, ...], scopes: tuple[str, ...],
               conformance: bool, timeout_ms: int, error_codes: str, addresses: str = "all") -> SmtCheckReport:
    results = {p.name: SmtPropertyResult(p) for p in props}
    report = SmtCheckReport(arches, scopes, [results[p.name] for p in props], conformance, timeout_ms, error_codes,
                            addresses=addresses)
    chunks = sorted(chunks, key=lambda c: (ARCHES.index(c.stats.arch), scopes.index(c.stats.scope)))
    for c in chunks:
        report.stats.append(c.stats)
        report.sim_runs += c.sim_runs
        report.conformance_checked += c.conformance_checked
        report.disagreement_count += c.disagreement_count
        report.disagreements.extend(c.disagreements)
        for name, cr in c.results.items():
            r = results[name]
            r.applicable += cr.applicable
            r.checked += cr.checked
            r.violations += cr.violations
            r.unknown += cr.unknown
            r.witnesses += cr.witnesses
            r.seconds += cr.seconds
            r.reasons.extend(cr.reasons)
            cx = cr.counterexample
            # The best counterexample: one the hardware can produce, if any; then by rank.
            if cx is not None and (r.counterexample is None or
                                   (not cr.hardware, cx.rank) < (not r.hardware, r.counterexample.rank)):
                r.counterexample, r.replay, r.hardware = cx, cr.replay, cr.hardware
    report.disagreements = report.disagreements[:MAX_SAVED_DISAGREEMENTS]
    return report


def save_witness(arch: str, scope: str, bindings: dict[str, Any], keys: list[tuple[str, str]], outcome: str,
                 calls: int, path: Path, *, name: str, description: str, error_codes: str = "hardware") -> None:
    """Concretize a witness into a scenario file whose expectation is the model's path
    (and the simulator's whole run when it agrees), so ``pfmodel run FILE`` replays it."""
    from ..scenario import save_scenario, scenario_from_spec
    from ..model.concretize import concretize
    from ..sim.run import run as sim_run

    space = build_space(arch, scope, error_codes=error_codes)
    spec = concretize(space, bindings, calls=calls)
    expect: dict[str, Any] = {"trace_contains": []}
    for label, value in keys:
        text = f"{label} → {value}"
        if text not in expect["trace_contains"]:
            expect["trace_contains"].append(text)
    try:
        run = sim_run(spec)
    except PfmodelError:
        run = None
    first = run.faults[0] if run is not None and run.faults else None
    if first is not None and str(first.outcome) == outcome and first.trace.keys() == list(keys):
        expect["outcome"] = run.outcome.to_json()
        expect["faults"] = len(run.faults)
    else:
        expect["outcome"] = _outcome_json(outcome)
    scn = scenario_from_spec(spec, name, description=description, expect=expect)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_scenario(scn, path)


def _outcome_json(text: str) -> dict[str, Any]:
    """Outcome.__str__ back to its JSON form ("sigsegv(si_code=SEGV_ACCERR)")."""
    if "(" not in text:
        return {"kind": text}
    kind, rest = text.split("(", 1)
    out: dict[str, Any] = {"kind": kind}
    for part in rest.rstrip(")").split(", "):
        k, v = part.split("=", 1)
        out[k] = {"True": True, "False": False}.get(v, v)
    return out


def write_smt_counterexamples(report: SmtCheckReport, out: str) -> None:
    folder = Path(out)
    report.out = str(folder)
    for r in report.results:
        cx = r.counterexample
        if cx is None:
            continue
        verdict = "expected: violated" if r.prop.expected == VIOLATED else "UNEXPECTED violation"
        file = folder / f"{r.prop.name}.smt.json"
        note = "" if r.hardware else " (an error code the hardware never produces for this access)"
        save_witness(cx.arch, cx.scope, cx.bindings, cx.keys, cx.outcome, cx.calls, file,
                     name=f"{r.prop.name} ({cx.arch}, smt, {verdict})",
                     description=f"Violates: {r.prop.statement}{note}", error_codes=report.error_codes)
        cx.file = str(file)
    for d in report.disagreements:
        if d.error:
            continue
        file = folder / f"conformance-smt-{d.arch}-{d.scope}-{d.index}.json"
        calls = sum(1 for key in d.model_keys if key[0] == "handle_mm_fault") or 1
        save_witness(d.arch, d.scope, d.bindings, d.model_keys, d.model_outcome, calls, file,
                     name=f"conformance {d.arch}/{d.scope} smt path {d.index}", description=d.describe(),
                     error_codes=report.error_codes)
        d.file = str(file)  # type: ignore[attr-defined]


# ---------------------------------------------------------------------------------
# pfmodel check --engine all: both engines, and every disagreement between them
# ---------------------------------------------------------------------------------

@dataclass
class CrossCheck:
    """The SMT engine's paths over a scope's own domains against the exhaustive engine's."""

    comparison: PathSetComparison
    partition: PartitionProof
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.comparison.equal and self.partition.proved

    @property
    def inconclusive(self) -> bool:
        return UNKNOWN in (self.partition.disjoint, self.partition.cover) or bool(self.comparison.uncertain)

    def describe(self) -> str:
        c, p = self.comparison, self.partition
        head = f"{c.arch}/{c.scope}: "
        if c.equal:
            text = f"same {c.signatures} path signatures ({c.smt_paths} smt paths, {c.exhaustive_paths} exhaustive)"
        else:
            text = (f"path sets DIFFER: {len(c.only_smt)} only in smt, {len(c.only_exhaustive)} only in "
                    f"exhaustive" + (f", {c.uncertain} smt paths uncertain" if c.uncertain else ""))
        if p.proved:
            text += "; path conditions proved a partition"
        else:
            text += f"; partition NOT proved (two hold at once: {p.disjoint}, none holds: {p.cover})"
        return head + text


def cross_check(arch: str, scope: str, *, error_codes: str = "hardware",
                timeout_ms: int = DEFAULT_TIMEOUT_MS, pairwise: bool = False) -> CrossCheck:
    t0 = time.perf_counter()
    cmp, paths, sym = compare_paths(arch, scope, error_codes=error_codes, timeout_ms=timeout_ms)
    proof = prove_partition(sym, paths, timeout_ms=timeout_ms, pairwise=pairwise)
    return CrossCheck(cmp, proof, time.perf_counter() - t0)


def _cross_task(args: tuple[str, str, str, int]) -> CrossCheck:
    arch, scope, error_codes, timeout_ms = args
    return cross_check(arch, scope, error_codes=error_codes, timeout_ms=timeout_ms)


@dataclass
class VerdictDisagreement:
    name: str
    exhaustive: str
    smt: str

    def describe(self) -> str:
        return f"{self.name}: exhaustive says {self.exhaustive}, smt says {self.smt}"


@dataclass
class AllReport:
    exhaustive: Any                      # check.CheckReport
    smt: SmtCheckReport
    cross: list[CrossCheck]
    verdicts: list[VerdictDisagreement]
    seconds: float = 0.0

    @property
    def disagreements(self) -> int:
        return len(self.verdicts) + sum(1 for c in self.cross if not c.ok and not c.inconclusive)

    @property
    def exit_code(self) -> int:
        if self.disagreements or not self.exhaustive.ok or not self.smt.ok:
            return 1
        if self.smt.inconclusive or any(c.inconclusive for c in self.cross):
            return 3
        return 0


def check_all(*, names: Iterable[str] = (), folders: Iterable[str] = (), builtin: bool = True,
              arches: Iterable[str] = ARCHES, scopes: Iterable[str] | None = None, conformance: bool = True,
              workers: int | None = None, out: str | None = None, error_codes: str = "hardware",
              timeout_ms: int = DEFAULT_TIMEOUT_MS,
              progress: Callable[[int, int, str], None] | None = None) -> AllReport:
    """Both engines on the same properties, then the cross-checks: equal verdicts where both
    are definitive, equal path sets and a proved partition on every (arch, scope)."""
    from ..model.inputs import DEFAULT_SCOPES
    from .check import check

    t0 = time.perf_counter()
    arches = tuple(arches)
    scopes = tuple(scopes) if scopes else DEFAULT_SCOPES
    ex = check(names=names, folders=folders, builtin=builtin, arches=arches, scopes=scopes, engine="exhaustive",
               conformance=conformance, workers=workers, out=out, error_codes=error_codes, progress=progress)
    sm = check_smt(names=names, folders=folders, builtin=builtin, arches=arches, scopes=scopes,
                   conformance=False, workers=workers, out=out, error_codes=error_codes, timeout_ms=timeout_ms,
                   progress=progress)
    jobs = [(a, sc, error_codes, timeout_ms) for a in arches for sc in scopes]
    n = max(1, min(workers or min(os.cpu_count() or 1, 4), len(jobs)))
    if n == 1:
        cross = [_cross_task(j) for j in jobs]
    else:
        order = sorted(jobs, key=lambda j: (_COST.get(j[1], 9), ARCHES.index(j[0])))
        with ProcessPoolExecutor(max_workers=n) as pool:
            done = dict(zip(order, pool.map(_cross_task, order)))
        cross = [done[j] for j in jobs]
    by_name = {r.prop.name: r for r in ex.results}
    verdicts = []
    for r in sm.results:
        e = by_name.get(r.prop.name)
        if e is None or r.verdict == UNKNOWN_VERDICT:
            continue
        if e.verdict != r.verdict:
            verdicts.append(VerdictDisagreement(r.prop.name, e.verdict, r.verdict))
    return AllReport(ex, sm, cross, verdicts, time.perf_counter() - t0)


# ---------------------------------------------------------------------------------
# Reports for the command line
# ---------------------------------------------------------------------------------

EXCLUSIONS = ("address and sp range over every {width}-bit value{canonical}{growth}; every other input "
              "over its scope's domain")


def exclusions(arch: str, addresses: str = "all") -> str:
    """The input space a full-space report speaks of, in words (``SymSpace``)."""
    width = 64 if arch == "x86_64" else 32
    canonical = " (canonical addresses only: a non-canonical access is #GP)" if arch == "x86_64" else ""
    growth = (", except faults that grow the helper VMA A (below it while it is a stack)"
              if addresses == "model" else "")
    return EXCLUSIONS.format(width=width, canonical=canonical, growth=growth)


def smt_report_json(report: SmtCheckReport) -> dict[str, Any]:
    from .. import KERNEL_VERSION, __version__

    props = []
    for r in report.results:
        c = r.counterexample
        props.append({
            "name": r.prop.name, "expected": r.prop.expected, "verdict": r.verdict, "reason": r.reason,
            "as_expected": r.as_expected, "statement": r.prop.statement, "on": r.prop.on,
            "paths_checked": r.checked, "paths_applicable": r.applicable, "violating_paths": r.violations,
            "unknown_paths": r.unknown, "witnesses": r.witnesses, "vacuous": r.vacuous,
            "seconds": round(r.seconds, 4),
            "counterexample": None if c is None else {
                "file": c.file, "replay": c.replay, "arch": c.arch, "scope": c.scope, "path": c.index,
                "outcome": c.outcome, "trace": [f"{label} → {value}" for label, value in c.keys],
                "simulator": "agrees" if not r.replay else r.replay,
                "hardware_error_code": r.hardware},
        })
    return {
        "pfmodel": __version__, "kernel": KERNEL_VERSION, "engine": "smt",
        "arches": list(report.arches), "scopes": list(report.scopes),
        "space": {a: exclusions(a, report.addresses) for a in report.arches},
        "smt_timeout_ms": report.timeout_ms, "error_codes": report.error_codes,
        "ok": report.ok, "inconclusive": report.inconclusive, "exit_status": report.exit_code,
        "seconds": round(report.seconds, 3), "paths": report.paths, "simulator_runs": report.sim_runs,
        "explored": [{"arch": s.arch, "scope": s.scope, "paths": s.paths, "signatures": s.signatures,
                      "states": s.states, "forks": s.forks, "solver_queries": s.queries,
                      "solver_seconds": round(s.solver_seconds, 3), "seconds": round(s.seconds, 3),
                      "uncertain_paths": s.uncertain} for s in report.stats],
        "properties": props,
        "conformance": {
            "paths_checked": report.conformance_checked, "violations": report.disagreement_count,
            "examples": [{"arch": d.arch, "scope": d.scope, "path": d.index, "message": d.describe(),
                          "file": getattr(d, "file", ""),
                          "replay": f"pfmodel run {d.file}" if getattr(d, "file", "") else ""}
                         for d in report.disagreements],
        },
    }


def print_smt_report(report: SmtCheckReport, con: Any = None) -> None:
    from rich.table import Table

    if con is None:
        from .commands import _console
        con = _console()
    table = Table(show_edge=False, pad_edge=False, header_style="bold")
    table.add_column("property", overflow="fold")
    table.add_column("expected", no_wrap=True)
    table.add_column("smt verdict", no_wrap=True)
    table.add_column("", no_wrap=True)
    table.add_column("paths (applies/checked)", justify="right", no_wrap=True)
    table.add_column("time", justify="right", no_wrap=True)
    for r in report.results:
        if r.verdict == UNKNOWN_VERDICT:
            mark = "[yellow]inconclusive[/yellow]"
        elif r.as_expected:
            mark = "[green]ok[/green]"
        else:
            mark = "[red bold]UNEXPECTED[/red bold]"
        if r.vacuous:
            mark += " [yellow](vacuous)[/yellow]"
        table.add_row(r.prop.name, r.prop.expected, r.verdict, mark, f"{r.applicable}/{r.checked}",
                      f"{r.seconds:.2f}s")
    con.print(table)
    for arch in report.arches:
        stats = [s for s in report.stats if s.arch == arch]
        scopes = ", ".join(f"{s.scope} {s.paths}" for s in stats)
        con.print(f"[dim]{arch}: {sum(s.paths for s in stats)} feasible paths ({scopes}), "
                  f"{sum(s.queries for s in stats)} solver queries; {exclusions(arch, report.addresses)}[/dim]")
    con.print(f"[dim]smt: {report.paths} paths, time limit {report.timeout_ms} ms per query, "
              f"{report.sim_runs} simulator runs, {report.seconds:.1f}s[/dim]")
    for r in report.results:
        if r.verdict == UNKNOWN_VERDICT:
            con.print(f"[yellow]{r.prop.name}: unknown: {r.reason}[/yellow]")
    for s in report.stats:
        if s.uncertain:
            con.print(f"[yellow]{s.arch}/{s.scope}: {s.uncertain} paths rest on a solver 'unknown' "
                      f"({'; '.join(s.unknown_reasons)})[/yellow]")
    if report.conformance:
        if report.disagreement_count == 0:
            con.print(f"conformance: the simulator agrees with the model on one witness of each of "
                      f"{report.conformance_checked} paths")
    if report.disagreement_count:
        con.print(f"[red bold]conformance violated on {report.disagreement_count} smt witness(es)[/red bold]")
        for d in report.disagreements:
            con.print(f"  {d.arch}/{d.scope} smt path {d.index}: {d.describe()}")
            if getattr(d, "file", ""):
                con.print(f"    pfmodel run {d.file}")
    for r in report.results:
        c = r.counterexample
        if c is None:
            continue
        style, end = ("", "") if r.as_expected else ("[red bold]", "[/red bold]")
        replay = "the simulator agrees" if not r.replay else f"[red]the simulator disagrees: {r.replay}[/red]"
        hw = "" if r.hardware else " [yellow](error code the hardware never produces)[/yellow]"
        con.print(f"{style}{r.prop.name} is violated ({'expected' if r.as_expected else 'NOT expected'}): "
                  f"{c.arch}/{c.scope}, ends {c.outcome}{end}; {replay}{hw}")
        if c.file:
            con.print(f"    pfmodel run {c.file}")
    vacuous = [r.prop.name for r in report.results if r.vacuous]
    if vacuous:
        con.print(f"[yellow]vacuous (no path meets the premise): {', '.join(vacuous)}[/yellow]")
    if not report.ok:
        con.print("[red bold]some verdicts NOT as expected[/red bold]")
    elif report.inconclusive:
        con.print("[yellow]no verdict contradicts its expectation, but some are inconclusive[/yellow]")
    else:
        con.print("[green]every verdict as expected[/green]")


def all_report_json(report: AllReport) -> dict[str, Any]:
    from .commands import report_json

    return {
        "engine": "all", "exit_status": report.exit_code, "seconds": round(report.seconds, 3),
        "exhaustive": report_json(report.exhaustive), "smt": smt_report_json(report.smt),
        "cross_check": [{"arch": c.comparison.arch, "scope": c.comparison.scope, "equal": c.comparison.equal,
                         "signatures": c.comparison.signatures, "smt_paths": c.comparison.smt_paths,
                         "exhaustive_paths": c.comparison.exhaustive_paths,
                         "only_smt": [_sig_json(x) for x in c.comparison.only_smt[:10]],
                         "only_exhaustive": [_sig_json(x) for x in c.comparison.only_exhaustive[:10]],
                         "partition": {"disjoint": c.partition.disjoint, "cover": c.partition.cover,
                                       "proved": c.partition.proved},
                         "seconds": round(c.seconds, 3)} for c in report.cross],
        "verdict_disagreements": [{"property": v.name, "exhaustive": v.exhaustive, "smt": v.smt}
                                  for v in report.verdicts],
        "disagreements": report.disagreements,
    }


def _sig_json(sig: tuple) -> dict[str, Any]:
    keys, outcome = sig
    return {"trace": [f"{label} → {value}" for label, value in keys], "outcome": outcome}


def print_all_report(report: AllReport) -> None:
    from .commands import _console, print_report

    con = _console()
    con.print("[bold]exhaustive engine[/bold]")
    print_report(report.exhaustive)
    con.print()
    con.print("[bold]smt engine[/bold]")
    print_smt_report(report.smt, con)
    con.print()
    con.print("[bold]cross-check[/bold]")
    for c in report.cross:
        style = "" if c.ok else ("[yellow]" if c.inconclusive else "[red bold]")
        end = "" if not style else ("[/yellow]" if c.inconclusive else "[/red bold]")
        con.print(f"{style}{c.describe()}{end}")
        for sig in c.comparison.only_smt[:3]:
            con.print(f"    only smt: {' / '.join(f'{a} → {b}' for a, b in sig[0][-4:])} ... ends {sig[1]}")
        for sig in c.comparison.only_exhaustive[:3]:
            con.print(f"    only exhaustive: {' / '.join(f'{a} → {b}' for a, b in sig[0][-4:])} ... ends {sig[1]}")
    for v in report.verdicts:
        con.print(f"[red bold]verdicts differ: {v.describe()}[/red bold]")
    if report.exit_code == 1:
        con.print(f"[red bold]{report.disagreements} disagreement(s) between the engines, or verdicts NOT as "
                  "expected[/red bold]" if report.disagreements else
                  "[red bold]the engines agree, but some verdicts are NOT as expected[/red bold]")
    elif report.exit_code == 3:
        con.print("[yellow]the engines agree where both are conclusive; some results are inconclusive[/yellow]")
    else:
        con.print("[green]both engines agree on every verdict and every path[/green]")


def run_check_command(*, engine: str, names: tuple[str, ...], folders: tuple[str, ...], builtin: bool,
                      arches: tuple[str, ...], scopes: tuple[str, ...], out: str, conformance: bool,
                      error_codes: str, workers: int | None, as_json: bool, timeout_ms: int) -> int:
    """``pfmodel check --engine smt|all``: run, print, return the exit status."""
    import json

    import click

    from .commands import progress_reporter

    with progress_reporter(not as_json) as progress:
        if engine == "smt":
            report: Any = check_smt(names=names, folders=folders, builtin=builtin, arches=arches, scopes=scopes,
                                    conformance=conformance, workers=workers, out=out, error_codes=error_codes,
                                    timeout_ms=timeout_ms, progress=progress)
        else:
            report = check_all(names=names, folders=folders, builtin=builtin, arches=arches, scopes=scopes,
                               conformance=conformance, workers=workers, out=out, error_codes=error_codes,
                               timeout_ms=timeout_ms, progress=progress)
    if engine == "smt":
        if as_json:
            click.echo(json.dumps(smt_report_json(report), indent=2))
        else:
            print_smt_report(report)
    else:
        if as_json:
            click.echo(json.dumps(all_report_json(report), indent=2))
        else:
            print_all_report(report)
    return report.exit_code


# ---------------------------------------------------------------------------------
# check(engine="smt" | "all"): the engine registry of pfmodel.explore.check
# ---------------------------------------------------------------------------------

def _registered(engine: str) -> Callable[..., Any]:
    def runner(*, props: list[Property], names: tuple[str, ...], folders: tuple[str, ...], builtin: bool,
               arches: tuple[str, ...], scopes: tuple[str, ...], engine: str, conformance: bool,
               workers: int | None, out: str | None, error_codes: str,
               progress: Callable[[int, int, str], None] | None) -> Any:
        run = check_smt if engine == "smt" else check_all
        return run(names=names, folders=folders, builtin=builtin, arches=arches, scopes=scopes,
                   conformance=conformance, workers=workers, out=out, error_codes=error_codes, progress=progress)
    return runner


def _register() -> None:
    from .check import register_engine

    register_engine("smt", _registered("smt"))
    register_engine("all", _registered("all"))


_register()


__all__ = ["SymSpace", "SmtExplorer", "SymPath", "PCNode", "IncSolver", "prove_partition",
           "compare_paths", "PathSetComparison", "PartitionProof", "MODES", "DEFAULT_TIMEOUT_MS",
           "SAT", "UNSAT", "UNKNOWN", "ARCHES", "check_smt", "SmtCheckReport", "SmtPropertyResult",
           "evaluate_symbolic", "violation_formula", "witness_model", "replay", "save_witness", "SymView",
           "check_all", "AllReport", "cross_check", "CrossCheck", "run_check_command"]
