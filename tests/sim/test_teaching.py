"""The teaching corner cases of historical-bugs.md §10 (T1-T19), each as a scenario whose
outcome, trace and bits show the surprising behaviour."""

import pytest
from simkit import AC, HEAP, IF, NX, RW, RW_SHARED, R, RX, go, heap, in_order, pte, spec, stack, step, value

from pfmodel.outcome import Outcome
from pfmodel.sim.constants import VSYSCALL_ADDR
from pfmodel.sim.spec import CpuSpec, EntrySpec, EnvSpec, KernelSpec, RegsSpec, TaskSpec

A = HEAP[0] + 0x1000
PFN = 0x4321
RO = (PFN << 12) | 0x25 | NX


def test_t1_copy_to_user_into_read_only_vma_is_efault_not_sigsegv():
    r = go(spec(A, "write", "kernel", uaccess=True, vmas=[heap(R)], entries=[pte(A, RO)]))
    f = r.first
    assert f.error_code == 0x3  # WRITE|PROT, no USER
    assert in_order(f, ("access_error", "true"), ("bad_area_pf_user", "false"), ("fixup_exception", "true"))
    assert r.outcome == Outcome.fixup() and r.final["signals"] == []
    # The same write from user mode is SIGSEGV/ACCERR.
    assert go(spec(A, "write", vmas=[heap(R)], entries=[pte(A, RO)])).outcome == Outcome.sigsegv("SEGV_ACCERR")


def test_t1_copy_to_user_into_cow_page_of_writable_vma_succeeds():
    r = go(spec(A, "write", "kernel", uaccess=True, vmas=[heap(RW)], entries=[pte(A, RO)], env=EnvSpec(reuse=False)))
    assert r.outcome == Outcome.handled() and r.access_completed
    assert (int(r.final["pte"], 16) >> 12) & 0xFFFFFFFFF != PFN  # a private copy


def test_t2_stack_grows_only_within_the_cushion_for_user_faults():
    st = stack("x86_64", pages=4)
    sp = st.start
    assert go(spec(sp - 65792, "write", vmas=[st], regs=RegsSpec(sp=sp))).access_completed
    assert go(spec(sp - 65793, "write", vmas=[st], regs=RegsSpec(sp=sp))).outcome == Outcome.sigsegv("SEGV_MAPERR")
    # Kernel-mode faults ignore sp.
    assert go(spec(sp - 0x200000, "write", "kernel", uaccess=True, vmas=[st], regs=RegsSpec(sp=sp))).access_completed


@pytest.mark.parametrize("kind", ["read", "write"])
def test_t3_prot_none_is_accerr_and_a_hole_is_maperr(kind):
    r = go(spec(A, kind, vmas=[heap(0x0)]))
    assert r.outcome == Outcome.sigsegv("SEGV_ACCERR")
    # A PROT_NONE pte (PROTNONE, P clear) in it: the hardware sees not-present, same verdict.
    r = go(spec(A, kind, vmas=[heap(0x0)], entries=[pte(A, (PFN << 12) | 0x120)]))
    assert r.first.error_code & 0x1 == 0 and r.outcome == Outcome.sigsegv("SEGV_ACCERR")
    assert go(spec(HEAP[1] + 0x1000, kind)).outcome == Outcome.sigsegv("SEGV_MAPERR")


def test_t4_exec_from_a_non_exec_vma_takes_two_faults():
    r = go(spec(A, "fetch", vmas=[heap(R)]))
    assert [f.error_code for f in r.faults] == [0x14, 0x15]
    assert value(r.faults[0], "access_error") == "false"  # 4.4 ignores VM_EXEC for not-present
    assert r.faults[0].outcome == Outcome.handled()
    assert value(r.faults[1], "access_error") == "true"
    assert r.outcome == Outcome.sigsegv("SEGV_ACCERR")


def test_t4_without_nx_readable_means_executable():
    r = go(spec(A, "fetch", vmas=[heap(R)], cpu=CpuSpec(nx=False, smep=False)))
    assert r.faults[0].error_code == 0x4  # no I/D bit without NX or SMEP
    assert r.access_completed and len(r.faults) == 1
    r = go(spec(A, "fetch", vmas=[heap(RX)]))
    assert r.access_completed


