"""The error paths: mm_fault_error (seed 1.1.13), pagefault_out_of_memory (1.1.13.1),
do_sigbus, the bad_area family, no_context and the oops (KF 2.2.8-2.2.25)."""

import pytest
from simkit import HEAP, NX, RW, R, go, heap, in_order, pte, spec, step, value

from pfmodel.outcome import Outcome
from pfmodel.sim import KERNEL_FUNCTIONS, patched
from pfmodel.sim.constants import VM_FAULT_FALLBACK, VSYSCALL_ADDR
from pfmodel.sim.spec import FAULT_RESULTS, EntrySpec, EnvSpec, KernelSpec, TaskSpec

A = HEAP[0] + 0x1000
FILE_R = [heap(R, kind="file")]


# --- mm_fault_error ----------------------------------------------------------------------------

@pytest.mark.parametrize("oom,steps,killer", [
    ("killed", [("mem_cgroup_oom_synchronize", "false"), ("oom_lock_trylock", "true"), ("out_of_memory", "true")], True),
    ("memcg", [("mem_cgroup_oom_synchronize", "true")], False),
    ("lock_busy", [("mem_cgroup_oom_synchronize", "false"), ("oom_lock_trylock", "false")], False),
    ("disabled", [("mem_cgroup_oom_synchronize", "false"), ("oom_lock_trylock", "true"),
                  ("out_of_memory", "false")], False),
])
def test_vm_fault_oom_user_runs_pagefault_out_of_memory(oom, steps, killer):
    r = go(spec(A, "read", vmas=FILE_R, env=EnvSpec(fault=["OOM"], oom=oom)))
    f = r.first
    assert in_order(f, ("vm_fault_oom", "true"), ("oom_pf_user", "true"), *steps)
    assert f.trace.keys()[-1] == steps[-1]
    assert r.outcome == Outcome.oom()
    assert (step(f, "out_of_memory") is not None and "oom_killer" in step(f, "out_of_memory").changes) is killer
    assert r.final["signals"] == []


def test_vm_fault_oom_kernel_goes_to_no_context_never_the_oom_killer():
    r = go(spec(A, "read", "kernel", vmas=FILE_R, env=EnvSpec(fault=["OOM"]), uaccess=True))
    f = r.first
    assert in_order(f, ("vm_fault_oom", "true"), ("oom_pf_user", "false"), ("fixup_exception", "true"))
    assert value(f, "mem_cgroup_oom_synchronize") is None
    assert r.outcome == Outcome.fixup()


def test_vm_fault_oom_kernel_without_fixup_oopses():
    s = spec(A, "read", "kernel", vmas=FILE_R, env=EnvSpec(fault=["OOM"]))
    s.regs.flags |= 1 << 18
    assert go(s).outcome == Outcome.oops("kernel_paging_request")


@pytest.mark.parametrize("result,code", [("SIGBUS", "BUS_ADRERR"), ("HWPOISON", "BUS_MCEERR_AR")])
def test_vm_fault_sigbus_user_is_sigbus(result, code):
    r = go(spec(A, "read", vmas=FILE_R, env=EnvSpec(fault=[result])))
    f = r.first
    assert in_order(f, ("vm_fault_oom", "false"), ("vm_fault_sigbus", "true"), ("sigbus_pf_user", "true"),
                    ("is_prefetch", "false"), ("sigbus_hwpoison", "true" if result == "HWPOISON" else "false"))
    assert r.outcome == Outcome.sigbus(code)
    assert r.final["thread"] == {"cr2": hex(A), "error_code": "0x4", "trap_nr": 14}


def test_vm_fault_sigbus_kernel_goes_to_no_context_sigbus_fixup():
    r = go(spec(A, "read", "kernel", vmas=FILE_R, env=EnvSpec(fault=["SIGBUS"]), uaccess=True))
    assert in_order(r.first, ("vm_fault_sigbus", "true"), ("sigbus_pf_user", "false"), ("fixup_exception", "true"))
    assert r.outcome == Outcome.fixup() and r.final["signals"] == []


def test_vm_fault_sigbus_user_prefetch_is_ignored():
    r = go(spec(A, "read", vmas=FILE_R, env=EnvSpec(fault=["SIGBUS"], is_prefetch=True), max_faults=1))
    assert in_order(r.first, ("sigbus_pf_user", "true"), ("is_prefetch", "true"))
    assert r.first.outcome == Outcome.handled("prefetch")


