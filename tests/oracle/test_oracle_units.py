"""Pure unit tests of the oracle: parsing, the case matrix, the scenario builder, the
channel projections and the expected-divergence table.  No probe runs here."""

from __future__ import annotations

import json

import pytest

from pfmodel.errors import UsageError
from pfmodel.oracle import divergence as div
from pfmodel.oracle.build import DATA_PFN, page_prot, pre_state_pte, target_flags
from pfmodel.oracle.cases import (
    KERNEL_HOLE,
    PRE_STATES,
    PROTS,
    VSYSCALL,
    Case,
    _pre_steps,
    all_cases,
    anon_cases,
    select,
    stack_cases,
)
from pfmodel.oracle.compare import CHANNELS, page_value, stack_value
from pfmodel.oracle.machine import Machine, _bracketed, cpu_flags, fs_type, has_capability, swap_devices, \
    vsyscall_mode
from pfmodel.oracle.probe import MapEntry, Observation, PagemapEntry, ProbeError, TraceEvent, parse_output
from pfmodel.oracle.tracefs import _find_tracefs, parse_trace
from pfmodel.sim.constants import PAGE_COPY, PAGE_SHARED, VM_EXEC, VM_MAYSHARE, VM_READ, VM_SHARED, VM_WRITE
from pfmodel.x86.constants import _PAGE_DIRTY, _PAGE_PRESENT, _PAGE_PROTNONE, _PAGE_RW, _PAGE_SPECIAL
from pfmodel.x86.paging import X86_64

pytestmark = pytest.mark.oracle
PFN = X86_64.pte_pfn_mask

ZERO = 0x77


def probe_json(**over) -> dict:
    data = {"v": 1, "pid": 42, "target": "0x7f0000001000", "anchor": "0x7f0000001000", "rsp": "0x7ffd00000000",
            "rlim_stack": 8388608, "faulted": True, "signal": 11, "si_code": 2, "si_addr": "0x7f0000001000",
            "err": "0x6", "trapno": 14, "cr2": "0x7f0000001000", "rip": "0x555555555000", "ret": 0, "errno": 0,
            "minflt": 0, "majflt": 0, "pm_before": "0x0", "pm_after": "0x8100000000001234",
            "maps_before": [["0x7f0000001000", "0x7f0000002000", "r--p", ""],
                            ["0x7ffd00000000", "0x7ffd00021000", "rw-p", "[stack]"]],
            "maps_after": [["0x7f0000001000", "0x7f0000002000", "r--p", ""]]}
    data.update(over)
    return data


# --- probe output -------------------------------------------------------------------------------

def test_parse_output_reads_every_field():
    obs = parse_output("noise\n" + json.dumps(probe_json()) + "\n")
    assert (obs.signal, obs.si_code, obs.err, obs.trapno) == (11, 2, 0x6, 14)
    assert obs.target == 0x7F0000001000 and obs.rsp == 0x7FFD00000000
    assert obs.pm_before.present is False
    assert obs.pm_after.present and obs.pm_after.exclusive and obs.pm_after.pfn == 0x1234
    assert obs.vma_before(0x7F0000001800).perms == "r--p"
    assert obs.vma_after(0x7FFD00000000) is None
    assert obs.mmap_lock() is None and obs.target_faults() is None   # no tracing


def test_parse_output_rejects_setup_errors_non_json_and_missing_fields():
    with pytest.raises(ProbeError, match="could not set the case up"):
        parse_output('{"v":1,"setup_error":"mmap: Cannot allocate memory"}')
    with pytest.raises(ProbeError, match="not JSON"):
        parse_output("Segmentation fault")
    with pytest.raises(ProbeError, match="printed nothing"):
        parse_output("")
    data = probe_json()
    del data["minflt"]
    with pytest.raises(ProbeError, match="minflt"):
        parse_output(json.dumps(data))
    with pytest.raises(ProbeError, match="version"):
        parse_output(json.dumps(probe_json(v=2)))
    with pytest.raises(ProbeError, match="hex"):
        parse_output(json.dumps(probe_json(target="banana")))


