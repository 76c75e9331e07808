"""One scenario per decision of __do_page_fault (seed 1.1; KF 2.1), named after the
decision and the branch taken.  Each asserts the outcome, the trace steps that matter,
and the bits or counters the branch changes."""

import pytest
from simkit import (
    ARCHES,
    HEAP,
    IF,
    NX,
    RW,
    R,
    heap,
    go,
    in_order,
    labels,
    pte,
    spec,
    stack,
    step,
    value,
    changes,
    STACK_TOP,
    UACCESS_IP,
)

from pfmodel.outcome import Outcome
from pfmodel.sim.constants import TASK_SIZE_MAX, VMALLOC_START_32, VMALLOC_START_64, stack_cushion
from pfmodel.sim.spec import CpuSpec, EntrySpec, EnvSpec, KernelSpec, RegsSpec, TaskSpec

A = HEAP[0] + 0x1000  # an address inside the default heap VMA
KPTE = 0x8000000000000163  # __PAGE_KERNEL: P|RW|A|D|G|NX


def vmalloc_addr(arch):
    return VMALLOC_START_64 + 0x5000 if arch == "x86_64" else VMALLOC_START_32 + 0x5000


def kernel_value(arch, pfn=0x1234):
    v = (pfn << 12) | 0x163
    return v | NX if arch != "i386" else v


# --- Step 1-2: kmemcheck_active, kmmio_fault ----------------------------------------------

def test_kmemcheck_active_true_hides_pages_and_carries_on():
    r = go(spec(A, env=EnvSpec(kmemcheck=True)))
    f = r.first
    assert labels(f)[:2] == ["kmemcheck_active", "kmmio_fault"]
    assert value(f, "kmemcheck_active") == "true"
    assert r.outcome == Outcome.handled() and r.access_completed


def test_kmmio_fault_claims_the_fault_returns_handled_kmmio_without_locks():
    r = go(spec(A, env=EnvSpec(kmmio=True), max_faults=2))
    f = r.first
    assert f.outcome == Outcome.handled("kmmio")
    assert labels(f) == ["kmemcheck_active", "kmmio_fault"]
    assert changes(f, "mmap_sem") == []
    # Nothing changed: the access faults again until the bound.
    assert r.bound_hit and len(r.faults) == 2 and not r.access_completed


# --- Step 3: the kernel half ----------------------------------------------------------------

@pytest.mark.parametrize("arch", ARCHES)
def test_fault_in_kernel_space_boundary_is_task_size_max(arch):
    top = TASK_SIZE_MAX[arch]
    below = go(spec(top - 1, vmas=[], error_code=0x4, arch=arch)).first
    at = go(spec(top, vmas=[], error_code=0x4, arch=arch)).first
    assert value(below, "fault_in_kernel_space") == "false"
    assert value(at, "fault_in_kernel_space") == "true"
    # Both SIGSEGV/MAPERR for a user read; the kernel half reports PF_PROT to user space.
    assert below.outcome == at.outcome == Outcome.sigsegv("SEGV_MAPERR")


def test_pae_shares_the_kernel_pmd_so_an_unsynced_vmalloc_mapping_needs_no_fault():
    addr = vmalloc_addr("i386-pae")
    r = go(spec(addr, "read", "kernel", arch="i386-pae", vmas=[],
                kernel=KernelSpec(kernel_synced=False, kernel_mappings=[EntrySpec(addr, kernel_value("i386-pae"))])))
    assert r.faults == [] and r.access_completed


@pytest.mark.parametrize("arch", ["x86_64", "i386"])
def test_kernel_fast_path_vmalloc_fault_syncs_the_top_level_entry_from_init_mm(arch):
    addr = vmalloc_addr(arch)
    s = spec(addr, "read", "kernel", arch=arch, vmas=[],
             kernel=KernelSpec(kernel_synced=False,
                               kernel_mappings=[EntrySpec(addr, kernel_value(arch))]))
    r = go(s)
    f = r.first
    assert f.error_code == 0x0 and f.hardware
    assert in_order(f, ("fault_in_kernel_space", "true"), ("kernel_fast_path", "true"),
                    ("vmalloc_fault", "true"))
    assert f.outcome == Outcome.handled("vmalloc_fault")
    assert r.access_completed and len(r.faults) == 1
    assert changes(f, "mmap_sem") == [] and changes(f, "irqs") == []
    assert r.final["irqs_enabled"] is False  # the kernel-half branch never enables IRQs


