"""The bodies of ``pfmodel check``, ``pfmodel graph`` and ``pfmodel table`` (added to the
click group in ``pfmodel/cli.py``).  Bad input raises ``PfmodelError`` (exit status 2)."""

from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import click

from .. import KERNEL_VERSION, __version__
from ..model.inputs import ARCHES, DEFAULT_SCOPES, SCOPES

DEFAULT_OUT = "pfmodel-out"


def _console(stderr: bool = False):
    from rich.console import Console

    con = Console(highlight=False, soft_wrap=False, stderr=stderr)
    if not con.is_terminal:
        con.width = max(con.width, 132)
    return con


@contextmanager
def progress_reporter(enabled: bool) -> Iterator[Callable[[int, int, str], None]]:
    """A ``progress(done, total, what)`` callback that drives a rich progress bar on stderr
    while the block runs (only when ``enabled`` and stderr is a terminal; else a no-op)."""
    con = _console(stderr=True) if enabled else None
    if con is None or not con.is_terminal:
        yield lambda done, total, what: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(TextColumn("[bold]checking[/bold] {task.description}"), BarColumn(), MofNCompleteColumn(),
                   TimeElapsedColumn(), console=con, transient=True)
    with bar:
        task_id = bar.add_task("", total=None)
        yield lambda done, total, what: bar.update(task_id, total=total, completed=done, description=what)


# --- pfmodel check -------------------------------------------------------------------------

@click.command("check")
@click.option("--engine", default="exhaustive", show_default=True, metavar="ENGINE",
              help="exhaustive; smt (z3: every property proved or refuted over the full input space); "
                   "all (both engines, any disagreement between them is an error); random (Hypothesis drives "
                   "the simulator directly: --seed, --examples).")
@click.option("--property", "names", multiple=True, metavar="NAME", help="Check only this property (repeatable).")
@click.option("--properties", "folders", multiple=True, type=click.Path(path_type=Path), metavar="DIR",
              help="Also load the *.py property files of DIR (repeatable).")
@click.option("--no-builtin", is_flag=True, help="Do not load pfmodel's own property library.")
@click.option("--arch", "arches", multiple=True, type=click.Choice(ARCHES), help="Architecture (default: both).")
@click.option("--scope", "scopes", multiple=True, type=click.Choice(sorted(SCOPES)),
              help="Input-space scope (default: " + ", ".join(DEFAULT_SCOPES) + ").")
@click.option("--out", "out", default=DEFAULT_OUT, show_default=True, type=click.Path(path_type=Path),
              metavar="DIR", help="Where counterexample scenarios are written.")
@click.option("--no-conformance", is_flag=True,
              help="Skip running every path on the simulator (simulator properties still run theirs).")
@click.option("--all-error-codes", is_flag=True,
              help="Enumerate every error code, also those the hardware never produces (properties that "
                   "rest on the hardware's rules, like PF_USER only at CPL 3, are then violated).")
@click.option("--workers", type=click.IntRange(1, 64), default=None, help="Worker processes (default: CPUs, max 4).")
@click.option("--smt-timeout", "smt_timeout", type=click.IntRange(1, None), default=10_000, show_default=True,
              metavar="MS", help="smt/all: time limit of each solver query, in milliseconds (a query that "
                                 "runs out is UNKNOWN, never 'holds').")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--list", "list_props", is_flag=True, help="List the properties (name, expected verdict, statement).")
@click.option("--mutant", "mutant", default=None, metavar="NAME|FILE.py",
              help="Check a mutant of the simulator or the model (a built-in name, or a mutant file; "
                   "see `pfmodel mutants --list`).")
@click.option("--max-counterexamples", type=click.IntRange(1, None), default=1, show_default=True, metavar="N",
              help="Up to N counterexamples per violated property, distinct by path.")