def test_vm_fault_sigsegv_is_bad_area_nosemaphore_maperr():
    r = go(spec(A, "read", vmas=FILE_R, env=EnvSpec(fault=["SIGSEGV"])))
    assert in_order(r.first, ("vm_fault_sigbus", "false"), ("vm_fault_sigsegv", "true"), ("bad_area_pf_user", "true"))
    assert r.outcome == Outcome.sigsegv("SEGV_MAPERR")


def test_oom_wins_over_sigbus_wins_over_sigsegv():
    def returns(word):
        return lambda mm, vma, address, flags: word

    with patched({"handle_mm_fault": returns(0x1 | 0x2 | 0x40)}):
        r = go(spec(A))
    assert r.outcome == Outcome.oom()
    with patched({"handle_mm_fault": returns(0x2 | 0x40)}):
        r = go(spec(A))
    assert r.outcome == Outcome.sigbus("BUS_ADRERR")


def test_mm_fault_error_bug_for_vm_fault_fallback():
    with patched({"handle_mm_fault": lambda mm, vma, address, flags: VM_FAULT_FALLBACK}):
        r = go(spec(A))
    f = r.first
    assert in_order(f, ("handle_mm_fault", "VM_FAULT_FALLBACK"), ("fault_error", "true"),
                    ("vm_fault_sigbus", "false"), ("vm_fault_sigsegv", "false"))
    assert r.outcome == Outcome.oops("bug")
    assert any("kernel BUG" in line for line in r.final["log"])


@pytest.mark.parametrize("result", FAULT_RESULTS)
@pytest.mark.parametrize("mode", ["user", "kernel"])
def test_bug_unreachable_for_every_result_handle_mm_fault_produces(result, mode):
    """P-SIG: whatever ->fault returns, mm_fault_error never reaches BUG()."""
    for flags in (R, RW | 0x8):
        r = go(spec(A, "write" if flags & 0x2 else "read", mode, vmas=[heap(flags, kind="file")],
                    env=EnvSpec(fault=[result]), uaccess=mode == "kernel", max_faults=2))
        assert r.outcome != Outcome.oops("bug")
        if mode == "kernel":
            assert r.outcome.kind in ("handled", "fixup", "oops")


def test_mm_fault_error_fatal_signal_user_mode_is_not_the_kernel_branch():
    r = go(spec(A, "read", vmas=FILE_R, env=EnvSpec(fault=["SIGBUS"]), task=TaskSpec(fatal_signal_pending=True)))
    assert in_order(r.first, ("mm_fault_error_fatal_kernel", "false"), ("vm_fault_sigbus", "true"))
    assert r.outcome == Outcome.sigbus("BUS_ADRERR")


# --- __bad_area_nosemaphore: quirks ---------------------------------------------------------------

def test_is_prefetch_user_fault_is_ignored_and_refaults():
    r = go(spec(0x900000, "read", env=EnvSpec(is_prefetch=True), max_faults=2))
    assert in_order(r.first, ("bad_area_pf_user", "true"), ("is_prefetch", "true"))
    assert r.first.outcome == Outcome.handled("prefetch")
    assert r.bound_hit and r.final["signals"] == []


def test_is_prefetch_never_for_an_instruction_fetch():
    r = go(spec(0x900000, "fetch", env=EnvSpec(is_prefetch=True)))
    assert r.first.error_code == 0x14
    assert value(r.first, "is_prefetch") == "false"
    assert r.outcome == Outcome.sigsegv("SEGV_MAPERR")


def test_is_errata100_on_x86_64_is_ignored():
    r = go(spec(0x900000, "read", env=EnvSpec(errata=True), max_faults=1))
    assert value(r.first, "is_errata100") == "true"
    assert r.first.outcome == Outcome.handled("errata")


def test_is_f00f_bug_on_32_bit_kernel_fault():
    r = go(spec(0xFF000000, "read", "kernel", arch="i386", vmas=[], env=EnvSpec(errata=True), max_faults=1))
    assert in_order(r.first, ("bad_area_pf_user", "false"), ("is_f00f_bug", "true"))
    assert r.first.outcome == Outcome.handled("errata")


def test_is_errata93_repairs_rip_in_no_context():
    s = spec(0x900000, "read", "kernel", vmas=[], env=EnvSpec(errata=True), max_faults=1)
    s.regs.flags |= 1 << 18
    r = go(s)
    assert in_order(r.first, ("fixup_exception", "false"), ("is_prefetch", "false"), ("is_errata93", "true"))
    assert r.first.outcome == Outcome.handled("errata")
    assert r.final["ip"] == hex(0x900000 | 0xFFFFFFFF00000000)