def test_kernel_fast_path_vmalloc_fault_unmapped_is_kernel_paging_request_oops():
    addr = vmalloc_addr("x86_64")
    r = go(spec(addr, "read", "kernel", vmas=[]))
    f = r.first
    assert in_order(f, ("kernel_fast_path", "true"), ("vmalloc_fault", "false"), ("kmemcheck_fault", "false"),
                    ("spurious_fault", "false"), ("kprobes_fault", "false"), ("bad_area_pf_user", "false"),
                    ("is_f00f_bug", "false"), ("fixup_exception", "false"), ("is_prefetch", "false"),
                    ("is_errata93", "false"), ("die_notifier_stop", "false"))
    assert r.outcome == Outcome.oops("kernel_paging_request")
    assert r.final["thread"] == {"cr2": hex(addr), "error_code": "0x0", "trap_nr": 14}


def test_kernel_fast_path_kmemcheck_fault_claims_kernel_fault():
    addr = vmalloc_addr("x86_64")
    r = go(spec(addr, "read", "kernel", vmas=[], env=EnvSpec(kmemcheck=True), max_faults=1))
    assert value(r.first, "kmemcheck_fault") == "true"
    assert r.first.outcome == Outcome.handled("kmemcheck")


def test_kernel_fast_path_false_for_protection_fault_goes_to_spurious_fault():
    # A kernel write to a kernel page that is writable now: a stale TLB entry (KF 3.7).
    addr = vmalloc_addr("x86_64")
    s = spec(addr, "write", "kernel", vmas=[], error_code=0x3,
             kernel=KernelSpec(kernel_mappings=[EntrySpec(addr, kernel_value("x86_64"))]))
    r = go(s)
    f = r.first
    assert value(f, "kernel_fast_path") == "false"
    assert value(f, "vmalloc_fault") is None
    assert value(f, "spurious_fault") == "true"
    assert f.outcome == Outcome.handled("spurious_fault")
    assert r.access_completed and not f.hardware


def test_spurious_fault_false_when_the_kernel_page_is_still_read_only():
    addr = vmalloc_addr("x86_64")
    ro = (0x1234 << 12) | 0x161 | NX
    s = spec(addr, "write", "kernel", vmas=[], kernel=KernelSpec(kernel_mappings=[EntrySpec(addr, ro)]))
    r = go(s)
    assert r.first.error_code == 0x3
    assert value(r.first, "spurious_fault") == "false"
    assert r.outcome == Outcome.oops("kernel_paging_request")


def test_kprobes_fault_in_kernel_branch_is_handled_kprobes():
    addr = vmalloc_addr("x86_64")
    r = go(spec(addr, "read", "kernel", vmas=[], env=EnvSpec(kprobes=True), max_faults=1))
    assert in_order(r.first, ("spurious_fault", "false"), ("kprobes_fault", "true"))
    assert r.first.outcome == Outcome.handled("kprobes")


@pytest.mark.parametrize("arch", ARCHES)
def test_user_access_to_kernel_address_is_maperr_with_pf_prot_reported(arch):
    addr = 0xFFFF880000100000 if arch == "x86_64" else TASK_SIZE_MAX[arch] + 0x100000
    r = go(spec(addr, "read", arch=arch, vmas=[]))
    f = r.first
    assert f.error_code == 0x4  # not present, user
    assert in_order(f, ("kernel_fast_path", "false"), ("spurious_fault", "false"), ("kprobes_fault", "false"),
                    ("bad_area_pf_user", "true"), ("address_ge_task_size", "true"))
    assert r.outcome == Outcome.sigsegv("SEGV_MAPERR")
    assert r.final["thread"]["error_code"] == "0x5"  # PF_PROT ORed in for user space
    assert r.final["signals"] == ["SIGSEGV/SEGV_MAPERR"]
    assert "irqs" in step(f, "bad_area_pf_user").changes  # IRQs were still off


# --- Steps 4-7 -----------------------------------------------------------------------------

def test_kprobes_fault_user_half_kernel_mode_is_handled_kprobes():
    r = go(spec(A, "write", "kernel", uaccess=True, env=EnvSpec(kprobes=True), max_faults=1))
    assert value(r.first, "fault_in_kernel_space") == "false"
    assert value(r.first, "kprobes_fault") == "true"
    assert r.first.outcome == Outcome.handled("kprobes")