@click.option("--seed", type=int, default=0, show_default=True, help="random: the Hypothesis seed.")
@click.option("--examples", type=click.IntRange(1, None), default=200, show_default=True,
              help="random: how many machines to draw.")
@click.pass_context
def check_cmd(ctx: click.Context, engine: str, names: tuple[str, ...], folders: tuple[Path, ...], no_builtin: bool,
              arches: tuple[str, ...], scopes: tuple[str, ...], out: Path, no_conformance: bool,
              all_error_codes: bool, workers: int | None, smt_timeout: int, as_json: bool, list_props: bool,
              mutant: str | None, max_counterexamples: int, seed: int, examples: int) -> None:
    """Check the property library on every path of the model, and the model against the simulator.

    Each property gets a verdict (holds / violated) next to its expected verdict; a
    property expected to be violated (a naive belief) does not fail the run, one that
    unexpectedly holds does.  Every violated property gets a counterexample scenario in
    --out, replayable with `pfmodel replay FILE`.  Every path is also concretized and run on
    the simulator: a disagreement is reported as "conformance violated at step k".

    Exit status: 0 every verdict as expected and no conformance violation; 1 otherwise;
    2 bad input; 3 inconclusive.
    """
    from .check import check

    if list_props:
        _list_properties(names, folders, not no_builtin, as_json)
        ctx.exit(0)
    if engine in ("smt", "all"):  # the SMT engine's own driver and report (pfmodel/explore/smt.py)
        from .smt import run_check_command
        ctx.exit(run_check_command(
            engine=engine, names=names, folders=tuple(str(f) for f in folders), builtin=not no_builtin,
            arches=arches or ARCHES, scopes=scopes or DEFAULT_SCOPES, out=str(out), conformance=not no_conformance,
            error_codes="all" if all_error_codes else "hardware", workers=workers, as_json=as_json,
            timeout_ms=smt_timeout))
    if engine == "random" or mutant:  # pfmodel/cxcli.py: the random engine, and mutants
        from ..cxcli import run_mutant_check, run_random_check
        common = dict(names=names, folders=tuple(str(f) for f in folders), builtin=not no_builtin,
                      arches=arches or ARCHES, out=str(out), as_json=as_json)
        if engine == "random":
            ctx.exit(run_random_check(**common, seed=seed, examples=examples, mutant_spec=mutant,
                                      max_counterexamples=max_counterexamples))
        ctx.exit(run_mutant_check(**common, scopes=scopes or DEFAULT_SCOPES, mutant_spec=mutant,
                                  error_codes="all" if all_error_codes else "hardware"))
    from .check import _check_out
    from .cxfiles import write_report_counterexamples
    _check_out(Path(out))
    with progress_reporter(not as_json) as progress:
        report = check(names=names, folders=[str(f) for f in folders], builtin=not no_builtin,
                       arches=arches or ARCHES, scopes=scopes or DEFAULT_SCOPES, engine=engine,
                       conformance=not no_conformance, workers=workers, out=None,
                       error_codes="all" if all_error_codes else "hardware", progress=progress)
        # Minimized, explained counterexample files (pfmodel/explore/cxfiles.py).
        write_report_counterexamples(report, str(out), max_counterexamples=max_counterexamples,
                                     error_codes="all" if all_error_codes else "hardware")
    from ..cxcli import mutant_vacuity, print_mutant_vacuity
    if as_json:
        click.echo(json.dumps({**report_json(report), "mutant_vacuity": mutant_vacuity(out)}, indent=2))
    else:
        print_report(report)
        print_mutant_vacuity(out)
    ctx.exit(report.exit_code)


