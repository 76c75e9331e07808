"""`pfmodel check` end to end: the table, JSON, exit statuses, counterexample files."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from pfmodel.cli import cli


def invoke(*args):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_check_json_report_and_counterexamples_that_replay(tmp_path):
    out = tmp_path / "out"
    r = invoke("check", "--no-conformance", "--scope", "handler", "--scope", "stack", "--arch", "x86_64",
               "--out", str(out), "--json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    assert doc["ok"] is True and doc["engine"] == "exhaustive" and doc["paths"] > 1000
    by_name = {p["name"]: p for p in doc["properties"]}
    naive = by_name["naive_access_error_sigsegv"]
    assert naive["verdict"] == "violated" and naive["as_expected"]
    assert naive["counterexample"]["replay"] == f"pfmodel replay {naive['counterexample']['file']}"
    assert by_name["mmap_sem_released"]["verdict"] == "holds"
    assert by_name["mmap_sem_released"]["counterexample"] is None
    files = sorted(out.glob("*.json"))
    assert files, "expected-violated properties must leave counterexamples"
    for f in files:
        replay = invoke("replay", str(f))
        assert replay.exit_code == 0, replay.output   # every recorded field holds on replay


def test_check_table_output_names_every_property(tmp_path):
    r = invoke("check", "--no-conformance", "--scope", "stack", "--out", str(tmp_path / "o"), "--property",
               "stack_growth_bounded", "--property", "mmap_sem_released")
    assert r.exit_code == 0, r.output
    assert not (tmp_path / "o").exists()          # nothing violated, nothing written
    assert "stack_growth_bounded" in r.output and "mmap_sem_released" in r.output
    assert "every verdict as expected" in r.output


def test_an_unwritable_out_folder_is_exit_2_before_any_work():
    r = CliRunner().invoke(cli, ["check", "--out", "/dev/null/x"])
    assert r.exit_code == 2 and "cannot write" in r.output


def test_unknown_property_is_exit_2():
    r = CliRunner().invoke(cli, ["check", "--property", "no_such_thing"])
    assert r.exit_code == 2 and "unknown property" in r.output


def test_unregistered_engines_are_refused_as_not_available():
    from pfmodel.errors import UsageError
    from pfmodel.explore.check import ENGINES, available_engines, check

    missing = [e for e in ENGINES if e not in available_engines()]
    if not missing:
        pytest.skip("every engine is registered")
    for engine in missing:
        with pytest.raises(UsageError) as e:
            check(engine=engine, conformance=False)
        assert "not available yet" in e.value.message


def test_unknown_engine_is_exit_2():
    r = CliRunner().invoke(cli, ["check", "--engine", "quantum"])
    assert r.exit_code == 2 and "unknown engine" in r.output


def test_a_violated_property_exits_1_and_writes_its_counterexample(tmp_path):
    props = tmp_path / "props"
    props.mkdir()
    (props / "p.py").write_text(
        "from pfmodel.properties import prop\n"
        "@prop(name='no_fixups', statement='Nothing is fixed up.', rationale='wrong on purpose')\n"
        "def _(r):\n    return r.outcome.kind != 'fixup'\n")
    out = tmp_path / "out"
    r = invoke("check", "--no-conformance", "--no-builtin", "--properties", str(props), "--scope", "handler",
               "--arch", "i386-pae", "--out", str(out))
    assert r.exit_code == 1
    assert "NOT expected" in r.output
    (cex,) = out.glob("no_fixups-*.json")       # a counterexample file, named by its fingerprint
    doc = json.loads(cex.read_text())
    assert doc["scenario"]["arch"] == "i386-pae" and doc["outcome"]["kind"] == "fixup"
    assert invoke("replay", "--properties", str(props), str(cex)).exit_code == 0


def test_check_list_prints_every_property():
    r = invoke("check", "--list", "--json")
    assert r.exit_code == 0
    names = {p["name"] for p in json.loads(r.output)}
    assert {"mmap_sem_released", "naive_access_error_sigsegv", "handled_makes_progress"} <= names