def test_t5_pagefault_disabled_uaccess_returns_short_via_fixup():
    r = go(spec(A, "read", "kernel", uaccess=True, task=TaskSpec(pagefault_disabled=1)))
    assert value(r.first, "faulthandler_disabled") == "true"
    assert r.outcome == Outcome.fixup() and r.final["pte"] is None


def test_t6_kernel_thread_without_mm_fixup_or_oops():
    assert go(spec(A, "read", "kernel", uaccess=True, task=TaskSpec(has_mm=False))).outcome == Outcome.fixup()
    s = spec(A, "read", "kernel", task=TaskSpec(has_mm=False))
    s.regs.flags |= AC
    assert go(s).outcome == Outcome.oops("kernel_paging_request")


def test_t7_kernel_bug_fault_while_holding_mmap_sem_does_not_deadlock():
    s = spec(A, "write", "kernel", env=EnvSpec(mmap_sem="contended"))
    s.regs.flags |= AC
    r = go(s)
    assert value(r.first, "search_exception_tables") == "false"
    assert r.outcome.kind == "oops" and r.final["mmap_sem"] == 0
    r = go(spec(A, "write", "kernel", uaccess=True, env=EnvSpec(mmap_sem="contended")))
    assert value(r.first, "search_exception_tables") == "true" and r.access_completed


@pytest.mark.parametrize("mapped", [True, False])
def test_t8_user_access_to_kernel_address_always_reports_prot(mapped):
    addr = 0xFFFF880000200000
    km = [EntrySpec(addr, (0x200 << 12) | 0x163 | NX)] if mapped else []
    r = go(spec(addr, "read", vmas=[], kernel=KernelSpec(kernel_mappings=km)))
    assert r.first.error_code == (0x5 if mapped else 0x4)
    assert r.final["thread"]["error_code"] == "0x5"  # the same either way
    assert r.outcome == Outcome.sigsegv("SEGV_MAPERR")


def test_t9_vmalloc_fault_is_lock_free_even_in_interrupt_without_mm():
    addr = 0xFFFFC90000005000
    s = spec(addr, "read", "kernel", vmas=[], task=TaskSpec(has_mm=False, in_interrupt=True),
             kernel=KernelSpec(kernel_synced=False, kernel_mappings=[EntrySpec(addr, (0x77 << 12) | 0x163 | NX)]))
    r = go(s)
    assert r.first.outcome == Outcome.handled("vmalloc_fault")
    assert [s_.changes for s_ in r.first.trace if s_.changes] == []  # no lock, no IRQ change
    assert r.access_completed


def test_t10_spurious_write_fault_on_a_kernel_page_made_writable():
    addr = 0xFFFFC90000005000
    r = go(spec(addr, "write", "kernel", vmas=[], error_code=0x3,
                kernel=KernelSpec(kernel_mappings=[EntrySpec(addr, (0x77 << 12) | 0x163 | NX)])))
    assert r.first.outcome == Outcome.handled("spurious_fault") and r.access_completed
    # Not-present faults are never spurious: 0x2 skips spurious_fault's walk.
    r = go(spec(addr, "write", "kernel", vmas=[], error_code=0x2,
                kernel=KernelSpec(kernel_mappings=[EntrySpec(addr, (0x77 << 12) | 0x163 | NX)])))
    assert value(r.first, "kernel_fast_path") == "true"


def test_t11_hardware_quirks_are_ignored_silently():
    r = go(spec(0x900000, env=EnvSpec(is_prefetch=True), max_faults=1))
    assert r.first.outcome == Outcome.handled("prefetch") and r.final["signals"] == []
    r = go(spec(0x900000, env=EnvSpec(errata=True), max_faults=1))
    assert r.first.outcome == Outcome.handled("errata")


