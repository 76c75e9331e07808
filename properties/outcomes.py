"""Properties about how a fault ends: signals, fixups, oopses (P-SIG, P-KERN of
historical-bugs.md §0.2), including two naive beliefs the kernel violates."""

from pfmodel.outcome import FIXUP, HANDLED, KINDS, OOPS, SIGBUS, SIGSEGV, Outcome
from pfmodel.properties import prop
from pfmodel.x86.constants import PF_INSTR, PF_RSVD

# Hooks and CPU quirks that silently claim a fault before any signal is sent (KF 2.2.17,
# 2.2.21, 2.2.22).
QUIRKS = ("is_prefetch", "is_errata100", "is_errata93", "is_f00f_bug", "vsyscall_emulated")


ACCERR = Outcome.sigsegv("SEGV_ACCERR")
BAD_PAGETABLE = Outcome.oops("bad_pagetable")
BUG = Outcome.oops("bug")


def _quirk(r):
    return any(r.took(q, "true") for q in QUIRKS)


@prop(name="user_access_error_sigsegv_accerr", expected="holds",
      statement="A user-mode fault on which access_error is true ends in SIGSEGV with "
                "SEGV_ACCERR (unless an AMD prefetch or a CPU erratum claims it).",
      rationale="1.1.8 / KF 2.2.16: access_error -> bad_area_access_error -> __bad_area with "
                "SEGV_ACCERR; PF_USER is set for user mode at step 8, so __bad_area_nosemaphore "
                "takes the user branch and forces the signal.",
      when=lambda r: r.took("access_error", "true"))
def _user_access_error(r):
    if _quirk(r):
        return True
    return r.o.implies(r.bool("user_mode"), r.outcome == ACCERR)


@prop(name="naive_access_error_sigsegv", expected="violated",
      statement="Whenever access_error is true the task gets SIGSEGV.",
      rationale="False of the kernel: in kernel mode (copy_to_user into a read-only VMA) "
                "__bad_area_nosemaphore goes to no_context, which fixes the uaccess up "
                "(-EFAULT) or oopses (seed 1.1.9, KF 2.2.17, historical-bugs T1).",
      when=lambda r: r.took("access_error", "true"))
def _naive_access_error(r):
    return r.outcome.kind == SIGSEGV


@prop(name="kernel_fault_no_signal_return", expected="holds",
      statement="A fault taken in kernel mode ends handled, in an exception-table fixup or "
                "in an oops: never by queueing a signal (or an OOM kill) and returning to the "
                "faulting kernel instruction.",
      rationale="KF 2.2.17 and 2.2.24: every kernel-mode error path (bad area, SIGBUS, OOM, "
                "a second RETRY, a fatal signal) goes through no_context (P-KERN).",
      when=lambda r: r.took("user_mode", "false") or not r.took("user_mode"))
def _kernel_no_signal(r):
    if r.took("user_mode"):
        return r.outcome.kind in (HANDLED, FIXUP, OOPS)
    # The path ended before step 8: the mode is an input.
    return r.o.implies(r.o.not_(r.bool("user_mode")), r.outcome.kind in (HANDLED, FIXUP, OOPS))


@prop(name="naive_user_fault_never_oops", expected="violated",
      statement="A fault taken in user mode never oopses the kernel.",
      rationale="False: a reserved bit set in a user page table is a corrupted page table "
                "and pgtable_bad oopses even for user-mode faults (seed 1.1.3, T17); an "
                "implicit supervisor access at CPL 3 is handled as a kernel fault.",
      when=lambda r: r.took("user_mode", "true") or not r.took("user_mode"))
def _naive_user_never_oops(r):
    return r.o.implies(r.bool("user_mode"), r.outcome.kind != OOPS)


@prop(name="rsvd_user_address_oops", expected="holds",
      statement="PF_RSVD at a user-space address, not consumed by kmmio or kprobes, oopses with "
                "\"Bad pagetable\" (a die notifier that answers NOTIFY_STOP lets the handler carry on).",
      rationale="Seed 1.1 / KF 2.1 step 5: pgtable_bad runs for every PF_RSVD fault below "
                "TASK_SIZE_MAX; oops_end kills the task unless __die was stopped.",
      when=lambda r: r.took("fault_in_kernel_space", "false") and r.took("kprobes_fault", "false"))
def _rsvd_oops(r):
    rsvd = r.o.test(r.word("error_code"), PF_RSVD)
    ends_in_bad_pagetable = r.took("pf_rsvd", "true") and (
        r.outcome == BAD_PAGETABLE or r.took("die_notifier_stop", "true"))
    return r.o.implies(rsvd, ends_in_bad_pagetable)


@prop(name="outcome_total", expected="holds",
      statement="Every fault ends in exactly one defined outcome, and mm_fault_error's BUG() is "
                "unreachable for every value handle_mm_fault can return.",
      rationale="1.1.13: BUG() is reached only by a VM_FAULT_ERROR result that is none of "
                "OOM, SIGBUS/HWPOISON, SIGSEGV, i.e. FALLBACK alone, and __handle_mm_fault "
                "never returns FALLBACK (KF 1.7, P-SIG).")
def _outcome_total(r):
    return r.outcome is not None and r.outcome.kind in KINDS and r.outcome != BUG


@prop(name="sigbus_only_from_user_mode", expected="holds",
      statement="SIGBUS is only ever sent for a user-mode fault.",
      rationale="KF 2.2.24 (historical-bugs 2.4): do_sigbus sends kernel-mode faults to "
                "no_context; x86 has no SIGBUS for kernel-mode faults.",
      when=lambda r: r.outcome.kind == SIGBUS)
def _sigbus_user(r):
    return r.bool("user_mode")


@prop(name="user_fault_never_fixed_up", expected="holds",
      statement="A fault taken in user mode never ends in an exception-table fixup.",
      rationale="KF 2.2.20: only kernel instructions have exception-table entries; a "
                "user-mode fault that reaches no_context (an implicit supervisor access) "
                "finds none.",
      when=lambda r: r.outcome.kind == FIXUP)
def _user_no_fixup(r):
    return r.o.not_(r.bool("user_mode"))


@prop(name="naive_exec_from_non_exec_vma_sigsegv", expected="violated",
      statement="An instruction fetch from a VMA without VM_EXEC is refused with SIGSEGV.",
      rationale="False in 4.4: access_error never looks at VM_EXEC, so a fetch from a "
                "not-present page of a readable VMA is handled (the page is mapped NX); the "
                "retried fetch then faults with PF_PROT|PF_INSTR and gets SEGV_ACCERR "
                "(KF 2.2.15, historical-bugs T4).",
      when=lambda r: r.took("access_error") and r.took("user_mode", "true"))
def _naive_exec(r):
    from pfmodel.sim.constants import VM_EXEC
    fetch = r.o.test(r.word("error_code"), PF_INSTR)
    non_exec = r.o.not_(r.o.test(r.vma_flags, VM_EXEC))
    return r.o.implies(r.o.and_(fetch, non_exec), r.outcome.kind == SIGSEGV)
