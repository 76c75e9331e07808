"""Mutants: how they are built and applied, the mutant-file format, and the kill matrix.

The default run checks a representative subset end to end (one mutant per theme, each
killed, its counterexample replaying on the mutant and not on the original); the full
matrix (every built-in mutant killed) is marked slow.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from pfmodel.cli import cli
from pfmodel.counterexample import load, replay_path
from pfmodel.mutants import BUILTIN, Edit, Mutant, MutantError, load_mutant_file, resolve, seq_mutants
from pfmodel.mutants.matrix import STOP_FIRST, check_mutant, run_matrix, save_kill
from pfmodel.properties import load_properties
from pfmodel.runview import observe, sim_evaluate
from pfmodel.scenario import load_scenario
from pfmodel.sim import fault
from pfmodel.sim.run import run

ROOT = Path(__file__).resolve().parents[1]
CX = ROOT / "counterexamples"
EXAMPLE = ROOT / "examples" / "mutant_example.py"
PROPS = {p.name: p for p in load_properties()}


def invoke(*args):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def _signature(spec, overrides=None):
    obs = observe(spec, overrides)
    return (str(obs.run.outcome), [f.trace.to_json() for f in obs.run.faults], obs.run.final)


# --- the catalogue ------------------------------------------------------------------------

def test_at_least_25_mutants_and_every_modelled_seq_item_has_one():
    assert len(BUILTIN) >= 25
    items = {m.seq for m in seq_mutants()}
    assert {"1.2", "1.3", "1.4", "2.3", "2.4", "3.2", "6.1", "8.1", "8.2", "8.4"} <= items
    assert any(m.target == "model" for m in BUILTIN.values())
    assert all(m.summary and m.description and m.theme for m in BUILTIN.values())


@pytest.mark.parametrize("name", sorted(BUILTIN))
def test_every_builtin_mutant_builds_and_restores_the_originals(name):
    mutant = BUILTIN[name]
    before_sim = {n: getattr(fault, n) for n in ("__do_page_fault", "access_error", "mm_fault_error")}
    from pfmodel.model.actions import ACTIONS
    before_model = dict(ACTIONS)
    with mutant.applied():
        for n in mutant.functions:
            if not n.startswith("model:"):
                from pfmodel.sim.run import KERNEL_FUNCTIONS
                module, attr = KERNEL_FUNCTIONS[n]
                assert getattr(getattr(module, attr), "__pfmodel_mutant__", None) == name
    assert {n: getattr(fault, n) for n in before_sim} == before_sim
    assert dict(ACTIONS) == before_model


def test_a_simulator_mutant_changes_a_run_only_while_applied():
    spec = load_scenario(CX / "t03c_user_write_readonly_vma.json").to_spec()
    mutant = BUILTIN["access_error_write_rule_dropped"]
    original = run(spec).outcome
    with mutant.applied():
        mutated = run(spec).outcome
    assert original.kind == "sigsegv" and mutated.kind == "handled"
    assert run(spec).outcome == original


def test_an_edit_that_no_longer_matches_is_an_error():
    stale = Mutant("stale", "s", "d", (Edit("access_error", "this text is not in access_error", "x"),))
    with pytest.raises(MutantError) as e:
        stale.sim_overrides()
    assert "occurs 0 times" in e.value.message


def test_an_unknown_kernel_name_is_an_error():
    with pytest.raises(MutantError):
        Mutant("bad", "s", "d", (Edit("no_such_function", "a", "b"),)).sim_overrides()


# --- mutant files ----------------------------------------------------------------------------

def test_the_example_mutant_file_loads_and_replaces_access_error():
    (mutant,) = load_mutant_file(EXAMPLE)
    assert mutant.name == "fetch_always_allowed" and mutant.functions == ["access_error"]
    assert mutant.summary.startswith("access_error lets every instruction fetch")
    spec = load_scenario(CX / "t04_exec_from_noexec_vma_two_faults.json").to_spec()
    assert _signature(spec) != _signature(spec, mutant.sim_overrides())


def test_the_example_mutant_is_killed_by_conformance():
    (mutant,) = load_mutant_file(EXAMPLE)
    result = check_mutant(mutant, list(PROPS.values()), arches=("x86_64",), scopes=("handler",), stop=STOP_FIRST)
    assert result.order[0] == "conformance"
    assert "access_error → true" in result.first.detail and "access_error → false" in result.first.detail


@pytest.mark.slow
def test_check_mutant_file_kills_the_example(tmp_path):
    r = invoke("check", "--mutant", str(EXAMPLE), "--arch", "x86_64", "--scope", "handler",
               "--out", str(tmp_path), "--json")
    doc = json.loads(r.output)
    assert r.exit_code == 1 and doc["killed"] and "conformance" in doc["killed_by"]
    for f in tmp_path.glob("*.json"):
        assert replay_path(f).ok


def test_a_mutant_file_naming_an_unknown_function_is_exit_2(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def acess_error(error_code, vma):\n    return 0\nREPLACES = {'acess_error': acess_error}\n")
    r = CliRunner().invoke(cli, ["check", "--mutant", str(bad)])
    assert r.exit_code == 2 and "'acess_error' is not a kernel function" in r.output
    assert "access_error" in r.output   # the close match is suggested


def test_a_mutant_file_that_replaces_nothing_is_exit_2(tmp_path):
    empty = tmp_path / "nothing.py"
    empty.write_text("X = 1\n")
    r = CliRunner().invoke(cli, ["check", "--mutant", str(empty)])
    assert r.exit_code == 2 and "replaces nothing" in r.output


def test_a_mutant_file_may_declare_several_mutants_with_edits(tmp_path):
    f = tmp_path / "two.py"
    f.write_text(
        "from pfmodel.mutants import Edit, Mutant\n"
        "MUTANTS = [\n"
        "  Mutant('no_prot_rule', 'reads of present pages allowed', 'd',\n"
        "         (Edit('access_error', '    if error_code & PF_PROT:\\n        return 1\\n', ''),)),\n"
        "  Mutant('no_rwx_rule', 'PROT_NONE readable', 'd',\n"
        "         (Edit('access_error', '    if not vma.vm_flags & (VM_READ | VM_EXEC | VM_WRITE):\\n"
        "        return 1\\n', ''),)),\n"
        "]\n")
    names = [m.name for m in resolve(str(f))]
    assert names == ["no_prot_rule", "no_rwx_rule"]


def test_unknown_mutant_name_suggests_a_close_one():
    r = CliRunner().invoke(cli, ["check", "--mutant", "access_error_write_rule_droped"])
    assert r.exit_code == 2 and "access_error_write_rule_dropped" in r.output


def test_mutants_list_json_shows_each_change():
    r = invoke("mutants", "--list", "--json")
    doc = json.loads(r.output)
    assert r.exit_code == 0 and len(doc) == len(BUILTIN)
    leak = next(m for m in doc if m["name"] == "mmap_sem_leak_sigsegv_backport")
    assert leak["seq"] == "1.4" and any(line.startswith("  + ") for line in leak["change"])


# --- kills --------------------------------------------------------------------------------

# One representative per theme, each caught by a different kind of killer, with the
# scope where its first kill lies (the full matrix runs every scope: slow test below).
REPRESENTATIVES = {
    "retry_without_tried": ("retry_at_most_once", "mm"),
    "mmap_sem_leak_sigsegv_backport": ("mmap_sem_released", "stack"),
    "access_error_write_rule_dropped": ("conformance", "handler"),
    "stack_cushion_reversed": ("conformance", "stack"),
    "sigbus_ignores_mode": ("conformance", "mm"),
    "accounting_before_error_check": ("fault_accounting", "stack"),
    "irqs_enabled_regardless_of_if": ("irqs_enabled_only_if_allowed", "handler"),
    "model_retry_releases_again": ("mmap_sem_released", "mm"),
}


@pytest.mark.parametrize("name", sorted(REPRESENTATIVES))
def test_representative_mutant_is_killed_and_its_counterexample_replays(name, tmp_path):
    mutant = BUILTIN[name]
    props = list(PROPS.values())
    killer, scope = REPRESENTATIVES[name]
    result = check_mutant(mutant, props, arches=("x86_64",), scopes=(scope,), stop=STOP_FIRST)
    assert result.killed, f"{name} survived"
    assert killer in result.order
    path = save_kill(result, props, tmp_path)
    replay = replay_path(path)
    assert replay.ok, replay.problems
    cx = load(path)
    assert cx.mutant["name"] == name
    if cx.violation.kind == "property" and not cx.violation.model:
        # It violates the property on the mutant, not on the unmutated simulator.
        prop = PROPS[cx.violation.property_name]
        spec = cx.scenario.to_spec()
        assert not sim_evaluate(prop, observe(spec, mutant.sim_overrides())).holds
        assert sim_evaluate(prop, observe(spec)).holds


def test_the_corpus_stage_kills_a_mutant_the_model_paths_miss(tmp_path):
    """spurious_fault_any_error_code reads the init_mm entry for error codes the real code
    never looks it up for, so the model's paths leave that entry at its default; the
    committed scenario t08b has one, and the sharper property catches the mutant."""
    matrix = run_matrix([BUILTIN["spurious_fault_any_error_code"]], arches=("x86_64",), scopes=("handler",),
                        corpus=[CX], random_examples=0, out=str(tmp_path))
    (r,) = matrix.results
    assert r.killed and r.engine == "corpus" and r.order == ["spurious_only_for_raised_permissions"]
    assert replay_path(r.file).ok


def test_mutants_command_reports_a_kill_with_a_replayable_file(tmp_path):
    r = invoke("mutants", "--mutant", "up_read_dropped", "--mutant", "no_context_skips_fixup", "--arch", "x86_64",
               "--examples", "0", "--out", str(tmp_path), "--json", "--workers", "1")
    doc = json.loads(r.output)
    assert r.exit_code == 0 and doc["killed"] == 2 and not doc["survived"]
    rows = {row["mutant"]: row for row in doc["matrix"]}
    assert rows["up_read_dropped"]["killed_by"] == ["mmap_sem_released"]
    assert rows["no_context_skips_fixup"]["killed_by"][0] == "conformance"
    assert (tmp_path / "kill-matrix.json").exists()
    for row in doc["matrix"]:
        assert replay_path(row["counterexample"]).ok


def test_check_lists_properties_that_kill_no_mutant_from_the_kill_matrix(tmp_path):
    (tmp_path / "kill-matrix.json").write_text(json.dumps(
        {"complete": True, "mutants": 3, "properties_killing_no_mutant": ["stack_growth_bounded"]}))
    r = invoke("check", "--no-conformance", "--scope", "stack", "--arch", "x86_64", "--property",
               "stack_growth_bounded", "--out", str(tmp_path))
    assert "properties that kill no mutant" in r.output and "stack_growth_bounded" in r.output


@pytest.mark.slow
def test_every_builtin_mutant_is_killed(tmp_path):
    """The full kill matrix on both architectures (several minutes)."""
    matrix = run_matrix(BUILTIN.values(), corpus=[CX], out=str(tmp_path), workers=2)
    survivors = [r.mutant.name for r in matrix.survivors]
    assert survivors == []
    for r in matrix.results:
        if r.killed and r.file:
            assert replay_path(r.file).ok, r.file
