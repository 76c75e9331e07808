"""The README's "What only the SMT engine can show" states what the commands really print."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

from pfmodel.cli import cli

ROOT = Path(__file__).resolve().parents[2]

# Each command shown in the README, and the lines of its output that carry the fact.
FACTS = {
    'pfmodel find --mode user --trace "expand_stack → false" --where "address < sp" --maximize "sp - address"': [
        "maximum of sp - address = 0x10100 (65792)",
        "maximum of sp - address = 0x10080 (65664)",
        "  the simulator agrees",
        "(address and sp range over every 64-bit value (canonical addresses only",
        "(address and sp range over every 32-bit value; every other input over its scope's domain)",
    ],
    "pfmodel check --engine smt --property kernel_address_lockless --all-error-codes": [
        "kernel_address_lockless │ holds    │ holds       │ ok",
        "every verdict as expected",
    ],
}


def _block(command: str) -> str:
    text = (ROOT / "README.md").read_text()
    return text.split(f"$ {command}\n", 1)[1].split("```", 1)[0]


@pytest.mark.slow
@pytest.mark.parametrize("command", sorted(FACTS))
def test_the_readme_facts_are_what_the_command_prints(command, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    shown = _block(command)
    res = CliRunner().invoke(cli, shlex.split(command)[1:])
    assert res.exit_code == 0, res.output
    for fact in FACTS[command]:
        assert fact in shown, f"the README no longer shows {fact!r}"
        assert fact in res.output, f"the command no longer prints {fact!r}"
