"""The exhaustive engine: explicit-state, depth-first search of the model with lazy inputs.

Inputs are bound when an action first reads one: the action raises ``NeedInput``, the
engine enumerates that input's domain (binding first any input the domain depends on),
and re-runs the action once per value from the same state.  Every feasible path is
therefore explored exactly once, and the paths partition the (scope's) input space:
two paths differ in the value of some input both of them read.

The search is a tree (a path is its sequence of bindings and decisions), so it needs
no state hashing; ``states`` counts its nodes (one per action executed), ``paths`` its
leaves.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from ..model.actions import ACTIONS, initial_state
from ..model.concretize import Resolver
from ..model.inputs import NeedInput, Space, build_space
from ..model.ops import EBool, EWord, ExplicitOps, LazyWord
from ..model.state import EXIT, Machine, State, StepRec
from ..outcome import Outcome


class ExplicitInputs:
    """Inputs bound by the exhaustive engine: reading an unbound one raises NeedInput."""

    def __init__(self, space: Space, ops: ExplicitOps) -> None:
        self.space = space
        self.ops = ops
        self.b: dict[str, Any] = {}
        self._lazy = {name: LazyWord(d, _group_mask(d), d.fixed) for name, d in space.words.items()}

    def raw(self, name: str) -> Any:
        try:
            return self.b[name]
        except KeyError:
            raise NeedInput(name) from None

    def bool(self, name: str) -> EBool:
        return self.ops.true if self.raw(name) else self.ops.false

    def choice(self, name: str) -> Any:
        return self.raw(name)

    def word(self, name: str) -> Any:
        lazy = self._lazy.get(name)
        if lazy is not None:
            return lazy
        inp = self.space.inputs[name]
        return EWord(self.raw(name), inp.width)


def _group_mask(decl: Any) -> int:
    mask = 0
    for _, gmask in decl.groups:
        mask |= gmask
    return mask & ((1 << decl.width) - 1)


@dataclass
class Path:
    """One explored path: the inputs it bound, its decisions, outcome and final state."""

    index: int
    bindings: dict[str, Any]
    steps: list[StepRec]
    outcome: Outcome
    final: State
    space: Space

    def keys(self) -> list[tuple[str, str]]:
        return [st.key for st in self.steps]

    def value(self, x: Any) -> Any:
        """The Python value of an ops value of this path (e.g. ``path.value(path.final.pte)``);
        inputs the path never bound take their defaults, as in its concrete scenario."""
        ops = ExplicitOps()
        ops.resolve_group = Resolver(self.space, self.bindings)
        return ops.concrete(x)


@dataclass
class Exploration:
    arch: str
    scope: str
    space: Space
    paths: int = 0
    states: int = 0
    seconds: float = 0.0
    outcomes: Counter = field(default_factory=Counter)
    edges: Counter = field(default_factory=Counter)       # (pc, label, value, next_pc) -> paths
    locations: Counter = field(default_factory=Counter)   # pc -> paths through it
    kept: list[Path] = field(default_factory=list)

    def distinct_outcomes(self) -> list[str]:
        return sorted(self.outcomes)


class Explorer:
    """Depth-first exhaustive exploration of one (architecture, scope)."""

    def __init__(self, arch: str, scope: str = "full", *, space: Space | None = None,
                 error_codes: str = "hardware") -> None:
        self.space = space or build_space(arch, scope, error_codes=error_codes)
        self.arch = arch
        self.scope = scope
        self.ops = ExplicitOps()
        self.inputs = ExplicitInputs(self.space, self.ops)
        self.ops.resolve_group = self.inputs.raw
        self.machine = Machine(self.ops, self.inputs, self.space.layout, branch=self._branch)

    @staticmethod
    def _branch(cond: Any) -> bool:
        if isinstance(cond, EBool):
            return cond.v
        raise TypeError(f"a decision needs a Bool, got {cond!r}")

    def _domain(self, name: str) -> tuple[str, list]:
        """The next input to bind (``name`` or one its domain depends on) and its values."""
        for _ in range(64):
            try:
                values = self.space.domain(name, self.inputs.raw)
            except NeedInput as e:
                name = e.name
                continue
            if not values:
                raise RuntimeError(f"empty domain for input {name!r}")
            return name, values
        raise RuntimeError(f"cyclic domain dependencies at {name!r}")

    def paths(self) -> Iterator[Path]:
        """Yield every path, in a deterministic depth-first order."""
        m = self.machine
        inp = self.inputs
        inp.b = {}
        s0 = initial_state(m)
        stack: list[tuple[State, dict[str, Any]]] = [(s0, {})]
        index = 0
        self.states = 0
        actions = ACTIONS
        while stack:
            s, b = stack.pop()
            inp.b = b
            while s.pc != EXIT:
                s2 = s.copy()
                try:
                    actions[s.pc](m, s2)
                except NeedInput as e:
                    name, values = self._domain(e.name)
                    for v in reversed(values[1:]):
                        nb = dict(b)
                        nb[name] = v
                        stack.append((s, nb))
                    b = dict(b)
                    b[name] = values[0]
                    inp.b = b
                    continue
                self.states += 1
                s = s2
            yield Path(index, b, s.steps(), s.outcome, s, self.space)  # type: ignore[arg-type]
            index += 1

    def run(self, on_path: Callable[[Path], None] | None = None, keep: bool = False) -> Exploration:
        """Explore everything; call ``on_path`` for each path; gather counts and the graph."""
        ex = Exploration(self.arch, self.scope, self.space)
        t0 = time.perf_counter()
        for p in self.paths():
            ex.paths += 1
            ex.outcomes[str(p.outcome)] += 1
            prev_pc = None
            for st in p.steps:
                ex.locations[st.pc] += 1
            pcs = [st.pc for st in p.steps] + [EXIT]
            for k, st in enumerate(p.steps):
                ex.edges[(st.pc, st.label, st.value, pcs[k + 1])] += 1
            del prev_pc
            if on_path is not None:
                on_path(p)
            if keep:
                ex.kept.append(p)
        ex.states = self.states
        ex.seconds = time.perf_counter() - t0
        return ex


    def one(self, choose: dict[str, Any]) -> Path:
        """Run the model on one path: inputs in ``choose`` take the given value, the others
        their default (the first value of their domain)."""
        m = self.machine
        inp = self.inputs
        b: dict[str, Any] = {}
        inp.b = b
        s = initial_state(m)
        while s.pc != EXIT:
            s2 = s.copy()
            try:
                ACTIONS[s.pc](m, s2)
            except NeedInput as e:
                name, values = self._domain(e.name)
                if name in choose:
                    if choose[name] not in values:
                        raise ValueError(f"{name}={choose[name]!r} is not in its domain {values!r} here")
                    b[name] = choose[name]
                else:
                    b[name] = values[0]
                continue
            s = s2
        return Path(0, b, s.steps(), s.outcome, s, self.space)  # type: ignore[arg-type]


def explore(arch: str, scope: str = "full", **kw: Any) -> Exploration:
    return Explorer(arch, scope).run(**kw)


def run_one(arch: str, choose: dict[str, Any], scope: str = "full") -> Path:
    """The model's single path for the given inputs (defaults for the rest)."""
    return Explorer(arch, scope).one(choose)
