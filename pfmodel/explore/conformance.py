"""Conformance: the model's path and the simulator's trace of the same scenario must agree.

Every explored path is concretized into a MachineSpec (``pfmodel.model.concretize``) whose
first fault uses the model's error code, and run on the simulator as a black box.  The
simulator's first fault must take exactly the model's decisions, in order, and end in
the model's outcome.  A disagreement is a verdict of its own: "conformance violated at
step k" -- a bug in the model or in the simulator, to be judged against the seed and
kernel-facts.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..model.concretize import concretize
from ..model.inputs import Space
from ..outcome import Outcome
from ..sim.result import Run
from ..sim.run import run as sim_run
from ..sim.spec import MachineSpec


@dataclass
class Disagreement:
    arch: str
    scope: str
    index: int                      # the path's index in its scope's exploration
    step: int                       # first differing step (len of the common prefix)
    model_step: tuple[str, str] | None
    sim_step: tuple[str, str] | None
    model_outcome: str
    sim_outcome: str
    bindings: dict[str, Any]
    model_keys: list[tuple[str, str]]
    sim_keys: list[tuple[str, str]]
    error: str = ""                 # the simulator refused or crashed on the scenario
    file: str = ""                  # where its scenario was saved

    def describe(self) -> str:
        if self.error:
            return f"the simulator failed on the scenario: {self.error}"
        if self.model_step is None and self.sim_step is None:
            return (f"conformance violated at the outcome: model {self.model_outcome}, "
                    f"simulator {self.sim_outcome}")
        m = "end of trace" if self.model_step is None else f"{self.model_step[0]} → {self.model_step[1]}"
        s = "end of trace" if self.sim_step is None else f"{self.sim_step[0]} → {self.sim_step[1]}"
        return f"conformance violated at step {self.step + 1}: model {m}, simulator {s}"


def spec_for(space: Space, path: Any) -> MachineSpec:
    return concretize(space, path.bindings, calls=path.final.call)


def compare(space: Space, scope: str, path: Any, run: Run) -> Disagreement | None:
    """None if the simulator's first fault agrees with the model's path."""
    first = run.faults[0] if run.faults else None
    sim_keys = first.trace.keys() if first is not None else []
    sim_outcome: Outcome | None = first.outcome if first is not None else None
    model_keys = path.keys()
    if sim_keys == model_keys and sim_outcome == path.outcome:
        return None
    k = 0
    while k < min(len(sim_keys), len(model_keys)) and sim_keys[k] == model_keys[k]:
        k += 1
    return Disagreement(
        arch=space.arch, scope=scope, index=path.index, step=k,
        model_step=model_keys[k] if k < len(model_keys) else None,
        sim_step=sim_keys[k] if k < len(sim_keys) else None,
        model_outcome=str(path.outcome), sim_outcome=str(sim_outcome),
        bindings=dict(path.bindings), model_keys=model_keys, sim_keys=sim_keys)


def check_path(space: Space, scope: str, path: Any) -> tuple[Run | None, Disagreement | None]:
    """Concretize, run and compare one path."""
    from ..errors import PfmodelError

    spec = spec_for(space, path)
    try:
        result = sim_run(spec)
    except PfmodelError as e:
        return None, Disagreement(space.arch, scope, path.index, 0, None, None, str(path.outcome), "-",
                                  dict(path.bindings), path.keys(), [], error=e.message)
    return result, compare(space, scope, path, result)


def random_paths(arch: str, n: int, seed: int = 0, scope: str = "full"):
    """``n`` model paths of random full assignments of the scope's inputs (each value drawn
    from its domain given the others): a spot check of conformance outside the scopes
    ``pfmodel check`` enumerates."""
    import random

    from ..model.inputs import build_space
    from .exhaustive import Explorer

    rng = random.Random(seed)
    space = build_space(arch, scope)
    explorer = Explorer(arch, scope, space=space)
    for _ in range(n):
        values: dict[str, Any] = {}

        def get(name: str) -> Any:
            if name not in values:
                values[name] = rng.choice(space.domain(name, get))
            return values[name]
        for name in sorted(space.inputs):
            get(name)
        yield space, explorer.one(values)


__all__ = ["Disagreement", "compare", "check_path", "spec_for", "random_paths"]
