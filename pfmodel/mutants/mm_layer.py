"""Mutants of the mm layer: mapping-type dispatch, what the PTE becomes, fault accounting
(seed 2.7, 2.7.4, 2.7.10; KF 2.4.6-2.4.14; historical-bugs 4.5, 4.6, 6.1)."""

from __future__ import annotations

from .base import Edit, Mutant

THEME = "mm_layer"

MUTANTS = [
    Mutant(
        name="anon_path_without_fault_handler",
        summary="a VMA whose vm_ops has no ->fault takes the anonymous path",
        description=(
            "historical-bugs 6.1 (CVE-2015-3288): handle_pte_fault sent a none PTE to "
            "do_anonymous_page whenever the VMA had no ->fault, even for file or shared "
            "mappings, planting private anonymous pages in file mappings.  4.4 dispatches on "
            "vm_ops == NULL only and gives such a VMA SIGBUS."),
        origin="historical-bugs 6.1", seq="6.1",
        patches=(Edit("handle_pte_fault",
                      "if decide(\"vma_is_anonymous\", bool(vma_is_anonymous(vma))):\n",
                      "if decide(\"vma_is_anonymous\", bool(vma_is_anonymous(vma) or not vma.vm_ops.fault)):  # mutant\n"),)),
    Mutant(
        name="anon_shared_without_sigbus",
        summary="do_anonymous_page maps a private page into a VM_SHARED VMA",
        description="historical-bugs 6.1, the other half of the fix: do_anonymous_page's "
                    "VM_SHARED -> VM_FAULT_SIGBUS guard is gone.",
        origin="historical-bugs 6.1", seq="6.1",
        patches=(Edit("do_anonymous_page",
                      "    if decide(\"anon_vm_shared\", bool(vma.vm_flags & VM_SHARED)):\n",
                      "    if decide(\"anon_vm_shared\", bool(vma.vm_flags & VM_SHARED)) and False:  # mutant\n"),)),
    Mutant(
        name="write_fault_not_dirty",
        summary="handle_pte_fault does not set the dirty bit on a write fault",
        description="The write branch of handle_pte_fault marks the PTE dirty before storing "
                    "it (2.7); without that the kernel loses track of a written page.",
        patches=(Edit("handle_pte_fault", "            entry = pgtable.pte_mkdirty(entry)\n",
                      "            pass  # mutant: not marked dirty\n"),)),
    Mutant(
        name="wp_reuse_stays_readonly",
        summary="do_wp_page's reuse path leaves the PTE read-only",
        description="wp_page_reuse marks the page dirty but forgets maybe_mkwrite: the write "
                    "faults again and again on the same read-only PTE.",
        patches=(Edit("wp_page_reuse",
                      "    entry = pgtable.maybe_mkwrite(pgtable.pte_mkdirty(entry), vma)\n",
                      "    entry = pgtable.pte_mkdirty(entry)  # mutant: no maybe_mkwrite\n"),)),
    Mutant(
        name="anon_write_page_readonly",
        summary="do_anonymous_page maps a freshly written page read-only and clean",
        description="The new page of an anonymous write fault must be mapped writable and dirty "
                    "when the VMA is writable; the mutant never does, so the write takes a "
                    "second (COW) fault.",
        patches=(Edit("do_anonymous_page",
                      "        if vma.vm_flags & VM_WRITE:\n            entry = pgtable.pte_mkwrite(pgtable.pte_mkdirty(entry))\n",
                      "        pass  # mutant: never writable\n"),)),
    Mutant(
        name="major_faults_not_counted",
        summary="VM_FAULT_MAJOR is ignored: every fault counts as minor",
        description="Seed 1.1's 'major |= fault & VM_FAULT_MAJOR' is gone: maj_flt never moves.",
        patches=(Edit("__do_page_fault", "        major |= fault & VM_FAULT_MAJOR\n",
                      "        major |= 0  # mutant\n"),)),
    Mutant(
        name="accounting_before_error_check",
        summary="the fault is counted before the VM_FAULT_ERROR test",
        description="4.4 counts maj_flt/min_flt once, after the error test; the mutant counts "
                    "faults that end in SIGBUS, SIGSEGV or OOM too.",
        patches=(Edit("__do_page_fault",
                      "    if decide(\"fault_error\", bool(fault & VM_FAULT_ERROR)):\n"
                      "        mm_fault_error(regs, error_code, address, fault)\n        return\n",
                      "    if fault & VM_FAULT_ERROR:  # mutant: counted as a minor fault first\n"
                      "        change(min_flt=\"+1\")\n        tsk.min_flt += 1\n"
                      "    if decide(\"fault_error\", bool(fault & VM_FAULT_ERROR)):\n"
                      "        mm_fault_error(regs, error_code, address, fault)\n        return\n"),)),
    Mutant(
        name="pte_same_recheck_dropped",
        summary="handle_pte_fault does not re-check the PTE under the page-table lock",
        description=(
            "historical-bugs 4.6 (seeded; CONC in the kernel): the decision is taken on a "
            "lockless snapshot and must be re-checked under the ptl.  Here the race is the "
            "environment's 'pte_race' answer (another CPU changed the PTE in between), and the "
            "mutant writes the stale snapshot over the other CPU's entry."),
        patches=(Edit("handle_pte_fault", "    if decide(\"pte_same\", _pte_unchanged(pte, entry)):\n",
                      "    _pte_unchanged(pte, entry)\n    if decide(\"pte_same\", True):  # mutant\n"),)),
    Mutant(
        name="pte_none_recheck_dropped",
        summary="do_anonymous_page installs its page without re-checking pte_none",
        description=(
            "historical-bugs 4.5 (seeded; CONC in the kernel): after allocating without a lock "
            "do_anonymous_page must see the PTE still none under the ptl.  The environment's "
            "pte_race plays the other CPU that got there first."),
        patches=(Edit("do_anonymous_page",
                      "        if not decide(\"anon_pte_none_recheck\", _pte_unchanged(page_table, 0)):\n"
                      "            pte_unmap_unlock(page_table, ptl)\n"
                      "            machine().mem.free_page(page.pfn)  # page_cache_release\n",
                      "        _pte_unchanged(page_table, 0)\n"
                      "        if not decide(\"anon_pte_none_recheck\", True):  # mutant\n"
                      "            pte_unmap_unlock(page_table, ptl)\n"
                      "            machine().mem.free_page(page.pfn)  # page_cache_release\n"),)),
]