def test_kprobes_fault_never_claims_a_user_mode_fault():
    r = go(spec(A, env=EnvSpec(kprobes=True)))
    assert value(r.first, "kprobes_fault") == "false"
    assert r.outcome == Outcome.handled()


@pytest.mark.parametrize("arch,bad", [("x86_64", 1 << 51), ("i386-pae", 1 << 50)])
def test_pf_rsvd_user_fault_is_bad_pagetable_oops(arch, bad):
    value_ = (0x4321 << 12) | 0x67 | bad
    r = go(spec(A, arch=arch, entries=[pte(A, value_)]))
    f = r.first
    assert f.error_code == 0xD  # P|U|RSVD from the MMU
    assert in_order(f, ("pf_rsvd", "true"), ("die_notifier_stop", "false"))
    assert value(f, "smap_violation") is None  # oops_end never returned
    assert r.outcome == Outcome.oops("bad_pagetable")
    assert r.final["thread"] == {"cr2": hex(A), "error_code": "0xd", "trap_nr": 14}
    assert any("Corrupted page table" in line for line in r.final["log"])


def test_pf_rsvd_die_notifier_stop_carries_on_to_smap_check():
    value_ = (0x4321 << 12) | 0x67 | (1 << 51)
    r = go(spec(A, entries=[pte(A, value_)], env=EnvSpec(die_notifier="stop")))
    f = r.first
    assert in_order(f, ("pf_rsvd", "true"), ("die_notifier_stop", "true"), ("smap_violation", "false"),
                    ("faulthandler_disabled", "false"), ("user_mode", "true"), ("access_error", "true"))
    # A read with PF_PROT set is an access error.
    assert r.outcome == Outcome.sigsegv("SEGV_ACCERR")


def test_smap_violation_kernel_read_of_user_memory_without_ac_is_fixed_up():
    # 4.4 still tries the exception table for a SMAP violation (historical-bugs 3.2).
    s = spec(A, "read", "kernel", uaccess=True)
    s.regs.flags &= ~(1 << 18)
    r = go(s)
    f = r.first
    assert in_order(f, ("smap_violation", "true"), ("bad_area_pf_user", "false"), ("fixup_exception", "true"),
                    ("in_interrupt", "false"))
    assert value(f, "faulthandler_disabled") is None
    assert r.outcome == Outcome.fixup()
    assert r.final["ip"] != hex(UACCESS_IP["x86_64"])


def test_smap_violation_false_with_ac_set_in_kernel_mode():
    r = go(spec(A, "read", "kernel", uaccess=True))
    assert value(r.first, "smap_violation") == "false"
    assert r.outcome == Outcome.handled() and r.access_completed


def test_smap_violation_false_without_smap():
    s = spec(A, "read", "kernel", uaccess=True, cpu=CpuSpec(smap=False))
    s.regs.flags &= ~(1 << 18)
    r = go(s)
    assert value(r.first, "smap_violation") == "false"
    assert r.access_completed


def test_smap_violation_null_pointer_in_kernel_is_null_pointer_oops():
    r = go(spec(0x10, "read", "kernel", vmas=[]))
    assert value(r.first, "smap_violation") == "true"
    assert r.outcome == Outcome.oops("null_pointer_dereference")
    assert any("NULL pointer dereference" in line for line in r.final["log"])


@pytest.mark.parametrize("field,val", [("pagefault_disabled", 1), ("preempt_count", 1)])
def test_faulthandler_disabled_kernel_uaccess_is_fixed_up(field, val):
    task = TaskSpec(**{field: val})
    r = go(spec(A, "write", "kernel", uaccess=True, task=task))
    f = r.first
    assert in_order(f, ("faulthandler_disabled", "true"), ("bad_area_pf_user", "false"),
                    ("fixup_exception", "true"))
    assert value(f, "down_read_trylock") is None  # no mmap_sem, no paging in
    assert r.outcome == Outcome.fixup()
    assert r.final["pte"] is None  # nothing was mapped