def test_exec_result_tells_a_fetch_that_ran_from_one_that_faulted():
    ran = parse_output(json.dumps(probe_json(si_addr="0x7f0000002000")))
    assert ran.exec_result() == "ran"
    fault = parse_output(json.dumps(probe_json()))
    assert fault.exec_result() == "fault"
    returned = parse_output(json.dumps(probe_json(signal=0, si_code=0)))
    assert returned.exec_result() == "returned"
    gp = parse_output(json.dumps(probe_json(trapno=13, si_code=0x80, si_addr="0x0")))
    assert gp.exec_result() == "fault"


def test_pagemap_bits():
    e = PagemapEntry((1 << 63) | (1 << 61) | 0x55)
    assert e.present and e.file_or_shared and not e.exclusive and e.pfn == 0x55
    assert PagemapEntry(1 << 63).pfn is None             # frame hidden without CAP_SYS_ADMIN
    assert PagemapEntry(1 << 62).swapped and PagemapEntry(1 << 62).describe() == "swap"
    assert PagemapEntry(0).describe() == "none"


# --- trace parsing ------------------------------------------------------------------------------

TRACE = """\
# tracer: nop
#
 pfprobe-abc-41    [001] ...1.   10.000001: tracing_mark_write: pfprobe begin 41
 pfprobe-abc-41    [001] d....   10.000002: page_fault_user: address=0x7f0000001000 ip=0x55 error_code=0x6
 pfprobe-abc-41    [001] ...1.   10.000003: tracing_mark_write: pfprobe end 41
 pfprobe-abc-42    [001] d....   10.000004: page_fault_user: address=0x7f0000009000 ip=0x55 error_code=0x4
 pfprobe-abc-42    [001] ...1.   10.000005: tracing_mark_write: pfprobe begin 42
 pfprobe-abc-42    [001] d....   10.000006: page_fault_user: address=0x7f0000001000 ip=0x55 error_code=0x14
 pfprobe-abc-42    [000] .....   10.000007: mmap_lock_start_locking: mm=00000000ab948f4a memcg_id=1 write=false
 kworker/0:1-17    [000] d....   10.000008: page_fault_kernel: address=0x1000 ip=foo+0x1 error_code=0x2
 pfprobe-abc-42    [001] d....   10.000009: page_fault_user: address=0x7f0000001000 ip=0x55 error_code=0x15
 pfprobe-abc-42    [001] d....   10.000010: page_fault_kernel: address=__stop_runtime_ptr_USER_PTR_MAX ip=_copy_to_user+0x10 error_code=0x2
 pfprobe-abc-42    [001] ...1.   10.000011: tracing_mark_write: pfprobe end 42
 pfprobe-abc-42    [001] d....   10.000012: page_fault_user: address=0x7f0000001000 ip=0x55 error_code=0x7
"""


def test_parse_trace_keeps_one_pid_between_its_markers():
    events = parse_trace(TRACE, 42)
    assert [e.event for e in events] == ["page_fault_user", "mmap_lock_start_locking", "page_fault_user",
                                         "page_fault_kernel"]
    assert [e.error_code for e in events if e.event.startswith("page")] == [0x14, 0x15, 0x2]
    assert events[1].write is False
    assert events[3].address is None                    # printed as a symbol
    assert parse_trace(TRACE, 41)[0].error_code == 0x6
    assert parse_trace(TRACE, 7) == []


def _obs(target: int, trace: list[TraceEvent] | None) -> Observation:
    obs = parse_output(json.dumps(probe_json(target=hex(target))))
    obs.trace = trace
    return obs


def test_target_faults_filter_by_page_and_lock_mode():
    trace = [TraceEvent("page_fault_user", 0x7F0000001FFF, 0x14), TraceEvent("page_fault_user", 0x7F0000002000, 0x14),
             TraceEvent("mmap_lock_start_locking", write=False), TraceEvent("mmap_lock_start_locking", write=True)]
    obs = _obs(0x7F0000001000, trace)
    assert [e.address for e in obs.target_faults()] == [0x7F0000001FFF]
    assert obs.mmap_lock() == "write"
    assert _obs(0x7F0000001000, trace[:2]).mmap_lock() == "none"
    assert _obs(0x7F0000001000, trace[:3]).mmap_lock() == "read"
    # a kernel-address target: the tracepoint prints the address as a symbol
    kernel = _obs(KERNEL_HOLE, [TraceEvent("page_fault_user", None, 0x4)])
    assert [e.error_code for e in kernel.target_faults()] == [0x4]


