"""``pfmodel oracle``: check the simulator against the Linux kernel the user is running.

Exit status: 0 when every difference is an expected one (the divergence table explains
it), 1 when any difference is not or a case could not be measured, 2 on bad input.
"""

from __future__ import annotations

import json

import click

SYMBOL = {"agree": "=", "expected": "~", "differ": "X", "n/a": "."}
STYLE = {"agree": "green", "expected": "yellow", "differ": "red bold", "skipped": "dim", "error": "red bold"}
SHORT = {"outcome": "outcome", "signal_err": "err", "hw_codes": "hw", "faults": "flt",
         "stack": "stack", "page": "page", "mmap_lock": "lock"}


@click.command("oracle")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON on stdout.")
@click.option("--cases", "patterns", multiple=True, metavar="PATTERN",
              help="Run only the cases whose names match (shell wildcards; a plain word is a prefix). "
                   "May be given several times.")
@click.option("--list", "list_only", is_flag=True, help="List the case names and exit.")
@click.option("--no-trace", is_flag=True, help="Do not use the tracefs channels even as root.")
@click.option("--full", is_flag=True, help="With --json: add each case's scenario, prediction and observation.")
@click.option("--probe", type=click.Choice(["auto", "c", "ctypes"]), default="auto", show_default=True,
              help="The probe: the compiled C helper, or the pure-ctypes fallback (auto: C when a "
                   "compiler exists).")
@click.pass_context
def oracle_cmd(ctx: click.Context, as_json: bool, patterns: tuple[str, ...], list_only: bool,
               no_trace: bool, full: bool, probe: str) -> None:
    """Compare pfmodel's simulator with the running Linux kernel.

    Each case induces one page fault in a fresh probe process on this machine
    (x86-64 Linux), builds the Linux 4.4 scenario for it, runs the simulator, and
    compares outcome, error codes, fault counts, stack growth, the PTE and (as root,
    through tracefs) the raw hardware error codes and mmap_lock use.  Differences
    that the kernel's evolution since 4.4 explains are listed as expected.
    """
    from .cases import all_cases, select
    from .machine import detect

    machine = detect()
    cases = select(all_cases(machine.rlimit_stack), list(patterns))
    if list_only:
        for case in cases:
            click.echo(case.name)
        ctx.exit(0)
    report = _run_with_progress(cases, machine, tracing=not no_trace, probe=probe)
    if as_json:
        click.echo(json.dumps(report.to_json(full=full), indent=2))
    else:
        print_report(report)
    ctx.exit(report.exit_status)


def _run_with_progress(cases, machine, tracing: bool, probe: str):
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from .runner import run_oracle

    console = Console(stderr=True)
    with Progress(TextColumn("oracle"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TextColumn("{task.description}"), console=console, transient=True) as progress:
        task = progress.add_task("", total=len(cases))

        def on_case(index: int, total: int, case) -> None:
            progress.update(task, total=total, completed=index, description=case.name)

        report = run_oracle(cases, tracing=tracing, machine=machine, on_case=on_case, probe=probe)
        progress.update(task, completed=progress.tasks[0].total)
    return report


def print_report(report) -> None:
    from rich.console import Console
    from rich.table import Table

    from . import divergence as div
    from .compare import CHANNELS

    import sys

    # a pipe or a file gets the whole table unwrapped; a terminal keeps its own width
    con = Console(highlight=False, soft_wrap=False, width=None if sys.stdout.isatty() else 220)
    m = report.machine
    flags = " ".join(f"{k}" for k, v in sorted(m.cpu_flags.items()) if v) or "-"
    con.print(f"[bold]kernel[/bold] {m.kernel_release} {m.arch}   [bold]cpu[/bold] {flags}   "
              f"[bold]euid[/bold] {m.euid}")
    con.print(f"[bold]settings[/bold] thp={m.thp} swap={','.join(m.swap) or 'none'} "
              f"RLIMIT_STACK={m.rlimit_stack if m.rlimit_stack is not None else 'unlimited'} "
              f"vsyscall={m.vsyscall} mmap_min_addr={m.mmap_min_addr} overcommit={m.overcommit_memory} "
              f"pti={'on' if m.pti else 'off'} tmpdir={m.tmpdir} ({m.tmpdir_fs})")
    con.print(f"[bold]probe[/bold] {report.probe}   [bold]tracing[/bold] {report.tracing}")

    table = Table(show_edge=False, pad_edge=False, header_style="bold")
    table.add_column("case", overflow="fold")
    table.add_column("pfmodel (4.4)", overflow="fold")
    table.add_column("kernel", overflow="fold")
    for ch in CHANNELS[1:]:
        table.add_column(SHORT[ch], justify="center")
    table.add_column("status")
    table.add_column("explained by", overflow="fold")
    for r in report.results:
        if r.status in ("skipped", "error"):
            continue
        cells = []
        for ch in CHANNELS[1:]:
            c = r.channel(ch)
            cells.append(f"[{STYLE.get(c.verdict, '')}]{SYMBOL[c.verdict]}[/]" if c.verdict != "n/a" else ".")
        out = r.channel("outcome")
        table.add_row(r.case.name, out.predicted or "-", out.observed or "-", *cells,
                      f"[{STYLE[r.status]}]{r.status}[/]", ", ".join(r.divergences))
    con.print(table)
    con.print("[dim]channels: = agree, ~ expected divergence, X unexplained difference, . not observable[/dim]")

    for r in report.results:
        if r.status == "differ":
            for c in r.channels:
                if c.verdict == "differ":
                    con.print(f"[red]{r.case.name}: {c.channel}: pfmodel {c.predicted!r}, kernel {c.observed!r}[/red]")
        elif r.status == "error":
            con.print(f"[red]{r.case.name}: error: {r.reason}[/red]")
    skipped = [r for r in report.results if r.status == "skipped"]
    if skipped:
        reasons: dict[str, list[str]] = {}
        for r in skipped:
            reasons.setdefault(r.reason, []).append(r.case.name)
        for reason, names in sorted(reasons.items()):
            con.print(f"[dim]skipped {len(names)}: {reason} ({', '.join(names[:4])}{' ...' if len(names) > 4 else ''})[/dim]")
    for key in report.used_rows:
        row = div.BY_KEY[key]
        con.print(f"[yellow]~ {key}[/yellow] (since {row.since}): {row.change}")
    for note in report.notes:
        con.print(f"[dim]note: {note}[/dim]")
    summary = (f"{len(report.results)} cases: {report.count('agree')} agree, {report.count('expected')} "
               f"expected divergence, {report.count('differ')} unexplained, {report.count('error')} errors, "
               f"{report.count('skipped')} skipped")
    con.print(f"[red bold]{summary}[/red bold]" if report.failed else f"[green]{summary}[/green]")
