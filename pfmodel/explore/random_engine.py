"""The random engine: Hypothesis drives the simulator directly, outside the model.

``pfmodel check --engine random [--seed S] [--examples N]`` draws N machines from the
public strategies (``pfmodel.strategies.machine_specs``: any VMA layout, any PTE word,
any environment answer, not only the model's abstract classes), runs each on the
simulator (optionally mutated) and judges every property on every fault of the run
(``pfmodel.runview``).  Runs whose faults carry an error code the hardware cannot
produce there are discarded (``assume``): they say nothing about the kernel.

The first violation of each property is minimized over the scenario's fields
(``pfmodel.minimize``: fewest VMAs, entries and answers, defaults, round addresses) and
written like any other counterexample; with ``hypothesis_shrink=True`` a second search
with the same seed first lets Hypothesis shrink it over its choice sequence.  The same
seed and budget give the same verdicts and the same files.

The random engine is also where the model's abstraction shows its limits: the report
lists the decisions the simulator took that no path of the exhaustive model takes in
its default scopes (``--engine random`` with ``model_gaps``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from hypothesis import HealthCheck, Phase, Verbosity, assume, given, seed as hyp_seed, settings

from ..errors import PfmodelError, UsageError
from ..properties import HOLDS, VIOLATED, Property, load_properties, select
from ..runview import Observation, observe, sim_evaluate
from ..sim.spec import MachineSpec
from ..strategies import machine_specs

DEFAULT_EXAMPLES = 200
DEFAULT_SEED = 0


class _Violated(Exception):
    pass


@dataclass
class RandomResult:
    prop: Property
    applicable: int = 0
    checked: int = 0
    violations: int = 0
    not_evaluable: str = ""
    seconds: float = 0.0
    first: MachineSpec | None = None
    distinct: list[tuple[MachineSpec, tuple]] = field(default_factory=list)  # (spec, first-fault path)
    shrunk: MachineSpec | None = None
    file: str = ""
    files: list[str] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        if self.violations:
            return VIOLATED
        return "unknown" if self.not_evaluable else HOLDS

    @property
    def as_expected(self) -> bool:
        """A held property is 'as expected' only when it was expected to hold; a belief
        expected to be violated that a random search did not break is inconclusive."""
        return not (self.verdict == VIOLATED and self.prop.expected == HOLDS)

    @property
    def vacuous(self) -> bool:
        return self.checked > 0 and self.applicable == 0


@dataclass
class RandomReport:
    seed: int
    examples: int
    results: list[RandomResult]
    arch: str | None = None
    mutant: str = ""
    runs: int = 0
    discarded: int = 0
    seconds: float = 0.0
    out: str = ""
    decisions: set[tuple[str, str]] = field(default_factory=set)
    model_gaps: list[tuple[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(r.as_expected for r in self.results)

    @property
    def inconclusive(self) -> bool:
        """A belief expected to be violated that this budget did not break (exit status 3)."""
        return any(r.prop.expected == VIOLATED and r.verdict != VIOLATED for r in self.results)

    @property
    def exit_code(self) -> int:
        if not self.ok:
            return 1
        return 3 if self.inconclusive else 0


def _settings(examples: int, phases: tuple[Phase, ...]) -> settings:
    return settings(max_examples=examples, database=None, deadline=None, derandomize=False,
                    phases=phases, suppress_health_check=list(HealthCheck), verbosity=Verbosity.quiet,
                    report_multiple_bugs=False, print_blob=False)


def _strategy(arch: str | None) -> Any:
    return machine_specs(arch, realistic=True)


def _observe(spec: MachineSpec, overrides: dict[str, Any], baseline: bool) -> tuple[Observation, Observation | None] | None:
    try:
        obs = observe(spec, overrides)
    except PfmodelError:
        return None
    if not all(f.hardware_possible for f in obs.run.faults):
        return None
    plain = observe(spec) if baseline else None
    return obs, plain


def random_check(*, seed: int = DEFAULT_SEED, examples: int = DEFAULT_EXAMPLES, names: Iterable[str] = (),
                 folders: Iterable[str] = (), builtin: bool = True, arch: str | None = None,
                 mutant: Any = None, out: str | None = None, max_counterexamples: int = 1,
                 model_gaps: bool = True, hypothesis_shrink: bool = False) -> RandomReport:
    """Check the properties on ``examples`` random machines (see the module docstring).

    ``hypothesis_shrink``: also let Hypothesis shrink each violation over its choice
    sequence before pfmodel's own minimization (slower: every shrink step draws a whole
    machine again; the result is minimized over the scenario's fields either way)."""
    if examples < 1:
        raise UsageError("--examples must be at least 1")
    props = select(load_properties(tuple(str(f) for f in folders), builtin=builtin), tuple(names))
    if not props:
        raise UsageError("no properties to check", todo="give --properties DIR or drop --no-builtin")
    overrides = mutant.sim_overrides() if mutant is not None else {}
    report = RandomReport(seed, examples, [RandomResult(p) for p in props], arch,
                          mutant.name if mutant is not None else "")
    t0 = time.perf_counter()

    # Phase 1: one search over every property; never fails, records the first violation.
    @hyp_seed(seed)
    @_settings(examples, (Phase.generate,))
    @given(_strategy(arch))
    def search(spec: MachineSpec) -> None:
        seen = _observe(spec, overrides, mutant is not None)
        if seen is None:
            report.discarded += 1
            assume(False)
            return
        obs, plain = seen
        report.runs += 1
        for f in obs.run.faults:
            report.decisions.update(f.trace.keys())
        for r in report.results:
            t = time.perf_counter()
            verdict = sim_evaluate(r.prop, obs)
            r.checked += 1
            if verdict.not_evaluable:
                r.not_evaluable = verdict.not_evaluable
            if verdict.applies:
                r.applicable += 1
            if not verdict.holds and (plain is None or sim_evaluate(r.prop, plain).holds):
                r.violations += 1
                if r.first is None:
                    r.first = spec
                path = tuple(obs.run.faults[0].trace.keys()) if obs.run.faults else ()
                if len(r.distinct) < max_counterexamples and all(path != p for _, p in r.distinct):
                    r.distinct.append((spec, path))
            r.seconds += time.perf_counter() - t

    search()

    # Phase 2 (optional): per violated property, the same search stops at its first
    # violation and Hypothesis shrinks it.
    for r in report.results:
        if r.first is None:
            continue
        r.shrunk = r.first
        if hypothesis_shrink:
            r.shrunk = _shrink(r.prop, seed, examples, arch, overrides, mutant is not None) or r.first

    report.seconds = time.perf_counter() - t0
    if model_gaps:
        report.model_gaps = gaps(report.decisions, arch)
    if out:
        write_files(report, out, mutant, max_counterexamples)
    return report


