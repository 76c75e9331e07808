"""``check --engine smt``: verdicts equal the exhaustive ones and the expected ones, every
counterexample replays on the simulator, a broken model is caught, unknown is never "holds"."""

from __future__ import annotations

from pathlib import Path

import pytest

from pfmodel.explore.check import check
from pfmodel.explore.smt import UNKNOWN_VERDICT, check_smt
from pfmodel.model import actions
from pfmodel.model.inputs import ARCHES, DEFAULT_SCOPES
from pfmodel.properties import HOLDS, VIOLATED, load_properties
from pfmodel.scenario import check_expectations, load_scenario, run_scenario
from pfmodel.sim.constants import VM_EXEC, VM_READ, VM_WRITE
from pfmodel.x86.constants import PF_PROT, PF_WRITE

FAST = dict(arches=("x86_64",), scopes=("handler", "stack"))


@pytest.fixture(scope="module")
def fast_reports(tmp_path_factory):
    out = tmp_path_factory.mktemp("smt-out")
    smt = check_smt(**FAST, workers=1, out=str(out))
    exh = check(**FAST, engine="exhaustive", conformance=False, workers=1)
    return smt, exh, out


def _model_properties(report):
    return [r for r in report.results if not r.prop.needs_simulator]


def test_smt_verdicts_equal_the_exhaustive_verdicts(fast_reports):
    smt, exh, _ = fast_reports
    theirs = {r.prop.name: r.verdict for r in exh.results}
    mine = {r.prop.name: r.verdict for r in _model_properties(smt)}
    assert mine and mine == {k: theirs[k] for k in mine}
    assert {VIOLATED, HOLDS} <= set(mine.values())


def test_simulator_properties_are_unknown_with_a_reason_never_holds(fast_reports):
    smt, _, _ = fast_reports
    sim = [r for r in smt.results if r.prop.needs_simulator]
    assert sim, "the library has a simulator property"
    for r in sim:
        assert r.verdict in (UNKNOWN_VERDICT, VIOLATED)
        if r.verdict == UNKNOWN_VERDICT:
            assert "simulator" in r.reason and r.witnesses > 0
    assert smt.exit_code == 3   # inconclusive, nothing violated unexpectedly


def test_every_counterexample_replays_on_the_simulator(fast_reports):
    smt, _, out = fast_reports
    cxs = [r for r in smt.results if r.counterexample is not None]
    assert len(cxs) >= 3
    for r in cxs:
        assert r.replay == "", (r.prop.name, r.replay)
        assert r.hardware
        scn = load_scenario(r.counterexample.file)
        assert Path(r.counterexample.file).parent == out
        run = run_scenario(scn)
        assert check_expectations(scn, run) == [], r.prop.name
        assert run.faults[0].trace.keys() == r.counterexample.keys
    assert smt.disagreement_count == 0


@pytest.mark.slow
def test_every_verdict_on_both_architectures_equals_exhaustive_and_expected():
    smt = check_smt(conformance=True)
    exh = check(engine="exhaustive", conformance=False)
    theirs = {r.prop.name: r.verdict for r in exh.results}
    for r in smt.results:
        if r.prop.needs_simulator:
            assert r.verdict in (UNKNOWN_VERDICT, VIOLATED)
            continue
        assert r.verdict == theirs[r.prop.name] == r.prop.expected, r.prop.name
        if r.counterexample is not None:
            assert r.replay == "", (r.prop.name, r.replay)
    assert smt.disagreement_count == 0
    assert smt.conformance_checked == smt.paths
    assert {s.arch for s in smt.stats} == set(ARCHES)
    assert {s.scope for s in smt.stats} == set(DEFAULT_SCOPES)


def _broken_access_error(m, s):
    """access_error that forgets the write rule: a write to a VMA without VM_WRITE passes."""
    o = m.o
    vm_flags = actions._vm_flags(m, s)
    wrong = o.ite(o.test(s.ec, PF_WRITE), False,           # the mutation: was "not VM_WRITE"
                  lambda: o.ite(o.test(s.ec, PF_PROT), True,
                                lambda: o.not_(o.test(vm_flags, VM_READ | VM_EXEC | VM_WRITE))))
    if m.decide(s, "access_error", wrong):
        actions.bad_area(m, s, "SEGV_ACCERR")
    else:
        s.call += 1
        s.ret = 0
        m.change(s, mm_fault_call=hex(s.flags))
        m.call(s, "__handle_mm_fault:is_vm_hugetlb_page", "handle_mm_fault:memcg")