def test_t12_vsyscall_fetch_is_emulated_in_bad_area_nosemaphore():
    km = [EntrySpec(VSYSCALL_ADDR, (0x1234 << 12) | 0x165 | NX)]
    r = go(spec(VSYSCALL_ADDR, "fetch", vmas=[], kernel=KernelSpec(kernel_mappings=km), max_faults=1))
    assert in_order(r.first, ("fault_in_kernel_space", "true"), ("bad_area_pf_user", "true"),
                    ("vsyscall_emulated", "true"))
    assert r.first.outcome == Outcome.handled("vsyscall")


def test_t13_retry_drops_mmap_sem_and_accounting_happens_once_after_the_last_pass():
    r = go(spec(A, "read", vmas=[heap(R, kind="file")], env=EnvSpec(fault=["MAJOR|RETRY", "0"])))
    f = r.first
    assert [s.value for s in f.trace if s.label == "major"] == ["true"]
    assert (r.final["maj_flt"], r.final["min_flt"]) == (1, 0)
    assert r.final["vm_events"]["PGFAULT"] == 2  # counted on each pass


def test_t14_user_oom_returns_to_user_space_without_a_signal():
    r = go(spec(A, "write", env=EnvSpec(alloc_fail=["anon_page"])))
    assert r.outcome == Outcome.oom() and r.final["signals"] == [] and r.final["pte"] == "0x0"


def test_t15_zero_page_read_then_write_copies():
    r = go(spec(A, "read"))
    zero = int(r.final["pte"], 16)
    assert zero & 0x200 and not zero & 0x2
    r = go(spec(A, "write", entries=[pte(A, zero)]))
    new = int(r.final["pte"], 16)
    assert new >> 12 != zero >> 12 and new & 0x42 == 0x42 and not new & 0x200


@pytest.mark.parametrize("flags", [0x2 | IF, 0x2 | IF | AC])
def test_t16_t19_implicit_supervisor_access_at_cpl3_is_a_smap_violation_even_with_ac(flags):
    # The CPU reading a descriptor table in user memory for a user instruction.
    r = go(spec(A, "read", implicit=True, regs=RegsSpec(flags=flags)))
    f = r.first
    assert f.error_code == 0x0
    assert in_order(f, ("smap_violation", "true"), ("bad_area_pf_user", "false"), ("fixup_exception", "false"))
    assert value(f, "user_mode") is None  # PF_USER is never ORed in on this path
    assert r.outcome == Outcome.oops("kernel_paging_request")


def test_t17_reserved_bits_kill_even_user_mode_and_kernel_half_oopses():
    r = go(spec(A, "read", entries=[pte(A, (PFN << 12) | 0x25 | (1 << 50))]))
    assert r.outcome == Outcome.oops("bad_pagetable")
    addr = 0xFFFFC90000005000
    km = [EntrySpec(addr, (0x77 << 12) | 0x163 | (1 << 50))]
    s = spec(addr, "read", "kernel", vmas=[], kernel=KernelSpec(kernel_mappings=km))
    r = go(s)
    assert r.first.error_code == 0x9
    assert in_order(r.first, ("kernel_fast_path", "false"), ("spurious_fault", "false"))
    assert r.outcome == Outcome.oops("kernel_paging_request")


@pytest.mark.parametrize("vma,env,outcome", [
    (heap(RW_SHARED), EnvSpec(), Outcome.sigbus("BUS_ADRERR")),                     # shared anon, no ops
    (heap(R, kind="file", fault_handler=False), EnvSpec(), Outcome.sigbus("BUS_ADRERR")),
    (heap(R, kind="file"), EnvSpec(fault=["SIGBUS"]), Outcome.sigbus("BUS_ADRERR")),   # beyond EOF
    (heap(R, kind="file"), EnvSpec(fault=["HWPOISON"]), Outcome.sigbus("BUS_MCEERR_AR")),
])
def test_t18_sigbus_when_the_vma_is_fine_but_backing_failed(vma, env, outcome):
    assert go(spec(A, "read", vmas=[vma], env=env)).outcome == outcome


def test_t19_ac_excuses_smap_only_in_kernel_mode():
    s = spec(A, "read", "kernel", uaccess=True)
    assert value(go(s).first, "smap_violation") == "false"
    assert step(go(s).first, "smap_violation").function == "smap_violation"
