"""Mutants of stack growth: the sp cushion, expand_stack and the 4.4 guard page (seed 1.1,
1.1.7; KF 2.2.14, 2.4.8; historical-bugs 2.3, T2)."""

from __future__ import annotations

from .base import Edit, Mutant

THEME = "stack"

_CUSHION_TEST = "                if decide(\"stack_cushion_exceeded\", limit < regs.sp,\n"

MUTANTS = [
    Mutant(
        name="stack_cushion_off_by_one",
        summary="the sp cushion test uses <= : an access exactly at the cushion's edge is refused",
        description="Seed 1.1 refuses a user fault whose address + 65536 + 32*sizeof(long) is "
                    "below sp; the mutant refuses at equality too.",
        patches=(Edit("__do_page_fault", _CUSHION_TEST,
                      "                if decide(\"stack_cushion_exceeded\", limit <= regs.sp,  # mutant\n"),)),
    Mutant(
        name="stack_cushion_reversed",
        summary="the sp cushion test is reversed: accesses far below sp grow the stack",
        description="A comparison written the wrong way round: the stack grows for any user "
                    "access below it, however far below sp, and is refused near sp.",
        patches=(Edit("__do_page_fault", _CUSHION_TEST,
                      "                if decide(\"stack_cushion_exceeded\", limit > regs.sp,  # mutant\n"),)),
    Mutant(
        name="stack_cushion_without_longs",
        summary="the cushion is 65536 bytes, without the 32 * sizeof(long) of 'enter'",
        description="The slack below sp is 65536 + 32 * sizeof(long) ('enter $65535, $31' "
                    "pushes 32 words); the mutant forgets the words.",
        patches=(Edit("__do_page_fault",
                      "                limit = (address + stack_cushion(arch.name)) & arch.word_mask\n",
                      "                limit = (address + 65536) & arch.word_mask  # mutant\n"),)),
    Mutant(
        name="stack_cushion_for_kernel_faults",
        summary="kernel-mode faults below a stack are checked against the user sp too",
        description="T2: only user faults are held to the sp cushion (a kernel fault's regs->sp "
                    "is a kernel stack pointer).  The mutant applies it to every fault.",
        patches=(Edit("__do_page_fault", "            if error_code & PF_USER:\n                arch = m.arch\n",
                      "            if True:  # mutant: kernel faults too\n                arch = m.arch\n"),)),
    Mutant(
        name="stack_grows_without_growsdown",
        summary="any VMA above the address grows down to it, VM_GROWSDOWN or not",
        description="The VM_GROWSDOWN test before expand_stack is ignored: a heap or a file "
                    "mapping above a hole silently extends downwards.",
        patches=(Edit("__do_page_fault",
                      "            if not decide(\"vm_growsdown\", bool(vma.vm_flags & VM_GROWSDOWN)):\n",
                      "            if not decide(\"vm_growsdown\", bool(vma.vm_flags & VM_GROWSDOWN)) and False:  # mutant\n"),)),
    Mutant(
        name="seed_expand_stack_literal",
        summary="the seed's grows-up expand_stack taken literally on x86",
        description=(
            "The seed prints the CONFIG_STACK_GROWSUP expand_stack (1.1.7).  x86 builds the "
            "grows-down one; the grows-up one refuses every growth there (VM_GROWSUP is 0), "
            "so every stack growth becomes SEGV_MAPERR.  (KernelSpec.seed_expand_stack selects "
            "the same code for a single scenario.)"),
        patches=(Edit("expand_stack", "    if machine().config.seed_expand_stack:\n",
                      "    if True:  # mutant: always the seed's grows-up variant\n"),)),
    Mutant(
        name="abutting_mapping_does_not_block_growth",
        summary="expand_stack grows into a non-stack mapping that ends right below the stack",
        description="x86's expand_stack refuses when vm_prev, not GROWSDOWN, ends exactly at the "
                    "new start (the CVE-2010-2240 follow-up 'accept an abutting stack segment' "
                    "keeps only stacks); the mutant drops the test.",
        patches=(Edit("expand_stack",
                      "        return -ENOMEM\n    return expand_downwards(vma, address)\n",
                      "        pass  # mutant: grow anyway\n    return expand_downwards(vma, address)\n"),)),
    Mutant(
        name="guard_page_error_ignored",
        summary="check_stack_guard_page ignores a failed expansion (the guard page vanishes)",
        description=(
            "historical-bugs 2.3 (i): before fee7e49d4514 the error of the guard-page "
            "expansion was dropped, so a fault on a stack's lowest page was handled without "
            "the page below becoming stack, and the guard silently vanished."),
        origin="historical-bugs 2.3", seq="2.3",
        patches=(Edit("check_stack_guard_page",
                      "        return mmap.expand_downwards(vma, address - PAGE_SIZE)\n",
                      "        mmap.expand_downwards(vma, address - PAGE_SIZE)\n"
                      "        return 0  # mutant: the error is ignored\n"),)),
    Mutant(
        name="guard_page_failure_sigbus",
        summary="a stack guard-page failure gives SIGBUS instead of SIGSEGV",
        description=(
            "historical-bugs 2.3 (ii): once the guard-page error was propagated it came back "
            "as VM_FAULT_SIGBUS, which broke libsigsegv users; 9c145c56d0c8 made it "
            "VM_FAULT_SIGSEGV (a refused stack expansion is a SIGSEGV)."),
        origin="historical-bugs 2.3", seq="2.3",
        patches=(Edit("do_anonymous_page",
                      "check_stack_guard_page(vma, address) < 0):\n        return VM_FAULT_SIGSEGV\n",
                      "check_stack_guard_page(vma, address) < 0):\n        return VM_FAULT_SIGBUS  # mutant\n"),)),
]
