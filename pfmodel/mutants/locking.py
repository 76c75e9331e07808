"""Mutants of mmap_sem handling: each place that releases it swapped with the variant
that does not, and the reverse (historical-bugs 1.4, P-LOCK; KF 2.5.1)."""

from __future__ import annotations

from .base import Edit, Mutant

THEME = "locking"

_ENOUGH = "(killed by mmap_sem_released)"

MUTANTS = [
    Mutant(
        name="mmap_sem_leak_sigsegv_backport",
        summary="3.18.6: mm_fault_error runs with mmap_sem held and its SIGSEGV branch leaks it",
        description=(
            "In 3.18 mm_fault_error was still called with mmap_sem held, each branch dropping "
            "it.  The stable backport of VM_FAULT_SIGSEGV handling used bad_area_nosemaphore "
            "in the new branch, so a stack guard-page fault returned to user space holding "
            "the read lock (a later coredump hung in down_write).  The mutant restores the "
            "3.18 shape: up_read moves after the VM_FAULT_ERROR test, every mm_fault_error "
            "branch drops the lock itself, except SIGSEGV."),
        origin="historical-bugs 1.4", seq="1.4",
        patches=(
            Edit("__do_page_fault",
                 "    # Step 20.\n    up_read(mm.mmap_sem)\n\n"
                 "    # Step 21.\n    if decide(\"fault_error\", bool(fault & VM_FAULT_ERROR)):\n"
                 "        mm_fault_error(regs, error_code, address, fault)\n        return\n",
                 "    # mutant (3.18): mm_fault_error is entered with mmap_sem held\n"
                 "    if decide(\"fault_error\", bool(fault & VM_FAULT_ERROR)):\n"
                 "        mm_fault_error(regs, error_code, address, fault)\n        return\n"
                 "    up_read(mm.mmap_sem)\n"),
            Edit("mm_fault_error", "        no_context(regs, error_code, address, 0, 0)\n",
                 "        up_read(current().mm.mmap_sem)\n        no_context(regs, error_code, address, 0, 0)\n"),
            Edit("mm_fault_error", "            no_context(regs, error_code, address, SIGSEGV, SEGV_MAPERR)\n",
                 "            up_read(current().mm.mmap_sem)\n"
                 "            no_context(regs, error_code, address, SIGSEGV, SEGV_MAPERR)\n"),
            Edit("mm_fault_error", "        oom.pagefault_out_of_memory()\n",
                 "        up_read(current().mm.mmap_sem)\n        oom.pagefault_out_of_memory()\n"),
            Edit("mm_fault_error", "            do_sigbus(regs, error_code, address, fault)\n",
                 "            up_read(current().mm.mmap_sem)\n            do_sigbus(regs, error_code, address, fault)\n"),
        )),
    Mutant(
        name="sigsegv_branch_double_unlock",
        summary="mm_fault_error's SIGSEGV branch uses bad_area: mmap_sem released twice",
        description=(
            "The other half of the 3.18 confusion (historical-bugs 1.4): with up_read already "
            "done by the caller (4.4), a branch that calls the lock-dropping bad_area releases "
            "mmap_sem a second time."),
        origin="historical-bugs 1.4", seq="1.4",
        patches=(Edit("mm_fault_error",
                      "        elif decide(\"vm_fault_sigsegv\", bool(fault & VM_FAULT_SIGSEGV)):\n"
                      "            bad_area_nosemaphore(regs, error_code, address)\n",
                      "        elif decide(\"vm_fault_sigsegv\", bool(fault & VM_FAULT_SIGSEGV)):\n"
                      "            bad_area(regs, error_code, address)  # mutant\n"),)),
    Mutant(
        name="no_vma_nosemaphore",
        summary="'no VMA' goes to bad_area_nosemaphore: mmap_sem leaks",
        description="The find_vma-found-nothing exit uses the non-releasing variant " + _ENOUGH + ".",
        patches=(Edit("__do_page_fault",
                      "== \"none\":\n            bad_area(regs, error_code, address)\n",
                      "== \"none\":\n            bad_area_nosemaphore(regs, error_code, address)  # mutant\n"),)),
    Mutant(
        name="access_error_nosemaphore",
        summary="access_error's exit does not release mmap_sem",
        description=("bad_area_access_error without its up_read: every SEGV_ACCERR returns to "
                     "user space with the read lock held " + _ENOUGH + "."),
        patches=(Edit("__do_page_fault",
                      "            bad_area_access_error(regs, error_code, address)\n",
                      "            __bad_area_nosemaphore(regs, error_code, address, SEGV_ACCERR)  # mutant\n"),)),
    Mutant(
        name="expand_stack_failure_nosemaphore",
        summary="a refused stack expansion does not release mmap_sem",
        description="The expand_stack-failed exit uses the non-releasing variant " + _ENOUGH + ".",
        patches=(Edit("__do_page_fault",
                      "            if decide(\"expand_stack\", bool(mmap.expand_stack(vma, address))):\n"
                      "                bad_area(regs, error_code, address)\n",
                      "            if decide(\"expand_stack\", bool(mmap.expand_stack(vma, address))):\n"
                      "                bad_area_nosemaphore(regs, error_code, address)  # mutant\n"),)),
    Mutant(
        name="kernel_address_releases_unheld",
        summary="a bad kernel-space address goes to bad_area, releasing a lock never taken",
        description=("The kernel-address branch never takes mmap_sem (it may run in interrupt "
                     "context).  Sending its failures to the lock-dropping bad_area releases a "
                     "lock the fault does not hold " + _ENOUGH + "."),
        patches=(Edit("__do_page_fault",
                      "        bad_area_nosemaphore(regs, error_code, address)\n        return\n\n    # Step 4.",
                      "        bad_area(regs, error_code, address)  # mutant\n        return\n\n    # Step 4."),)),
    Mutant(
        name="trylock_failure_releases_unheld",
        summary="a contended mmap_sem without an exception-table entry goes to bad_area",
        description=("When the trylock fails for a kernel fault with no fixup the handler must "
                     "not touch the lock (it may be the holder); the mutant's bad_area releases "
                     "the other holder's lock " + _ENOUGH + "."),
        patches=(Edit("__do_page_fault",
                      "                                                      note=hex(regs.ip)):\n"
                      "            bad_area_nosemaphore(regs, error_code, address)\n",
                      "                                                      note=hex(regs.ip)):\n"
                      "            bad_area(regs, error_code, address)  # mutant\n"),)),
    Mutant(
        name="up_read_dropped",
        summary="the up_read after handle_mm_fault is missing",
        description="Step 20 is gone: every fault that reaches handle_mm_fault leaks the read lock "
                    + _ENOUGH + ".",
        patches=(Edit("__do_page_fault", "    # Step 20.\n    up_read(mm.mmap_sem)\n",
                      "    # Step 20: mutant, no up_read\n"),)),
    Mutant(
        name="retry_without_down_read",
        summary="the retry re-runs find_vma without taking mmap_sem again",
        description=("After a RETRY the callee has dropped mmap_sem; the goto retry must take it "
                     "again.  The mutant walks the VMAs unlocked, then releases a lock it does "
                     "not hold " + _ENOUGH + "."),
        patches=(Edit("__do_page_fault",
                      "                    down_read(mm.mmap_sem)\n                    continue\n",
                      "                    continue  # mutant: no down_read\n"),)),
    Mutant(
        name="filemap_fault_retry_keeps_lock",
        summary="->fault returns VM_FAULT_RETRY without dropping mmap_sem",
        description=("The RETRY contract (T13): RETRY means the callee released mmap_sem.  A "
                     "->fault that returns RETRY holding it makes the handler's retry take it a "
                     "second time " + _ENOUGH + "."),
        patches=(Edit("filemap_fault", "        up_read(vma.vm_mm.mmap_sem)\n",
                      "        pass  # mutant: mmap_sem kept\n"),)),
    Mutant(
        name="lock_page_or_retry_keeps_lock",
        summary="__lock_page_or_retry returns 'retry' without dropping mmap_sem",
        description=("With ALLOW_RETRY, __lock_page_or_retry drops mmap_sem before waiting for "
                     "the page; the mutant forgets, so do_swap_page's RETRY comes back with the "
                     "lock held " + _ENOUGH + "."),
        patches=(Edit("__lock_page_or_retry",
                      "            return 0\n        up_read(mm.mmap_sem)\n",
                      "            return 0\n        pass  # mutant: mmap_sem kept\n"),)),
    Mutant(
        name="killable_wait_keeps_lock",
        summary="an interrupted killable page-lock wait returns 'retry' holding mmap_sem",
        description=("The corner of historical-bugs 1.2: even without ALLOW_RETRY, a killable "
                     "wait cut short by a fatal signal drops mmap_sem and returns RETRY.  The "
                     "mutant keeps the lock, which the handler then never releases "
                     + _ENOUGH + "."),
        origin="historical-bugs 1.2", seq="1.2",
        patches=(Edit("__lock_page_or_retry",
                      "        if __lock_page_killable(page):\n            up_read(mm.mmap_sem)\n",
                      "        if __lock_page_killable(page):\n            pass  # mutant: mmap_sem kept\n"),)),
    Mutant(
        name="userfault_retry_keeps_lock",
        summary="handle_userfault returns VM_FAULT_RETRY holding mmap_sem",
        description="handle_userfault's RETRY without the up_read " + _ENOUGH + ".",
        patches=(Edit("handle_userfault", "        up_read(vma.vm_mm.mmap_sem)\n",
                      "        pass  # mutant: mmap_sem kept\n"),)),
]
