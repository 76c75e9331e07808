"""Counterexample files for ``pfmodel check``: concretized, minimized, several per property.

The exhaustive engine finds, for each violated property, the best-ranked violating path
(``check.Counterexample.rank``).  This module turns such paths into counterexample files
(``pfmodel.counterexample``): the path is concretized into a scenario, minimized on the
simulator while the property stays violated, explained and saved under its fingerprint.
On request (``--max-counterexamples N``) it looks for up to N counterexamples per
property that are distinct *by path*: each has its own sequence of decisions, the best
ranked path of that sequence; values that do not change the path never make two
counterexamples different.  Conformance disagreements become files too, their model
inputs reduced to defaults where the disagreement stays the same.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

from ..counterexample import (
    ARROW,
    Counterexample,
    Violation,
    build,
    minimized_property_counterexample,
    property_violation,
    save,
)
from ..runview import observe, sim_evaluate
from ..errors import PfmodelError
from ..model.concretize import concretize
from ..model.inputs import NeedInput, build_space
from ..properties import Property, RunView, evaluate
from ..scenario import fingerprint
from ..sim.run import run as sim_run
from ..sim.spec import MachineSpec
from .check import CheckReport, Counterexample as PathCounterexample, unusual
from .conformance import Disagreement, compare, spec_for
from .exhaustive import Explorer


def concretized(cex: PathCounterexample, error_codes: str = "hardware") -> MachineSpec:
    space = build_space(cex.arch, cex.scope, error_codes=error_codes)
    return concretize(space, cex.bindings, calls=cex.calls)


def distinct_paths(prop: Property, arches: Iterable[str], scopes: Iterable[str], n: int,
                   error_codes: str = "hardware") -> list[PathCounterexample]:
    """Up to ``n`` violating paths of ``prop`` with pairwise different decisions, best first."""
    best: dict[tuple, PathCounterexample] = {}
    for arch in arches:
        for scope in scopes:
            explorer = Explorer(arch, scope, error_codes=error_codes)
            space = explorer.space
            for path in explorer.paths():
                run = sim_run(spec_for(space, path)) if prop.needs_simulator else None
                ev = evaluate(prop, path, space, run)
                if ev.holds:
                    continue
                bindings = {**path.bindings, **ev.extra}
                cex = PathCounterexample(arch, scope, path.index, bindings, path.keys(), str(path.outcome),
                                         path.final.call, unusual(space, bindings))
                key = tuple(cex.keys)
                if key not in best or cex.rank < best[key].rank:
                    best[key] = cex
    ranked = sorted(best.values(), key=lambda c: c.rank)
    # The best path of each outcome first, so that a few counterexamples show different
    # endings before they show different ways to the same ending.
    firsts: dict[str, PathCounterexample] = {}
    for cex in ranked:
        firsts.setdefault(cex.outcome, cex)
    lead = sorted(firsts.values(), key=lambda c: c.rank)
    return (lead + [c for c in ranked if c not in lead])[:n]


def property_files(prop: Property, paths: list[PathCounterexample], out: str | Path, *, n: int,
                   error_codes: str = "hardware", mutant: Any = None) -> list[Path]:
    """Minimize and save up to ``n`` counterexamples, dropping any that minimize onto one
    already written (same machine, or same decisions)."""
    written: list[Path] = []
    seen_machines: set[str] = set()
    seen_traces: set[tuple] = set()
    for cex in paths:
        if len(written) >= n:
            break
        spec = concretized(cex, error_codes)
        if sim_evaluate(prop, observe(spec)).holds:
            # The property reads what only the model has (its layout, its state): the file
            # keeps the path's scenario and its inputs, and replay judges the model's path.
            violation = property_violation(prop)
            violation.model = {"arch": cex.arch, "scope": cex.scope,
                               "bindings": {k: cex.bindings[k] for k in sorted(cex.bindings)}}
            file_cx = build(spec, violation, prop=prop, name=f"{prop.name} ({cex.arch})")
        else:
            # One counterexample: the smallest overall.  Several: each the smallest of its path.
            file_cx, _ = minimized_property_counterexample(prop, spec, mutant=mutant,
                                                           name=f"{prop.name} ({cex.arch})",
                                                           same_path=list(cex.keys) if n > 1 else None)
        machine = fingerprint(file_cx.scenario)
        trace = tuple(tuple(f) for f in file_cx.trace)
        if machine in seen_machines or trace in seen_traces:
            continue
        seen_machines.add(machine)
        seen_traces.add(trace)
        written.append(save(file_cx, out))
    return written


def _disagrees_at(d: Disagreement, arch: str, scope: str, bindings: dict[str, Any],
                  error_codes: str, overrides: dict[str, Any] | None = None) -> tuple[bool, Any]:
    """Does the model path for ``bindings`` still part from the simulator at the same step?"""
    explorer = Explorer(arch, scope, error_codes=error_codes)
    try:
        path = explorer.one(bindings)
    except (ValueError, NeedInput):
        return False, None
    space = explorer.space
    spec = concretize(space, path.bindings, calls=path.final.call)
    try:
        result = sim_run(spec, overrides=overrides)
    except PfmodelError:  # a machine the simulator refuses is simply not a candidate
        return False, None
    again = compare(space, scope, path, result)
    same = (again is not None and again.step == d.step and again.model_step == d.model_step
            and again.sim_step == d.sim_step)
    return same, path


def minimized_bindings(d: Disagreement, error_codes: str = "hardware",
                       overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Reset each bound model input to its domain's default while the disagreement stays
    at the same step with the same two decisions (delta debugging over the inputs)."""
    space = build_space(d.arch, d.scope, error_codes=error_codes)
    bindings = dict(d.bindings)
    changed = True
    while changed:
        changed = False
        for name in sorted(bindings):
            trial = {k: v for k, v in bindings.items() if k != name}
            same, path = _disagrees_at(d, d.arch, d.scope, trial, error_codes, overrides)
            if same and unusual(space, path.bindings) < unusual(space, bindings):
                bindings = dict(path.bindings)
                changed = True
                break
    return bindings