def test_faulthandler_disabled_in_interrupt_fixup_records_in_interrupt():
    r = go(spec(A, "write", "kernel", uaccess=True, task=TaskSpec(in_interrupt=True)))
    assert in_order(r.first, ("faulthandler_disabled", "true"), ("fixup_exception", "true"),
                    ("in_interrupt", "true"))
    assert r.outcome == Outcome.fixup()


def test_faulthandler_disabled_user_mode_is_sigsegv_maperr():
    r = go(spec(A, "write", task=TaskSpec(pagefault_disabled=1)))
    assert value(r.first, "faulthandler_disabled") == "true"
    assert r.outcome == Outcome.sigsegv("SEGV_MAPERR")


def test_faulthandler_disabled_no_mm_kernel_thread_without_fixup_oopses():
    r = go(spec(A, "read", "kernel", regs=RegsSpec(flags=0x2 | IF | (1 << 18)), task=TaskSpec(has_mm=False)))
    assert value(r.first, "faulthandler_disabled") == "true"
    assert r.outcome == Outcome.oops("kernel_paging_request")


# --- Step 8-10: user mode, IRQs, the flags word --------------------------------------------

def test_user_mode_true_enables_irqs_ors_pf_user_and_fault_flag_user():
    r = go(spec(A, "read"))
    f = r.first
    s = step(f, "user_mode")
    assert s.value == "true"
    assert s.changes == {"irqs": "on", "error_code": "|PF_USER", "fault_flags": "0x54"}
    assert step(f, "handle_mm_fault").changes["mm_fault_call"] == "0x54"
    assert value(f, "regs_if") is None


def test_user_mode_implicit_access_gets_pf_user_ored_in():
    # An implicit supervisor access at CPL 3 (hardware U/S=0); SMAP off so it gets there.
    r = go(spec(A, "read", implicit=True, cpu=CpuSpec(smap=False)))
    f = r.first
    assert f.error_code == 0x0
    assert step(f, "user_mode").changes["error_code"] == "|PF_USER"
    assert r.outcome == Outcome.handled()


@pytest.mark.parametrize("flags,irqs", [(0x2 | IF | (1 << 18), True), (0x2 | (1 << 18), False)])
def test_regs_if_decides_whether_a_kernel_fault_enables_irqs(flags, irqs):
    s = spec(A, "write", "kernel", uaccess=True)
    s.regs.flags = flags
    r = go(s)
    f = r.first
    assert value(f, "user_mode") == "false"
    assert value(f, "regs_if") == ("true" if irqs else "false")
    assert changes(f, "irqs") == (["on"] if irqs else [])
    assert r.final["irqs_enabled"] is irqs
    assert step(f, "handle_mm_fault").changes["mm_fault_call"] == "0x15"


@pytest.mark.parametrize("kind,write,flags", [("write", "true", "0x55"), ("read", "false", "0x54")])
def test_pf_write_sets_fault_flag_write(kind, write, flags):
    f = go(spec(A, kind)).first
    assert value(f, "pf_write") == write
    assert step(f, "handle_mm_fault").changes["mm_fault_call"] == flags


# --- Step 11: mmap_sem -------------------------------------------------------------------------

def test_down_read_trylock_contended_kernel_no_extable_is_oops():
    s = spec(A, "write", "kernel", env=EnvSpec(mmap_sem="contended"))
    s.regs.flags |= 1 << 18
    r = go(s)
    f = r.first
    assert in_order(f, ("down_read_trylock", "false"), ("search_exception_tables", "false"),
                    ("bad_area_pf_user", "false"), ("fixup_exception", "false"))
    assert value(f, "find_vma") is None
    assert changes(f, "mmap_sem") == []  # never taken, never released
    assert r.outcome == Outcome.oops("kernel_paging_request")
    assert r.final["mmap_sem"] == 0


def test_down_read_trylock_contended_kernel_with_extable_blocks_in_down_read():
    r = go(spec(A, "write", "kernel", uaccess=True, env=EnvSpec(mmap_sem="contended")))
    f = r.first
    assert in_order(f, ("down_read_trylock", "false"), ("search_exception_tables", "true"), ("find_vma", "found"))
    assert changes(f, "mmap_sem") == ["acquire", "release"]
    assert r.outcome == Outcome.handled() and r.access_completed


