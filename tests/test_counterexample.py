"""Counterexample files and minimization: the format, its determinism, replay (and its
failures), minimization to a fixed point, path-distinct counterexamples, and the
committed counterexamples."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from pfmodel import KERNEL_VERSION
from pfmodel.cli import cli
from pfmodel.counterexample import (
    FORMAT,
    build,
    collect,
    dumps,
    load,
    loads,
    minimized_property_counterexample,
    property_fails,
    property_violation,
    replay_path,
    save,
)
from pfmodel.minimize import cost, minimize
from pfmodel.properties import VIOLATED, load_properties
from pfmodel.scenario import load_scenario, scenario_from_spec
from pfmodel.sim.spec import AccessSpec, EntrySpec, EnvSpec, MachineSpec, VmaSpec
from pfmodel.sim.constants import VM_MAYREAD, VM_MAYWRITE, VM_READ

ROOT = Path(__file__).resolve().parents[1]
CX = ROOT / "counterexamples"
PROPS = {p.name: p for p in load_properties()}


def invoke(*args):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def _t01():
    return load_scenario(CX / "t01a_copy_to_user_readonly_vma.json").to_spec()


def _cluttered() -> MachineSpec:
    """A naive_access_error_sigsegv violation buried in irrelevant detail."""
    spec = _t01()
    spec.vmas.append(VmaSpec(start=0x7F0000000000, end=0x7F0000010000, flags=VM_READ | VM_MAYREAD, name="junk"))
    spec.entries.append(EntrySpec(address=0x7F0000001000, value=0x8000000012345067))
    spec.env = EnvSpec(fault=["MAJOR", "0", "RETRY"], alloc_fail=["pud"], overcommit=False, reuse=False)
    spec.task.rlimit_stack = 1 << 20
    spec.vmas[0].flags |= VM_MAYWRITE
    return spec


# --- minimization ---------------------------------------------------------------------------

def test_minimize_drops_what_does_not_matter_and_keeps_the_violation():
    prop = PROPS["naive_access_error_sigsegv"]
    fails = property_fails(prop)
    start = scenario_from_spec(_cluttered()).to_spec()
    assert fails(start)
    small, stats = minimize(start, fails)
    assert fails(small) and not stats.budget_hit
    assert cost(small) < cost(start)
    assert len(small.vmas) == 1 and small.entries == []                 # fewest VMAs and entries
    assert small.env == EnvSpec() and small.task.rlimit_stack == 8 << 20  # defaults where they do not matter
    assert small.access.address % 0x1000 == 0 and bin(small.access.address).count("1") == 1  # round
    assert small.access.address >= small.kernel.mmap_min_addr            # never page 0 unless it started there


@pytest.mark.parametrize("name, prop", [
    ("t01a_copy_to_user_readonly_vma", "naive_access_error_sigsegv"),
    ("t17_reserved_bit_user_oops", "naive_user_fault_never_oops"),
    ("t16_implicit_supervisor_access_smap_oops", "naive_user_fault_never_oops"),
    ("t04_exec_from_noexec_vma_two_faults", "naive_exec_from_non_exec_vma_sigsegv"),
])
def test_minimizing_twice_changes_nothing(name, prop):
    fails = property_fails(PROPS[prop])
    spec = scenario_from_spec(load_scenario(CX / f"{name}.json").to_spec()).to_spec()
    once, _ = minimize(spec, fails)
    twice, stats = minimize(once, fails)
    assert twice == once and stats.accepted == 0


def test_minimize_refuses_a_start_that_does_not_fail():
    with pytest.raises(ValueError):
        minimize(_t01(), lambda spec: False)


# --- the file ---------------------------------------------------------------------------------

def test_the_same_violation_gives_the_same_file_byte_for_byte(tmp_path):
    prop = PROPS["naive_access_error_sigsegv"]
    a, _ = minimized_property_counterexample(prop, _cluttered())
    b, _ = minimized_property_counterexample(prop, _cluttered())
    pa, pb = save(a, tmp_path / "a"), save(b, tmp_path / "b")
    assert pa.name == pb.name and pa.name.startswith("naive_access_error_sigsegv-")
    assert pa.read_bytes() == pb.read_bytes()
    # and a save of what was loaded is the same bytes again
    assert dumps(load(pa)).encode() == pa.read_bytes()


def test_the_file_records_what_the_design_asks_for(tmp_path):
    prop = PROPS["naive_access_error_sigsegv"]
    cx, _ = minimized_property_counterexample(prop, _t01())
    doc = json.loads(save(cx, tmp_path).read_text())
    assert doc["format"] == FORMAT and doc["kernel"] == KERNEL_VERSION and doc["pfmodel"]
    assert doc["violates"]["property"] == prop.name and doc["violates"]["expected_verdict"] == VIOLATED
    assert doc["outcome"]["kind"] in ("fixup", "oops") and doc["faults"] == len(doc["trace"])
    assert "access_error → true" in doc["trace"][0]
    assert doc["scenario"]["format"].startswith("pfmodel-scenario/")
    assert prop.statement in doc["explanation"] and "ends" in doc["explanation"]


def test_a_different_violation_of_the_same_scenario_is_a_different_file():
    spec = _t01()
    a = build(spec, property_violation(PROPS["naive_access_error_sigsegv"]))
    b = build(spec, property_violation(PROPS["user_access_error_sigsegv_accerr"]))
    assert a.filename != b.filename


# --- replay ----------------------------------------------------------------------------------

def _saved(tmp_path):
    cx, _ = minimized_property_counterexample(PROPS["naive_access_error_sigsegv"], _t01())
    return save(cx, tmp_path)


def test_replay_of_a_fresh_file_reproduces(tmp_path):
    r = replay_path(_saved(tmp_path))
    assert r.ok and r.kind == "counterexample"


def test_replay_fails_with_a_diff_when_the_trace_changed(tmp_path):
    path = _saved(tmp_path)
    doc = json.loads(path.read_text())
    doc["trace"][0][-1] = "die_notifier_stop → true"
    doc["outcome"] = {"kind": "sigsegv", "si_code": "SEGV_ACCERR"}
    path.write_text(json.dumps(doc))
    r = replay_path(path)
    assert not r.ok
    assert any(p.startswith("outcome: recorded sigsegv") for p in r.problems)
    assert any(line.startswith("-fault 1: die_notifier_stop → true") for line in r.diff)
    cli = invoke("replay", str(path))
    assert cli.exit_code == 1 and "DOES NOT REPRODUCE" in cli.output and "die_notifier_stop" in cli.output


def test_replay_fails_when_the_property_no_longer_fails(tmp_path):
    path = _saved(tmp_path)
    doc = json.loads(path.read_text())
    doc["violates"]["property"] = "mmap_sem_released"
    path.write_text(json.dumps(doc))
    assert any("no longer violated" in p for p in replay_path(path).problems)


def test_replay_fails_for_another_kernel_version(tmp_path):
    path = _saved(tmp_path)
    doc = json.loads(path.read_text())
    doc["kernel"] = "5.10"
    path.write_text(json.dumps(doc))
    assert any("kernel 5.10" in p for p in replay_path(path).problems)


def test_replay_of_a_plain_scenario_checks_its_expectation(tmp_path):
    scn = json.loads((CX / "t03c_user_write_readonly_vma.json").read_text())
    assert replay_path(CX / "t03c_user_write_readonly_vma.json").ok
    scn["expect"]["outcome"] = {"kind": "oom"}
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(scn))
    r = replay_path(bad)
    assert not r.ok and r.kind == "scenario"


def test_replay_command_takes_folders_recursively(tmp_path):
    _saved(tmp_path / "deep" / "er")
    r = invoke("replay", str(tmp_path), "--json")
    doc = json.loads(r.output)
    assert r.exit_code == 0 and len(doc) == 1 and doc[0]["ok"]


def test_replay_of_a_missing_path_is_exit_2():
    r = CliRunner().invoke(cli, ["replay", "/nonexistent/cx"])
    assert r.exit_code == 2 and "no such file or folder" in r.output


def test_a_malformed_counterexample_is_exit_2(tmp_path):
    bad = tmp_path / "cx.json"
    bad.write_text(json.dumps({"format": FORMAT, "outcome": {}}))
    r = CliRunner().invoke(cli, ["replay", str(bad)])
    assert r.exit_code == 2 and "missing field" in r.output
    with pytest.raises(Exception):
        loads("{", "x")


# --- several counterexamples, distinct by path --------------------------------------------------

def test_max_counterexamples_gives_distinct_paths_that_all_replay(tmp_path):
    r = invoke("check", "--no-conformance", "--scope", "handler", "--arch", "x86_64", "--property",
               "naive_access_error_sigsegv", "--max-counterexamples", "3", "--out", str(tmp_path))
    assert r.exit_code == 0, r.output
    files = sorted(tmp_path.glob("naive_access_error_sigsegv-*.json"))
    assert len(files) == 3
    traces = {json.dumps(load(f).trace) for f in files}
    outcomes = {json.dumps(load(f).outcome) for f in files}
    assert len(traces) == 3 and len(outcomes) >= 2          # distinct by path; the endings first
    assert all(replay_path(f).ok for f in files)


# --- the committed counterexamples ------------------------------------------------------------------

COMMITTED = collect([CX])


@pytest.mark.parametrize("path", COMMITTED, ids=[str(p.relative_to(CX)) for p in COMMITTED])
def test_every_committed_file_replays(path):
    r = replay_path(path)
    assert r.ok, f"{path}: {r.problems} {r.diff}"


def test_every_property_expected_to_be_violated_has_an_explained_minimized_counterexample():
    files = [load(p) for p in collect([CX / "violations"])]
    covered = {cx.violation.property_name for cx in files if cx.violation.kind == "property"}
    expected = {p.name for p in PROPS.values() if p.expected == VIOLATED}
    assert expected <= covered, f"missing: {sorted(expected - covered)}"
    for cx in files:
        assert cx.explanation and len(cx.explanation) > 80
        fails = property_fails(PROPS[cx.violation.property_name])
        spec = cx.scenario.to_spec()
        if cx.violation.model is None:  # (one judged on the model's layout is replayed on the model)
            assert fails(spec)
            again, _stats = minimize(spec, fails)
            assert again == spec, f"{cx.name} is not minimal"