def test_find_tracefs_in_proc_mounts():
    assert _find_tracefs("proc /proc proc rw 0 0\nnodev /sys/kernel/tracing tracefs rw 0 0\n") == "/sys/kernel/tracing"
    assert _find_tracefs("proc /proc proc rw 0 0\n") is None
    # another run's temporary mount is not borrowed (it disappears when that run ends)
    assert _find_tracefs("nodev /tmp/pfmodel-tracefs-ab12 tracefs rw 0 0\n") is None


# --- machine facts --------------------------------------------------------------------------------

def test_machine_text_parsers():
    assert cpu_flags("processor : 0\nflags\t\t: fpu nx smep smap\n") == {"fpu", "nx", "smep", "smap"}
    assert _bracketed("always [madvise] never") == "madvise"
    assert vsyscall_mode("ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0   [vsyscall]\n") == "xonly"
    assert vsyscall_mode("ffffffffff600000-ffffffffff601000 r-xp 00000000 00:00 0   [vsyscall]\n") == "emulate"
    assert vsyscall_mode("") == "none"
    assert swap_devices("Filename Type Size Used Priority\n/dev/zram0 partition 1 0 -2\n") == ["/dev/zram0"]
    info = ("22 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n"
            "30 22 0:26 / /tmp rw - tmpfs tmpfs rw\n")
    assert fs_type("/tmp/x", info) == "tmpfs"
    assert fs_type("/var/tmp", info) == "ext4"
    assert has_capability("CapInh:\t0000000000000000\nCapEff:\t000001ffffffffff\n", 21)
    assert not has_capability("CapEff:\t0000000000000000\n", 21)


# --- the case matrix ---------------------------------------------------------------------------

def test_pre_state_plans_follow_what_the_protection_allows():
    assert _pre_steps("none", "read") is None                      # PROT_NONE cannot be read
    assert _pre_steps("r", "written") is None                      # nor a read-only page written
    assert _pre_steps("r", "fork") == ("rw", ("write", "mprotect:r", "fork"))
    assert _pre_steps("rw", "fork") == ("rw", ("write", "fork"))
    assert _pre_steps("rw", "mprotect") == ("rw", ("write", "mprotect:none", "mprotect:rw"))
    assert _pre_steps("none", "mprotect") == ("rw", ("write", "mprotect:none"))


def test_matrix_covers_the_issue_list():
    cases = all_cases(8 << 20)
    names = {c.name for c in cases}
    assert len(names) == len(cases)
    # every protection x access x pre-state of anonymous private and shared memory that can exist
    for share in ("private", "shared"):
        for prot in PROTS:
            for state in PRE_STATES:
                if _pre_steps(prot, state) is None:
                    continue
                for access in ("read", "write", "exec"):
                    assert f"anon/{share}/{prot}/{access}/{state}" in names
    assert len(anon_cases()) == 2 * 3 * (7 + 6 + 3 + 7 + 7 + 7)
    for needed in ("file/private/rw/read/beyond-eof", "file/shared/rx/exec/beyond-eof", "special/null/read",
                   "special/hole/write", "special/last-user-page/read", "special/kernel-hole/exec",
                   "special/kernel-text/read", "special/vsyscall/exec", "stack/growsdown/write/below-8/sp-far",
                   "stack/main/write/rsp-256k", "stack/main/write/size-rlimit+4k/sp-at",
                   "syscall/sys_read/none/untouched", "syscall/sys_write/hole", "syscall/sys_pread/r/untouched",
                   "syscall/sys_read/rw/untouched"):
        assert needed in names, needed