def _list_properties(names: tuple[str, ...], folders: tuple[Path, ...], builtin: bool, as_json: bool) -> None:
    from ..properties import load_properties, select

    props = select(load_properties([str(f) for f in folders], builtin=builtin), names)
    if as_json:
        click.echo(json.dumps([{"name": p.name, "expected": p.expected, "on": p.on, "statement": p.statement,
                                "rationale": p.rationale, "source": p.source} for p in props], indent=2))
        return
    con = _console()
    for p in props:
        where = " (on the simulator)" if p.on == "simulator" else ""
        con.print(f"[bold]{p.name}[/bold] [dim]expected {p.expected}{where}, {p.source}[/dim]")
        con.print(f"  {p.statement}")
        con.print(f"  [dim]{p.rationale}[/dim]")


def report_json(report: Any) -> dict[str, Any]:
    props = []
    for r in report.results:
        c = r.counterexample
        props.append({
            "name": r.prop.name, "expected": r.prop.expected, "verdict": r.verdict, "as_expected": r.as_expected,
            "statement": r.prop.statement, "on": r.prop.on, "source": r.prop.source,
            "paths_checked": r.checked, "paths_applicable": r.applicable, "violations": r.violations,
            "vacuous": r.vacuous, "seconds": round(r.seconds, 4),
            "counterexample": None if c is None else {
                "file": c.file, "replay": c.replay, "arch": c.arch, "scope": c.scope, "path": c.index,
                "outcome": c.outcome, "trace": [f"{label} → {value}" for label, value in c.keys]},
        })
    return {
        "pfmodel": __version__, "kernel": KERNEL_VERSION, "engine": report.engine,
        "arches": list(report.arches), "scopes": list(report.scopes),
        "ok": report.ok, "exit_status": report.exit_code, "seconds": round(report.seconds, 3),
        "paths": report.paths, "states": report.states, "simulator_runs": report.sim_runs,
        "explored": [{"arch": s.arch, "scope": s.scope, "paths": s.paths, "states": s.states,
                      "outcomes": s.outcomes} for s in report.stats],
        "per_arch": report.per_arch(),
        "properties": props,
        "conformance": {
            "enabled": report.conformance, "paths_checked": report.conformance_checked,
            "violations": report.disagreement_count,
            "examples": [{"arch": d.arch, "scope": d.scope, "path": d.index, "message": d.describe(),
                          "file": d.file, "replay": f"pfmodel replay {d.file}" if d.file else ""}
                         for d in report.disagreements],
        },
    }


def print_report(report: Any) -> None:
    from rich.table import Table

    con = _console()
    table = Table(show_edge=False, pad_edge=False, header_style="bold")
    table.add_column("property", overflow="fold")
    table.add_column("expected", no_wrap=True)
    table.add_column("verdict", no_wrap=True)
    table.add_column("", no_wrap=True)
    table.add_column("paths (applies/checked)", justify="right", no_wrap=True)
    table.add_column("time", justify="right", no_wrap=True)
    for r in report.results:
        verdict = r.verdict
        mark = "[green]ok[/green]" if r.as_expected else "[red bold]UNEXPECTED[/red bold]"
        if r.vacuous:
            mark += " [yellow](vacuous)[/yellow]"
        table.add_row(r.prop.name, r.prop.expected, verdict, mark, f"{r.applicable}/{r.checked}", f"{r.seconds:.2f}s")
    con.print(table)
    for arch, a in report.per_arch().items():
        scopes = ", ".join(f"{s.scope} {s.paths}" for s in report.stats if s.arch == arch)
        con.print(f"[dim]{arch}: {a['paths']} paths ({scopes}), {a['states']} states, "
                  f"{len(a['outcomes'])} distinct outcomes[/dim]")
    con.print(f"[dim]{report.engine}: {report.paths} paths, {report.sim_runs} simulator runs, "
              f"{report.seconds:.1f}s[/dim]")
    if report.conformance:
        if report.disagreement_count == 0:
            con.print(f"conformance: the simulator agrees with the model on all {report.conformance_checked} paths")
        else:
            con.print(f"[red bold]conformance violated on {report.disagreement_count} of "
                      f"{report.conformance_checked} paths[/red bold]")
            for d in report.disagreements:
                con.print(f"  {d.arch}/{d.scope} path {d.index}: {d.describe()}")
                if d.file:
                    con.print(f"    pfmodel replay {d.file}")
    for r in report.results:
        c = r.counterexample
        if c is None:
            continue
        style = "" if r.as_expected else "[red bold]"
        end = "" if r.as_expected else "[/red bold]"
        con.print(f"{style}{r.prop.name} is violated ({'expected' if r.as_expected else 'NOT expected'}): "
                  f"{c.arch}/{c.scope}, ends {c.outcome}{end}")
        for f in getattr(r, "files", None) or ([c.file] if c.file else []):
            con.print(f"    pfmodel replay {f}")
    vacuous = [r.prop.name for r in report.results if r.vacuous]
    if vacuous:
        con.print(f"[yellow]vacuous (no path meets the premise): {', '.join(vacuous)}[/yellow]")
    summary = "every verdict as expected" if report.ok else "some verdicts NOT as expected"
    con.print(f"[green]{summary}[/green]" if report.ok else f"[red bold]{summary}[/red bold]")


