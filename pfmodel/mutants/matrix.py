"""The kill matrix: every mutant against the property suite and conformance.

For one mutant, every path of the exhaustive model (each architecture, each scope) is
concretized and run on the simulator:

* a **simulator** mutant runs the mutated simulator; it is killed by *conformance*
  (the mutated simulator leaves the model's path) or by a *property* that the mutated
  run violates and the unmutated run of the same scenario does not;
* a **model** mutant explores the mutated model; it is killed by a property violated on
  one of its paths (the properties hold on every path of the real model) or by
  conformance (the unmutated simulator leaves the mutated model's path);
* a mutated simulator that raises (a Python exception: the mutated kernel crashed) is
  killed by *crash*.

Mutants the exhaustive stage leaves alive get two more chances: the *corpus* stage runs
the committed scenarios (``counterexamples/``: the teaching cases and the regression
counterexamples) on the mutant and judges the same properties on them; the *random*
stage gives the mutant to the random engine (``pfmodel.explore.random_engine``: machines
outside the model's abstraction, such as THP).  Both matter for a mutant that reads an
input the real handler ignores on the model's paths: the model binds only what the
4.4 code reads, so its concrete scenarios leave such an input at its default.  Each kill gets a minimized counterexample file that replays on the mutant and
does not show the violation on the unmutated simulator.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from ..model.inputs import ARCHES, DEFAULT_SCOPES
from ..properties import HOLDS, Property, RunView, evaluate, load_properties, select
from ..runview import observe, sim_evaluate
from .base import Mutant, model_patched

STOP_FIRST = "first"    # stop at the first kill
STOP_ALL = "all"        # every path: every killer


@dataclass
class Kill:
    by: str                         # a property name, "conformance" or "crash"
    arch: str
    scope: str
    path: int
    detail: str = ""
    bindings: dict[str, Any] = field(default_factory=dict)
    disagreement: Any = None        # conformance: the explore.conformance.Disagreement
    spec: Any = None                # the concretized scenario


@dataclass
class MutantResult:
    mutant: Mutant
    kills: dict[str, Kill] = field(default_factory=dict)   # killer -> its first kill
    order: list[str] = field(default_factory=list)          # killers in the order found
    paths: int = 0
    engine: str = "exhaustive"
    seconds: float = 0.0
    file: str = ""
    note: str = ""

    @property
    def killed(self) -> bool:
        return bool(self.kills)

    @property
    def first(self) -> Kill | None:
        return self.kills[self.order[0]] if self.order else None

    @property
    def status(self) -> str:
        if self.killed:
            return "killed"
        return "equivalent" if self.mutant.equivalent else "survived"

    def add(self, kill: Kill) -> None:
        if kill.by not in self.kills:
            self.kills[kill.by] = kill
            self.order.append(kill.by)


@dataclass
class Matrix:
    results: list[MutantResult]
    properties: list[Property]
    arches: tuple[str, ...]
    scopes: tuple[str, ...]
    seconds: float = 0.0
    complete: bool = False          # every mutant ran every path (STOP_ALL)

    def killers(self) -> dict[str, list[str]]:
        """Property (or conformance) -> the mutants it killed."""
        out: dict[str, list[str]] = {p.name: [] for p in self.properties if p.expected == HOLDS}
        out.setdefault("conformance", [])
        for r in self.results:
            for by in r.order:
                out.setdefault(by, []).append(r.mutant.name)
        return out

    def idle_properties(self) -> list[str]:
        """Properties expected to hold that killed no mutant (only meaningful if complete)."""
        return [name for name, killed in self.killers().items() if not killed and name not in ("conformance", "crash")]

    @property
    def survivors(self) -> list[MutantResult]:
        return [r for r in self.results if r.status == "survived"]


def _holds_props(props: Iterable[Property]) -> list[Property]:
    return [p for p in props if p.expected == HOLDS]


def check_mutant(mutant: Mutant, props: list[Property], *, arches: Iterable[str] = ARCHES,
                 scopes: Iterable[str] = DEFAULT_SCOPES, stop: str = STOP_FIRST,
                 error_codes: str = "hardware") -> MutantResult:
    """Run one mutant against every path of the given architectures and scopes."""
    from ..explore.conformance import compare, spec_for
    from ..explore.exhaustive import Explorer

    result = MutantResult(mutant)
    t0 = time.perf_counter()
    sim_over = mutant.sim_overrides()
    model_over = mutant.model_overrides()
    holds = _holds_props(props)
    with model_patched(model_over):
        for arch in arches:
            for scope in scopes:
                explorer = Explorer(arch, scope, error_codes=error_codes)
                space = explorer.space
                for path in explorer.paths():
                    result.paths += 1
                    spec = spec_for(space, path)
                    where = dict(arch=arch, scope=scope, path=path.index, bindings=dict(path.bindings), spec=spec)
                    if model_over:
                        _model_side(result, holds, path, space, where)
                    try:
                        obs = observe(spec, sim_over)
                    except Exception as e:  # noqa: BLE001 - the mutated kernel crashed: that is a kill
                        result.add(Kill("crash", detail=f"{type(e).__name__}: {e}", **where))
                        obs = None
                    if obs is not None:
                        dis = compare(space, scope, path, obs.run)
                        if dis is not None:
                            result.add(Kill("conformance", detail=dis.describe(), disagreement=dis, **where))
                        if sim_over:
                            _sim_side(result, holds, obs, spec, where)
                    # (a crash alone does not stop the search: a replayable kill is wanted)
                    if stop == STOP_FIRST and any(by != "crash" for by in result.order):
                        result.seconds = time.perf_counter() - t0
                        return result
    result.seconds = time.perf_counter() - t0
    return result


def _model_side(result: MutantResult, holds: list[Property], path: Any, space: Any, where: dict) -> None:
    for p in holds:
        if p.name in result.kills or p.needs_simulator:
            continue  # a simulator property judges the (unmutated) simulator: not the model's mutant
        ev = evaluate(p, path, space)
        if not ev.holds:
            result.add(Kill(p.name, detail=f"violated on the mutated model's path {path.index}", **where))


def _sim_side(result: MutantResult, holds: list[Property], obs: Any, spec: Any, where: dict) -> None:
    baseline = None
    for p in holds:
        if p.name in result.kills:
            continue
        verdict = sim_evaluate(p, obs)
        if verdict.holds:
            continue
        if baseline is None:
            baseline = observe(spec)
        if sim_evaluate(p, baseline).holds:
            fault = (verdict.fault or 0) + 1
            result.add(Kill(p.name, detail=f"violated at fault {fault} of the mutated run", **where))


def corpus_files(folders: Iterable[str | Path]) -> list[Path]:
    out: list[Path] = []
    for folder in folders:
        folder = Path(folder)
        if folder.is_dir():
            out.extend(sorted(p for p in folder.rglob("*.json") if p.is_file()))
    return out


def corpus_stage(result: MutantResult, props: list[Property], files: Iterable[Path]) -> None:
    """Judge the properties on every committed scenario, run on the mutant."""
    from ..counterexample import CounterexampleError, load
    from ..counterexample import FORMAT_PREFIX as CX_PREFIX
    from ..errors import PfmodelError
    from ..scenario import load_scenario

    if result.mutant.target == "model":
        return
    t0 = time.perf_counter()
    sim_over = result.mutant.sim_overrides()
    holds = _holds_props(props)
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
            scn = load(path).scenario if f'"{CX_PREFIX}' in text else load_scenario(path)
        except (PfmodelError, CounterexampleError, OSError):
            continue
        spec = scn.to_spec()
        where = dict(arch=spec.arch, scope="corpus", path=-1, spec=spec)
        try:
            obs = observe(spec, sim_over)
        except PfmodelError:
            continue
        except Exception as e:  # noqa: BLE001 - the mutated kernel crashed: that is a kill
            result.add(Kill("crash", detail=f"{path.name}: {type(e).__name__}: {e}", **where))
            continue
        before = len(result.order)
        _sim_side(result, holds, obs, spec, where)
        for by in result.order[before:]:
            result.kills[by].detail = f"on {path}"
    if result.killed:
        result.engine = "corpus"
    result.seconds += time.perf_counter() - t0


def random_stage(result: MutantResult, props: list[Property], *, seed: int = 0, examples: int = 200,
                 arch: str | None = None) -> None:
    """Give a survivor of the exhaustive stage to the random engine."""
    from ..explore.random_engine import random_check

    if result.mutant.target == "model":
        return
    t0 = time.perf_counter()
    report = random_check(seed=seed, examples=examples, names=[p.name for p in props], arch=arch,
                          mutant=result.mutant, model_gaps=False)
    for r in report.results:
        if r.violations and r.prop.expected == HOLDS:
            result.add(Kill(r.prop.name, arch=r.first.arch, scope="random", path=-1,
                            detail=f"random engine, seed {seed}", spec=r.first))
    if result.killed:
        result.engine = "random"
    result.seconds += time.perf_counter() - t0


def save_kill(result: MutantResult, props: list[Property], out: str | Path,
              error_codes: str = "hardware", kill: Kill | None = None) -> str:
    """Minimize a kill (the first, by default) into a counterexample file; returns its
    path ('' for a crash)."""
    from ..counterexample import (
        build,
        minimized_mutant_conformance,
        minimized_property_counterexample,
        property_violation,
        save,
    )

    if kill is None:
        kill = next((result.kills[by] for by in result.order if by != "crash"), None)
    if kill is None or kill.by == "crash":
        return ""
    mutant = result.mutant
    found = f"{kill.arch}/{kill.scope} path {kill.path}" if kill.path >= 0 else kill.detail
    if kill.by == "conformance":
        if mutant.target == "simulator":
            cx, _ = minimized_mutant_conformance(kill.spec, mutant, name=f"{mutant.name}: conformance",
                                                 found=found)
            return str(save(cx, out))
        from ..explore.cxfiles import conformance_file

        with model_patched(mutant.model_overrides()):
            path = conformance_file(kill.disagreement, out, error_codes=error_codes, mutant=mutant)
        return str(path)
    prop = {p.name: p for p in props}[kill.by]
    if mutant.target != "simulator" and kill.path >= 0:
        # The mutated model's path violates it: replay re-derives that path under the mutant.
        violation = property_violation(prop)
        violation.model = {"arch": kill.arch, "scope": kill.scope,
                           "bindings": {k: kill.bindings[k] for k in sorted(kill.bindings)}}
        cx = build(kill.spec, violation, prop=prop, mutant=mutant, name=f"{mutant.name}: {prop.name}",
                   explanation=f"Mutant {mutant.name} ({mutant.summary}) makes the model violate "
                               f"{prop.name} on {found}: {prop.statement} The scenario is that path, "
                               f"concretized; the unmutated model and simulator both respect the property.")
        return str(save(cx, out))
    cx, _ = minimized_property_counterexample(prop, kill.spec, mutant=mutant, name=f"{mutant.name}: {prop.name}")
    return str(save(cx, out))


@dataclass(frozen=True)
class _Job:
    """One mutant's work, picklable for a worker process (the mutant travels by name)."""

    mutant: str                      # a built-in name, or "file.py::name"
    names: tuple[str, ...]
    folders: tuple[str, ...]
    builtin: bool
    arches: tuple[str, ...]
    scopes: tuple[str, ...]
    stop: str
    out: str | None
    random_examples: int
    seed: int
    corpus: tuple[str, ...]
    error_codes: str