def _shrink(prop: Property, seed: int, examples: int, arch: str | None, overrides: dict[str, Any],
            baseline: bool) -> MachineSpec | None:
    last: list[MachineSpec] = []

    @hyp_seed(seed)
    @_settings(examples, (Phase.generate, Phase.shrink))
    @given(_strategy(arch))
    def find(spec: MachineSpec) -> None:
        seen = _observe(spec, overrides, baseline)
        if seen is None:
            assume(False)
            return
        obs, plain = seen
        if not sim_evaluate(prop, obs).holds and (plain is None or sim_evaluate(prop, plain).holds):
            last.append(spec)
            raise _Violated(prop.name)

    try:
        find()
    except _Violated:
        pass
    return last[-1] if last else None


def write_files(report: RandomReport, out: str | Path, mutant: Any, max_counterexamples: int) -> None:
    from ..counterexample import minimized_property_counterexample, save

    report.out = str(out)
    for r in report.results:
        if r.shrunk is None:
            continue
        name = f"{r.prop.name} (random, seed {report.seed})"
        cx, _ = minimized_property_counterexample(r.prop, r.shrunk, mutant=mutant, name=name)
        path = save(cx, out)
        r.file = str(path)
        r.files = [str(path)]
        # More, on request: the first violations with other decisions, each minimized on its path.
        for spec, keys in r.distinct[1:max_counterexamples]:
            cx, _ = minimized_property_counterexample(r.prop, spec, mutant=mutant, name=name, same_path=list(keys))
            extra = str(save(cx, out))
            if extra not in r.files:
                r.files.append(extra)


