"""The command line: exit statuses, messages, and what run / explain print."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from pfmodel.cli import cli

ROOT = Path(__file__).resolve().parents[1]


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def write(path: Path, data) -> Path:
    path.write_text(json.dumps(data) if not isinstance(data, str) else data)
    return path


# --- bad input and usage: exit 2, a message, no traceback, nothing run ----------------------

def test_malformed_json_is_exit_2_with_line_and_column(tmp_path):
    bad = write(tmp_path / "bad.json", '{"access": {"address": "0x1000",}}')
    result = invoke("run", str(bad))
    assert result.exit_code == 2
    assert f"{bad}:1:33: malformed JSON" in result.stderr
    assert "Traceback" not in result.output and result.stdout == ""


def test_an_invalid_field_is_exit_2_naming_the_field(tmp_path):
    bad = write(tmp_path / "bad.json", {"access": {"address": "0x1000"},
                                        "vmas": [{"start": 0, "end": 4096, "flags": "VM_RAED"}]})
    result = invoke("explain", str(bad))
    assert result.exit_code == 2
    assert "vmas[0].flags: unknown bit name 'VM_RAED'" in result.stderr
    assert "did you mean 'VM_READ'" in result.stderr


def test_one_bad_file_in_a_folder_stops_everything_before_running(tmp_path, monkeypatch):
    import pfmodel.scenario as scenario

    write(tmp_path / "a_good.json", {"access": {"address": "0x1000"}})
    write(tmp_path / "b_bad.json", {"access": {}})
    ran = []
    monkeypatch.setattr(scenario, "run_scenario", lambda scn: ran.append(scn))
    result = invoke("run", str(tmp_path))
    assert result.exit_code == 2 and ran == []
    assert "b_bad.json: access.address: missing required field" in result.stderr


@pytest.mark.parametrize("args, message", [
    (["run", "/nonexistent/x.json"], "no such file or folder"),
    (["explain", "/nonexistent/x.json"], "no such file"),
])
def test_missing_paths_are_exit_2(args, message):
    result = invoke(*args)
    assert result.exit_code == 2 and message in result.stderr


def test_an_empty_folder_is_exit_2(tmp_path):
    result = invoke("run", str(tmp_path))
    assert result.exit_code == 2 and "no *.json scenario files" in result.stderr


def test_explain_of_a_folder_is_exit_2(tmp_path):
    result = invoke("explain", str(tmp_path))
    assert result.exit_code == 2 and "is a directory" in result.stderr


@pytest.mark.parametrize("args", [["run"], ["explain"], ["frobnicate"], ["run", "--no-such-option", "x"]])
def test_usage_errors_are_exit_2(args):
    assert invoke(*args).exit_code == 2


def test_help_lists_the_commands():
    result = invoke("--help")
    assert result.exit_code == 0 and "run" in result.output and "explain" in result.output


def test_python_dash_m_pfmodel_works(tmp_path):
    bad = write(tmp_path / "bad.json", "{")
    proc = subprocess.run([sys.executable, "-m", "pfmodel", "run", str(bad)], capture_output=True, text=True,
                          cwd=ROOT, timeout=60)
    assert proc.returncode == 2 and "malformed JSON" in proc.stderr and "Traceback" not in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "pfmodel", "--version"], capture_output=True, text=True,
                          cwd=ROOT, timeout=60)
    assert proc.returncode == 0 and "pfmodel" in proc.stdout


# --- explain's narration (plain lines, no terminal codes) -----------------------------------

def _synthetic_steps():
    from pfmodel.trace import Trace

    t = Trace()
    t.decide("kernel_fast_path", False)       # the longest question: it must wrap in its column
    t.decide("down_read_trylock", True, mmap_sem="acquire")
    t.decide("find_vma", "found", "[0x600000, 0x602000)")
    t.decide("access_error", True, "PF_WRITE and no VM_WRITE", mmap_sem="release")
    return list(t)


def test_step_lines_group_by_function_and_show_why_and_changes():
    from pfmodel.explain import step_lines

    lines = step_lines(_synthetic_steps())
    headings = [line for line in lines if line.startswith("  ") and not line.startswith("    ")]
    assert headings == ["  __do_page_fault", "  find_vma", "  access_error"]
    # each step's section, printed once per run of equal sections within a function
    assert lines[1].split()[0] == "1.1" and lines[next(i for i, x in enumerate(lines) if "did down_read" in x)].startswith(
        "     ")
    assert any(line.split()[:1] == ["1.1.8"] for line in lines)
    text = "\n".join(lines)
    assert "mmap_sem taken (read)" in text and "mmap_sem released" in text
    # the answer column lines up across the fault, even after a wrapped question
    rows = {q: next(line for line in lines if q in line) for q in
            ("is the error code free", "did down_read_trylock", "is there a VMA", "does access_error deny")}
    starts = {rows["is the error code free"].index(" no") + 1, rows["did down_read_trylock"].index(" yes") + 1,
              rows["is there a VMA"].index(" found") + 1, rows["does access_error deny"].index(" yes") + 1}
    assert len(starts) == 1
    assert any("(vmalloc/kmemcheck candidates)?" in line for line in lines)
    access = next(i for i, line in enumerate(lines) if "does access_error deny" in line)
    assert "yes" in lines[access] and "PF_WRITE and no VM_WRITE" in lines[access]
    assert lines[access + 1].strip() == "mmap_sem released"
    assert max(len(line) for line in lines) < 120


def test_routine_no_answers_are_counted_not_shown_unless_asked():
    from pfmodel.explain import step_lines
    from pfmodel.trace import Trace

    t = Trace()
    t.decide("kmmio_fault", False)            # routine when no
    t.decide("kprobes_fault", True)           # a hook that claimed the fault is news
    t.decide("pf_rsvd", False)                # not routine: a decision of the handler itself
    short, full = step_lines(list(t)), step_lines(list(t), show_all=True)
    assert not any("mmiotrace" in line for line in short) and any("mmiotrace" in line for line in full)
    assert any("kprobe" in line for line in short) and any("PF_RSVD" in line for line in short)
    assert "1 routine checks answered no" in short[-1]


# --- run and explain on the simulator ----------------------------------------------------

CX = ROOT / "counterexamples"
T01 = CX / "t01a_copy_to_user_readonly_vma.json"


def test_run_a_folder_prints_a_table_and_exits_0_when_all_match():
    from pfmodel.scenario import load_scenario

    result = invoke("run", str(CX))
    assert result.exit_code == 0, result.output
    files = sorted(CX.glob("*.json"))
    for path in files:
        assert load_scenario(path).name in result.output
    assert f"{len(files)} scenarios, {len(files)} of {len(files)} with expectations as expected" in result.output
    assert "FAIL" not in result.output


def test_run_exits_1_and_says_why_when_an_expectation_is_not_met(tmp_path):
    wrong = json.loads(T01.read_text())
    wrong["expect"] = {"outcome": {"kind": "sigsegv", "si_code": "SEGV_ACCERR"},
                       "trace_contains": ["smap_violation → true"]}
    path = write(tmp_path / "wrong.json", wrong)
    result = invoke("run", str(path))
    assert result.exit_code == 1
    assert "NOT as expected" in result.output
    assert "outcome is fixup, expected sigsegv SEGV_ACCERR" in result.output
    assert "'smap_violation → true' (it went false)" in result.output
    # in a folder, the table marks it and the exit status is still 1
    write(tmp_path / "good.json", json.loads(T01.read_text()))
    result = invoke("run", str(tmp_path))
    assert result.exit_code == 1 and "FAIL" in result.output and "1 of 2 with expectations" in result.output


def test_run_without_expectations_is_exit_0(tmp_path):
    path = write(tmp_path / "plain.json", {"access": {"address": "0x601000"}})
    result = invoke("run", str(path))
    assert result.exit_code == 0 and "sigsegv SEGV_MAPERR" in result.output


def test_run_json_prints_the_whole_run():
    result = invoke("run", "--json", str(T01))
    assert result.exit_code == 0
    doc = json.loads(result.output)
    assert doc["name"] == "copy_to_user into a read-only VMA: fixup, not SIGSEGV"
    assert doc["outcome"] == {"kind": "fixup"} and doc["ok"] is True and doc["problems"] == []
    assert len(doc["faults"]) == 1 and doc["faults"][0]["error_code"] == "0x3"
    steps = [s["decision"] for s in doc["faults"][0]["trace"]]
    assert "access_error → true" in steps and "fixup_exception → true" in steps
    assert doc["final"]["signals"] == [] and re.fullmatch(r"[0-9a-f]{16}", doc["fingerprint"])
    listing = json.loads(invoke("run", "--json", str(CX)).output)
    assert isinstance(listing, list) and len(listing) == len(list(CX.glob("*.json")))


def test_explain_tells_the_run_step_by_step():
    result = invoke("explain", str(T01))
    assert result.exit_code == 0
    text = result.output
    lines = text.splitlines()
    access = next(line for line in lines if "does access_error deny the access?" in line)
    assert access.split()[0] == "1.1.8" and " yes " in access
    assert "mmap_sem released" in text and "mmap_sem taken (read)" in text
    assert "Fault 1 of 1: address 0x601000, error code 0x3 (PF_PROT|PF_WRITE), formed by the MMU" in text
    assert "Outcome: fixup: the exception-table fixup runs" in text and "Expected: fixup, as expected" in text
    assert any(line.startswith("Lesson: access_error denies the write") for line in lines)
    assert "\x1b[" not in text   # plain text, no terminal codes
    full = invoke("explain", "--all", str(T01)).output
    assert "did mmiotrace (kmmio) claim the fault?" in full and "did mmiotrace" not in text


def test_explain_exits_1_when_the_run_does_not_meet_the_expectation(tmp_path):
    wrong = json.loads(T01.read_text())
    wrong["expect"] = {"outcome": "oops"}
    result = invoke("explain", str(write(tmp_path / "w.json", wrong)))
    assert result.exit_code == 1 and "NOT as expected" in result.output


def _readme_block(command: str) -> list[str]:
    """The lines the README shows after ``$ <command>`` in a text block."""
    text = (ROOT / "README.md").read_text()
    block = text.split(f"$ {command}\n", 1)[1].split("```", 1)[0]
    return block.rstrip("\n").splitlines()


@pytest.mark.parametrize("command", [
    "pfmodel run counterexamples/t04_exec_from_noexec_vma_two_faults.json",
    "pfmodel explain counterexamples/k01_kernel_null_pointer_dereference.json",
    "pfmodel run counterexamples/",
])
def test_the_readme_shows_real_output(command, monkeypatch):
    monkeypatch.chdir(ROOT)
    shown = _readme_block(command)
    actual = invoke(*command.split()[1:]).output.rstrip("\n").splitlines()
    if "..." in shown:   # an excerpt: the lines shown before and after the ellipsis
        cut = shown.index("...")
        assert actual[:cut] == shown[:cut] and actual[len(actual) - len(shown[cut + 1:]):] == shown[cut + 1:]
    else:
        assert actual == shown


def test_a_machine_the_simulator_refuses_is_exit_2_naming_file_and_entry(tmp_path):
    # a present pmd that links to frame 3, which is no page table (the simulator's check)
    path = write(tmp_path / "link.json", {"access": {"address": "0x601000"},
                                          "ptes": [{"address": "0x601000", "value": "PRESENT"},
                                                   {"address": "0x600000", "level": "pmd", "pfn": 3,
                                                    "value": "PRESENT|RW|USER"}]})
    result = invoke("run", str(path))
    assert result.exit_code == 2
    assert f"{path}: ptes (the pmd entry for 0x600000).value:" in result.stderr
    assert "not a page table" in result.stderr
