"""The oracle on the machine's own kernel: every case must agree with the simulator or
differ only where the expected-divergence table says the kernel changed since 4.4.

The default run measures a representative subset (one fresh probe process per case);
the whole matrix is marked slow.  Skipped, with the reason, where the running kernel
cannot be probed (not Linux x86-64, no probe).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from pfmodel.cli import cli
from pfmodel.oracle import divergence as div
from pfmodel.oracle.cases import all_cases, select
from pfmodel.oracle.compare import AGREE, EXPECTED
from pfmodel.oracle.runner import run_oracle

pytestmark = pytest.mark.oracle

# One or more cases for every kind of case the issue lists.
REPRESENTATIVE = [
    # anonymous private and shared memory: each protection, access and pre-state kind
    "anon/private/none/read/untouched", "anon/private/none/exec/untouched",
    "anon/private/r/read/untouched", "anon/private/r/write/read", "anon/private/r/exec/read",
    "anon/private/w/read/untouched", "anon/private/rw/write/untouched", "anon/private/rw/write/read",
    "anon/private/rw/exec/untouched", "anon/private/x/write/read", "anon/private/rx/exec/untouched",
    "anon/private/rwx/exec/written", "anon/private/rw/write/fork", "anon/private/rw/read/dontneed",
    "anon/private/rw/write/mprotect", "anon/private/none/read/mprotect", "anon/private/r/write/fork",
    "anon/shared/rw/write/untouched", "anon/shared/rw/read/dontneed", "anon/shared/rw/write/fork",
    "anon/shared/r/write/read",
    # file mappings, beyond end of file too
    "file/private/rw/write/read", "file/shared/rw/write/read", "file/private/rw/read/beyond-eof",
    "file/shared/rx/exec/beyond-eof", "file/private/r/read/eof-page",
    # special addresses from user mode
    "special/hole/write", "special/null/read", "special/last-user-page/read", "special/kernel-hole/write",
    "special/kernel-text/exec", "special/vsyscall/read", "special/noncanonical/read",
    # stack growth
    "stack/growsdown/write/below-8/sp-far", "stack/growsdown/write/below-8/sp-vma",
    "stack/growsdown/write/below-cushion+8/sp-vma", "stack/growsdown/write/size-rlimit+4k/sp-at",
    "stack/growsdown/write/gap-512k/sp-at", "stack/growsdown/write/gap-1m/sp-at",
    "stack/main/write/rsp-256k", "stack/main/write/rsp-9m", "stack/main/write/size-rlimit/sp-at",
    # kernel-mode faults on user pointers
    "syscall/sys_read/hole", "syscall/sys_read/none/untouched", "syscall/sys_read/r/read",
    "syscall/sys_read/rw/untouched", "syscall/sys_write/r/untouched", "syscall/sys_pread/x/untouched",
    "syscall/sys_pread/rw/fork", "stack/growsdown/sys_read/below-8",
    # copy-on-write reuse
    "cow/private/rw/write/forkexit",
]

# Cases where the simulator (not the kernel) is known to be wrong; strict, so a fix shows.
KNOWN_SIMULATOR_BUGS: dict[str, str] = {}


def _by_name(report):
    return {r.case.name: r for r in report.results}


@pytest.fixture(scope="module")
def subset_report(live):
    cases = [c for c in all_cases(live.rlimit_stack) if c.name in REPRESENTATIVE]
    assert len(cases) == len(REPRESENTATIVE), "a representative case name is misspelt"
    return run_oracle(cases, machine=live)


@pytest.mark.parametrize("name", REPRESENTATIVE)
def test_representative_case_agrees_or_diverges_as_expected(subset_report, name):
    result = _by_name(subset_report)[name]
    if result.status == "skipped":
        pytest.skip(result.reason)
    details = {c.channel: (c.predicted, c.observed) for c in result.channels if c.verdict == "differ"}
    assert result.status in (AGREE, EXPECTED), f"{name}: {result.status} {result.reason} {details}"
    # the comparison really happened: both sides gave an outcome and a fault count
    assert result.channel("outcome").verdict != "n/a"
    assert result.channel("faults").verdict != "n/a"
    for c in result.channels:
        if c.verdict == EXPECTED:
            assert c.divergence in div.BY_KEY and c.channel in div.BY_KEY[c.divergence].channels


def test_the_observation_is_live_and_case_specific(subset_report):
    """Spot checks that the kernel side is a measurement, not a constant: different
    cases give different observations, each consistent with the access made."""
    r = _by_name(subset_report)
    assert r["anon/private/rw/write/untouched"].channel("faults").observed == "1/0"
    assert r["anon/private/rw/write/untouched"].channel("page").observed == "populated"
    assert r["anon/private/r/write/read"].channel("outcome").observed == "sigsegv/SEGV_ACCERR"
    assert r["special/hole/write"].channel("outcome").observed == "sigsegv/SEGV_MAPERR"
    assert r["file/private/rw/read/beyond-eof"].channel("outcome").observed == "sigbus/BUS_ADRERR"
    assert r["syscall/sys_read/none/untouched"].channel("outcome").observed == "fixup"
    assert r["syscall/sys_read/rw/untouched"].channel("outcome").observed == "handled"
    assert r["special/noncanonical/read"].channel("outcome").observed == "gp/SI_KERNEL"
    obs = r["anon/private/rw/write/untouched"].observation
    assert obs["pid"] != r["anon/private/r/write/read"].observation["pid"]   # one process per case


def test_report_records_the_machine(subset_report):
    data = subset_report.to_json()
    m = data["machine"]
    for key in ("kernel_release", "cpu_flags", "thp", "swap", "rlimit_stack", "vsyscall", "mmap_min_addr",
                "overcommit_memory"):
        assert key in m
    assert set(m["cpu_flags"]) >= {"nx", "smep", "smap", "pku"}
    assert m["kernel_release"] == os.uname().release
    assert data["summary"]["differ"] == sum(1 for c in data["cases"] if c["status"] == "differ")
    json.dumps(data)


@pytest.mark.parametrize("name", sorted(KNOWN_SIMULATOR_BUGS))
def test_known_simulator_bug_is_reported_as_unexplained(live, name):
    """The oracle's job: a simulator bug must show up as an unexplained difference."""
    report = run_oracle(select(all_cases(live.rlimit_stack), [name]), machine=live)
    result = report.results[0]
    if result.status == "skipped":
        pytest.skip(result.reason)
    if result.status != "differ":
        pytest.fail(f"{name} now {result.status}: the simulator bug ({KNOWN_SIMULATOR_BUGS[name]}) "
                    "looks fixed; remove it from KNOWN_SIMULATOR_BUGS")
    assert report.exit_status == 1