def gaps(decisions: set[tuple[str, str]], arch: str | None) -> list[tuple[str, str]]:
    """Decisions the simulator took that no path of the model's default scopes takes."""
    from ..model.inputs import ARCHES, DEFAULT_SCOPES
    from .exhaustive import Explorer

    model: set[tuple[str, str]] = set()
    for a in ([arch] if arch in ARCHES else list(ARCHES)):
        for scope in DEFAULT_SCOPES:
            ex = Explorer(a, scope).run()
            model.update((label, value) for (_pc, label, value, _next) in ex.edges)
    return sorted(d for d in decisions if d not in model)


def report_json(report: RandomReport) -> dict[str, Any]:
    from .. import KERNEL_VERSION, __version__

    return {
        "pfmodel": __version__, "kernel": KERNEL_VERSION, "engine": "random", "seed": report.seed,
        "examples": report.examples, "arch": report.arch, "mutant": report.mutant or None,
        "ok": report.ok, "exit_status": report.exit_code, "seconds": round(report.seconds, 3),
        "simulator_runs": report.runs, "discarded": report.discarded,
        "properties": [{
            "name": r.prop.name, "expected": r.prop.expected, "verdict": r.verdict,
            "as_expected": r.as_expected, "examples_checked": r.checked, "examples_applicable": r.applicable,
            "violations": r.violations, "vacuous": r.vacuous, "not_evaluable": r.not_evaluable or None,
            "seconds": round(r.seconds, 4), "counterexample": r.file or None, "counterexamples": r.files,
            "replay": f"pfmodel replay {r.file}" if r.file else None,
        } for r in report.results],
        "model_gaps": [f"{label} → {value}" for label, value in report.model_gaps],
    }


def print_report(report: RandomReport, console: Any) -> None:
    from rich.table import Table

    table = Table(show_edge=False, pad_edge=False, header_style="bold")
    table.add_column("property", overflow="fold")
    table.add_column("expected", no_wrap=True)
    table.add_column("verdict", no_wrap=True)
    table.add_column("", no_wrap=True)
    table.add_column("examples (applies/checked)", justify="right", no_wrap=True)
    table.add_column("time", justify="right", no_wrap=True)
    for r in report.results:
        if r.verdict == "unknown":
            mark = f"[yellow]not on the simulator ({r.not_evaluable})[/yellow]"
        elif r.verdict == r.prop.expected:
            mark = "[green]ok[/green]"
        elif r.prop.expected == VIOLATED:
            mark = "[yellow]not found[/yellow]"
        else:
            mark = "[red bold]UNEXPECTED[/red bold]"
        if r.vacuous:
            mark += " [yellow](vacuous)[/yellow]"
        table.add_row(r.prop.name, r.prop.expected, r.verdict, mark, f"{r.applicable}/{r.checked}", f"{r.seconds:.2f}s")
    console.print(table)
    on = f" on mutant {report.mutant}" if report.mutant else ""
    console.print(f"[dim]random{on}: seed {report.seed}, {report.runs} simulator runs "
                  f"({report.discarded} impossible error codes discarded); {report.seconds:.1f}s[/dim]")
    for r in report.results:
        if r.file:
            style, end = ("", "") if r.as_expected else ("[red bold]", "[/red bold]")
            console.print(f"{style}{r.prop.name} is violated{end}")
            for f in r.files:
                console.print(f"    pfmodel replay {f}")
    if report.model_gaps:
        shown = ", ".join(f"{label} → {value}" for label, value in report.model_gaps[:12])
        more = f" (+{len(report.model_gaps) - 12} more)" if len(report.model_gaps) > 12 else ""
        console.print(f"[yellow]decisions the simulator took that no model path takes (the model's "
                      f"abstraction is coarser there): {shown}{more}[/yellow]")
    if report.ok and report.inconclusive:
        console.print("[yellow]inconclusive: a belief expected to be violated was not broken by this "
                      "search (try more --examples)[/yellow]")
    elif report.ok:
        console.print("[green]every verdict as expected[/green]")
    else:
        console.print("[red bold]some verdicts NOT as expected[/red bold]")


__all__ = ["random_check", "RandomReport", "RandomResult", "report_json", "print_report", "gaps",
           "DEFAULT_EXAMPLES", "DEFAULT_SEED"]