__all__ = ["check_cmd", "report_json", "print_report", "DEFAULT_OUT"]


# --- pfmodel graph -------------------------------------------------------------------------

@click.command("graph")
@click.option("--format", "fmt", type=click.Choice(["dot", "graphml", "json"]), default="dot", show_default=True)
@click.option("--out", "out", type=click.Path(path_type=Path), default=None, metavar="FILE",
              help="Write the graph here (default: standard output).")
@click.option("--arch", "arches", multiple=True, type=click.Choice(ARCHES), help="Architecture (default: both).")
@click.option("--scope", "scopes", multiple=True, type=click.Choice(sorted(SCOPES)),
              help="Input-space scope (default: " + ", ".join(DEFAULT_SCOPES) + ").")
@click.option("--coverage", "show_coverage", is_flag=True,
              help="Print how often each decision value is taken (always printed with --out).")
@click.pass_context
def graph_cmd(ctx: click.Context, fmt: str, out: Path | None, arches: tuple[str, ...], scopes: tuple[str, ...],
              show_coverage: bool) -> None:
    """Export the model's state graph: locations as nodes, actions (decision → value) as
    edges weighted by the number of paths, outcomes as sinks.

    Also reports coverage: every decision value of the trace vocabulary that no path
    takes is listed, either as unreachable by design (with the reason) or as a vacuity
    warning (exit status 1: a branch no property can say anything about).
    """
    from .graph import build_graph, to_dot, to_graphml, to_json

    g, cov = build_graph(arches or ARCHES, scopes or DEFAULT_SCOPES)
    text = {"dot": to_dot, "graphml": to_graphml, "json": lambda gr: to_json(gr, cov)}[fmt](g)
    if out is None:
        click.echo(text, nl=False)
        if show_coverage:
            _print_coverage(cov, g, stderr=True)
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)
        _print_coverage(cov, g, stderr=False, verbose=show_coverage)
        click.echo(f"wrote {out} ({g.number_of_nodes()} nodes, {g.number_of_edges()} edges)")
    ctx.exit(1 if cov.vacuous else 0)


def _print_coverage(cov: Any, g: Any, *, stderr: bool, verbose: bool = True) -> None:
    con = _console(stderr=stderr)
    if verbose:
        from rich.table import Table

        table = Table(show_edge=False, pad_edge=False, header_style="bold")
        table.add_column("decision")
        table.add_column("value")
        table.add_column("paths", justify="right")
        for (label, value), n in sorted(cov.counts.items()):
            table.add_row(label, value, str(n))
        con.print(table)
    reached = len(cov.counts)
    con.print(f"coverage: {reached} decision values reached; {len(cov.by_design)} unreachable by design; "
              f"{len(cov.vacuous)} never reached")
    for label, value, why in cov.by_design:
        con.print(f"  [dim]unreachable by design: {label} → {value}: {why}[/dim]")
    for label, value in cov.vacuous:
        con.print(f"  [yellow]vacuity warning: no path takes {label} → {value}[/yellow]")