def test_stack_cases_follow_the_rlimit():
    small = {c.name: c for c in stack_cases(2 << 20)}
    assert small["stack/main/write/size-rlimit/sp-at"].top == 2 << 20
    assert small["stack/growsdown/write/size-rlimit+4k/sp-at"].below == 2 << 20
    unlimited = {c.name: c for c in stack_cases(None)}
    assert unlimited["stack/main/write/size-rlimit/sp-at"].top == 8 << 20


def test_select_prefix_glob_and_no_match():
    cases = all_cases(8 << 20)
    assert all(c.name.startswith("stack/") for c in select(cases, ["stack"]))
    picked = select(cases, ["anon/*/none/*/untouched"])
    assert {c.name for c in picked} == {f"anon/{s}/none/{a}/untouched" for s in ("private", "shared")
                                        for a in ("read", "write", "exec")}
    with pytest.raises(UsageError, match="no oracle case matches"):
        select(cases, ["nothing/like/this"])


def test_case_args_and_access_kinds():
    case = Case(name="x", group="stack", map="growsdown", access="sys_read", below=8, gap=4096,
                sp_from="target", sp_off=8, rlim_stack=4096)
    args = case.args()
    assert "map=growsdown" in args and "gap=4096" in args and "sp_from=target" in args
    assert "rlim_stack=4096" in args and "len=1" in args
    assert case.kind == "write" and not case.user       # read(2) makes the kernel write user memory
    assert Case(name="y", group="syscall", map="hole", access="sys_write").kind == "read"
    assert Case(name="z", group="special", map="raw", access="exec", addr=VSYSCALL).args()[-1] == f"addr={VSYSCALL:#x}"


# --- scenario building: the PTE each pre-state implies (4.4 rules) ----------------------------

def _anon(prot: str, state: str, share: str = "private") -> Case:
    mprot, steps = _pre_steps(prot, state)
    return Case(name="t", group="anon", map="anon", access="write", prot=prot, share=share, mprot=mprot,
                pre=steps, pre_state=state)


def test_pre_state_pte_private_anonymous():
    c = _anon("rw", "read")
    pte = pre_state_pte(c, target_flags(c), False, ZERO)
    assert (pte & PFN) >> 12 == ZERO and pte & _PAGE_SPECIAL and not pte & _PAGE_RW    # the zero page, read-only
    c = _anon("rw", "written")
    pte = pre_state_pte(c, target_flags(c), False, ZERO)
    assert (pte & PFN) >> 12 == DATA_PFN and pte & _PAGE_RW and pte & _PAGE_DIRTY
    c = _anon("rw", "fork")
    pte = pre_state_pte(c, target_flags(c), False, ZERO)
    assert pte & _PAGE_PRESENT and not pte & _PAGE_RW and pte & _PAGE_DIRTY      # write-protected for COW
    c = _anon("rw", "mprotect")                       # rw -> none -> rw: 4.4 leaves PAGE_COPY
    pte = pre_state_pte(c, target_flags(c), False, ZERO)
    assert pte & _PAGE_PRESENT and not pte & _PAGE_RW and pte & _PAGE_DIRTY
    c = _anon("none", "mprotect")
    pte = pre_state_pte(c, target_flags(c), False, ZERO)
    assert not pte & _PAGE_PRESENT and pte & _PAGE_PROTNONE and (pte & PFN) >> 12 == DATA_PFN
    assert pre_state_pte(_anon("rw", "dontneed"), target_flags(_anon("rw", "dontneed")), False, ZERO) == 0


def test_pre_state_pte_shared_and_write_notify():
    c = _anon("rw", "read", share="shared")
    flags = target_flags(c)
    assert flags & VM_SHARED and flags & VM_MAYSHARE
    assert pre_state_pte(c, flags, False, ZERO) & _PAGE_RW      # shmem: PAGE_SHARED, no write notify
    assert page_prot(VM_READ | VM_WRITE | VM_SHARED, write_notify=True) == PAGE_COPY
    assert page_prot(VM_READ | VM_WRITE | VM_SHARED) == PAGE_SHARED
    assert page_prot(VM_EXEC) & (1 << 63) == 0                   # PROT_EXEC only: executable


# --- channel projections -------------------------------------------------------------------------