def test_down_read_trylock_contended_user_mode_skips_the_exception_table():
    r = go(spec(A, "write", env=EnvSpec(mmap_sem="contended")))
    f = r.first
    assert value(f, "down_read_trylock") == "false"
    assert value(f, "search_exception_tables") is None
    assert changes(f, "mmap_sem") == ["acquire", "release"]
    assert r.access_completed


def test_down_read_trylock_success_acquires_on_that_step():
    f = go(spec(A)).first
    assert step(f, "down_read_trylock").changes == {"mmap_sem": "acquire"}
    assert step(f, "fault_retry").changes == {"mmap_sem": "release"}


# --- Steps 12-16: find_vma and the stack -----------------------------------------------------

def test_find_vma_none_is_sigsegv_maperr_and_releases_mmap_sem():
    r = go(spec(0x800000, vmas=[heap()]))
    f = r.first
    assert value(f, "find_vma") == "none"
    assert step(f, "find_vma").changes == {"mmap_sem": "release"}
    assert r.outcome == Outcome.sigsegv("SEGV_MAPERR")
    assert r.final["mmap_sem"] == 0 and r.final["irqs_enabled"] is True


def test_vm_start_le_address_false_and_not_growsdown_is_maperr():
    r = go(spec(HEAP[0] - 0x1000, vmas=[heap()]))
    f = r.first
    assert in_order(f, ("find_vma", "found"), ("vm_start_le_address", "false"), ("vm_growsdown", "false"))
    assert r.outcome == Outcome.sigsegv("SEGV_MAPERR")


@pytest.mark.parametrize("arch,cushion", [("x86_64", 65792), ("i386-pae", 65664), ("i386", 65664)])
def test_stack_cushion_boundary_below_the_stack_vma(arch, cushion):
    assert stack_cushion(arch) == cushion
    st = stack(arch, pages=4)
    sp = st.start + 0x800       # sp near the bottom of a small stack VMA
    beyond = sp - cushion - 1   # address + cushion < sp: refused
    within = sp - cushion       # address + cushion == sp: allowed, the stack grows
    r_out = go(spec(beyond, "write", arch=arch, vmas=[st], regs=RegsSpec(sp=sp)))
    assert in_order(r_out.first, ("vm_start_le_address", "false"), ("vm_growsdown", "true"),
                    ("stack_cushion_exceeded", "true"))
    assert r_out.outcome == Outcome.sigsegv("SEGV_MAPERR")
    assert r_out.final["vmas"][0]["start"] == hex(st.start)

    r_in = go(spec(within, "write", arch=arch, vmas=[st], regs=RegsSpec(sp=sp)))
    f = r_in.first
    assert in_order(f, ("stack_cushion_exceeded", "false"), ("prev_blocks_growth", "false"),
                    ("acct_stack_growth", "ok"), ("expand_stack", "false"), ("access_error", "false"))
    page = within & ~0xFFF
    assert step(f, "acct_stack_growth").changes == {"stack_grown": hex(page)}
    # The guard page: the first fault on the new lowest page grows one more page.
    assert in_order(f, ("guard_lowest_page", "true"), ("guard_prev_adjacent", "false"),
                    ("acct_stack_growth", "ok"), ("check_stack_guard_page", "false"))
    assert r_in.final["vmas"][0]["start"] == hex(page - 0x1000)
    assert r_in.access_completed and r_in.outcome == Outcome.handled()


def test_stack_cushion_not_checked_for_kernel_faults_the_stack_grows():
    st = stack("x86_64", pages=4)
    addr = st.start - 0x100000  # a megabyte below, far beyond the cushion
    r = go(spec(addr, "write", "kernel", vmas=[st], uaccess=True, regs=RegsSpec(sp=st.end - 8)))
    f = r.first
    assert value(f, "vm_growsdown") == "true"
    assert value(f, "stack_cushion_exceeded") is None
    assert value(f, "expand_stack") == "false"
    assert r.access_completed


def test_expand_stack_fails_below_a_non_stack_mapping_is_maperr():
    st = stack("x86_64", pages=4)
    below = heap(start=st.start - 0x3000, end=st.start - 0x1000)
    addr = st.start - 0x1000 + 0x10  # the gap page: growing would touch ``below``
    r = go(spec(addr, "write", vmas=[below, st], regs=RegsSpec(sp=st.start + 0x10)))
    f = r.first
    assert in_order(f, ("vm_start_le_address", "false"), ("prev_blocks_growth", "true"), ("expand_stack", "true"))
    assert value(f, "anon_vma_prepare") is None
    assert r.outcome == Outcome.sigsegv("SEGV_MAPERR")
    assert r.final["vmas"][1]["start"] == hex(st.start)