# --- pfmodel table -------------------------------------------------------------------------

@click.command("table")
@click.option("--rows", default="error_code", show_default=True, metavar="DIM",
              help="Row dimension: error_code, mode, vm_flags, kind, pte, pmd, address, or an input name.")
@click.option("--cols", default="vm_flags", show_default=True, metavar="DIM", help="Column dimension.")
@click.option("--pages", default=None, metavar="DIM",
              help="A third dimension: one table per value (e.g. --pages pte for error code × vm_flags × PTE).")
@click.option("--set", "settings", multiple=True, metavar="NAME=VALUE",
              help="Fix a dimension (pte=none, mode=kernel) or an input (cpu.smap=false) (repeatable).")
@click.option("--arch", type=click.Choice(ARCHES), default="x86_64", show_default=True)
@click.option("--explore-rest", "scope", type=click.Choice(sorted(SCOPES)), default=None,
              help="Explore every other input of this scope in each cell (else they take their defaults).")
@click.option("--format", "fmt", type=click.Choice(["text", "markdown", "csv", "json"]), default="text",
              show_default=True)
@click.option("--no-conformance", is_flag=True, help="Do not run each cell on the simulator.")
@click.option("--list", "list_dims", is_flag=True, help="List the dimensions and inputs, then exit.")
@click.pass_context
def table_cmd(ctx: click.Context, rows: str, cols: str, pages: str | None, settings: tuple[str, ...], arch: str,
              scope: str | None, fmt: str, no_conformance: bool, list_dims: bool) -> None:
    """Outcome tables over two dimensions (eager mode): every cell is one assignment of the
    chosen inputs, run on the model (and on the simulator: a disagreement marks the cell
    with ≠ and makes the exit status 1).

    Example: `pfmodel table --rows error_code --cols vm_flags --set pte=none --set mode=user`.
    """
    from ..model.inputs import build_space
    from .table import build_tables, dimensions

    if list_dims:
        space = build_space(arch, "full")
        con = _console()
        for d in dimensions(space).values():
            con.print(f"[bold]{d.name}[/bold]: {d.doc}: " + ", ".join(label for label, _ in d.values))
        con.print("[bold]inputs[/bold]: " + ", ".join(sorted(space.inputs)))
        ctx.exit(0)
    tables = build_tables(arch, rows, cols, pages, list(settings), explore_rest=scope,
                          conformance=not no_conformance)
    if fmt == "json":
        docs = [tb.to_json() for tb in tables]
        click.echo(json.dumps(docs if pages else docs[0], indent=2))
    for tb in tables:
        if fmt == "markdown":
            click.echo((f"\n**{tb.page}**\n\n" if tb.page else "") + tb.to_markdown(), nl=False)
        elif fmt == "csv":
            click.echo((f"# {tb.page}\n" if tb.page else "") + tb.to_csv(), nl=False)
        elif fmt == "text":
            from rich.table import Table

            con = _console()
            fixed = ", ".join(f"{k}={v}" for k, v in sorted(tb.fixed.items())) or "defaults"
            table = Table(title=f"{arch}: {rows} × {cols} ({fixed})", show_lines=False, header_style="bold")
            table.add_column(f"{rows} \\ {cols}", no_wrap=True)
            for label, _ in tb.cols.values:
                table.add_column(label, overflow="fold")
            for row in tb.cells:
                table.add_row(row[0].row, *[c.text() for c in row])
            con.print(table)
    disagreements = [d for tb in tables for d in tb.disagreements]
    for d in disagreements:
        click.echo(d, err=True)
    ctx.exit(1 if disagreements else 0)


__all__ += ["graph_cmd", "table_cmd"]