def test_stack_value_and_page_value():
    page = 0x7F0000010000
    assert stack_value(page, page + 0x1000, page + 8) == "vm_start=page"
    assert stack_value(page - 0x1000, page + 0x1000, page + 8) == "vm_start=page-1p"
    assert stack_value(page + 0x1000, page + 0x1000, page) == "no growth"
    assert stack_value(None, page, page) == "no growth"
    assert page_value(False, None, True, 5) == "populated"
    assert page_value(True, 5, True, 5) == "same frame"
    assert page_value(True, 5, True, 6) == "new frame"
    assert page_value(True, None, True, None) == "present"
    assert page_value(True, 5, False, None) == "none"


# --- the expected-divergence table ---------------------------------------------------------------

MACHINE = Machine(system="Linux", kernel_release="6.18", kernel_version="", arch="x86_64", euid=0,
                  cap_sys_admin=True,
                  cpu_flags={"nx": True, "smep": True, "smap": True, "pku": False, "ospke": False, "la57": False},
                  thp="madvise", swap=[], rlimit_stack=8 << 20, vsyscall="xonly", mmap_min_addr=4096,
                  overcommit_memory=0, pti=False, kernel_text=None, tmpdir="/tmp", tmpdir_fs="ext4")


def _ctx(case: Case, obs: Observation, predicted: dict, observed: dict) -> div.Context:
    full_p = dict.fromkeys(CHANNELS)
    full_p.update(predicted)
    full_o = dict.fromkeys(CHANNELS)
    full_o.update(observed)
    return div.Context(case=case, obs=obs, machine=MACHINE, predicted=full_p, observed=full_o)


def _stack_obs(target: int, rsp: int, maps: list[MapEntry]) -> Observation:
    obs = parse_output(json.dumps(probe_json(target=hex(target), rsp=hex(rsp))))
    obs.maps_before = maps
    return obs


GD_START = 0x7F0004000000
GD = MapEntry(GD_START, GD_START + 0x1000, "rw-p", "")


def test_stack_cushion_row_needs_the_sp_distance():
    case = Case(name="g", group="stack", map="growsdown", access="write", below=8)
    far = _stack_obs(GD_START - 8, 0x7FFD00000000, [GD])
    p, o = {"outcome": "sigsegv/SEGV_MAPERR"}, {"outcome": "handled"}
    assert div.explain(_ctx(case, far, p, o), "outcome").key == "stack-cushion-removed"
    near = _stack_obs(GD_START - 8, GD_START, [GD])      # sp right above: 4.4 would not refuse
    assert div.explain(_ctx(case, near, p, o), "outcome") is None
    # the same values on an ordinary anonymous mapping are not explained
    anon = Case(name="a", group="anon", map="anon", access="write")
    assert div.explain(_ctx(anon, far, p, o), "outcome") is None


def test_guard_gap_row_needs_an_accessible_neighbour_within_1m():
    case = Case(name="g", group="stack", map="growsdown", access="write", below=8, gap=4096)
    target = GD_START - 8
    page = target & ~0xFFF
    p, o = {"outcome": "handled"}, {"outcome": "sigsegv/SEGV_MAPERR"}
    near = _stack_obs(target, target + 8, [MapEntry(page - 0x2000, page - 0x1000, "rw-p", ""), GD])
    assert div.explain(_ctx(case, near, p, o), "outcome").key == "stack-guard-gap"
    far = _stack_obs(target, target + 8, [MapEntry(page - 0x200000, page - 0x100000, "rw-p", ""), GD])
    assert div.explain(_ctx(case, far, p, o), "outcome") is None
    inaccessible = _stack_obs(target, target + 8, [MapEntry(page - 0x2000, page - 0x1000, "---p", ""), GD])
    assert div.explain(_ctx(case, inaccessible, p, o), "outcome") is None


