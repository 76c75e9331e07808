"""The property library and its file format; verdicts pinned in the manifest."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from pfmodel.errors import PropertyError
from pfmodel.explore.check import check
from pfmodel.explore.exhaustive import run_one
from pfmodel.explore.manifest import load
from pfmodel.model.inputs import build_space
from pfmodel.properties import evaluate, load_properties, prop, select

MANIFEST = Path(__file__).resolve().parent / "manifest" / "properties.json"

REQUIRED = {
    "user_access_error_sigsegv_accerr": "holds",
    "naive_access_error_sigsegv": "violated",
    "retry_at_most_once": "holds",
    "mmap_sem_released": "holds",
    "kernel_address_lockless": "holds",
    "rsvd_user_address_oops": "holds",
    "naive_user_fault_never_oops": "violated",
    "faults_disabled_no_mm_fault": "holds",
    "smap_violation_no_mm_fault": "holds",
    "kernel_fault_no_signal_return": "holds",
    "outcome_total": "holds",
    "handled_makes_progress": "holds",
    "write_fault_leaves_writable_dirty": "holds",
    "fault_accounting": "holds",
    "stack_growth_bounded": "holds",
    "no_write_to_readonly_vma": "holds",
    "irqs_enabled_only_if_allowed": "holds",
}


def test_the_library_has_every_required_property_with_its_expected_verdict():
    props = {p.name: p for p in load_properties()}
    for name, expected in REQUIRED.items():
        assert name in props, name
        assert props[name].expected == expected
        assert props[name].statement and props[name].rationale
        assert props[name].source.startswith("pfmodel.library/")


def test_model_verdicts_match_the_manifest():
    """Every model property over every default scope of both architectures: verdicts and
    path counts are pinned, so a change in the model or the library is seen."""
    props = [p.name for p in load_properties() if p.on == "model"]
    report = check(names=props, conformance=False)
    pinned = load(MANIFEST)
    got = {r.prop.name: {"verdict": r.verdict, "applicable": r.applicable, "checked": r.checked,
                         "violations": r.violations} for r in report.results}
    # Properties added after the pin (by other files of the library) are not compared here.
    assert {k: got[k] for k in pinned if k in got} == {k: v for k, v in pinned.items() if k in got}
    assert set(pinned) <= set(got), sorted(set(pinned) - set(got))
    assert all(r.as_expected for r in report.results)


def test_simulator_property_on_a_small_scope():
    report = check(names=["handled_makes_progress"], scopes=["alloc", "stack"], conformance=False, workers=1)
    (r,) = report.results
    assert r.verdict == "holds" and r.applicable > 50
    assert report.sim_runs >= r.applicable


def _write(tmp_path: Path, name: str, body: str) -> Path:
    f = tmp_path / name
    f.write_text(textwrap.dedent(body))
    return f


def test_a_user_folder_adds_properties(tmp_path):
    _write(tmp_path, "mine.py", '''
        from pfmodel.properties import prop

        @prop(name="kmmio_always_handled", expected="holds", statement="kmmio claims end handled.",
              rationale="KF 2.2.1", when=lambda r: r.took("kmmio_fault", "true"))
        def _(r):
            return r.outcome.via == "kmmio"

        @prop(name="nothing_ever_oopses", expected="holds", statement="No oops.", rationale="wishful")
        def _(r):
            return r.outcome.kind != "oops"
    ''')
    report = check(folders=[str(tmp_path)], builtin=False, scopes=["hooks"], conformance=False)
    verdicts = {r.prop.name: r.verdict for r in report.results}
    assert verdicts == {"kmmio_always_handled": "holds", "nothing_ever_oopses": "violated"}
    assert report.exit_code == 1   # a property expected to hold is violated


def test_a_violated_property_expected_violated_passes_and_one_that_holds_fails(tmp_path):
    _write(tmp_path, "p.py", '''
        from pfmodel.properties import prop

        @prop(name="naive_no_oops", expected="violated", statement="No oops.", rationale="lesson")
        def _(r):
            return r.outcome.kind != "oops"
    ''')
    ok = check(folders=[str(tmp_path)], builtin=False, scopes=["handler"], arches=["i386-pae"], conformance=False)
    assert ok.exit_code == 0 and ok.results[0].verdict == "violated"
    _write(tmp_path, "p.py", '''
        from pfmodel.properties import prop

        @prop(name="naive_always_true", expected="violated", statement="True.", rationale="t")
        def _(r):
            return True
    ''')
    bad = check(folders=[str(tmp_path)], builtin=False, scopes=["stack"], conformance=False)
    assert bad.results[0].verdict == "holds" and bad.exit_code == 1


@pytest.mark.parametrize("body,message", [
    ('@prop(name="x", expected="maybe", statement="s", rationale="r")\ndef _(r): return True\n', "expected verdict"),
    ('@prop(name="x y", statement="s", rationale="r")\ndef _(r): return True\n', "not an identifier"),
    ('@prop(name="x", statement="", rationale="r")\ndef _(r): return True\n', "statement"),
    ("def broken(:\n", "syntax error"),
])
def test_malformed_property_files_are_refused(tmp_path, body, message):
    _write(tmp_path, "bad.py", "from pfmodel.properties import prop\n" + body)
    with pytest.raises(PropertyError) as e:
        load_properties([tmp_path], builtin=False)
    assert message in e.value.message


def test_duplicate_names_are_refused(tmp_path):
    _write(tmp_path, "dup.py", '''
        from pfmodel.properties import prop

        @prop(name="mmap_sem_released", statement="s", rationale="r")
        def _(r):
            return True
    ''')
    with pytest.raises(PropertyError) as e:
        load_properties([tmp_path])
    assert "defined twice" in e.value.message


def test_unknown_property_name_is_a_usage_error():
    with pytest.raises(PropertyError):
        select(load_properties(), ["no_such_property"])


def test_a_predicate_reading_an_unbound_input_is_evaluated_for_every_value():
    """The kmmio path never reads sp; a claim about sp is then checked for each sp."""
    p = run_one("x86_64", {"env.kmmio": True})
    space = build_space("x86_64", "full")

    @prop(name="addr_is_inside_t", statement="s", rationale="r")
    def inside(r):
        t = r.layout.vma("T")
        return r.o.and_(r.o.uge(r.word("address"), t.start), r.o.ult(r.word("address"), t.end))

    ev = evaluate(inside, p, space)
    assert ev.applies and not ev.holds
    assert "address" in ev.extra and ev.extra["address"] != dict(space.layout.addresses)["T_inside"]


def test_a_crashing_predicate_is_reported_with_its_name(tmp_path):
    _write(tmp_path, "crash.py", '''
        from pfmodel.properties import prop

        @prop(name="crashes", statement="s", rationale="r")
        def _(r):
            return 1 / 0
    ''')
    with pytest.raises(PropertyError) as e:
        check(folders=[str(tmp_path)], builtin=False, scopes=["alloc"], conformance=False)
    assert "crashes" in e.value.message and "ZeroDivisionError" in e.value.message
