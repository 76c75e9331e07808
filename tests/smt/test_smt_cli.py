"""``pfmodel check --engine smt`` and ``--engine all`` on the command line: reports and exit status."""

from __future__ import annotations

import json

from click.testing import CliRunner

from pfmodel.cli import cli
from pfmodel.model.z3ops import Z3Ops


def _check(*args: str):
    return CliRunner().invoke(cli, ["check", *args])


def test_smt_engine_proves_a_property_on_the_command_line(tmp_path):
    res = _check("--engine", "smt", "--arch", "i386-pae", "--scope", "hooks", "--property",
                 "kernel_address_lockless", "--workers", "1", "--out", str(tmp_path))
    assert res.exit_code == 0, res.output
    assert "kernel_address_lockless" in res.output and "holds" in res.output
    assert "every 32-bit value" in res.output


def test_smt_engine_json_report(tmp_path):
    res = _check("--engine", "smt", "--arch", "x86_64", "--scope", "handler", "--property", "naive_access_error_sigsegv",
                 "--property", "outcome_total", "--workers", "1", "--json", "--out", str(tmp_path))
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert data["engine"] == "smt" and data["smt_timeout_ms"] == 10000
    verdicts = {p["name"]: p["verdict"] for p in data["properties"]}
    assert verdicts == {"naive_access_error_sigsegv": "violated", "outcome_total": "holds"}
    cx = next(p for p in data["properties"] if p["name"] == "naive_access_error_sigsegv")["counterexample"]
    assert cx["simulator"] == "agrees" and cx["file"].endswith(".smt.json")
    assert data["conformance"]["paths_checked"] == data["paths"] > 0


def test_a_bad_time_limit_is_a_usage_error():
    res = _check("--engine", "smt", "--smt-timeout", "0")
    assert res.exit_code == 2


def test_engine_all_cross_checks_paths_and_verdicts(tmp_path):
    res = _check("--engine", "all", "--arch", "i386-pae", "--scope", "alloc", "--property", "outcome_total",
                 "--workers", "1", "--json", "--out", str(tmp_path))
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    (cc,) = data["cross_check"]
    assert cc["equal"] and cc["partition"]["proved"]
    assert cc["signatures"] > 0 and cc["exhaustive_paths"] >= cc["smt_paths"]
    assert data["verdict_disagreements"] == [] and data["disagreements"] == 0
    assert data["exhaustive"]["properties"][0]["verdict"] == data["smt"]["properties"][0]["verdict"] == "holds"


def test_engine_all_reports_a_disagreement_between_the_engines(monkeypatch, tmp_path):
    """A z3 interpretation with a signed comparison: the exhaustive engine is unaffected, the
    path sets differ, and the run fails."""
    monkeypatch.setattr(Z3Ops, "uge", lambda self, a, b: self._cmp(a, b, lambda p, q: p >= q,
                                                                    lambda x, y: x >= y))
    res = _check("--engine", "all", "--arch", "x86_64", "--scope", "handler", "--property", "kernel_address_lockless",
                 "--workers", "1", "--no-conformance", "--out", str(tmp_path))
    assert res.exit_code == 1, res.output
    assert "path sets DIFFER" in res.output
