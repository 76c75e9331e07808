"""The bodies of ``pfmodel replay`` and ``pfmodel mutants``, and of ``pfmodel check``'s
``--engine random`` and ``--mutant`` (added to the click group in ``pfmodel/cli.py`` and
``pfmodel/explore/commands.py``).  Bad input raises ``PfmodelError`` (exit status 2).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterable

import click

from . import KERNEL_VERSION, __version__
from .errors import UsageError

KILL_MATRIX_FILE = "kill-matrix.json"
KILL_MATRIX_FORMAT = "pfmodel-kill-matrix/1"
DEFAULT_CORPUS = "counterexamples"


def _console():
    from rich.console import Console

    con = Console(highlight=False, soft_wrap=False)
    if not con.is_terminal:
        con.width = max(con.width, 132)
    return con


def _progress(enabled: bool, label: str):
    if not enabled:
        return None
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    con = Console(stderr=True)
    if not con.is_terminal:
        return None
    return Progress(TextColumn(f"[bold]{label}[/bold] {{task.description}}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=con, transient=True)


# --- pfmodel replay -------------------------------------------------------------------------

@click.command("replay")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path), metavar="PATH...")
@click.option("--properties", "folders", multiple=True, type=click.Path(path_type=Path), metavar="DIR",
              help="Also load the *.py property files of DIR (for counterexamples of your own properties).")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
@click.pass_context
def replay_cmd(ctx: click.Context, paths: tuple[Path, ...], folders: tuple[Path, ...], as_json: bool) -> None:
    """Replay counterexample files (and scenario files with `expect`) on the simulator.

    A folder is searched recursively for *.json files.  For a counterexample every
    recorded field is checked again: the outcome, the number of faults, every fault's
    decisions, the violated property (or the step where model and simulator part), the
    mutant's effect against the unmutated system, and the modelled kernel's version.

    Exit status 0 when every file reproduces; 1 when one does not (with a diff); 2 bad input.
    """
    from .counterexample import collect, replay_path
    from .properties import load_properties

    files = collect(paths)
    props = {p.name: p for p in load_properties([str(f) for f in folders])}
    results = [replay_path(f, props) for f in files]
    failed = [r for r in results if not r.ok]
    if as_json:
        click.echo(json.dumps([{"file": r.path, "kind": r.kind, "name": r.name, "ok": r.ok,
                                "problems": r.problems, "diff": r.diff, "notes": r.notes} for r in results],
                              indent=2, ensure_ascii=False))
    else:
        con = _console()
        for r in results:
            mark = "[green]ok[/green]" if r.ok else "[red bold]DOES NOT REPRODUCE[/red bold]"
            con.print(f"{mark}  {r.path}  [dim]{r.kind}[/dim]")
            for p in r.problems:
                con.print(f"    [red]- {p}[/red]")
            for line in r.diff:
                style = "red" if line.startswith("-") else ("green" if line.startswith("+") else "dim")
                con.print(f"      [{style}]{_escape(line)}[/{style}]")
            for n in r.notes:
                con.print(f"    [dim]note: {n}[/dim]")
        summary = f"{len(results) - len(failed)} of {len(results)} files reproduce"
        con.print(f"[green]{summary}[/green]" if not failed else f"[red bold]{summary}[/red bold]")
    ctx.exit(1 if failed else 0)


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


# --- pfmodel mutants -------------------------------------------------------------------------

def _selected_mutants(specs: Iterable[str], seq_only: bool) -> list[Any]:
    from .mutants import BUILTIN, resolve

    specs = list(specs)
    mutants = [m for spec in specs for m in resolve(spec)] if specs else list(BUILTIN.values())
    if seq_only:
        mutants = [m for m in mutants if m.seq]
    if not mutants:
        raise UsageError("no mutants selected", todo="drop --seq, or name mutants with --mutant")
    return mutants


@click.command("mutants")
@click.option("--mutant", "specs", multiple=True, metavar="NAME|FILE.py",
              help="Run only this mutant (repeatable; a built-in name or a mutant file).")
@click.option("--seq", "seq_only", is_flag=True, help="Only the mutants of historical-bugs.md's SEQ items.")
@click.option("--list", "list_only", is_flag=True, help="List the mutants (with --json: their changes too).")
@click.option("--arch", "arches", multiple=True, type=click.Choice(("x86_64", "i386-pae")),
              help="Architecture (default: both).")
@click.option("--scope", "scopes", multiple=True, metavar="SCOPE", help="Input-space scope (default: the check's).")
@click.option("--all-kills", is_flag=True,
              help="Run every path for every mutant, to find every property that kills it (slower; needed "
                   "for a complete list of properties that kill no mutant).")
@click.option("--corpus", "corpus", multiple=True, type=click.Path(path_type=Path), metavar="DIR",
              help=f"Committed scenarios judged for survivors (default: ./{DEFAULT_CORPUS} if it exists).")
@click.option("--examples", type=click.IntRange(0, None), default=200, show_default=True,
              help="Random-engine examples for survivors (0: no random stage).")
@click.option("--seed", type=int, default=0, show_default=True, help="Random-engine seed.")
@click.option("--out", "out", default="pfmodel-out/mutants", show_default=True, type=click.Path(path_type=Path),
              metavar="DIR", help="Where each kill's counterexample (and kill-matrix.json) is written.")
@click.option("--workers", type=click.IntRange(1, 64), default=None, help="Worker processes (default: CPUs, max 4).")
@click.option("--json", "as_json", is_flag=True, help="Print the kill matrix as JSON.")
@click.pass_context
def mutants_cmd(ctx: click.Context, specs: tuple[str, ...], seq_only: bool, list_only: bool, arches: tuple[str, ...],
                scopes: tuple[str, ...], all_kills: bool, corpus: tuple[Path, ...], examples: int, seed: int,
                out: Path, workers: int | None, as_json: bool) -> None:
    """Run the property suite and conformance against every mutant: the kill matrix.

    A mutant is a named change to the simulator (or to the model) that brings back a
    bug.  Each is run on every path of the exhaustive model (both architectures); a
    survivor is then judged on the committed scenarios and by the random engine.  For
    each mutant the matrix shows killed / survived / equivalent, by which property or
    conformance step, the counterexample file (it replays on the mutant, and does not
    violate the property on the unmutated simulator), and the time.

    Exit status 0 when every mutant is killed or documented as equivalent; 1 when one
    survives; 2 bad input.
    """
    from .model.inputs import ARCHES, DEFAULT_SCOPES, SCOPES

    mutants = _selected_mutants(specs, seq_only)
    if list_only:
        _list_mutants(mutants, as_json)
        ctx.exit(0)
    for s in scopes:
        if s not in SCOPES:
            raise UsageError(f"unknown scope {s!r}", todo="use one of: " + ", ".join(SCOPES))
    from .mutants.matrix import STOP_ALL, STOP_FIRST, run_matrix

    corpus_dirs = [str(c) for c in corpus] or ([DEFAULT_CORPUS] if Path(DEFAULT_CORPUS).is_dir() else [])
    if workers is None:
        workers = min(os.cpu_count() or 1, 4)
    _check_writable(out)
    bar = _progress(not as_json, "mutants")
    task = None
    if bar is not None:
        bar.start()
        task = bar.add_task("", total=len(mutants))

    def progress(done: int, total: int, what: str) -> None:
        if bar is not None:
            bar.update(task, total=total, completed=done, description=what)

    try:
        matrix = run_matrix(mutants, arches=arches or ARCHES, scopes=scopes or DEFAULT_SCOPES,
                            stop=STOP_ALL if all_kills else STOP_FIRST, out=str(out), random_examples=examples,
                            seed=seed, corpus=corpus_dirs, workers=workers, progress=progress)
    finally:
        if bar is not None:
            bar.stop()
    doc = matrix_json(matrix)
    Path(out).mkdir(parents=True, exist_ok=True)
    (Path(out) / KILL_MATRIX_FILE).write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    if as_json:
        click.echo(json.dumps(doc, indent=2, ensure_ascii=False))
    else:
        print_matrix(matrix, out)
    ctx.exit(1 if matrix.survivors else 0)


def _check_writable(folder: Path) -> None:
    probe = Path(folder)
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir() or not os.access(probe, os.W_OK):
        raise UsageError("cannot write there", where=str(folder), todo="give a writable folder with --out")


def _list_mutants(mutants: list[Any], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps([{"name": m.name, "theme": m.theme, "target": m.target, "origin": m.origin,
                                "seq": m.seq or None, "summary": m.summary, "description": m.description,
                                "functions": m.functions, "change": m.diff_lines(),
                                "equivalent": m.equivalent or None, "source": m.source} for m in mutants],
                              indent=2, ensure_ascii=False))
        return
    from rich.table import Table

    con = _console()
    table = Table(show_edge=False, pad_edge=False, header_style="bold")
    for col in ("mutant", "theme", "target", "origin", "summary"):
        table.add_column(col, overflow="fold", no_wrap=col in ("target",))
    for m in mutants:
        origin = m.origin if not m.seq else f"SEQ {m.seq}"
        table.add_row(m.name, m.theme, m.target, origin, m.summary)
    con.print(table)
    seq = sum(1 for m in mutants if m.seq)
    con.print(f"[dim]{len(mutants)} mutants ({seq} from historical-bugs SEQ items); "
              f"`pfmodel mutants --list --json` shows each change[/dim]")


def matrix_json(matrix: Any) -> dict[str, Any]:
    rows = []
    for r in matrix.results:
        m = r.mutant
        rows.append({
            "mutant": m.name, "theme": m.theme, "target": m.target, "origin": m.origin, "seq": m.seq or None,
            "summary": m.summary, "status": r.status, "killed_by": list(r.order), "stage": r.engine if r.killed else None,
            "first_kill": None if r.first is None else {
                "by": r.first.by, "arch": r.first.arch, "scope": r.first.scope,
                "path": r.first.path if r.first.path >= 0 else None, "detail": r.first.detail},
            "counterexample": r.file or None, "replay": f"pfmodel replay {r.file}" if r.file else None,
            "paths": r.paths, "seconds": round(r.seconds, 3), "equivalent": m.equivalent or None,
        })
    killers = matrix.killers()
    return {
        "format": KILL_MATRIX_FORMAT, "pfmodel": __version__, "kernel": KERNEL_VERSION,
        "arches": list(matrix.arches),
        "scopes": list(matrix.scopes), "complete": matrix.complete, "seconds": round(matrix.seconds, 3),
        "mutants": len(matrix.results), "killed": sum(1 for r in matrix.results if r.killed),
        "survived": [r.mutant.name for r in matrix.survivors],
        "equivalent": [r.mutant.name for r in matrix.results if r.status == "equivalent"],
        "kills_by_property": {k: v for k, v in killers.items()},
        "properties_killing_no_mutant": matrix.idle_properties(),
        "matrix": rows,
    }


def print_matrix(matrix: Any, out: Path | str) -> None:
    from rich.table import Table

    con = _console()
    table = Table(show_edge=False, pad_edge=False, header_style="bold")
    table.add_column("mutant", overflow="fold")
    table.add_column("", no_wrap=True)
    table.add_column("killed by", overflow="fold")
    table.add_column("stage", no_wrap=True)
    table.add_column("counterexample", overflow="fold")
    table.add_column("time", justify="right", no_wrap=True)
    for r in matrix.results:
        mark = {"killed": "[green]killed[/green]", "equivalent": "[yellow]equivalent[/yellow]",
                "survived": "[red bold]SURVIVED[/red bold]"}[r.status]
        by = ", ".join(r.order) if r.order else (r.mutant.equivalent or "-")
        table.add_row(r.mutant.name, mark, by, r.engine if r.killed else "-", r.file or "-", f"{r.seconds:.1f}s")
    con.print(table)
    killed = sum(1 for r in matrix.results if r.killed)
    con.print(f"[dim]{len(matrix.results)} mutants on {', '.join(matrix.arches)}: {killed} killed, "
              f"{len(matrix.survivors)} survived; {matrix.seconds:.1f}s; counterexamples and "
              f"{KILL_MATRIX_FILE} in {out}[/dim]")
    idle = matrix.idle_properties()
    if idle:
        caveat = "" if matrix.complete else " (first kills only; --all-kills for the complete list)"
        con.print(f"[yellow]properties that kill no mutant{caveat}: {', '.join(idle)}[/yellow]")
    if matrix.survivors:
        con.print(f"[red bold]survivors: {', '.join(r.mutant.name for r in matrix.survivors)}[/red bold]")
    else:
        con.print("[green]every mutant killed (or documented as equivalent)[/green]")


def mutant_vacuity(out: str | Path) -> dict[str, Any] | None:
    """The properties that killed no mutant, from the last ``pfmodel mutants`` run that
    wrote its kill matrix into ``out`` (or its ``mutants`` subfolder)."""
    for folder in (Path(out), Path(out) / "mutants", Path("pfmodel-out") / "mutants"):
        path = folder / KILL_MATRIX_FILE
        if path.is_file():
            try:
                doc = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError):
                return None
            return {"file": str(path), "complete": bool(doc.get("complete")),
                    "mutants": doc.get("mutants"), "properties_killing_no_mutant": doc.get("properties_killing_no_mutant", [])}
    return None


def print_mutant_vacuity(out: str | Path) -> None:
    """The check command's vacuity line about mutants (its premise line is the check's own)."""
    info = mutant_vacuity(out)
    con = _console()
    if info is None:
        con.print("[dim]properties that kill no mutant: run `pfmodel mutants` to find out[/dim]")
        return
    idle = info["properties_killing_no_mutant"]
    caveat = "" if info["complete"] else ", first kills only"
    if idle:
        con.print(f"[yellow]properties that kill no mutant (kill matrix {info['file']}{caveat}): "
                  f"{', '.join(idle)}[/yellow]")
    else:
        con.print(f"[dim]every property kills some mutant (kill matrix {info['file']}{caveat})[/dim]")


# --- pfmodel check --engine random / --mutant ------------------------------------------------------

def run_random_check(*, names: Iterable[str], folders: Iterable[str], builtin: bool, arches: Iterable[str],
                     out: str, seed: int, examples: int, mutant_spec: str | None, max_counterexamples: int,
                     as_json: bool) -> int:
    """``pfmodel check --engine random``: returns the exit status."""
    from .explore.random_engine import print_report, random_check, report_json

    arches = tuple(arches)
    mutant = _one_mutant(mutant_spec)
    arch = arches[0] if len(arches) == 1 else None
    report = random_check(seed=seed, examples=examples, names=names, folders=folders, builtin=builtin,
                          arch=arch, mutant=mutant, out=out, max_counterexamples=max_counterexamples)
    if as_json:
        click.echo(json.dumps(report_json(report), indent=2, ensure_ascii=False))
    else:
        print_report(report, _console())
    return report.exit_code


def _one_mutant(spec: str | None) -> Any:
    if not spec:
        return None
    from .mutants import resolve

    found = resolve(spec)
    if len(found) != 1:
        raise UsageError(f"{spec} declares {len(found)} mutants; --mutant needs one",
                         todo="use `pfmodel mutants --mutant FILE.py` to run them all")
    return found[0]


def run_mutant_check(*, names: Iterable[str], folders: Iterable[str], builtin: bool, arches: Iterable[str],
                     scopes: Iterable[str], out: str, mutant_spec: str, as_json: bool,
                     error_codes: str = "hardware") -> int:
    """``pfmodel check --mutant NAME|FILE.py`` (exhaustive): every property and conformance
    judged against the mutant on every path.  Exit status 1 when the mutant is caught."""
    from .mutants.matrix import STOP_ALL, check_mutant, save_kill
    from .properties import HOLDS, load_properties, select

    mutant = _one_mutant(mutant_spec)
    props = select(load_properties(tuple(folders), builtin=builtin), tuple(names))
    if not props:
        raise UsageError("no properties to check", todo="give --properties DIR or drop --no-builtin")
    _check_writable(Path(out))
    result = check_mutant(mutant, props, arches=tuple(arches), scopes=tuple(scopes), stop=STOP_ALL,
                          error_codes=error_codes)
    files = {by: save_kill(result, props, out, error_codes, kill) for by, kill in result.kills.items()}
    rows = []
    for p in props:
        if p.expected != HOLDS:
            continue
        kill = result.kills.get(p.name)
        rows.append((p.name, "violated" if kill else "holds", kill, files.get(p.name, "")))
    conf = result.kills.get("conformance")
    crash = result.kills.get("crash")
    if as_json:
        click.echo(json.dumps({
            "pfmodel": __version__, "kernel": KERNEL_VERSION, "engine": "exhaustive", "mutant": mutant.name,
            "summary": mutant.summary, "target": mutant.target, "killed": result.killed,
            "killed_by": list(result.order), "paths": result.paths, "seconds": round(result.seconds, 3),
            "properties": [{"name": n, "expected": HOLDS, "verdict": v, "as_expected": kill is None,
                            "detail": kill.detail if kill else None, "counterexample": f or None}
                           for n, v, kill, f in rows],
            "conformance": {"violated": conf is not None, "detail": conf.detail if conf else None,
                            "counterexample": files.get("conformance") or None},
            "crash": crash.detail if crash else None,
            "exit_status": 1 if result.killed else 0,
        }, indent=2, ensure_ascii=False))
        return 1 if result.killed else 0
    from rich.table import Table

    con = _console()
    con.print(f"[bold]mutant {mutant.name}[/bold] ({mutant.target}): {mutant.summary}")
    table = Table(show_edge=False, pad_edge=False, header_style="bold")
    for col in ("property", "expected", "verdict", "", "counterexample"):
        table.add_column(col, overflow="fold")
    for name, verdict, kill, f in rows:
        mark = "[green]ok[/green]" if kill is None else "[red bold]KILLS THE MUTANT[/red bold]"
        table.add_row(name, HOLDS, verdict, mark, f or "-")
    con.print(table)
    if conf is not None:
        con.print(f"[red bold]conformance: {conf.detail}[/red bold] ({conf.arch}/{conf.scope} path {conf.path})")
        if files.get("conformance"):
            con.print(f"    pfmodel replay {files['conformance']}")
    else:
        con.print("conformance: the mutated system agrees on every path")
    if crash is not None:
        con.print(f"[red bold]the mutated simulator crashed: {crash.detail}[/red bold]")
    for name, _verdict, kill, f in rows:
        if kill is not None and f:
            con.print(f"{name}: pfmodel replay {f}")
    con.print(f"[dim]{result.paths} paths; {result.seconds:.1f}s[/dim]")
    if result.killed:
        con.print(f"[red bold]the mutant is killed by {', '.join(result.order)}[/red bold]")
    else:
        con.print("[yellow]the mutant survives: no property and no conformance step tells it from the "
                  "original on these paths[/yellow]")
    return 1 if result.killed else 0


__all__ = ["replay_cmd", "mutants_cmd", "run_random_check", "run_mutant_check", "mutant_vacuity",
           "print_mutant_vacuity", "matrix_json", "print_matrix"]