def test_a_broken_model_is_caught_with_a_replayed_counterexample(monkeypatch, tmp_path):
    monkeypatch.setitem(actions.ACTIONS, "__do_page_fault:access_error", _broken_access_error)
    smt = check_smt(arches=("x86_64",), scopes=("handler",), names=("no_write_to_readonly_vma",),
                    workers=1, out=str(tmp_path))
    (r,) = smt.results
    assert r.verdict == VIOLATED and not r.as_expected
    cx = r.counterexample
    assert ("access_error", "false") in cx.keys and cx.outcome.startswith("handled")
    assert cx.bindings["ec.W"] and cx.bindings["user_mode"] is True
    # The simulator is not broken: replaying the witness shows where the two part.
    assert "access_error" in r.replay
    assert smt.disagreement_count >= 1
    assert smt.exit_code == 1
    assert Path(cx.file).exists()


def test_a_library_model_mutant_is_caught(tmp_path):
    from pfmodel.mutants import model as model_mutants

    mutant = next(mu for mu in model_mutants.MUTANTS if mu.name == "model_retry_without_tried")
    with mutant.applied():
        smt = check_smt(arches=("i386-pae",), scopes=("mm",), names=("retry_at_most_once",), workers=1)
    (r,) = smt.results
    assert r.verdict == VIOLATED
    assert sum(1 for k in r.counterexample.keys if k[0] == "handle_mm_fault") == 2


HARD = '''
import z3
from pfmodel.properties import prop

# 0xA2DD4D36C583E831 = 3037000493 * 3864214421 (two 32-bit primes): finding the factors
# with 64-bit multiplication takes z3 far longer than the time limit.
@prop(name="no_factors_of_a_semiprime", expected="holds",
      statement="address * sp never equals a fixed semiprime (for address, sp > 1).",
      rationale="A query z3 cannot answer within a few milliseconds.")
def _(r):
    a, sp = r.word("address").t, r.word("sp").t
    return z3.Not(z3.And(a * sp == 0xA2DD4D36C583E831, z3.UGT(a, 1), z3.UGT(sp, 1),
                         z3.ULT(a, 1 << 32), z3.ULT(sp, 1 << 32)))
'''


def test_a_solver_timeout_is_unknown_never_holds(tmp_path):
    (tmp_path / "hard.py").write_text(HARD)
    smt = check_smt(arches=("x86_64",), scopes=("seed",), folders=(str(tmp_path),), builtin=False,
                    workers=1, timeout_ms=50)
    (r,) = smt.results
    assert r.verdict == UNKNOWN_VERDICT
    assert r.unknown > 0 and "unknown" in r.reason
    assert smt.exit_code == 3


def test_a_violated_property_expected_to_hold_fails_the_run(tmp_path):
    (tmp_path / "wrong.py").write_text('''
from pfmodel.properties import prop
from pfmodel.x86.constants import PF_WRITE

@prop(name="no_kernel_write_faults", expected="holds",
      statement="A kernel-mode fault is never a write.", rationale="False, on purpose.")
def _(r):
    return r.o.implies(r.o.not_(r.bool("user_mode")), r.o.not_(r.o.test(r.word("error_code"), PF_WRITE)))
''')
    smt = check_smt(arches=("i386-pae",), scopes=("seed",), folders=(str(tmp_path),), builtin=False, workers=1)
    (r,) = smt.results
    assert r.verdict == VIOLATED and not r.as_expected
    assert r.counterexample.bindings["ec.W"] and r.counterexample.bindings["user_mode"] is False
    assert smt.exit_code == 1


def test_properties_are_loaded_from_the_library():
    names = {p.name for p in load_properties()}
    assert {"kernel_address_lockless", "stack_growth_bounded", "naive_access_error_sigsegv"} <= names
