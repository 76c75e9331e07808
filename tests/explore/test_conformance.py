"""Conformance: the model's path equals the simulator's first-fault trace and outcome."""

from __future__ import annotations

import pytest

from pfmodel.explore.check import check
from pfmodel.explore.conformance import check_path, random_paths
from pfmodel.explore.exhaustive import Explorer
from pfmodel.model.inputs import ARCHES, DEFAULT_SCOPES
from pfmodel.sim.run import patched


@pytest.mark.parametrize("arch", ARCHES)
@pytest.mark.parametrize("scope", ["stack", "alloc"])
def test_small_scopes_conform(arch, scope):
    ex = Explorer(arch, scope)
    n = 0
    for path in ex.paths():
        run, dis = check_path(ex.space, scope, path)
        assert dis is None, dis.describe()
        n += 1
    assert n > 100


@pytest.mark.slow
@pytest.mark.parametrize("arch", ARCHES)
@pytest.mark.parametrize("scope", DEFAULT_SCOPES)
def test_every_default_scope_conforms(arch, scope):
    report = check(names=["outcome_total"], arches=[arch], scopes=[scope], conformance=True, workers=1)
    assert report.disagreement_count == 0, [d.describe() for d in report.disagreements]
    assert report.conformance_checked == report.paths


def test_a_mutated_simulator_is_caught_at_the_right_step(tmp_path):
    """A simulator whose access_error always denies parts from the model at that step."""
    with patched({"access_error": lambda *a, **k: 1}):
        report = check(names=["outcome_total"], arches=["x86_64"], scopes=["stack"], conformance=True,
                       workers=1, out=str(tmp_path))
    assert report.exit_code == 1 and report.disagreement_count > 0
    d = report.disagreements[0]
    assert d.model_step == ("access_error", "false") and d.sim_step == ("access_error", "true")
    assert "conformance violated at step" in d.describe()
    assert (tmp_path / f"conformance-x86_64-stack-{d.index}.json").exists()


@pytest.mark.parametrize("arch", ARCHES)
def test_random_full_assignments_conform(arch):
    """Outside the enumerated scopes: random combinations of every input (a found case:
    stack growth of the low VMA A when T is a file VMA)."""
    for space, path in random_paths(arch, 300, seed=3):
        _, dis = check_path(space, "full", path)
        assert dis is None, (dis.describe(), path.bindings)


@pytest.mark.slow
@pytest.mark.parametrize("arch", ARCHES)
def test_many_random_full_assignments_conform(arch):
    for space, path in random_paths(arch, 6000, seed=7):
        _, dis = check_path(space, "full", path)
        assert dis is None, (dis.describe(), path.bindings)
