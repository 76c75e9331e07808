"""``pfmodel check``'s engine: properties over every path, and conformance with the simulator.

The work is split in chunks: one chunk explores one (architecture, scope) completely --
exploring is cheap -- and handles the paths whose index falls in its share (index modulo
the number of chunks).  Chunks run in worker processes when the simulator is involved
(conformance), in-process otherwise.  Results merge deterministically: counts add up and
each property keeps its smallest counterexample.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from ..errors import PropertyError, UsageError
from ..model.concretize import concretize
from ..model.inputs import ARCHES, DEFAULT_SCOPES, SCOPES, NeedInput, build_space
from ..properties import HOLDS, UNKNOWN, VIOLATED, Property, RunView, evaluate, load_properties, select, truth
from ..sim.run import run as sim_run
from .conformance import Disagreement, check_path, spec_for
from .exhaustive import Explorer

ENGINES = ("exhaustive", "smt", "random", "all")
# Engines that can run: name -> function(**check's keyword arguments) -> CheckReport.  Another
# engine plugs in with ``register_engine``; ``check`` validates the common arguments first.
_RUNNERS: dict[str, Callable[..., "CheckReport"]] = {}


def register_engine(name: str, runner: Callable[..., "CheckReport"]) -> None:
    if name not in ENGINES:
        raise ValueError(f"engine {name!r} is not one of {ENGINES}")
    _RUNNERS[name] = runner


def available_engines() -> tuple[str, ...]:
    return tuple(e for e in ENGINES if e in _RUNNERS)
MAX_SAVED_DISAGREEMENTS = 10


@dataclass
class Counterexample:
    arch: str
    scope: str
    index: int
    bindings: dict[str, Any]
    keys: list[tuple[str, str]]
    outcome: str
    calls: int
    unusual: int = 0      # inputs bound to something other than their default
    file: str = ""

    @property
    def rank(self) -> tuple:
        """Smaller is a better counterexample: from the main scopes first, with the fewest
        unusual inputs, then the shortest; ties break deterministically."""
        scope_order = DEFAULT_SCOPES.index(self.scope) if self.scope in DEFAULT_SCOPES else len(DEFAULT_SCOPES)
        return (scope_order, self.unusual, len(self.keys), len(self.bindings),
                ARCHES.index(self.arch) if self.arch in ARCHES else 9, self.scope, self.index)

    @property
    def replay(self) -> str:
        return f"pfmodel replay {self.file}" if self.file else ""


class Judged:
    """What every engine's per-property result derives the same way from its verdict and
    its path counts (``prop``, ``verdict``, ``checked``, ``applicable``)."""

    @property
    def as_expected(self) -> bool:
        return self.verdict == self.prop.expected  # type: ignore[attr-defined]

    @property
    def vacuous(self) -> bool:
        return self.checked > 0 and self.applicable == 0  # type: ignore[attr-defined]


@dataclass
class PropertyResult(Judged):
    prop: Property
    applicable: int = 0
    checked: int = 0
    violations: int = 0
    seconds: float = 0.0
    counterexample: Counterexample | None = None
    unknown: str = ""          # an engine that could not decide says why (never "holds")

    @property
    def verdict(self) -> str:
        if self.violations:
            return VIOLATED
        return UNKNOWN if self.unknown else HOLDS


@dataclass
class ScopeStats:
    arch: str
    scope: str
    paths: int = 0
    states: int = 0
    seconds: float = 0.0
    outcomes: dict[str, int] = field(default_factory=dict)


@dataclass
class CheckReport:
    engine: str
    arches: tuple[str, ...]
    scopes: tuple[str, ...]
    results: list[PropertyResult]
    conformance: bool
    stats: list[ScopeStats] = field(default_factory=list)
    sim_runs: int = 0
    conformance_checked: int = 0
    disagreements: list[Disagreement] = field(default_factory=list)
    disagreement_count: int = 0
    seconds: float = 0.0
    out: str = ""

    @property
    def paths(self) -> int:
        return sum(s.paths for s in self.stats)

    @property
    def states(self) -> int:
        return sum(s.states for s in self.stats)

    def per_arch(self) -> dict[str, dict[str, Any]]:
        """Paths, states and distinct outcomes per architecture (over its scopes)."""
        out: dict[str, dict[str, Any]] = {}
        for st in self.stats:
            a = out.setdefault(st.arch, {"paths": 0, "states": 0, "outcomes": {}})
            a["paths"] += st.paths
            a["states"] += st.states
            for o, n in st.outcomes.items():
                a["outcomes"][o] = a["outcomes"].get(o, 0) + n
        for a in out.values():
            a["outcomes"] = dict(sorted(a["outcomes"].items()))
        return out

    @property
    def ok(self) -> bool:
        return all(r.as_expected for r in self.results) and self.disagreement_count == 0

    @property
    def exit_code(self) -> int:
        """0 every verdict as expected; 1 one is not (or conformance failed); 3 nothing failed
        but some verdict is unknown (inconclusive)."""
        if self.disagreement_count or any(r.verdict != UNKNOWN and not r.as_expected for r in self.results):
            return 1
        if any(r.verdict == UNKNOWN for r in self.results):
            return 3
        return 0


# ---------------------------------------------------------------------------------
# One chunk
# ---------------------------------------------------------------------------------

@dataclass
class _Task:
    arch: str
    scope: str
    k: int
    n: int
    folders: tuple[str, ...]
    builtin: bool
    names: tuple[str, ...]
    conformance: bool
    error_codes: str = "hardware"


@dataclass
class _ChunkResult:
    arch: str
    scope: str
    k: int
    paths: int = 0
    states: int = 0
    seconds: float = 0.0
    outcomes: dict[str, int] = field(default_factory=dict)
    sim_runs: int = 0
    conformance_checked: int = 0
    per_prop: dict[str, list] = field(default_factory=dict)   # name -> [applicable, checked, violations, seconds, cex]
    disagreements: list[Disagreement] = field(default_factory=list)
    disagreement_count: int = 0


_NO_EXTRA: dict[str, Any] = {}


def _run_chunk(task: _Task, props: list[Property] | None = None) -> _ChunkResult:
    if props is None:
        props = select(load_properties(task.folders, builtin=task.builtin), task.names)
    explorer = Explorer(task.arch, task.scope, error_codes=task.error_codes)
    space = explorer.space
    res = _ChunkResult(task.arch, task.scope, task.k)
    acc = {p.name: [0, 0, 0, 0.0, None] for p in props}
    model_props = [p for p in props if not p.needs_simulator]
    sim_props = [p for p in props if p.needs_simulator]
    all_props = model_props + sim_props
    prop_acc = [(p, acc[p.name]) for p in all_props]
    t_start = time.perf_counter()
    outcomes = res.outcomes
    for path in explorer.paths():
        res.paths += 1
        if task.k == 0:
            key = str(path.outcome)
            outcomes[key] = outcomes.get(key, 0) + 1
        if path.index % task.n != task.k:
            continue
        view = RunView(path, space)
        run = None
        if task.conformance:
            run, dis = check_path(space, task.scope, path)
            res.sim_runs += 1
            res.conformance_checked += 1
            if dis is not None:
                res.disagreement_count += 1
                if len(res.disagreements) < MAX_SAVED_DISAGREEMENTS:
                    res.disagreements.append(dis)
        clock = time.perf_counter
        for p, a in prop_acc:
            t0 = clock()
            if p.on == "simulator":
                if p.when is not None:
                    try:
                        if not truth(p.when(view)):
                            a[1] += 1
                            a[3] += time.perf_counter() - t0
                            continue
                    except NeedInput:
                        pass
                if run is None:
                    run = sim_run(spec_for(space, path))
                    res.sim_runs += 1
                view.sim = run
            try:
                # The common case inline (the premise and predicate on the shared view); the
                # enumerating evaluator only when the property reads an unbound input.
                try:
                    if p.when is not None and not truth(p.when(view)):
                        applies, holds, extra = False, True, _NO_EXTRA
                    else:
                        applies, holds, extra = True, truth(p.predicate(view)), _NO_EXTRA
                except NeedInput:
                    ev = evaluate(p, path, space, run)
                    applies, holds, extra = ev.applies, ev.holds, ev.extra
            except PropertyError:
                raise
            except Exception as e:  # a bug in a property file: name it, with the path
                raise PropertyError(f"property {p.name} raised {type(e).__name__}: {e}", where=p.source,
                                    why=f"on {task.arch}/{task.scope} path {path.index}",
                                    todo="fix the predicate") from e
            a[1] += 1
            if applies:
                a[0] += 1
            if not holds:
                a[2] += 1
                bindings = {**path.bindings, **extra}
                cex = Counterexample(task.arch, task.scope, path.index, bindings, path.keys(), str(path.outcome),
                                     path.final.call, unusual(space, bindings))
                if a[4] is None or cex.rank < a[4].rank:
                    a[4] = cex
            a[3] += time.perf_counter() - t0
    res.states = explorer.states
    res.seconds = time.perf_counter() - t_start
    res.per_prop = acc
    return res


def unusual(space: Any, bindings: dict[str, Any]) -> int:
    """How many bound inputs differ from the default of their domain."""
    n = 0
    for name, value in bindings.items():
        try:
            if value != space.domain(name, bindings.__getitem__)[0]:
                n += 1
        except (KeyError, NeedInput):
            n += 1
    return n


def _run_task(task: _Task) -> _ChunkResult:
    return _run_chunk(task)


# ---------------------------------------------------------------------------------
# The whole check
# ---------------------------------------------------------------------------------

def check(*, names: Iterable[str] = (), folders: Iterable[str] = (), builtin: bool = True,
          arches: Iterable[str] = ARCHES, scopes: Iterable[str] = DEFAULT_SCOPES, engine: str = "exhaustive",
          conformance: bool = True, workers: int | None = None, out: str | None = None,
          error_codes: str = "hardware",
          progress: Callable[[int, int, str], None] | None = None) -> CheckReport:
    """Check properties (and conformance) on every path of every (arch, scope)."""
    if engine not in ENGINES:
        raise UsageError(f"unknown engine {engine!r}", todo="use one of: " + ", ".join(ENGINES))
    if engine not in _RUNNERS:
        raise UsageError(f"engine {engine!r} is not available yet",
                         todo="use --engine exhaustive (available: " + ", ".join(available_engines()) + ")")
    arches = tuple(arches)
    scopes = tuple(scopes)
    for a in arches:
        if a not in ARCHES:
            raise UsageError(f"unknown architecture {a!r}", todo="use one of: " + ", ".join(ARCHES))
    for s in scopes:
        if s not in SCOPES:
            raise UsageError(f"unknown scope {s!r}", todo="use one of: " + ", ".join(SCOPES))
    if out:
        _check_out(Path(out))
    folders = tuple(str(f) for f in folders)
    names = tuple(names)
    props = select(load_properties(folders, builtin=builtin), names)
    if not props:
        raise UsageError("no properties to check", todo="give --properties DIR or drop --no-builtin")
    return _RUNNERS[engine](props=props, names=names, folders=folders, builtin=builtin, arches=arches,
                            scopes=scopes, engine=engine, conformance=conformance, workers=workers, out=out,
                            error_codes=error_codes, progress=progress)


def _run_exhaustive(*, props: list[Property], names: tuple[str, ...], folders: tuple[str, ...], builtin: bool,
                    arches: tuple[str, ...], scopes: tuple[str, ...], engine: str, conformance: bool,
                    workers: int | None, out: str | None, error_codes: str,
                    progress: Callable[[int, int, str], None] | None) -> CheckReport:
    """The exhaustive engine: every path of every (arch, scope), in chunks."""
    needs_sim = conformance or any(p.needs_simulator for p in props)
    if workers is None:
        workers = min(os.cpu_count() or 1, 4) if needs_sim else 1
    n = max(1, workers if needs_sim else 1)
    tasks = [_Task(a, s, k, n, folders, builtin, tuple(p.name for p in props), conformance, error_codes)
             for a in arches for s in scopes for k in range(n)]
    t0 = time.perf_counter()
    chunks: list[_ChunkResult] = []
    if n == 1:
        for i, t in enumerate(tasks):
            chunks.append(_run_chunk(t, props))
            if progress:
                progress(i + 1, len(tasks), f"{t.arch}/{t.scope}")
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            for i, r in enumerate(pool.map(_run_task, tasks)):
                chunks.append(r)
                if progress:
                    progress(i + 1, len(tasks), f"{r.arch}/{r.scope}")
    report = _merge(props, chunks, engine, arches, scopes, conformance)
    report.seconds = time.perf_counter() - t0
    if out:
        write_counterexamples(report, out, error_codes)
    return report


def _check_out(folder: Path) -> None:
    """Refuse an --out folder that cannot be written, before any work is done."""
    probe = folder
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir() or not os.access(probe, os.W_OK):
        raise UsageError("cannot write counterexamples there", where=str(folder),
                         todo="give a writable folder with --out")


def _merge(props: list[Property], chunks: list[_ChunkResult], engine: str, arches: tuple[str, ...],
           scopes: tuple[str, ...], conformance: bool) -> CheckReport:
    results = {p.name: PropertyResult(p) for p in props}
    stats: dict[tuple[str, str], ScopeStats] = {}
    report = CheckReport(engine, arches, scopes, [results[p.name] for p in props], conformance)
    for c in sorted(chunks, key=lambda c: (ARCHES.index(c.arch), scopes.index(c.scope), c.k)):
        st = stats.setdefault((c.arch, c.scope), ScopeStats(c.arch, c.scope))
        if c.k == 0:
            st.paths, st.states, st.outcomes = c.paths, c.states, dict(c.outcomes)
        st.seconds += c.seconds
        report.sim_runs += c.sim_runs
        report.conformance_checked += c.conformance_checked
        report.disagreement_count += c.disagreement_count
        report.disagreements.extend(c.disagreements)
        for name, (applicable, checked, violations, secs, cex) in c.per_prop.items():
            r = results[name]
            r.applicable += applicable
            r.checked += checked
            r.violations += violations
            r.seconds += secs
            if cex is not None and (r.counterexample is None or cex.rank < r.counterexample.rank):
                r.counterexample = cex
    report.disagreements.sort(key=lambda d: (ARCHES.index(d.arch), scopes.index(d.scope), d.index))
    report.disagreements = report.disagreements[:MAX_SAVED_DISAGREEMENTS]
    report.stats = [stats[(a, s)] for a in arches for s in scopes if (a, s) in stats]
    return report


# ---------------------------------------------------------------------------------
# Counterexample files
# ---------------------------------------------------------------------------------

def _expect(cex: Counterexample, run: Any) -> dict[str, Any]:
    """What replaying the counterexample must show: the model's decisions on the first fault,
    and the simulator's whole run (its final outcome, its number of faults) when the
    simulator agrees with the model on the first fault -- else the model's outcome, so
    the replay fails where they part."""
    seen: list[str] = []
    for label, value in cex.keys:
        text = f"{label} → {value}"
        if text not in seen:
            seen.append(text)
    data: dict[str, Any] = {"trace_contains": seen}
    first = run.faults[0] if run is not None and run.faults else None
    if first is not None and str(first.outcome) == cex.outcome and first.trace.keys() == cex.keys:
        data["outcome"] = run.outcome.to_json()
        data["faults"] = len(run.faults)
    else:
        data["outcome"] = _outcome_json(cex.outcome)
    return data


def _outcome_json(text: str) -> dict[str, Any]:
    """Parse Outcome.__str__ back ("sigsegv(si_code=SEGV_ACCERR)")."""
    if "(" not in text:
        return {"kind": text}
    kind, rest = text.split("(", 1)
    out: dict[str, Any] = {"kind": kind}
    for part in rest.rstrip(")").split(", "):
        k, v = part.split("=", 1)
        out[k] = {"True": True, "False": False}.get(v, v)
    return out


def save_counterexample(cex: Counterexample, path: Path, *, name: str, description: str,
                        error_codes: str = "hardware") -> None:
    """Concretize ``cex``, run it once on the simulator for its expectations, and save it."""
    from ..errors import PfmodelError
    from ..scenario import save_scenario, scenario_from_spec

    space = build_space(cex.arch, cex.scope, error_codes=error_codes)
    spec = concretize(space, cex.bindings, calls=cex.calls)
    try:
        run = sim_run(spec)
    except PfmodelError:
        run = None
    scn = scenario_from_spec(spec, name, description=description, expect=_expect(cex, run))
    path.parent.mkdir(parents=True, exist_ok=True)
    save_scenario(scn, path)


def write_counterexamples(report: CheckReport, out: str, error_codes: str = "hardware") -> None:
    """One scenario per violated property (its best counterexample) and per saved
    conformance disagreement (whose expectation is the model's, so replaying it shows
    where the simulator parts from the model)."""
    from ..errors import PfmodelError

    folder = Path(out)
    report.out = str(folder)
    jobs: list[tuple[Any, Counterexample, Path, str, str]] = []
    for r in report.results:
        if r.counterexample is not None:
            verdict = "expected: violated" if r.prop.expected == VIOLATED else "UNEXPECTED violation"
            jobs.append((r.counterexample, r.counterexample, folder / f"{r.prop.name}.json",
                         f"{r.prop.name} ({r.counterexample.arch}, {verdict})", f"Violates: {r.prop.statement}"))
    for d in report.disagreements:
        if d.error:
            continue  # the simulator refused the scenario: there is nothing to replay
        cex = Counterexample(d.arch, d.scope, d.index, d.bindings, d.model_keys, d.model_outcome,
                             calls=sum(1 for key in d.model_keys if key[0] == "handle_mm_fault") or 1)
        jobs.append((d, cex, folder / f"conformance-{d.arch}-{d.scope}-{d.index}.json",
                     f"conformance {d.arch}/{d.scope} path {d.index}", d.describe()))
    for owner, cex, path, name, description in jobs:
        try:
            save_counterexample(cex, path, name=name, description=description, error_codes=error_codes)
        except OSError as e:
            raise UsageError(f"cannot write the counterexample {path}: {e.strerror}", where=str(folder),
                             todo="give a writable folder with --out") from None
        except PfmodelError as e:
            raise RuntimeError(f"a concretized path is not a valid scenario: {e.message}") from e
        owner.file = str(path)


register_engine("exhaustive", _run_exhaustive)
AVAILABLE_ENGINES = available_engines()  # at import time; use available_engines() after registering more

__all__ = ["check", "CheckReport", "PropertyResult", "Counterexample", "ENGINES", "AVAILABLE_ENGINES",
           "available_engines", "register_engine", "save_counterexample"]
