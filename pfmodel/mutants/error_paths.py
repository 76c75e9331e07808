"""Mutants of the error paths: mm_fault_error, do_sigbus, no_context and the OOM path
(seed 1.1.12, 1.1.13, 1.1.13.1; KF 2.2.19-2.2.26; historical-bugs 2.4, 8.1, 8.2, 8.4)."""

from __future__ import annotations

from .base import Edit, Mutant

THEME = "error_paths"

MUTANTS = [
    Mutant(
        name="sigbus_ignores_mode",
        summary="do_sigbus sends SIGBUS for a kernel-mode fault and returns to the kernel",
        description=(
            "historical-bugs 2.4: before 'x86: don't send SIGBUS for kernel page faults' a "
            "kernel-mode fault that resolved to VM_FAULT_SIGBUS (copy_to_user onto the stack "
            "guard page) queued SIGBUS and returned to the faulting kernel instruction, "
            "instead of taking the exception-table fixup."),
        origin="historical-bugs 2.4", seq="2.4",
        patches=(Edit("do_sigbus",
                      "    if not decide(\"sigbus_pf_user\", bool(error_code & PF_USER)):\n",
                      "    if not decide(\"sigbus_pf_user\", bool(error_code & PF_USER)) and False:  # mutant\n"),)),
    Mutant(
        name="thp_fallback_reaches_handler",
        summary="__handle_mm_fault returns VM_FAULT_FALLBACK from the huge-page path",
        description=(
            "historical-bugs 8.1 (i): when the huge-pmd path falls back to small pages the "
            "FALLBACK bit must not leave __handle_mm_fault.  If it does, the handler sees a "
            "VM_FAULT_ERROR bit that is neither OOM, SIGBUS nor SIGSEGV and mm_fault_error "
            "hits BUG() (the DAX '->huge_fault' conversion of 2017).  Reached only with THP "
            "enabled, which the model's scopes fix to 'never': the random engine finds it."),
        origin="historical-bugs 8.1", seq="8.1",
        patches=(Edit("__handle_mm_fault",
                      "        decide(\"create_huge_pmd\", vm_fault_str(ret))\n"
                      "        if not ret & VM_FAULT_FALLBACK:\n            return ret\n",
                      "        decide(\"create_huge_pmd\", vm_fault_str(ret))\n"
                      "        return ret  # mutant: FALLBACK leaks out\n"),)),
    Mutant(
        name="mm_fault_error_without_sigsegv",
        summary="mm_fault_error does not know VM_FAULT_SIGSEGV (an architecture left behind)",
        description=(
            "historical-bugs 8.1 (ii) and 2.3 (2): 33692f27597f added VM_FAULT_SIGSEGV and had "
            "to teach every architecture's mm_fault_error about it; one that was not taught "
            "reaches BUG() when the stack guard page refuses a fault."),
        origin="historical-bugs 8.1", seq="8.1",
        patches=(Edit("mm_fault_error",
                      "        elif decide(\"vm_fault_sigsegv\", bool(fault & VM_FAULT_SIGSEGV)):\n",
                      "        elif False and decide(\"vm_fault_sigsegv\", True):  # mutant: unknown code\n"),)),
    Mutant(
        name="dying_user_oom_returns_early",
        summary="a user-mode VM_FAULT_OOM with a fatal signal pending returns at once",
        description=(
            "historical-bugs 8.2: the pre-3a13c4d761b4 x86 handler bailed out of the error "
            "path when a fatal signal was pending, before pagefault_out_of_memory, so the "
            "memcg OOM state recorded during the fault was never cleaned up (the memcg OOM "
            "deadlock, CVE-2014-8171).  The fault then ends without any outcome: the access "
            "is simply re-executed."),
        origin="historical-bugs 8.2", seq="8.2",
        patches=(Edit("mm_fault_error",
                      "        no_context(regs, error_code, address, 0, 0)\n        return\n",
                      "        no_context(regs, error_code, address, 0, 0)\n        return\n"
                      "    if fatal_signal_pending(current()):  # mutant (pre-3.12): bail out\n"
                      "        return\n"),)),
    Mutant(
        name="memcg_cleanup_despite_oom",
        summary="handle_mm_fault cleans the memcg OOM state up even when the fault returns VM_FAULT_OOM",
        description=(
            "Seeded from historical-bugs 8.2: the memcg OOM recorded during a user fault must "
            "survive until pagefault_out_of_memory, whose mem_cgroup_oom_synchronize(true) "
            "handles it inside the memcg.  Cleaned up early, the memcg OOM is lost and the "
            "global OOM killer runs instead."),
        patches=(Edit("handle_mm_fault",
                      "bool(oom.task_in_memcg_oom(current()) and not ret & VM_FAULT_OOM)):\n",
                      "bool(oom.task_in_memcg_oom(current()))):  # mutant: also after VM_FAULT_OOM\n"),)),
    Mutant(
        name="memcg_oom_for_kernel_faults",
        summary="handle_mm_fault arms the memcg OOM killer for kernel-mode faults too",
        description=(
            "Seeded from the 8.2 series (519e52473ebe 'memcg: enable memcg OOM killer only for "
            "user faults'): a kernel fault may hold locks the OOM victim needs, so only user "
            "faults arm the memcg OOM handling; the mutant arms it for every fault."),
        patches=(Edit("handle_mm_fault",
                      "    if flags & FAULT_FLAG_USER:\n        oom.mem_cgroup_oom_enable()\n",
                      "    if True:  # mutant: kernel faults too\n        oom.mem_cgroup_oom_enable()\n"),
                 Edit("handle_mm_fault",
                      "    if flags & FAULT_FLAG_USER:\n        oom.mem_cgroup_oom_disable()\n",
                      "    if True:\n        oom.mem_cgroup_oom_disable()\n"),)),
    Mutant(
        name="dying_task_skips_oom_killer",
        summary="pagefault_out_of_memory returns at once for a task with a fatal signal pending",
        description=(
            "historical-bugs 8.4, taken the other way round: 4.4 still calls out_of_memory "
            "from the fault path for a dying task (the global-OOM-from-#PF problem that "
            "0b28179a6138 fixed in 5.16).  The mutant brings the 5.16 early return into the "
            "4.4 handler; a checker of the 4.4 specification must tell the two apart.  (The "
            "4.4 bug itself, killing *another* task, is invisible here: the simulator "
            "summarises out_of_memory's victim selection, KF 2.2.26.)"),
        origin="historical-bugs 8.4", seq="8.4",
        patches=(Edit("pagefault_out_of_memory", "    m.set_outcome(Outcome.oom())\n",
                      "    m.set_outcome(Outcome.oom())\n"
                      "    from .fault import fatal_signal_pending  # mutant (5.16): a dying task\n"
                      "    if fatal_signal_pending(current()):\n"
                      "        return\n"),)),
    Mutant(
        name="oom_ignores_mode",
        summary="a kernel-mode VM_FAULT_OOM runs pagefault_out_of_memory",
        description="The P-OOM rule: a kernel-mode OOM must end in no_context (fixup or oops) "
                    "and never invoke the OOM killer; the mutant drops the mode test.",
        patches=(Edit("mm_fault_error",
                      "        if not decide(\"oom_pf_user\", bool(error_code & PF_USER)):\n",
                      "        if not decide(\"oom_pf_user\", bool(error_code & PF_USER)) and False:  # mutant\n"),)),
    Mutant(
        name="fixup_exception_any_ip",
        summary="the exception-table lookup finds a fixup for every instruction",
        description="A table search that returns the nearest entry instead of an exact match: "
                    "every kernel-mode error is 'fixed up', and so is an implicit supervisor "
                    "access made in user mode, whose user ip has no entry at all.",
        patches=(Edit("fixup_exception",
                      "    if regs.ip in config.exception_table:\n"
                      "        regs.ip = config.fixup_base + 16 * config.exception_table.index(regs.ip)\n"
                      "        return 1\n",
                      "    regs.ip = config.fixup_base  # mutant: every ip has a fixup\n    return 1\n"),)),
    Mutant(
        name="no_context_skips_fixup",
        summary="no_context never looks at the exception table",
        description="Every kernel-mode error oopses, even a copy_to_user with a fixup (T1 "
                    "becomes an oops instead of -EFAULT).",
        patches=(Edit("no_context",
                      "    if decide(\"fixup_exception\", bool(fixup_exception(regs)), note=hex(regs.ip)):\n",
                      "    if decide(\"fixup_exception\", False, note=hex(regs.ip)):  # mutant\n"),)),
]
