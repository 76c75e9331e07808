"""``pfmodel find``: witnesses that replay, proofs that none exists, exact optima, the condition language."""

from __future__ import annotations

import json
import re

import pytest
import z3
from click.testing import CliRunner

from pfmodel.cli import cli
from pfmodel.errors import UsageError
from pfmodel.explore import find as find_mod
from pfmodel.explore.find import Query, find, normalize_where, parse_outcome, parse_step
from pfmodel.model.inputs import make_layout
from pfmodel.scenario import check_expectations, load_scenario, run_scenario

STACK = dict(scopes=("stack",), workers=1)


def test_no_kernel_mode_fault_ends_in_sigbus_proved_on_both_architectures():
    """x86 never sends SIGBUS for a kernel-mode fault (KF 2.2.24): z3 proves there is none."""
    rep = find(Query(outcomes=("sigbus",), mode="kernel"), scopes=("mm", "handler"), workers=1)
    assert [a.status for a in rep.answers] == ["none", "none"]
    assert all(sum(s.matching for s in a.scopes) > 0 for a in rep.answers)   # not vacuous
    assert rep.exit_code == 0


def test_a_user_mode_sigbus_exists_and_replays(tmp_path):
    rep = find(Query(outcomes=("sigbus(si_code=BUS_ADRERR)",), mode="user"), arches=("x86_64",),
               scopes=("mm",), workers=1, out=str(tmp_path))
    (a,) = rep.answers
    assert a.status == "found"
    w = a.witness
    assert w.outcome == "sigbus(si_code=BUS_ADRERR)" and w.bindings["user_mode"] is True
    assert w.replay == ""
    scn = load_scenario(w.file)
    run = run_scenario(scn)
    assert check_expectations(scn, run) == []
    assert run.faults[0].outcome.kind == "sigbus"


@pytest.mark.parametrize("arch", ["x86_64", "i386-pae"])
def test_the_lowest_address_that_grows_the_stack_is_exactly_sp_minus_the_cushion(arch):
    lay = make_layout(arch)
    t = lay.vma("T")
    sp = t.start + 0x10000
    rep = find(Query(mode="user", trace=("expand_stack → false",), where=(f"sp == {sp:#x}",), minimize="address"),
               arches=(arch,), **STACK)
    (a,) = rep.answers
    assert a.status == "found" and a.conclusive
    assert a.witness.objective == sp - lay.cushion == a.witness.bindings["address"]
    assert a.witness.replay == ""


@pytest.mark.parametrize("arch", ["x86_64", "i386-pae"])
def test_no_user_fault_grows_the_stack_further_than_the_cushion_below_sp(arch):
    """For every sp (all 2^64 / 2^32 values): the largest distance below sp that still grows
    the stack is 65536 + 32 * sizeof(long), and nothing beyond it does."""
    cushion = make_layout(arch).cushion
    rep = find(Query(mode="user", trace=("expand_stack → false",), where=("address < sp",), maximize="sp - address"),
               arches=(arch,), **STACK)
    assert rep.answers[0].witness.objective == cushion
    rep = find(Query(mode="user", trace=("expand_stack → false",), where=("address < sp", "sp - address > cushion")),
               arches=(arch,), **STACK)
    assert rep.answers[0].status == "none"


def test_a_wrong_claim_is_refuted_with_a_witness():
    """"No kernel-mode write ever gets handled" is false: find shows one."""
    rep = find(Query(outcomes=("handled(via=handle_mm_fault)",), mode="kernel", where=("write",)),
               arches=("i386-pae",), scopes=("handler",), workers=1)
    w = rep.answers[0].witness
    assert w is not None and w.bindings["user_mode"] is False and w.bindings["ec.W"]


