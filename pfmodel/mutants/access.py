"""Mutants of the permission decisions: each access_error rule dropped or flipped (seed
1.1.8, KF 2.2.15) and the SMAP check (KF 2.2.11; historical-bugs 3.2 (i)-(iv))."""

from __future__ import annotations

from .base import Edit, Mutant

THEME = "access"

_WRITE_RULE = "        if not vma.vm_flags & VM_WRITE:\n            return 1\n"
_PROT_RULE = "    if error_code & PF_PROT:\n        return 1\n"
_RWX_RULE = "    if not vma.vm_flags & (VM_READ | VM_EXEC | VM_WRITE):\n        return 1\n"


def _access_error(old: str, new: str) -> Edit:
    return Edit("access_error", old, new)


MUTANTS = [
    Mutant(
        name="access_error_write_rule_dropped",
        summary="access_error lets a write through without VM_WRITE",
        description="The first rule of access_error (a write needs VM_WRITE) is gone: a write "
                    "to a read-only mapping is resolved by handle_mm_fault.",
        patches=(_access_error(_WRITE_RULE, "        pass  # mutant: no VM_WRITE check\n"),)),
    Mutant(
        name="access_error_write_rule_flipped",
        summary="access_error denies a write exactly when the VMA has VM_WRITE",
        description="The write rule's test inverted.",
        patches=(_access_error(_WRITE_RULE, "        if vma.vm_flags & VM_WRITE:  # mutant: flipped\n"
                                            "            return 1\n"),)),
    Mutant(
        name="access_error_write_needs_read",
        summary="access_error checks VM_READ instead of VM_WRITE for a write",
        description="A plausible slip: the write rule tests the wrong vm_flags bit, so a "
                    "readable, non-writable mapping accepts writes.",
        patches=(_access_error(_WRITE_RULE, "        if not vma.vm_flags & VM_READ:  # mutant\n"
                                            "            return 1\n"),)),
    Mutant(
        name="access_error_prot_rule_dropped",
        summary="access_error lets a read protection fault through",
        description="The second rule (a read of a present page that still faulted is an error) "
                    "is gone: handle_mm_fault finds the page present, sets the accessed bit, "
                    "and the access faults again.",
        patches=(_access_error(_PROT_RULE, "    pass  # mutant: PF_PROT reads allowed\n"),)),
    Mutant(
        name="access_error_prot_rule_flipped",
        summary="access_error denies every not-present read and allows protection reads",
        description="The second rule's test inverted.",
        patches=(_access_error(_PROT_RULE, "    if not error_code & PF_PROT:  # mutant: flipped\n"
                                           "        return 1\n"),)),
    Mutant(
        name="access_error_rwx_rule_dropped",
        summary="access_error lets a not-present read through a VMA without R, W or X",
        description="The third rule is gone: a read of a PROT_NONE mapping reaches "
                    "handle_mm_fault (T3 says it must be SEGV_ACCERR).",
        patches=(_access_error(_RWX_RULE, "    pass  # mutant: PROT_NONE readable\n"),)),
    Mutant(
        name="access_error_rwx_rule_flipped",
        summary="access_error denies a not-present read exactly when the VMA is accessible",
        description="The third rule's test inverted.",
        patches=(_access_error(_RWX_RULE, "    if vma.vm_flags & (VM_READ | VM_EXEC | VM_WRITE):  # mutant\n"
                                          "        return 1\n"),)),
    Mutant(
        name="access_error_without_return",
        summary="the access_error exit forgets its return: handle_mm_fault runs anyway",
        description="A missing 'return' after bad_area_access_error: the signal is queued and "
                    "mmap_sem released, then the fault carries on into handle_mm_fault (and "
                    "releases mmap_sem a second time).",
        patches=(Edit("__do_page_fault",
                      "            bad_area_access_error(regs, error_code, address)\n            return\n",
                      "            bad_area_access_error(regs, error_code, address)  # mutant: no return\n"),)),
    Mutant(
        name="smap_violation_without_return",
        summary="the SMAP exit forgets its return: the fault carries on to mmap_sem and handle_mm_fault",
        description="A missing 'return' after the SMAP violation's bad_area_nosemaphore: when the "
                    "exception table fixes the access up, the handler goes on, takes mmap_sem and "
                    "pages the user address in.",
        patches=(Edit("__do_page_fault",
                      "    if decide(\"smap_violation\", bool(smap_violation(error_code, regs))):\n"
                      "        bad_area_nosemaphore(regs, error_code, address)\n        return\n",
                      "    if decide(\"smap_violation\", bool(smap_violation(error_code, regs))):\n"
                      "        bad_area_nosemaphore(regs, error_code, address)  # mutant: no return\n"),)),
    Mutant(
        name="smap_violation_oopses_without_fixup",
        summary="a SMAP violation oopses without trying the exception table (the 5.12 rule)",
        description=(
            "historical-bugs 3.2 (i), taken the other way round: 4.4 sends a SMAP violation "
            "through bad_area_nosemaphore and no_context, where an exception-table entry "
            "turns it into -EFAULT (the bug ca247283781d fixed in 5.12).  The mutant brings "
            "the 5.12 behaviour into the 4.4 handler, an oops with no fixup; a checker of the "
            "4.4 specification must tell the two apart."),
        origin="historical-bugs 3.2", seq="3.2",
        patches=(Edit("__do_page_fault",
                      "    if decide(\"smap_violation\", bool(smap_violation(error_code, regs))):\n"
                      "        bad_area_nosemaphore(regs, error_code, address)\n",
                      "    if decide(\"smap_violation\", bool(smap_violation(error_code, regs))):\n"
                      "        # mutant (5.12): oops at once, no exception-table fixup\n"
                      "        saved_irqs = oops_begin()\n"
                      "        show_fault_oops(regs, error_code, address)\n"
                      "        m.set_outcome(Outcome.oops(m.oops_reason or \"kernel_paging_request\"))\n"
                      "        __die(\"Oops\", regs, error_code)\n"
                      "        oops_end(saved_irqs, regs, SIGKILL)\n"),)),
    Mutant(
        name="smap_ignores_ac",
        summary="smap_violation ignores EFLAGS.AC: every legitimate uaccess is a violation",
        description="historical-bugs 3.2 (ii), seeded: the stac/clac exception is dropped, so "
                    "copy_from_user with AC set is treated as a stray kernel dereference.",
        origin="historical-bugs 3.2", seq="3.2",
        patches=(Edit("smap_violation",
                      "    if not user_mode(regs) and regs.flags & X86_EFLAGS_AC:\n        return False\n",
                      "    pass  # mutant: AC does not excuse the access\n"),)),
    Mutant(
        name="smap_check_dropped",
        summary="no SMAP check: a kernel dereference of a user pointer is handled",
        description="historical-bugs 3.2 (iii), seeded: D3 is gone, so a kernel access to user "
                    "memory outside stac/clac goes into handle_mm_fault and succeeds.",
        origin="historical-bugs 3.2", seq="3.2",
        patches=(Edit("smap_violation", "    if not machine().cpu.cr4 & X86_CR4_SMAP:\n        return False\n",
                      "    if True:  # mutant: SMAP never violated\n        return False\n"),)),
    Mutant(
        name="smap_uses_software_user_bit",
        summary="smap_violation treats a user-mode fault as PF_USER (the software bit)",
        description=(
            "historical-bugs 3.2 (iv), seeded: 4.4 tests SMAP on the hardware U/S bit, before "
            "PF_USER is ORed in for user mode.  An implicit supervisor access made at CPL 3 "
            "(a GDT/IDT/TSS read, T16) has U/S clear and must count as a SMAP violation; the "
            "mutant excuses it because the registers say user mode."),
        origin="historical-bugs 3.2", seq="3.2",
        patches=(Edit("smap_violation", "    if error_code & PF_USER:\n        return False\n",
                      "    if error_code & PF_USER or user_mode(regs):  # mutant\n        return False\n"),)),
]