def _mutant_ref(m: Mutant) -> str:
    return m.name if m.source.startswith("pfmodel.mutants") else f"{m.source}::{m.name}"


def _resolve_ref(ref: str) -> Mutant:
    from . import BUILTIN, load_mutant_file

    if "::" not in ref:
        return BUILTIN[ref]
    source, name = ref.rsplit("::", 1)
    return next(m for m in load_mutant_file(source) if m.name == name)


def _run_job(job: _Job, mutant: Mutant | None = None, props: list[Property] | None = None) -> MutantResult:
    mutant = mutant or _resolve_ref(job.mutant)
    if props is None:
        props = select(load_properties(job.folders, builtin=job.builtin), job.names)
    r = check_mutant(mutant, props, arches=job.arches, scopes=job.scopes, stop=job.stop,
                     error_codes=job.error_codes)
    if not r.killed and job.corpus:
        corpus_stage(r, props, corpus_files(job.corpus))
    if not r.killed and job.random_examples > 0:
        random_stage(r, props, seed=job.seed, examples=job.random_examples)
    if job.out and r.killed:
        r.file = save_kill(r, props, job.out, job.error_codes)
    return r


def _run_job_in_worker(job: _Job) -> MutantResult:
    r = _run_job(job)
    # The parent puts its own Mutant back: a mutant file's functions do not pickle.
    r.mutant = Mutant(name=r.mutant.name, summary=r.mutant.summary, description="", patches=())
    for kill in r.kills.values():
        kill.disagreement = None
    return r