def test_guard_page_row_accepts_only_the_one_page_offset():
    case = Case(name="g", group="stack", map="growsdown", access="write", below=8)
    obs = _stack_obs(GD_START - 8, GD_START, [GD])
    ok = _ctx(case, obs, {"stack": "vm_start=page-1p"}, {"stack": "vm_start=page"})
    assert div.explain(ok, "stack").key == "stack-guard-page-removed"
    two = _ctx(case, obs, {"stack": "vm_start=page-2p"}, {"stack": "vm_start=page"})
    assert div.explain(two, "stack") is None
    # 4.4 grew and then failed on the guard page (both SIGSEGV): explained
    rl = _ctx(case, obs, {"stack": "vm_start=page", "outcome": "sigsegv/SEGV_MAPERR"},
              {"stack": "no growth", "outcome": "sigsegv/SEGV_MAPERR"})
    assert div.explain(rl, "stack").key == "stack-guard-page-removed"
    # ... but not when the kernel's outcome differs
    rl_bad = _ctx(case, obs, {"stack": "vm_start=page", "outcome": "sigsegv/SEGV_MAPERR"},
                  {"stack": "no growth", "outcome": "handled"})
    assert div.explain(rl_bad, "stack") is None


def test_lock_rows_pin_their_values():
    anon = Case(name="a", group="anon", map="anon", access="write")
    obs = parse_output(json.dumps(probe_json()))
    assert div.explain(_ctx(anon, obs, {"mmap_lock": "read"}, {"mmap_lock": "none"}), "mmap_lock").key == "per-vma-lock"
    assert div.explain(_ctx(anon, obs, {"mmap_lock": "none"}, {"mmap_lock": "read"}), "mmap_lock") is None
    hole = Case(name="h", group="special", map="hole", access="write")
    hole_obs = _obs(0x7F0000005000, None)               # outside every VMA: no VMA lock possible
    assert div.explain(_ctx(hole, hole_obs, {"mmap_lock": "read"}, {"mmap_lock": "none"}), "mmap_lock") is None
    gd = Case(name="g", group="stack", map="growsdown", access="write", below=8)
    gobs = _stack_obs(GD_START - 8, GD_START, [GD])
    assert div.explain(_ctx(gd, gobs, {"mmap_lock": "read"}, {"mmap_lock": "write"}), "mmap_lock").key \
        == "stack-expansion-write-lock"


def test_mprotect_and_vsyscall_rows_are_narrow():
    c = _anon("rw", "mprotect")
    obs = parse_output(json.dumps(probe_json()))
    ctx = _ctx(c, obs, {"faults": "1/0"}, {"faults": "0/0"})
    assert div.explain(ctx, "faults").key == "mprotect-restores-write"
    read = Case(name="r", group="anon", map="anon", access="read", prot="rw", mprot="rw",
                pre=c.pre, pre_state="mprotect")
    assert div.explain(_ctx(read, obs, {"faults": "1/0"}, {"faults": "0/0"}), "faults") is None
    vs = Case(name="v", group="special", map="raw", access="read", addr=VSYSCALL, addr_kind="vsyscall")
    vctx = _ctx(vs, obs, {"outcome": "handled"}, {"outcome": "sigsegv/SEGV_MAPERR"})
    assert div.explain(vctx, "outcome").key == "vsyscall-xonly-read"
    # a livelocked prediction is not something the vsyscall change explains
    assert div.explain(_ctx(vs, obs, {"outcome": "bound"}, {"outcome": "sigsegv/SEGV_MAPERR"}), "outcome") is None
    emulate = div.Context(case=vs, obs=obs, machine=Machine(**{**MACHINE.__dict__, "vsyscall": "emulate"}),
                          predicted=vctx.predicted, observed=vctx.observed)
    assert div.explain(emulate, "outcome") is None


def test_cow_reuse_row_only_for_a_copy_after_the_child_exited():
    obs = parse_output(json.dumps(probe_json()))
    gone = Case(name="c", group="cow", map="anon", access="write", pre=("write", "forkexit"), pre_state="forkexit")
    alive = Case(name="c", group="anon", map="anon", access="write", pre=("write", "fork"), pre_state="fork")
    copy = ({"page": "same frame"}, {"page": "new frame"})
    assert div.explain(_ctx(gone, obs, *copy), "page").key == "cow-reuse-by-refcount"
    assert div.explain(_ctx(alive, obs, *copy), "page") is None
    assert div.explain(_ctx(gone, obs, {"page": "new frame"}, {"page": "same frame"}), "page") is None