def _tracefs_state() -> tuple[set[str], set[str]]:
    mounts = {line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()
              if line.split()[2] == "tracefs"}
    instances: set[str] = set()
    for point in mounts:
        inst = Path(point) / "instances"
        if inst.is_dir():
            instances |= {p.name for p in inst.iterdir() if p.name.startswith("pfmodel-")}
    return mounts, instances


def test_nothing_is_left_behind(live, tmp_path):
    """No tracefs mount or instance, no temporary file, no changed rlimit after a run."""
    import resource

    before = _tracefs_state()
    rlimit = resource.getrlimit(resource.RLIMIT_STACK)
    tmp_before = {p.name for p in Path(live.tmpdir).iterdir() if p.name.startswith(("pfprobe", "pfmodel-"))}
    report = run_oracle(select(all_cases(live.rlimit_stack),
                               ["stack/main/write/rlimit-1m-size-2m/sp-at", "file/shared/rw/write/read",
                                "syscall/sys_pread/rw/untouched"]), machine=live)
    assert report.exit_status == 0, [r.to_json() for r in report.failed]
    assert _tracefs_state() == before
    assert resource.getrlimit(resource.RLIMIT_STACK) == rlimit
    tmp_after = {p.name for p in Path(live.tmpdir).iterdir() if p.name.startswith(("pfprobe", "pfmodel-"))}
    assert tmp_after <= tmp_before