@pytest.mark.parametrize("mode,handled", [("emulate", True), ("none", False)])
def test_vsyscall_emulated_user_fetch_from_the_vsyscall_page(mode, handled):
    vsys = EntrySpec(VSYSCALL_ADDR, (0x1234 << 12) | 0x165 | NX)  # user-readable, NX (emulate mode)
    r = go(spec(VSYSCALL_ADDR + 0x400, "fetch", vmas=[], env=EnvSpec(vsyscall=mode),
                kernel=KernelSpec(kernel_mappings=[vsys])))
    f = r.first
    assert f.error_code == 0x15  # P|U|I
    assert value(f, "vsyscall_emulated") == ("true" if handled else "false")
    if handled:
        assert f.outcome == Outcome.handled("vsyscall")
        # The emulated call is complete: the fetch is not re-executed (no livelock).
        assert len(r.faults) == 1 and r.access_completed and not r.bound_hit
    else:
        assert value(f, "address_ge_task_size") == "true"
        assert f.outcome == Outcome.sigsegv("SEGV_MAPERR")


def test_vsyscall_not_evaluated_on_32_bit():
    r = go(spec(0x900000, "read", arch="i386"))
    assert value(r.first, "vsyscall_emulated") is None
    assert value(r.first, "is_errata100") == "false"


# --- no_context and the oops -------------------------------------------------------------------

def test_die_notifier_stop_in_no_context_is_still_an_oops_and_the_run_ends():
    s = spec(0x900000, "read", "kernel", vmas=[], env=EnvSpec(die_notifier="stop"))
    s.regs.flags |= 1 << 18
    r = go(s)
    assert value(r.first, "die_notifier_stop") == "true"
    assert r.outcome == Outcome.oops("kernel_paging_request") and len(r.faults) == 1
    assert r.final["irqs_enabled"] is True  # oops_end restored them; step 8 had enabled them


def test_oops_records_thread_state_and_dumps_the_page_table():
    s = spec(0x900000, "read", "kernel", vmas=[heap(RW)], entries=[pte(HEAP[0], 0)])
    s.regs.flags |= 1 << 18
    r = go(s)
    assert r.final["thread"] == {"cr2": "0x900000", "error_code": "0x0", "trap_nr": 14}
    assert any(line.startswith("PGD ") for line in r.final["log"])


@pytest.mark.parametrize("arch", ["i386-pae", "i386"])
def test_dump_pagetable_32_bit_formats(arch):
    # A SMAP violation (AC clear) with no fixup: the oops prints the tables.
    r = go(spec(HEAP[0] + 0x10, "read", "kernel", arch=arch, vmas=[heap(RW)], entries=[pte(HEAP[0] + 0x2000, 0x5025)]))
    assert r.outcome == Outcome.oops("kernel_paging_request")
    lines = [line for line in r.final["log"] if "*pde" in line]
    assert lines and ("*pdpt" in lines[0]) is (arch == "i386-pae") and "*pte = " in lines[0]


def test_sig_on_uaccess_error_forces_the_signal_on_a_fixup():
    from pfmodel.sim import fault as sim_fault
    from pfmodel.sim.machine import build
    from pfmodel.sim.state import installed
    from pfmodel.trace import Trace

    m = build(spec(A, "read", "kernel", uaccess=True))
    with installed(m):
        m.trace = Trace()
        m.current.sig_on_uaccess_error = True
        sim_fault.no_context(m.regs, 0x0, A, 11, 1)
        assert m.current.forced_signals == ["SIGSEGV/SEGV_MAPERR"]
        assert m.current.thread.error_code == 0x4
        assert m.outcome == Outcome.fixup()


def test_kernel_functions_registry_and_patched_restore():
    from pfmodel.sim import fault as sim_fault

    assert KERNEL_FUNCTIONS["access_error"] == (sim_fault, "access_error")
    original = sim_fault.access_error
    with patched({"access_error": lambda error_code, vma: 0}):
        r = go(spec(A, "write", vmas=[heap(R)]))
        assert value(r.first, "access_error") == "false"
    assert sim_fault.access_error is original
    with pytest.raises(KeyError, match="no_such_function"):
        with patched({"no_such_function": lambda: 0}):
            pass