def run_matrix(mutants: Iterable[Mutant], *, names: Iterable[str] = (), folders: Iterable[str] = (),
               builtin: bool = True, arches: Iterable[str] = ARCHES, scopes: Iterable[str] = DEFAULT_SCOPES,
               stop: str = STOP_FIRST, out: str | None = None, random_examples: int = 200, seed: int = 0,
               corpus: Iterable[str | Path] = (), error_codes: str = "hardware", workers: int = 1,
               progress: Callable[[int, int, str], None] | None = None) -> Matrix:
    """Run every mutant: the exhaustive stage, then for survivors the corpus and the random
    stage; with ``workers`` > 1, one mutant per worker process at a time."""
    folders = tuple(str(f) for f in folders)
    names = tuple(names)
    props = select(load_properties(folders, builtin=builtin), names)
    mutants = list(mutants)
    arches, scopes = tuple(arches), tuple(scopes)
    matrix = Matrix([], props, arches, scopes, complete=stop == STOP_ALL)
    jobs = [_Job(_mutant_ref(m), names, folders, builtin, arches, scopes, stop, out, random_examples, seed,
                 tuple(str(c) for c in corpus), error_codes) for m in mutants]
    t0 = time.perf_counter()
    if progress:
        progress(0, len(mutants), mutants[0].name if mutants else "")
    if workers <= 1 or len(jobs) <= 1:
        for i, (m, job) in enumerate(zip(mutants, jobs)):
            matrix.results.append(_run_job(job, m, props))
            if progress:
                progress(i + 1, len(mutants), m.name)
    else:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(max_workers=workers) as pool:
            for i, (m, r) in enumerate(zip(mutants, pool.map(_run_job_in_worker, jobs))):
                r.mutant = m
                matrix.results.append(r)
                if progress:
                    progress(i + 1, len(mutants), m.name)
    matrix.seconds = time.perf_counter() - t0
    return matrix


__all__ = ["run_matrix", "check_mutant", "random_stage", "corpus_stage", "corpus_files", "save_kill", "Matrix", "MutantResult", "Kill",
           "STOP_FIRST", "STOP_ALL", "RunView"]