CTYPES_CASES = ["anon/private/rw/write/untouched", "anon/private/r/write/read", "anon/private/rw/exec/untouched",
                "anon/private/rw/write/fork", "anon/private/rw/write/mprotect", "special/null/exec",
                "special/noncanonical/read", "stack/growsdown/write/gap-512k/sp-at", "stack/main/write/rsp-1m",
                "syscall/sys_read/r/untouched", "syscall/sys_write/r/untouched", "file/shared/rw/read/beyond-eof"]


def test_ctypes_probe_sees_what_the_c_probe_sees(live):
    """The compiler-free fallback measures the same signal, error code, errno and counts."""
    from pfmodel.oracle.probe import make_prober

    try:
        make_prober("c")
    except Exception as exc:  # no compiler: nothing to compare against
        pytest.skip(f"no C probe to compare with: {exc}")
    cases = select(all_cases(live.rlimit_stack), CTYPES_CASES)
    by_c = _by_name(run_oracle(cases, machine=live, tracing=False, probe="c"))
    by_ctypes = _by_name(run_oracle(cases, machine=live, tracing=False, probe="ctypes"))
    for name in CTYPES_CASES:
        c, t = by_c[name], by_ctypes[name]
        assert t.observation["flavour"] == "ctypes"
        for channel in ("outcome", "signal_err", "faults", "stack", "page"):
            assert c.channel(channel).observed == t.channel(channel).observed, (name, channel)
        assert t.status in (AGREE, EXPECTED), (name, t.to_json())


def test_cli_oracle_json_and_exit_status(live):
    result = CliRunner().invoke(cli, ["oracle", "--json", "--cases", "special/null", "--cases", "special/hole/read"],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert {c["case"] for c in data["cases"]} == {"special/null/read", "special/null/write", "special/null/exec",
                                                 "special/hole/read"}
    assert data["exit_status"] == 0
    assert [row["key"] for row in data["divergence_table"]] == [row.key for row in div.TABLE]


def _allowing_access_error_mutant(spec):
    """A simulator whose access_error never denies (a wrong model the oracle must catch)."""
    from pfmodel.sim.run import run

    return run(spec, overrides={"access_error": lambda error_code, vma: 0})


def test_a_wrong_simulator_is_caught(live):
    cases = select(all_cases(live.rlimit_stack), ["anon/private/r/write/read", "special/hole/read"])
    report = run_oracle(cases, machine=live, simulate=_allowing_access_error_mutant)
    by = _by_name(report)
    wrong = by["anon/private/r/write/read"]
    assert wrong.status == "differ"
    assert wrong.channel("outcome").verdict == "differ"
    assert wrong.channel("outcome").observed == "sigsegv/SEGV_ACCERR"
    assert by["special/hole/read"].status == AGREE       # access_error is never reached there
    assert report.exit_status == 1


def test_cli_oracle_exit_1_on_an_unexplained_difference(live, monkeypatch):
    from pfmodel.oracle import runner

    monkeypatch.setattr(runner, "_default_simulate", _allowing_access_error_mutant)
    result = CliRunner().invoke(cli, ["oracle", "--cases", "anon/private/r/write/read"], catch_exceptions=False)
    assert result.exit_code == 1, result.stdout
    assert "1 unexplained" in result.stdout


def test_cli_oracle_bad_pattern_is_exit_2():
    result = CliRunner().invoke(cli, ["oracle", "--cases", "no/such/case"])
    assert result.exit_code == 2
    assert "no oracle case matches" in result.output


@pytest.mark.slow
def test_full_matrix(live):
    """Every case of the matrix: no unexplained difference, no case that could not run."""
    report = run_oracle(all_cases(live.rlimit_stack), machine=live)
    bad = [(r.case.name, r.status, r.reason,
            {c.channel: (c.predicted, c.observed) for c in r.channels if c.verdict == "differ"})
           for r in report.failed if r.case.name not in KNOWN_SIMULATOR_BUGS]
    assert not bad, bad
    assert report.count(AGREE) + report.count(EXPECTED) >= len(report.results) - len(KNOWN_SIMULATOR_BUGS) \
        - report.count("skipped")