def test_docs_show_the_table():
    from pathlib import Path

    docs = Path(__file__).resolve().parents[2] / "docs" / "oracle.md"
    assert div.markdown_table() in docs.read_text(), "regenerate the table in docs/oracle.md"


def test_every_row_is_complete():
    keys = [row.key for row in div.TABLE]
    assert len(keys) == len(set(keys))
    for row in div.TABLE:
        assert row.cases and row.predicted and row.kernel and row.change and row.since
        assert row.channels and set(row.channels) <= set(CHANNELS)
        assert set(row.values) <= set(row.channels)
        json.dumps(row.to_json())


# --- the whole comparison on canned observations (the real simulator, no kernel) ------------

def _canned(case: Case, **over) -> Observation:
    obs = parse_output(json.dumps(probe_json(**over)))
    obs.trace = None
    return obs


def test_compare_case_agrees_on_a_write_to_a_read_only_zero_page():
    from pfmodel.oracle.runner import compare_case

    case = Case(name="anon/private/r/write/read", group="anon", map="anon", access="write", prot="r",
                pre=("read",), pre_state="read")
    # the kernel's answer, as the probe printed it: SEGV_ACCERR, err 0x7, no fault counted
    obs = _canned(case, err="0x7", pm_before="0xa000000000003b34", pm_after="0xa000000000003b34")
    result = compare_case(case, obs, MACHINE, _simulate)
    assert result.status == "agree", result.to_json()
    assert result.channel("outcome").predicted == "sigsegv/SEGV_ACCERR"
    assert result.channel("signal_err").predicted == "0x7"           # P|W|U on the zero page
    assert result.channel("page").predicted == "same frame"
    assert result.scenario["access"]["kind"] == "write"
    # a kernel that had said SEGV_MAPERR would be an unexplained difference
    wrong = _canned(case, si_code=1, err="0x7", pm_before="0xa000000000003b34", pm_after="0xa000000000003b34")
    assert compare_case(case, wrong, MACHINE, _simulate).status == "differ"


def test_compare_case_explains_the_removed_stack_cushion():
    from pfmodel.oracle.runner import compare_case

    case = Case(name="stack/growsdown/write/below-8/sp-far", group="stack", map="growsdown", access="write")
    target = GD_START - 8
    maps = [["0x555555554000", "0x555555556000", "r-xp", "/usr/bin/pfprobe"],
            [hex(GD_START), hex(GD_START + 0x1000), "rw-p", ""],
            ["0x7ffd00000000", "0x7ffd00021000", "rw-p", "[stack]"]]
    after = [maps[0], [hex(GD_START - 0x1000), hex(GD_START + 0x1000), "rw-p", ""], maps[2]]
    obs = _canned(case, target=hex(target), anchor=hex(GD_START), rsp="0x7ffd00020000", signal=0, si_code=0,
                  err="0x0", trapno=0, minflt=1, pm_before="0x0", pm_after="0x8100000000001234",
                  maps_before=maps, maps_after=after)
    result = compare_case(case, obs, MACHINE, _simulate)
    assert result.status == "expected", result.to_json()
    assert result.channel("outcome").predicted == "sigsegv/SEGV_MAPERR"
    assert result.channel("outcome").divergence == "stack-cushion-removed"
    assert result.channel("stack").observed == "vm_start=page"
    # with sp right above the target 4.4 grows the stack too (plus its guard page)
    near = _canned(case, target=hex(target), anchor=hex(GD_START), rsp=hex(GD_START), signal=0, si_code=0,
                   err="0x0", trapno=0, minflt=1, pm_before="0x0", pm_after="0x8100000000001234",
                   maps_before=maps, maps_after=after)
    result = compare_case(case, near, MACHINE, _simulate)
    assert result.channel("outcome").verdict == "agree"
    assert (result.channel("stack").predicted, result.channel("stack").divergence) == \
        ("vm_start=page-1p", "stack-guard-page-removed")


def _simulate(spec):
    from pfmodel.sim.run import run

    return run(spec)
