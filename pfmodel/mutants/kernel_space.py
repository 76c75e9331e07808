"""Mutants of the early, lock-free part of __do_page_fault: the kernel/user boundary,
the kernel-address branch, reserved bits, interrupts (seed 1.1, 1.1.1-1.1.3; KF 2.1,
2.2.4-2.2.7, 2.2.17, 2.5.3)."""

from __future__ import annotations

from .base import Edit, Mutant

THEME = "kernel_space"

MUTANTS = [
    Mutant(
        name="kernel_boundary_off_by_one",
        summary="fault_in_kernel_space uses > TASK_SIZE_MAX: the first kernel address is 'user'",
        description="Seed 1.1.1 tests address >= TASK_SIZE_MAX.  With > the first kernel-space "
                    "page goes down the user path: mmap_sem, find_vma.",
        patches=(Edit("fault_in_kernel_space", "    return address >= TASK_SIZE_MAX[machine().arch.name]\n",
                      "    return address > TASK_SIZE_MAX[machine().arch.name]  # mutant\n"),)),
    Mutant(
        name="kernel_boundary_one_page_low",
        summary="fault_in_kernel_space starts one page below TASK_SIZE_MAX",
        description="The last user page is taken for kernel space: a user fault there never "
                    "reaches find_vma.",
        patches=(Edit("fault_in_kernel_space", "    return address >= TASK_SIZE_MAX[machine().arch.name]\n",
                      "    return address >= TASK_SIZE_MAX[machine().arch.name] - 4096  # mutant\n"),)),
    Mutant(
        name="signal_error_code_boundary_off_by_one",
        summary="the PF_PROT that hides kernel mappings from user space starts one byte late",
        description="T8: a user fault on a kernel address reports PF_PROT in the signal's error "
                    "code; the mutant's > misses the first kernel page.",
        patches=(Edit("__bad_area_nosemaphore",
                      "address >= TASK_SIZE_MAX[machine().arch.name]):\n",
                      "address > TASK_SIZE_MAX[machine().arch.name]):  # mutant\n"),)),
    Mutant(
        name="rsvd_ignored",
        summary="a PF_RSVD fault in the user half does not go to pgtable_bad",
        description="Step 5 (seed 1.1, T17): reserved bits mean a corrupted page table, an oops "
                    "even in user mode.  The mutant carries on as if the fault were ordinary.",
        patches=(Edit("__do_page_fault", "    if decide(\"pf_rsvd\", bool(error_code & PF_RSVD)):\n",
                      "    if decide(\"pf_rsvd\", bool(error_code & PF_RSVD)) and False:  # mutant\n"),)),
    Mutant(
        name="faulthandler_disabled_atomic_only",
        summary="faulthandler_disabled() tests only in_atomic(), not pagefault_disabled()",
        description=(
            "historical-bugs T5: before 4.2 the handler tested only in_atomic(), which does "
            "not see pagefault_disable() on a kernel without preemption counting, hence the "
            "separate pagefault_disabled counter.  The mutant forgets that counter: a "
            "__copy_from_user_inatomic under pagefault_disable() sleeps on mmap_sem and pages "
            "in."),
        origin="historical-bugs T5",
        patches=(Edit("faulthandler_disabled", "    return pagefault_disabled() or in_atomic()\n",
                      "    return in_atomic()  # mutant: pagefault_disable() is not seen\n"),)),
    Mutant(
        name="faulthandler_disabled_without_return",
        summary="the faults-disabled exit forgets its return: the fault goes on to mmap_sem",
        description="A missing 'return' after bad_area_nosemaphore when page faults are disabled "
                    "or there is no mm: after the fixup the handler sleeps on mmap_sem anyway "
                    "(and, without an mm, dereferences NULL).",
        patches=(Edit("__do_page_fault",
                      "    if decide(\"faulthandler_disabled\", bool(faulthandler_disabled() or mm is None)):\n"
                      "        bad_area_nosemaphore(regs, error_code, address)\n        return\n",
                      "    if decide(\"faulthandler_disabled\", bool(faulthandler_disabled() or mm is None)):\n"
                      "        bad_area_nosemaphore(regs, error_code, address)  # mutant: no return\n"),)),
    Mutant(
        name="kernel_fast_path_ignores_prot",
        summary="vmalloc_fault is tried for kernel protection faults too",
        description="Only a not-present supervisor fault (no RSVD, USER or PROT bit) can be a "
                    "lazy vmalloc mapping (T9); the mutant also syncs for PF_PROT.",
        patches=(Edit("__do_page_fault", "not error_code & (PF_RSVD | PF_USER | PF_PROT)",
                      "not error_code & (PF_RSVD | PF_USER)"),)),
    Mutant(
        name="spurious_fault_any_error_code",
        summary="spurious_fault accepts any error code, not only write-to-RO and fetch-from-NX",
        description="T10: only a stale TLB entry after *raising* permissions can be spurious; "
                    "the mutant lets a not-present kernel fault whose entry is present now "
                    "return as spurious.",
        patches=(Edit("spurious_fault",
                      "    if error_code != (PF_WRITE | PF_PROT) and error_code != (PF_INSTR | PF_PROT):\n"
                      "        return 0\n",
                      "    pass  # mutant: any error code may be spurious\n"),)),
    Mutant(
        name="irqs_enabled_regardless_of_if",
        summary="a kernel-mode fault enables interrupts even if the interrupted context had them off",
        description="Step 8 (KF 2.5.3): for a kernel-mode fault IRQs are enabled only if "
                    "regs->flags had IF; the mutant always enables them.",
        patches=(Edit("__do_page_fault",
                      "    elif decide(\"regs_if\", bool(regs.flags & X86_EFLAGS_IF)):\n",
                      "    elif decide(\"regs_if\", bool(regs.flags & X86_EFLAGS_IF)) or True:  # mutant\n"),)),
]
