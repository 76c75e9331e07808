"""The teaching scenarios in counterexamples/: each replays on the simulator and meets its
expectation, which was written from the kernel's behaviour (kernel-facts.md), not from
the simulator's output."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from pfmodel.scenario import (
    check_expectations,
    dumps_scenario,
    fingerprint,
    load_schema,
    load_scenario,
    loads_scenario,
    run_scenario,
)

ROOT = Path(__file__).resolve().parents[1]
FILES = sorted((ROOT / "counterexamples").glob("*.json"))


def test_there_are_at_least_fifteen_teaching_scenarios():
    assert len(FILES) >= 15


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_scenario_replays_as_expected(path):
    scn = load_scenario(path)
    run = run_scenario(scn)
    problems = check_expectations(scn, run)
    assert problems == [], f"{path.name}: " + "; ".join(problems)


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_scenario_is_a_complete_lesson_in_canonical_form(path):
    scn = load_scenario(path)
    assert scn.name and scn.teaches and scn.description
    assert scn.expect.outcome is not None and scn.expect.faults is not None and scn.expect.trace_contains
    jsonschema.validate(json.loads(path.read_text()), load_schema())
    # the committed bytes are what save_scenario writes, so saving never churns them
    assert path.read_text() == dumps_scenario(loads_scenario(path.read_text(), source=str(path)))


def test_every_scenario_is_a_different_machine_with_a_different_name():
    scenarios = [load_scenario(p) for p in FILES]
    prints = [fingerprint(s) for s in scenarios]
    assert len(set(prints)) == len(prints)
    names = [s.name for s in scenarios]
    assert len(set(names)) == len(names)


def test_the_outcomes_cover_every_kind_of_ending():
    kinds = {load_scenario(p).expect.outcome["kind"] for p in FILES}
    assert kinds == {"handled", "sigsegv", "sigbus", "fixup", "oops", "oom", "fatal_signal"}


def test_the_format_page_example_replays_as_it_says():
    page = (ROOT / "docs" / "scenario-format.md").read_text()
    example = page.split("```json\n", 1)[1].split("```", 1)[0]
    scn = loads_scenario(example, source="docs/scenario-format.md")
    assert check_expectations(scn, run_scenario(scn)) == []