def conformance_file(d: Disagreement, out: str | Path, *, error_codes: str = "hardware",
                     mutant: Any = None, reduce: bool = True) -> Path:
    """Save a conformance disagreement (found on ``mutant``, if given) as a counterexample."""
    overrides = mutant.sim_overrides() if mutant is not None else None
    bindings = minimized_bindings(d, error_codes, overrides) if reduce and not d.error else dict(d.bindings)
    explorer = Explorer(d.arch, d.scope, error_codes=error_codes)
    path = explorer.one(bindings)
    spec = concretize(explorer.space, path.bindings, calls=path.final.call)
    violation = Violation("conformance", fault=1, step=d.step + 1,
                          model_trace=[f"{label}{ARROW}{value}" for label, value in path.keys()],
                          model_outcome=path.outcome.to_json(),
                          model={"arch": d.arch, "scope": d.scope, "bindings": _jsonable(path.bindings)})
    cx = build(spec, violation, mutant=mutant, name=f"conformance {d.arch}/{d.scope}")
    return save(cx, out)


def _jsonable(bindings: dict[str, Any]) -> dict[str, Any]:
    return {k: bindings[k] for k in sorted(bindings)}


def write_report_counterexamples(report: CheckReport, out: str | Path, *, max_counterexamples: int = 1,
                                 error_codes: str = "hardware") -> list[Path]:
    """Write every violated property's counterexamples (and the conformance ones) into
    ``out``; set ``.file`` on the report's counterexamples and disagreements."""
    report.out = str(out)
    written: list[Path] = []
    for r in report.results:
        if r.counterexample is None:
            continue
        paths = ([r.counterexample] if max_counterexamples <= 1 else
                 distinct_paths(r.prop, report.arches, report.scopes, max_counterexamples, error_codes))
        files = property_files(r.prop, paths, out, n=max_counterexamples, error_codes=error_codes)
        if files:
            r.counterexample.file = str(files[0])
            setattr(r, "files", [str(f) for f in files])
        written += files
    for d in report.disagreements:
        if d.error:
            continue  # the simulator refused the scenario: there is nothing to replay
        f = conformance_file(d, out, error_codes=error_codes)
        setattr(d, "file", str(f))
        written.append(f)
    return written


__all__ = ["write_report_counterexamples", "distinct_paths", "property_files", "conformance_file",
           "minimized_bindings", "concretized", "Counterexample", "RunView"]