def test_unknown_is_never_none(monkeypatch):
    """A query z3 cannot answer in time makes the answer inconclusive, not "none"."""
    hard = z3.BitVec("hard.a", 64) * z3.BitVec("hard.b", 64) == 0xA2DD4D36C583E831
    hard = z3.And(hard, z3.UGT(z3.BitVec("hard.a", 64), 1), z3.UGT(z3.BitVec("hard.b", 64), 1),
                  z3.ULT(z3.BitVec("hard.a", 64), 1 << 32), z3.ULT(z3.BitVec("hard.b", 64), 1 << 32))
    monkeypatch.setattr(find_mod, "_conditions", lambda view, query, wheres, consts: hard)
    rep = find(Query(outcomes=("sigsegv",)), arches=("x86_64",), scopes=("seed",), workers=1, timeout_ms=50)
    (a,) = rep.answers
    assert a.status == "unknown" and a.unknown > 0
    assert rep.exit_code == 3


def test_keyword_sentences_and_the_parsers():
    assert normalize_where("user write to writable VMA") == "user and write and writable"
    assert normalize_where("kernel read-only") == "kernel and readonly"
    assert normalize_where("address < sp") == "address < sp"
    assert parse_outcome("sigsegv(si_code=SEGV_ACCERR)") == ("sigsegv", {"si_code": "SEGV_ACCERR"})
    assert parse_outcome("handled(via=vmalloc_fault, major=true)") == ("handled", {"via": "vmalloc_fault",
                                                                                   "major": True})
    assert parse_step("access_error → false") == (False, "access_error", "false")
    assert parse_step("!pf_rsvd->true") == (True, "pf_rsvd", "true")
    assert parse_step("find_vma") == (False, "find_vma", None)


@pytest.mark.parametrize("query, what", [
    (Query(outcomes=("sigsev",)), "not an outcome"),
    (Query(outcomes=("sigsegv(si_code=BUS_ADRERR)",)), "si_code"),
    (Query(trace=("acess_error → false",)), "no decision is labelled"),
    (Query(trace=("access_error → maybe",)), "never takes the value"),
    (Query(where=("adress < sp",)), "unknown name"),
    (Query(where=("user wrte to writable VMA",)), "unknown word(s) 'wrte'"),
    (Query(where=("address",)), "not a condition"),
    (Query(where=("address * 2 == sp",)), "not part of the condition language"),
    (Query(where=("sp + 0x1000000000 > address",)), "does not fit in a 32-bit word"),
    (Query(minimize="address", maximize="sp")," together"),
])
def test_bad_queries_are_usage_errors(query, what):
    with pytest.raises(UsageError, match=re.escape(what)):
        find(query, arches=("i386-pae",), scopes=("seed",), workers=1)


def test_a_number_wider_than_the_word_compares_mathematically():
    """On a 32-bit machine sp never equals a 64-bit value: none, not a wrapped match."""
    rep = find(Query(mode="user", where=("sp == 0x7f0000000000",)), arches=("i386-pae",), scopes=("seed",),
               workers=1)
    assert rep.answers[0].status == "none"


def test_the_find_command(tmp_path):
    runner = CliRunner()
    res = runner.invoke(cli, ["find", "--outcome", "sigbus", "--mode", "kernel", "--arch", "x86_64",
                              "--scope", "mm", "--workers", "1", "--expect", "none", "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert "none exists (proved" in res.output
    res = runner.invoke(cli, ["find", "--outcome", "oops(reason=bad_pagetable)", "--mode", "user", "--arch",
                              "i386-pae", "--scope", "handler", "--workers", "1", "--json", "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    (ans,) = data["answers"]
    assert ans["status"] == "found" and ans["witness"]["simulator"] == "agrees"
    assert "pf_rsvd → true" in ans["witness"]["trace"]
    assert (tmp_path / "find-i386-pae.json").exists()
    res = runner.invoke(cli, ["find", "--outcome", "sigbus", "--mode", "kernel", "--arch", "x86_64",
                              "--scope", "seed", "--workers", "1", "--expect", "found", "--out", str(tmp_path)])
    assert res.exit_code == 1
    res = runner.invoke(cli, ["find", "--where", "adress < 3", "--out", str(tmp_path)])
    assert res.exit_code == 2 and "unknown name 'adress'" in res.output
    res = runner.invoke(cli, ["find", "--list-names"])
    assert res.exit_code == 0 and "cushion" in res.output and "T.flags" in res.output
