"""The command line: ``pfmodel run``, ``pfmodel explain`` (and more commands added later).

Exit status (DESIGN.md): 0 every verdict as expected, 1 some expectation not met,
2 bad input or usage (a message on stderr, no traceback, nothing written),
3 inconclusive.  Every ``PfmodelError`` raised by a command becomes exit status 2
in ``PfmodelGroup.invoke``, so a new command only has to raise it.

To add a command, write a small function and decorate it with ``@cli.command()``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from . import __version__
from .errors import PfmodelError, UsageError

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_INCONCLUSIVE = 3


class PfmodelGroup(click.Group):
    """A click group that turns every PfmodelError into a message on stderr and exit 2."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except PfmodelError as e:
            click.echo(f"pfmodel: {e.message}", err=True)
            ctx.exit(EXIT_BAD_INPUT)


@click.group(cls=PfmodelGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="pfmodel")
def cli() -> None:
    """pfmodel: a model checker and state-space explorer for the Linux x86 page-fault handler."""


def main(argv: list[str] | None = None) -> None:
    """The console-script entry point (``pfmodel``) and ``python -m pfmodel``."""
    cli.main(args=argv, prog_name="pfmodel")


# --- helpers shared by commands ----------------------------------------------------------

def collect_scenario_paths(paths: tuple[Path, ...]) -> list[Path]:
    """Files as given; for a folder, every ``*.json`` in it (not recursive), sorted by name."""
    out: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.glob("*.json") if p.is_file())
            if not found:
                raise UsageError("the folder has no *.json scenario files", where=str(path),
                                 todo="give a folder of scenario files, or the files themselves")
            out.extend(found)
        elif path.exists():
            out.append(path)
        else:
            raise UsageError("no such file or folder", where=str(path), todo="check the path")
    return out


def load_all(paths: tuple[Path, ...]) -> list:
    """Load and validate every scenario before anything runs, so bad input runs nothing."""
    from .scenario import load_scenario

    return [load_scenario(p) for p in collect_scenario_paths(paths)]


def _console():
    """Rich output on stdout; when piped, 132 columns rather than rich's 80, so tables do not fold."""
    from rich.console import Console

    con = Console(highlight=False, soft_wrap=False)
    if not con.is_terminal:
        con.width = max(con.width, 132)
    return con


# --- pfmodel run --------------------------------------------------------------------------

@cli.command("run")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path), metavar="FILE|DIR...")
@click.option("--json", "as_json", is_flag=True, help="Print the whole run as JSON (a list for several scenarios).")
@click.pass_context
def run_cmd(ctx: click.Context, paths: tuple[Path, ...], as_json: bool) -> None:
    """Run scenarios on the simulator and check their expectations.

    For a folder, every *.json in it runs, in name order, and a table is printed.
    Exit status 0 when every expectation holds, 1 when one does not.
    """
    from .scenario import check_expectations, fingerprint, run_scenario

    scenarios = load_all(paths)
    results = []
    for scn in scenarios:
        run = run_scenario(scn)
        results.append((scn, run, check_expectations(scn, run)))
    single = len(paths) == 1 and not paths[0].is_dir()

    if as_json:
        docs = [_run_json(scn, run, problems, fingerprint(scn)) for scn, run, problems in results]
        click.echo(json.dumps(docs[0] if single else docs, indent=2, ensure_ascii=False))
    elif single:
        _print_one(*results[0])
    else:
        _print_table(results)
    ctx.exit(EXIT_FAILED if any(problems for _, _, problems in results) else EXIT_OK)


def _run_json(scn, run, problems: list[str], fp: str) -> dict[str, Any]:
    out: dict[str, Any] = {"name": scn.name, "source": scn.source, "fingerprint": fp}
    out["expect"] = scn.expect.to_json() or None
    out["ok"] = not problems
    out["problems"] = problems
    out.update(run.to_json())
    return out