# --- Step 17: access_error (seed 1.1.8) --------------------------------------------------------

@pytest.mark.parametrize("flags,kind,entries,denied,code", [
    (R, "write", [], "true", "SEGV_ACCERR"),          # write without VM_WRITE
    (RW, "write", [], "false", None),                  # write with VM_WRITE
    (0x0, "read", [], "true", "SEGV_ACCERR"),          # PROT_NONE: read not present, no R/W/X
    (0x2, "read", [], "false", None),                  # write-only VMA allows reads (x86 can't say so)
])
def test_access_error_table(flags, kind, entries, denied, code):
    r = go(spec(A, kind, vmas=[heap(flags)], entries=entries))
    assert value(r.first, "access_error") == denied
    if code:
        assert r.outcome == Outcome.sigsegv(code)
        assert step(r.first, "access_error").changes == {"mmap_sem": "release"}
    else:
        assert r.first.outcome.kind == "handled"


def test_access_error_write_without_vm_write_is_sigsegv_accerr():
    r = go(spec(A, "write", vmas=[heap(R)]))
    assert r.first.error_code == 0x6
    assert value(r.first, "access_error") == "true"
    assert r.outcome == Outcome.sigsegv("SEGV_ACCERR")
    assert r.final["thread"]["error_code"] == "0x6"


def test_access_error_read_with_pf_prot_is_sigsegv_accerr():
    # A present user page the user may not read: a supervisor page in a readable VMA.
    r = go(spec(A, "read", vmas=[heap(RW)], entries=[pte(A, (0x4321 << 12) | 0x63 | NX)]))
    assert r.first.error_code == 0x5
    assert value(r.first, "access_error") == "true"
    assert r.outcome == Outcome.sigsegv("SEGV_ACCERR")


# --- Steps 18-24: handle_mm_fault, RETRY, errors, accounting ----------------------------------

def test_fault_retry_allow_retry_no_fatal_signal_retries_once_with_tried():
    r = go(spec(A, "read", vmas=[heap(R, kind="file")], env=EnvSpec(fault=["RETRY", "0"])))
    f = r.first
    assert in_order(f, ("handle_mm_fault", "VM_FAULT_RETRY"), ("fault_retry", "true"), ("allow_retry", "true"),
                    ("fatal_signal_pending", "false"), ("find_vma", "found"), ("handle_mm_fault", "0"),
                    ("fault_retry", "false"), ("fault_error", "false"), ("major", "false"))
    calls = [s.changes["mm_fault_call"] for s in f.trace if s.label == "handle_mm_fault"]
    assert calls == ["0x54", "0x70"]  # ALLOW_RETRY cleared, TRIED set
    assert step(f, "allow_retry").changes == {"fault_flags": "0x70"}
    assert changes(f, "mmap_sem") == ["acquire", "release", "acquire", "release"]
    assert r.access_completed and r.final["min_flt"] == 1


def test_fault_retry_kernel_flags_go_from_0x14_to_0x30():
    s = spec(A, "read", "kernel", uaccess=True, vmas=[heap(R, kind="file")], env=EnvSpec(fault=["RETRY", "0"]))
    f = go(s).first
    calls = [s.changes["mm_fault_call"] for s in f.trace if s.label == "handle_mm_fault"]
    assert calls == ["0x14", "0x30"]


def test_fault_retry_with_fatal_signal_pending_user_returns_fatal_signal():
    s = spec(A, "read", vmas=[heap(R, kind="file")], env=EnvSpec(fault=["RETRY"]),
             task=TaskSpec(fatal_signal_pending=True))
    r = go(s)
    f = r.first
    assert in_order(f, ("fault_retry", "true"), ("allow_retry", "true"), ("fatal_signal_pending", "true"),
                    ("flags_user", "true"))
    assert r.outcome == Outcome.fatal_signal()
    assert changes(f, "mmap_sem") == ["acquire", "release"]
    assert r.final["maj_flt"] == r.final["min_flt"] == 0


