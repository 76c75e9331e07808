"""Properties about locks, retries and interrupts (P-LOCK, P-RETRY, P-IRQ of
historical-bugs.md §0.2)."""

from pfmodel.properties import prop
from pfmodel.sim.constants import FAULT_FLAG_ALLOW_RETRY, FAULT_FLAG_TRIED


@prop(name="mmap_sem_released", expected="holds",
      statement="mmap_sem is not held on any exit of the handler; it is never released when "
                "not held, and never taken twice.",
      rationale="KF 2.5.1: __bad_area drops it, handle_mm_fault drops it with VM_FAULT_RETRY "
                "(x86 never sets RETRY_NOWAIT), __do_page_fault drops it before mm_fault_error; "
                "the nosemaphore paths never take it (P-LOCK, historical-bugs 1.4).")
def _mmap_sem(r):
    held = 0
    for change in r.changes("mmap_sem"):
        if change == "acquire":
            if held:
                return False
            held = 1
        elif change == "release":
            if not held:
                return False
            held = 0
        else:
            return False
    return held == 0


@prop(name="retry_at_most_once", expected="holds",
      statement="handle_mm_fault runs at most twice per hardware fault, the second time with "
                "FAULT_FLAG_TRIED and without FAULT_FLAG_ALLOW_RETRY.",
      rationale="Seed 1.1 'Retry at most once': on VM_FAULT_RETRY the handler clears "
                "ALLOW_RETRY and sets TRIED before the single goto retry (P-RETRY, "
                "historical-bugs 1.3).",
      when=lambda r: bool(r.calls))
def _retry_once(r):
    calls = r.calls
    if len(calls) > 2:
        return False
    if len(calls) == 2:
        second = calls[1]
        return bool(second & FAULT_FLAG_TRIED) and not second & FAULT_FLAG_ALLOW_RETRY
    return True


@prop(name="retry_only_without_fatal_signal", expected="holds",
      statement="The second handle_mm_fault call happens only when no fatal signal is pending "
                "after the first returned VM_FAULT_RETRY.",
      rationale="Seed 1.1: after a RETRY the handler retries only if !fatal_signal_pending(tsk) "
                "(P-KILL: a dying task must not be held in the fault).",
      when=lambda r: len(r.calls) == 2)
def _retry_no_fatal(r):
    return r.took("fatal_signal_pending", "false")


@prop(name="kernel_address_lockless", expected="holds",
      statement="A fault at a kernel-space address never takes mmap_sem nor calls "
                "handle_mm_fault.",
      rationale="Seed 1.1: the kernel-address branch may run in interrupt context and must "
                "only copy from the reference page table; it ends in bad_area_nosemaphore "
                "(historical-bugs T9).",
      when=lambda r: r.took("fault_in_kernel_space", "true"))
def _kernel_lockless(r):
    return not r.changes("mmap_sem") and not r.calls


@prop(name="faults_disabled_no_mm_fault", expected="holds",
      statement="With page faults disabled, in atomic context, or without an mm, the handler "
                "takes no mmap_sem and never calls handle_mm_fault.",
      rationale="Seed 1.1.4: faulthandler_disabled() || !mm goes to bad_area_nosemaphore, so "
                "no sleeping lock and no paging-in (historical-bugs T5, T6).",
      when=lambda r: r.took("faulthandler_disabled", "true"))
def _disabled(r):
    return not r.changes("mmap_sem") and not r.calls


@prop(name="smap_violation_no_mm_fault", expected="holds",
      statement="A SMAP violation takes no mmap_sem, never calls handle_mm_fault, and never "
                "ends handled by handle_mm_fault.",
      rationale="KF 2.2.11: smap_violation goes to bad_area_nosemaphore before the lock is "
                "taken (historical-bugs 3.2).",
      when=lambda r: r.took("smap_violation", "true"))
def _smap(r):
    return not r.changes("mmap_sem") and not r.calls and r.outcome.via != "handle_mm_fault"


@prop(name="irqs_enabled_only_if_allowed", expected="holds",
      statement="The handler enables interrupts only for a user-mode fault or when the "
                "interrupted kernel context had them enabled (EFLAGS.IF).",
      rationale="KF 2.5.3: #PF is an interrupt gate; step 8 enables IRQs for user mode or "
                "when regs->flags has IF, and __bad_area_nosemaphore only for PF_USER, which "
                "the hardware sets only at CPL 3 (P-IRQ, historical-bugs 9.1).",
      when=lambda r: "on" in r.changes("irqs"))
def _irqs(r):
    return r.o.or_(r.bool("user_mode"), lambda: r.bool("regs.IF"))
