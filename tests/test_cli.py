"""The command line: exit statuses, messages, and what run / explain print."""

from __future__ import annotations

import json
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
    assert headings == ["  __do_page_fault  (seed 1.1)", "  find_vma  (seed 1.1.5)", "  access_error  (seed 1.1.8)"]
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
