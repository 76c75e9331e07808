"""The exhaustive engine: pinned counts, partition of the input space, determinism."""

from __future__ import annotations

import random
from pathlib import Path as FsPath

import pytest

from pfmodel.explore.exhaustive import Explorer, run_one
from pfmodel.explore.manifest import load, measure
from pfmodel.model.inputs import ARCHES, DEFAULT_SCOPES, NeedInput, build_space
from pfmodel.outcome import KINDS

MANIFEST = FsPath(__file__).resolve().parents[1] / "manifest" / "exhaustive.json"


@pytest.mark.parametrize("arch", ARCHES)
@pytest.mark.parametrize("scope", DEFAULT_SCOPES)
def test_counts_match_the_manifest(arch, scope):
    pinned = load(MANIFEST)[arch][scope]
    got = measure(arch, scope)
    assert got == pinned, (
        f"the explored space of {arch}/{scope} changed; if on purpose, re-pin with "
        "`python -m pfmodel.explore.manifest --write tests/manifest/exhaustive.json`")


def _paths(arch, scope):
    return list(Explorer(arch, scope).paths())


@pytest.mark.parametrize("arch", ARCHES)
def test_paths_are_pairwise_disjoint(arch):
    """Two paths always differ in the value of an input both of them bound."""
    paths = _paths(arch, "alloc")
    assert len(paths) > 100
    for i, a in enumerate(paths):
        for b in paths[i + 1:]:
            common = a.bindings.keys() & b.bindings.keys()
            assert any(a.bindings[k] != b.bindings[k] for k in common), (a.index, b.index)


def _random_assignment(space, rng):
    """A full assignment of every input, each drawn from its (dependent) domain."""
    values: dict = {}

    def get(name):
        if name not in values:
            values[name] = rng.choice(space.domain(name, get))
        return values[name]
    for name in sorted(space.inputs):
        get(name)
    return values


@pytest.mark.parametrize("scope", ["stack", "hooks", "alloc"])
def test_paths_cover_the_input_space(scope):
    """Every full assignment of the scope's inputs extends exactly one path's bindings."""
    arch = "x86_64"
    space = build_space(arch, scope)
    paths = _paths(arch, scope)
    rng = random.Random(4)
    for _ in range(60):
        full = _random_assignment(space, rng)
        matching = [p for p in paths if all(full[k] == v for k, v in p.bindings.items())]
        assert len(matching) == 1, full


def test_run_one_is_the_path_the_explorer_finds():
    paths = _paths("i386-pae", "alloc")
    for p in paths[::17]:
        q = run_one("i386-pae", p.bindings, scope="alloc")
        assert q.keys() == p.keys() and q.outcome == p.outcome


def test_run_one_refuses_a_value_outside_the_domain():
    with pytest.raises(ValueError):
        run_one("x86_64", {"address": 0x123}, scope="full")


@pytest.mark.parametrize("arch", ARCHES)
def test_every_path_ends_in_exactly_one_outcome_and_releases_mmap_sem(arch):
    for p in _paths(arch, "mm"):
        assert p.outcome is not None and p.outcome.kind in KINDS
        assert p.final.mmap_sem == 0, p.keys()


def test_exploration_is_deterministic():
    a = [(p.keys(), str(p.outcome), sorted(p.bindings.items(), key=str)) for p in _paths("x86_64", "hooks")]
    b = [(p.keys(), str(p.outcome), sorted(p.bindings.items(), key=str)) for p in _paths("x86_64", "hooks")]
    assert a == b


def test_lazy_binding_reads_only_what_a_path_needs():
    p = run_one("x86_64", {"env.kmmio": True})
    assert set(p.bindings) == {"env.kmemcheck", "env.kmmio"}


def test_an_unbound_input_is_a_loud_error_outside_the_engine():
    space = build_space("x86_64", "full")
    with pytest.raises(NeedInput):
        space.domain("sp", {}.__getitem__ if False else _need)


def _need(name):
    raise NeedInput(name)
