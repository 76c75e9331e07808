"""Symbolic path enumeration: the same paths as the exhaustive engine, and a proved partition."""

from __future__ import annotations

import pytest
import z3

from pfmodel.explore.exhaustive import Explorer
from pfmodel.explore.smt import (
    SAT,
    UNSAT,
    SmtExplorer,
    SymSpace,
    compare_paths,
    prove_partition,
)
from pfmodel.model.inputs import ARCHES, DEFAULT_SCOPES
from pfmodel.model.z3ops import Z3Ops


@pytest.mark.parametrize("arch", ARCHES)
@pytest.mark.parametrize("scope", ["stack", "alloc"])
def test_smt_paths_equal_the_exhaustive_paths(arch, scope):
    """Over the scope's own domains the feasible paths (decisions + outcome) are the same set."""
    cmp, paths, _ = compare_paths(arch, scope)
    assert cmp.only_smt == [] and cmp.only_exhaustive == []
    assert cmp.uncertain == 0
    assert cmp.signatures > 50
    assert len(paths) == cmp.smt_paths


@pytest.mark.slow
@pytest.mark.parametrize("arch", ARCHES)
@pytest.mark.parametrize("scope", [s for s in DEFAULT_SCOPES if s not in ("stack", "alloc")])
def test_smt_paths_equal_the_exhaustive_paths_everywhere(arch, scope):
    cmp, _, _ = compare_paths(arch, scope)
    assert cmp.equal, (cmp.only_smt[:2], cmp.only_exhaustive[:2])


@pytest.mark.parametrize("arch", ARCHES)
def test_path_conditions_partition_the_scope(arch):
    """No input satisfies two path conditions, and every input satisfies one (z3, unsat)."""
    _, paths, sym = compare_paths(arch, "stack")
    proof = prove_partition(sym, paths)
    assert (proof.disjoint, proof.cover) == (UNSAT, UNSAT)
    assert proof.proved and proof.paths == len(paths)


@pytest.mark.slow
@pytest.mark.parametrize("arch", ARCHES)
def test_path_conditions_are_pairwise_disjoint(arch):
    """The literal statement: for every pair of paths, both conditions at once is unsat."""
    _, paths, sym = compare_paths(arch, "alloc")
    proof = prove_partition(sym, paths, pairwise=True)
    assert proof.method == "pairwise"
    assert (proof.disjoint, proof.cover) == (UNSAT, UNSAT)


def test_a_dropped_path_breaks_the_cover_and_a_duplicate_breaks_disjointness():
    """The partition proof can fail: it is not a formality."""
    _, paths, sym = compare_paths("i386-pae", "alloc")
    assert prove_partition(sym, paths[1:]).cover == SAT
    assert prove_partition(sym, paths + paths[:1]).disjoint == SAT


def test_a_signed_comparison_in_the_z3_interpretation_changes_the_path_set(monkeypatch):
    """The cross-check sees a wrong z3 interpretation: signed < puts the kernel half below
    TASK_SIZE_MAX, so kernel addresses take the user-address paths."""
    monkeypatch.setattr(Z3Ops, "uge", lambda self, a, b: self._cmp(a, b, lambda p, q: p >= q,
                                                                    lambda x, y: x >= y))
    cmp, _, _ = compare_paths("x86_64", "handler")
    assert not cmp.equal
    assert cmp.only_exhaustive


def test_the_full_space_has_every_address_value():
    """In the full space the address is a free word: every path of the address classes is
    there (bar the faults that grow the helper VMA A, which the full space leaves out),
    and more that only other values reach."""
    sym = SymSpace("x86_64", "stack", "full")
    paths = list(SmtExplorer(sym).paths())
    sigs_full = {p.signature for p in paths}
    a_start = sym.layout.vma("A").start
    classes = set()
    for p in Explorer("x86_64", "stack").paths():
        classes.add((tuple(p.keys()), str(p.outcome)))
    assert classes <= sigs_full
    assert len(sigs_full) > len(classes)
    a = sym.vars["address"]
    s = z3.Solver()
    s.add(*sym.constraints)
    assert s.check(z3.And(z3.UGE(a, 0x400000), z3.ULT(a, 0x600000))) == z3.sat     # inside A: in
    # No non-canonical address; faults below A while it is a stack (growing it) are in.
    grows = sym.vars["A.flags.growsdown"] != 0
    assert s.check(z3.And(z3.UGE(a, 1 << 47), z3.ULT(a, 0xFFFF800000000000))) == z3.unsat
    assert s.check(z3.And(z3.ULT(a, a_start), grows)) == z3.sat


def test_enumeration_is_deterministic():
    def run():
        sym = SymSpace("i386-pae", "alloc", "full")
        return [(p.signature, sorted(p.choices.items())) for p in SmtExplorer(sym).paths()]
    assert run() == run()