def test_fault_retry_with_fatal_signal_pending_kernel_goes_to_no_context_sigbus_fixup():
    s = spec(A, "read", "kernel", uaccess=True, vmas=[heap(R, kind="file")], env=EnvSpec(fault=["RETRY"]),
             task=TaskSpec(fatal_signal_pending=True))
    r = go(s)
    assert in_order(r.first, ("fatal_signal_pending", "true"), ("flags_user", "false"), ("fixup_exception", "true"))
    assert r.outcome == Outcome.fixup()
    assert r.final["signals"] == []


def test_fault_retry_kernel_fatal_signal_without_extable_oopses():
    s = spec(A, "read", "kernel", vmas=[heap(R, kind="file")], env=EnvSpec(fault=["RETRY"]),
             task=TaskSpec(fatal_signal_pending=True))
    s.regs.flags |= 1 << 18
    assert go(s).outcome == Outcome.oops("kernel_paging_request")


def test_fault_retry_twice_second_pass_fatal_signal_in_killable_wait():
    swap = 0x5 << 9 | (1 << 1)  # swap type 1, offset 5
    s = spec(A, "read", entries=[pte(A, swap)], env=EnvSpec(page_lock="contended", fatal_signal_in_wait=True))
    r = go(s)
    f = r.first
    assert [v for lbl, v in f.trace.keys() if lbl == "lock_page_or_retry"] == ["false", "false"]
    assert in_order(f, ("fault_retry", "true"), ("allow_retry", "true"), ("fatal_signal_pending", "false"),
                    ("fault_retry", "true"), ("allow_retry", "false"), ("flags_user", "true"))
    assert r.outcome == Outcome.fatal_signal()
    assert changes(f, "mmap_sem") == ["acquire", "release", "acquire", "release"]
    assert r.final["fatal_signal_pending"] is True and r.final["mmap_sem"] == 0


def test_fault_retry_twice_kernel_mode_sigbus_no_context_fixup():
    swap = 0x5 << 9 | (1 << 1)
    s = spec(A, "read", "kernel", uaccess=True, entries=[pte(A, swap)],
             env=EnvSpec(page_lock="contended", fatal_signal_in_wait=True))
    r = go(s)
    assert in_order(r.first, ("allow_retry", "false"), ("flags_user", "false"), ("fixup_exception", "true"))
    assert r.outcome == Outcome.fixup()


def test_fault_retry_second_pass_lock_contended_without_signal_blocks_and_succeeds():
    swap = 0x5 << 9 | (1 << 1)
    r = go(spec(A, "read", entries=[pte(A, swap)], env=EnvSpec(page_lock="contended")))
    f = r.first
    assert [v for lbl, v in f.trace.keys() if lbl == "lock_page_or_retry"] == ["false", "true"]
    assert r.outcome == Outcome.handled() and r.access_completed


def test_major_true_counts_maj_flt_minor_counts_min_flt():
    r = go(spec(A, "read", vmas=[heap(R, kind="file")], env=EnvSpec(fault=["MAJOR"])))
    f = r.first
    assert step(f, "major").changes == {"maj_flt": "+1"} and value(f, "major") == "true"
    assert r.outcome == Outcome.handled(major=True)
    assert (r.final["maj_flt"], r.final["min_flt"]) == (1, 0)
    r = go(spec(A, "read"))
    assert step(r.first, "major").changes == {"min_flt": "+1"}
    assert (r.final["maj_flt"], r.final["min_flt"]) == (0, 1)


def test_major_accumulates_across_the_retry():
    r = go(spec(A, "read", vmas=[heap(R, kind="file")], env=EnvSpec(fault=["MAJOR|RETRY", "0"])))
    assert value(r.first, "major") == "true"
    assert r.final["maj_flt"] == 1


@pytest.mark.parametrize("arch", ["i386", "i386-pae"])
def test_v8086_mode_records_vga_window_writes(arch):
    vga = heap(RW, start=0xA0000, end=0xC0000)
    r = go(spec(0xA1000, "write", arch=arch, vmas=[vga], regs=RegsSpec(vm86=True)))
    assert value(r.first, "v8086_mode") == "true"
    assert r.final["screen_bitmap"] == 1 << 1  # (0xA1000 - 0xA0000) >> 12
    assert r.access_completed


def test_v8086_mode_not_recorded_on_x86_64():
    assert value(go(spec(A)).first, "v8086_mode") is None