def _expected_text(scn) -> str:
    from .scenario import outcome_text

    if scn.expect.is_empty():
        return "-"
    return outcome_text(scn.expect.outcome) if scn.expect.outcome else "(see expect)"


def _print_one(scn, run, problems: list[str]) -> None:
    from .scenario import error_code_text, outcome_text

    con = _console()
    con.print(f"[bold]{scn.name}[/bold]  [dim]{scn.source}[/dim]")
    con.print(f"  outcome   {outcome_text(run.outcome)}")
    if not scn.expect.is_empty():
        verdict = "[green]as expected[/green]" if not problems else "[red bold]NOT as expected[/red bold]"
        con.print(f"  expected  {_expected_text(scn)}   {verdict}")
    for i, f in enumerate(run.faults, 1):
        label = "faults" if i == 1 else ""
        con.print(f"  {label:<9} {i}: {f.address:#x} error code {error_code_text(f.error_code)} "
                  f"-> {outcome_text(f.outcome)}")
    for p in problems:
        con.print(f"  [red]- {p}[/red]")


def _print_table(results) -> None:
    from rich.table import Table

    from .scenario import outcome_text

    con = _console()
    table = Table(show_edge=False, pad_edge=False, header_style="bold")
    table.add_column("name", overflow="fold")
    table.add_column("outcome", no_wrap=True)
    table.add_column("expected", no_wrap=True)
    table.add_column("ok", no_wrap=True)
    failed = 0
    for scn, run, problems in results:
        if scn.expect.is_empty():
            ok = "-"
        elif problems:
            ok, failed = "[red bold]FAIL[/red bold]", failed + 1
        else:
            ok = "[green]ok[/green]"
        table.add_row(scn.name, outcome_text(run.outcome), _expected_text(scn), ok)
    con.print(table)
    for scn, _run, problems in results:
        for p in problems:
            con.print(f"[red]{scn.source}: {p}[/red]")
    checked = sum(1 for scn, _, _ in results if not scn.expect.is_empty())
    summary = f"{len(results)} scenarios, {checked - failed} of {checked} with expectations as expected"
    con.print(summary if not failed else f"[red bold]{summary}[/red bold]")


# --- pfmodel explain ----------------------------------------------------------------------

@cli.command("explain")
@click.argument("path", type=click.Path(path_type=Path), metavar="FILE")
@click.option("--all", "show_all", is_flag=True, help="Also show the routine checks that answered no.")
@click.pass_context
def explain_cmd(ctx: click.Context, path: Path, show_all: bool) -> None:
    """Tell a scenario's run step by step: each decision, why, and what it changed.

    Exit status 1 when the run does not meet the scenario's expectations.
    """
    from .explain import explain_lines
    from .scenario import check_expectations, load_scenario, run_scenario

    scn = load_scenario(path)
    run = run_scenario(scn)
    click.echo("\n".join(explain_lines(scn, run, show_all=show_all)))
    ctx.exit(EXIT_FAILED if check_expectations(scn, run) else EXIT_OK)


# --- pfmodel oracle (the body lives in pfmodel/oracle/command.py) --------------------------

from .oracle.command import oracle_cmd  # noqa: E402

cli.add_command(oracle_cmd)

# --- pfmodel check, graph, table (the bodies live in pfmodel/explore/commands.py) ----------

from .explore.commands import check_cmd, graph_cmd, table_cmd  # noqa: E402

cli.add_command(check_cmd)
cli.add_command(graph_cmd)
cli.add_command(table_cmd)

# --- pfmodel replay, mutants (the bodies live in pfmodel/cxcli.py) --------------------------

from .cxcli import mutants_cmd, replay_cmd  # noqa: E402

cli.add_command(replay_cmd)
cli.add_command(mutants_cmd)

# --- pfmodel find (the body lives in pfmodel/explore/find.py) --------------------------------

from .explore.find import find_cmd  # noqa: E402

cli.add_command(find_cmd)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
