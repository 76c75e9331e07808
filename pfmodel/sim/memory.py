"""mm/memory.c of Linux 4.4 (with the THP and hugetlb entry points it calls): from
handle_mm_fault down to the pte (seed 1.1.10, 2, 2.1-2.7.13; kernel-facts §2.3, §2.4).

Pages the handler maps are real: frames come from PhysMem (where the scenario's
allocation failures are injected) and the entries written are the kernel's values
(``mk_pte(page, vm_page_prot)`` and friends).  What lies behind filesystems, the swap
device, userfaultfd and hugetlbfs is the environment's answer.
"""

from __future__ import annotations

from ..x86.constants import (
    _PAGE_ACCESSED,
    _PAGE_DIRTY,
    _PAGE_PSE,
    _PAGE_RW,
    PAGE_SHIFT,
    PAGE_SIZE,
)
from . import fault, mmap, oom, pgtable
from .constants import (
    ENOMEM,
    FAULT_FLAG_ALLOW_RETRY,
    FAULT_FLAG_KILLABLE,
    FAULT_FLAG_RETRY_NOWAIT,
    FAULT_FLAG_USER,
    FAULT_FLAG_WRITE,
    TASK_RUNNING,
    VM_FAULT_ERROR,
    VM_FAULT_FALLBACK,
    VM_FAULT_HWPOISON,
    VM_FAULT_LOCKED,
    VM_FAULT_MAJOR,
    VM_FAULT_NOPAGE,
    VM_FAULT_OOM,
    VM_FAULT_RETRY,
    VM_FAULT_SIGBUS,
    VM_FAULT_SIGSEGV,
    VM_FAULT_WRITE,
    VM_EXEC,
    VM_GROWSDOWN,
    VM_HUGEPAGE,
    VM_HUGETLB,
    VM_NOHUGEPAGE,
    VM_RAND_READ,
    VM_READ,
    VM_SEQ_READ,
    VM_SHARED,
    VM_UFFD_MISSING,
    VM_WRITE,
    vm_fault_str,
)
from .state import MmStruct, Page, VmAreaStruct, current, decide, machine, up_read

EINTR = 4
VM_STACK_INCOMPLETE_SETUP = VM_RAND_READ | VM_SEQ_READ


def _rd(ptr: int) -> int:
    return pgtable.read_entry(ptr)


def _hpage_pmd_size() -> int:
    return machine().arch.pmd_size


def _pte_unchanged(ptep: int, orig_pte: int) -> bool:
    """The re-check under the ptl.  The Env's pte race makes the first one of the run fail:
    another CPU changed the entry in between (the re-executed access then faults again)."""
    if machine().env.take_pte_race():
        return False
    return pgtable.pte_same(_rd(ptep), orig_pte)


# --- Locks and page helpers ---------------------------------------------------------------

def pte_offset_map_lock(mm: MmStruct, pmd: int, address: int) -> tuple[int, str]:
    """KF 2.4.7 (no seed section): map the pte and take its ptl."""
    machine().ptl_held += 1
    return pgtable.pte_offset_map(pmd, address), "ptl"


def pte_lockptr(mm: MmStruct, pmd: int) -> str:
    """Seed 2.7 (KF 2.4.6)."""
    return "ptl"


def spin_lock(ptl: str) -> None:
    machine().ptl_held += 1


def spin_unlock(ptl: str) -> None:
    machine().ptl_held -= 1


def pte_unmap(pte: int) -> None:
    """KF 1.2 (no seed section): a no-op without HIGHPTE."""


def pte_unmap_unlock(pte: int, ptl: str) -> None:
    """Seed 2.7 (KF 2.4.6)."""
    spin_unlock(ptl)


def pmd_lock(mm: MmStruct, pmd: int) -> str:
    """KF 2.4.3 (no seed section)."""
    spin_lock("pmd_lock")
    return "pmd_lock"


def _new_page(purpose: str, kind: str, anon: bool) -> Page | None:
    """alloc_pages for a data page: None when the scenario injects a failure."""
    m = machine()
    pfn = m.mem.alloc_page(purpose)
    if pfn is None:
        return None
    page = Page(pfn=pfn, anon=anon, kind=kind)
    m.pages[pfn] = page
    return page


def _huge_page(kind: str) -> Page | None:
    """A 2/4 MiB page: the allocation decision is PhysMem's, the frame an aligned block."""
    m = machine()
    if m.mem.alloc_page("huge_page") is None:
        return None
    pfn = m.next_huge_pfn
    m.next_huge_pfn += _hpage_pmd_size() >> PAGE_SHIFT
    page = Page(pfn=pfn, anon=kind == "huge", kind=kind)
    m.pages[pfn] = page
    return page


def page_of(pfn: int, vma: VmAreaStruct) -> Page:
    """pfn_to_page: pages the scenario mapped are anonymous in anonymous VMAs, page cache
    pages elsewhere."""
    m = machine()
    page = m.pages.get(pfn)
    if page is None:
        anon = vma_is_anonymous(vma)
        page = Page(pfn=pfn, anon=anon, kind="anon" if anon else "file")
        m.pages[pfn] = page
    return page


def vma_is_anonymous(vma: VmAreaStruct) -> bool:
    """Seed 2.7.3 (KF 2.4.16)."""
    return vma.vm_ops is None


def is_vm_hugetlb_page(vma: VmAreaStruct) -> bool:
    """Seed 2 (KF 2.4.1)."""
    return bool(vma.vm_flags & VM_HUGETLB)


def userfaultfd_missing(vma: VmAreaStruct) -> bool:
    """KF 2.4.7 (no seed section)."""
    return bool(vma.vm_flags & VM_UFFD_MISSING)


def _inc_mm_counter(mm: MmStruct, counter: str, n: int = 1) -> None:
    mm.rss[counter] = mm.rss.get(counter, 0) + n


# --- handle_mm_fault (seed 1.1.10; KF 2.3) ------------------------------------------------------

def __set_current_state(state: int) -> None:
    """Seed 1.1.10.1."""
    current().state = state


def count_vm_event(item: str) -> None:
    """Seed 1.1.10.2: per-cpu VM event counters (PGFAULT counts every pass)."""
    events = machine().vm_events
    events[item] = events.get(item, 0) + 1


def mem_cgroup_count_vm_event(mm: MmStruct, item: str) -> None:
    """Seed 1.1.10 (KF 2.3): the memcg's copy of the event; not modelled."""


def check_sync_rss_stat(task) -> None:
    """Seed 1.1.10 (KF 2.3): fold per-task RSS deltas; the counters here are exact already."""


def handle_mm_fault(mm: MmStruct, vma: VmAreaStruct, address: int, flags: int) -> int:
    """Seed 1.1.10 (KF 2.3)."""
    __set_current_state(TASK_RUNNING)
    count_vm_event("PGFAULT")
    mem_cgroup_count_vm_event(mm, "PGFAULT")
    check_sync_rss_stat(current())
    # Enable the memcg OOM handling for faults triggered in user space.
    if flags & FAULT_FLAG_USER:
        oom.mem_cgroup_oom_enable()
    ret = __handle_mm_fault(mm, vma, address, flags)
    if flags & FAULT_FLAG_USER:
        oom.mem_cgroup_oom_disable()
        # A memcg OOM that was handled gracefully needs no kill: clean up quietly.
        if decide("memcg_oom_cleanup", bool(oom.task_in_memcg_oom(current()) and not ret & VM_FAULT_OOM)):
            oom.mem_cgroup_oom_synchronize(False)
    return ret


# --- __handle_mm_fault (seed 2; KF 2.4.1) ---------------------------------------------------------

def __handle_mm_fault(mm: MmStruct, vma: VmAreaStruct, address: int, flags: int) -> int:
    """Seed 2 (KF 2.4.1)."""
    if decide("is_vm_hugetlb_page", bool(is_vm_hugetlb_page(vma))):
        ret = hugetlb_fault(mm, vma, address, flags)
        decide("hugetlb_fault", vm_fault_str(ret))
        return ret

    pgd = pgtable.pgd_offset(mm, address)
    pud = pgtable.pud_alloc(mm, pgd, address)
    if decide("pud_alloc", pud is None):
        return VM_FAULT_OOM
    pmd = pgtable.pmd_alloc(mm, pud, address)
    if decide("pmd_alloc", pmd is None):
        return VM_FAULT_OOM
    if decide("pmd_none_thp", bool(pgtable.pmd_none(_rd(pmd)) and transparent_hugepage_enabled(vma))):
        ret = create_huge_pmd(mm, vma, address, pmd, flags)
        decide("create_huge_pmd", vm_fault_str(ret))
        if not ret & VM_FAULT_FALLBACK:
            return ret
    else:
        orig_pmd = _rd(pmd)
        if decide("pmd_trans_huge", bool(pgtable.pmd_trans_huge(orig_pmd)), note=hex(orig_pmd)):
            dirty = flags & FAULT_FLAG_WRITE
            # A splitting pmd: return and let the access re-fault.
            if decide("pmd_trans_splitting", bool(pgtable.pmd_trans_splitting(orig_pmd))):
                return 0
            if decide("pmd_protnone", bool(pgtable.pmd_protnone(orig_pmd))):
                return do_huge_pmd_numa_page(mm, vma, address, orig_pmd, pmd)
            if decide("dirty_not_pmd_write", bool(dirty and not pgtable.pmd_write(orig_pmd))):
                ret = wp_huge_pmd(mm, vma, address, pmd, orig_pmd, flags)
                decide("wp_huge_pmd", vm_fault_str(ret))
                if not ret & VM_FAULT_FALLBACK:
                    return ret
            else:
                huge_pmd_set_accessed(mm, vma, address, pmd, orig_pmd, dirty)
                return 0

    # __pte_alloc, not pte_alloc_map: a huge pmd may appear under us.
    if decide("pte_alloc", bool(pgtable.pmd_none(_rd(pmd)) and __pte_alloc(mm, vma, pmd, address))):
        return VM_FAULT_OOM
    # A huge pmd materialised from under us: retry later.
    if decide("pmd_trans_huge_after_alloc", bool(pgtable.pmd_trans_huge(_rd(pmd)))):
        return 0
    pte = pgtable.pte_offset_map(pmd, address)
    return handle_pte_fault(mm, vma, address, pte, pmd, flags)


# --- Page-table allocation (seed 2.3-2.5.3; KF 2.4.2, 2.4.3) ---------------------------------------

def pud_alloc_one(mm: MmStruct, address: int) -> int | None:
    """KF 2.4.2 (no seed section): a zeroed page for a pud table."""
    return machine().mem.alloc_page("pud")


def __pud_alloc(mm: MmStruct, pgd: int, address: int) -> int:
    """KF 2.4.2 (no seed section; 64-bit): returns 0 or -ENOMEM."""
    new = pud_alloc_one(mm, address)
    if new is None:
        return -ENOMEM
    spin_lock("page_table_lock")
    if pgtable.pgd_present(_rd(pgd)):  # another thread populated it
        machine().mem.free_page(new)
    else:
        pgtable.pgd_populate(mm, pgd, new)
    spin_unlock("page_table_lock")
    return 0


def pmd_alloc_one(mm: MmStruct, addr: int) -> int | None:
    """Seed 2.4.1.1: a zeroed page (alloc_pages, then pgtable_pmd_page_ctor)."""
    return machine().mem.alloc_page("pmd")


def mm_inc_nr_pmds(mm: MmStruct) -> None:
    """Seed 2.4.1.2."""
    mm.nr_pmds += 1


def __pmd_alloc(mm: MmStruct, pud: int, address: int) -> int:
    """Seed 2.4.1 (x86: the !__ARCH_HAS_4LEVEL_HACK branch, pud_populate; KF 4 item 6)."""
    new = pmd_alloc_one(mm, address)
    if new is None:
        return -ENOMEM
    spin_lock("page_table_lock")
    if not pgtable.pud_present(_rd(pud)):
        mm_inc_nr_pmds(mm)
        pgtable.pud_populate(mm, pud, new)
    else:  # another has populated it
        machine().mem.free_page(new)
    spin_unlock("page_table_lock")
    return 0


def pte_alloc_one(mm: MmStruct, address: int) -> int | None:
    """Seed 2.5.1: a zeroed pte page (alloc_pages, then pgtable_page_ctor)."""
    return machine().mem.alloc_page("pte")


def __pte_alloc(mm: MmStruct, vma: VmAreaStruct, pmd: int, address: int) -> int:
    """Seed 2.5 (KF 2.4.3): returns 0 or -ENOMEM (0 also when another populated it)."""
    new = pte_alloc_one(mm, address)
    if new is None:
        return -ENOMEM
    ptl = pmd_lock(mm, pmd)
    wait_split_huge_page = False
    if pgtable.pmd_none(_rd(pmd)):  # has another populated it?
        mm.nr_ptes += 1
        pgtable.pmd_populate(mm, pmd, new)
        new = None
    elif pgtable.pmd_trans_splitting(_rd(pmd)):
        wait_split_huge_page = True
    spin_unlock(ptl)
    if new is not None:
        machine().mem.free_page(new)
    if wait_split_huge_page:
        pass  # sleeps until the split (by another CPU) is done
    return 0


# --- hugetlb (seed 2.1; KF 2.4.5, summarised) -------------------------------------------------------

def hugetlb_fault(mm: MmStruct, vma: VmAreaStruct, address: int, flags: int) -> int:
    """Seed 2.1 (KF 2.4.5): the result is the Env's; on success the huge page is mapped."""
    ret = machine().env.hugetlb_fault()
    if ret & VM_FAULT_RETRY:
        up_read(mm.mmap_sem)
        return ret
    if ret & (VM_FAULT_ERROR | VM_FAULT_NOPAGE):
        return ret
    pgd = pgtable.pgd_offset(mm, address)
    pud = pgtable.pud_alloc(mm, pgd, address)  # huge_pte_alloc
    if pud is None:
        return VM_FAULT_OOM
    pmd = pgtable.pmd_alloc(mm, pud, address)
    if pmd is None:
        return VM_FAULT_OOM
    entry = _rd(pmd)
    write = flags & FAULT_FLAG_WRITE
    if pgtable.pmd_none(entry) or (write and not entry & _PAGE_RW and vma.vm_flags & VM_WRITE
                                   and entry & _PAGE_PSE):
        page = _huge_page("hugetlb")
        if page is None:
            return VM_FAULT_OOM if pgtable.pmd_none(entry) else ret | VM_FAULT_OOM
        entry = pgtable.mk_pte(page.pfn, vma.vm_page_prot) | _PAGE_PSE
        if write and vma.vm_flags & VM_WRITE:
            entry = pgtable.pte_mkwrite(pgtable.pte_mkdirty(entry))
    elif not entry & _PAGE_PSE:
        return ret  # a pte table sits where the huge page would go: nothing to do
    entry = pgtable.pte_mkyoung(entry)
    if write and entry & _PAGE_RW:
        entry = pgtable.pte_mkdirty(entry)
    pgtable.set_pmd(pmd, entry)
    return ret


# --- THP entry points (KF 2.4.4, summarised) --------------------------------------------------------

def is_vma_temporary_stack(vma: VmAreaStruct) -> bool:
    """KF 2.4.4 (no seed section)."""
    if not vma.vm_flags & VM_GROWSDOWN:
        return False
    return vma.vm_flags & VM_STACK_INCOMPLETE_SETUP == VM_STACK_INCOMPLETE_SETUP


def transparent_hugepage_enabled(vma: VmAreaStruct) -> bool:
    """KF 2.4.4 (no seed section)."""
    thp = machine().config.thp
    wanted = thp == "always" or (thp == "madvise" and bool(vma.vm_flags & VM_HUGEPAGE))
    return wanted and not vma.vm_flags & VM_NOHUGEPAGE and not is_vma_temporary_stack(vma)


def _mk_huge_pmd(pfn: int, prot: int) -> int:
    return pgtable.pfn_pte(pfn, prot) | _PAGE_PSE


def _deposit(pmd: int, pgtable_pfn: int) -> None:
    machine().pages[pgtable_pfn] = Page(pfn=pgtable_pfn, anon=False, kind=f"deposit@{pmd:#x}")


def _withdraw(mm: MmStruct, pmd: int) -> int:
    """The pte page deposited with a huge pmd (or a fresh one for pmds the scenario set)."""
    m = machine()
    for pfn, page in sorted(m.pages.items()):
        if page.kind == f"deposit@{pmd:#x}":
            del m.pages[pfn]
            return pfn
    pfn = m.mem.alloc_page("deposit")
    assert pfn is not None
    mm.nr_ptes += 1
    return pfn


def create_huge_pmd(mm: MmStruct, vma: VmAreaStruct, address: int, pmd: int, flags: int) -> int:
    """KF 2.4.4 (no seed section)."""
    if vma_is_anonymous(vma):
        return do_huge_pmd_anonymous_page(mm, vma, address, pmd, flags)
    return VM_FAULT_FALLBACK  # no ->pmd_fault (DAX) modelled


def do_huge_pmd_anonymous_page(mm: MmStruct, vma: VmAreaStruct, address: int, pmd: int, flags: int) -> int:
    """KF 2.4.4 (no seed section; summarised)."""
    size = _hpage_pmd_size()
    haddr = address & ~(size - 1)
    if haddr < vma.vm_start or haddr + size > vma.vm_end:
        return VM_FAULT_FALLBACK
    if mmap.anon_vma_prepare(vma):
        return VM_FAULT_OOM
    if not flags & FAULT_FLAG_WRITE:
        new_pgtable = pte_alloc_one(mm, haddr)
        if new_pgtable is None:
            return VM_FAULT_OOM
        zero = get_huge_zero_page()
        if zero is None:
            machine().mem.free_page(new_pgtable)
            return VM_FAULT_FALLBACK
        ret = 0
        ptl = pmd_lock(mm, pmd)
        if pgtable.pmd_none(_rd(pmd)):
            if userfaultfd_missing(vma):
                spin_unlock(ptl)
                machine().mem.free_page(new_pgtable)
                return handle_userfault(vma, address, flags, VM_UFFD_MISSING)
            entry = _mk_huge_pmd(zero, vma.vm_page_prot)
            _deposit(pmd, new_pgtable)
            pgtable.set_pmd(pmd, entry)
            mm.nr_ptes += 1
        else:
            machine().mem.free_page(new_pgtable)
        spin_unlock(ptl)
        return ret
    page = _huge_page("huge")
    if page is None:
        count_vm_event("THP_FAULT_FALLBACK")
        return VM_FAULT_FALLBACK
    new_pgtable = pte_alloc_one(mm, haddr)
    if new_pgtable is None:
        return VM_FAULT_OOM
    ptl = pmd_lock(mm, pmd)
    if not pgtable.pmd_none(_rd(pmd)):
        spin_unlock(ptl)
        machine().mem.free_page(new_pgtable)
        return 0
    if userfaultfd_missing(vma):
        spin_unlock(ptl)
        machine().mem.free_page(new_pgtable)
        return handle_userfault(vma, address, flags, VM_UFFD_MISSING)
    entry = pgtable.maybe_mkwrite(pgtable.pmd_mkdirty(_mk_huge_pmd(page.pfn, vma.vm_page_prot)), vma)
    _deposit(pmd, new_pgtable)
    pgtable.set_pmd(pmd, entry)
    _inc_mm_counter(mm, "MM_ANONPAGES", size >> PAGE_SHIFT)
    mm.nr_ptes += 1
    spin_unlock(ptl)
    return 0


def get_huge_zero_page() -> int | None:
    """KF 2.4.4 (no seed section): the shared huge zero page (allocated once)."""
    m = machine()
    if m.huge_zero_pfn is None:
        page = _huge_page("huge_zero")
        if page is None:
            return None
        m.huge_zero_pfn = page.pfn
    return m.huge_zero_pfn


def _split_huge_pmd(mm: MmStruct, vma: VmAreaStruct, pmd: int) -> None:
    """split_huge_page_pmd: 512 (1024) ptes with the huge entry's rights, in the deposited table."""
    m = machine()
    huge = _rd(pmd)
    table = _withdraw(mm, pmd)
    base = pgtable.pmd_pfn(huge)
    zero = base == m.huge_zero_pfn
    flags = huge & ~pgtable.pmd_pfn_mask(huge) & ~_PAGE_PSE
    for i in range(m.arch.ptrs_per_pte):
        if zero:
            entry = pgtable.pte_mkspecial(pgtable.pfn_pte(m.zero_pfn, vma.vm_page_prot))
        else:
            entry = ((base + i) << PAGE_SHIFT) | flags
        m.mem.write_entry(table * PAGE_SIZE + i * m.arch.entry_bytes, entry)
    pgtable.pmd_populate(mm, pmd, table)


def wp_huge_pmd(mm: MmStruct, vma: VmAreaStruct, address: int, pmd: int, orig_pmd: int, flags: int) -> int:
    """KF 2.4.4 (no seed section)."""
    if vma_is_anonymous(vma):
        return do_huge_pmd_wp_page(mm, vma, address, pmd, orig_pmd)
    return VM_FAULT_FALLBACK


def do_huge_pmd_wp_page(mm: MmStruct, vma: VmAreaStruct, address: int, pmd: int, orig_pmd: int) -> int:
    """KF 2.4.4 (no seed section; summarised): reuse, copy, or split and fall back."""
    m = machine()
    ret = 0
    is_zero = pgtable.pmd_pfn(orig_pmd) == m.huge_zero_pfn
    if not is_zero:
        ptl = pmd_lock(mm, pmd)
        if _rd(pmd) != orig_pmd:
            spin_unlock(ptl)
            return 0
        if m.env.reuse:  # page_mapcount == 1
            entry = pgtable.maybe_mkwrite(pgtable.pmd_mkdirty(pgtable.pmd_mkyoung(orig_pmd)), vma)
            pmdp_set_access_flags(vma, address, pmd, entry, 1)
            spin_unlock(ptl)
            return VM_FAULT_WRITE
        spin_unlock(ptl)
    new = _huge_page("huge") if transparent_hugepage_enabled(vma) else None
    if new is None:
        if is_zero:
            _split_huge_pmd(mm, vma, pmd)
            ret |= VM_FAULT_FALLBACK
        else:
            ret = do_huge_pmd_wp_page_fallback(mm, vma, address, pmd, orig_pmd)
            if ret & VM_FAULT_OOM:
                _split_huge_pmd(mm, vma, pmd)
                ret |= VM_FAULT_FALLBACK
        count_vm_event("THP_FAULT_FALLBACK")
        return ret
    ptl = pmd_lock(mm, pmd)
    if _rd(pmd) == orig_pmd:
        entry = pgtable.maybe_mkwrite(pgtable.pmd_mkdirty(_mk_huge_pmd(new.pfn, vma.vm_page_prot)), vma)
        pgtable.set_pmd(pmd, entry)
        if is_zero:
            _inc_mm_counter(mm, "MM_ANONPAGES", _hpage_pmd_size() >> PAGE_SHIFT)
        ret |= VM_FAULT_WRITE
    spin_unlock(ptl)
    return ret


def do_huge_pmd_wp_page_fallback(mm: MmStruct, vma: VmAreaStruct, address: int, pmd: int,
                                 orig_pmd: int) -> int:
    """KF 2.4.4 (no seed section): copy the huge page into small private pages."""
    m = machine()
    if m.mem.alloc_page("cow_page") is None:
        return VM_FAULT_OOM
    table = _withdraw(mm, pmd)
    base = m.next_huge_pfn
    m.next_huge_pfn += _hpage_pmd_size() >> PAGE_SHIFT
    for i in range(m.arch.ptrs_per_pte):
        entry = pgtable.maybe_mkwrite(pgtable.pte_mkdirty(pgtable.mk_pte(base + i, vma.vm_page_prot)), vma)
        m.pages[base + i] = Page(pfn=base + i, anon=True, kind="anon")
        m.mem.write_entry(table * PAGE_SIZE + i * m.arch.entry_bytes, entry)
    pgtable.pmd_populate(mm, pmd, table)
    return VM_FAULT_WRITE


def pmdp_set_access_flags(vma: VmAreaStruct, address: int, pmdp: int, entry: int, dirty: int) -> bool:
    """KF 2.4.6 (no seed section): as ptep_set_access_flags, for a pmd."""
    changed = _rd(pmdp) != entry
    if changed and dirty:
        pgtable.set_pmd(pmdp, entry)
    return changed


def huge_pmd_set_accessed(mm: MmStruct, vma: VmAreaStruct, address: int, pmd: int, orig_pmd: int,
                          dirty: int) -> None:
    """KF 2.4.4 (no seed section): young only (not dirty), written only if dirty."""
    ptl = pmd_lock(mm, pmd)
    if _rd(pmd) != orig_pmd:
        spin_unlock(ptl)
        return
    entry = pgtable.pmd_mkyoung(orig_pmd)
    haddr = address & ~(_hpage_pmd_size() - 1)
    pmdp_set_access_flags(vma, haddr, pmd, entry, dirty)
    spin_unlock(ptl)


def do_huge_pmd_numa_page(mm: MmStruct, vma: VmAreaStruct, addr: int, orig_pmd: int, pmdp: int) -> int:
    """KF 2.4.4 (no seed section): clear the NUMA hint (no migration modelled); returns 0."""
    if not vma.vm_flags & (VM_READ | VM_EXEC | VM_WRITE):
        fault.BUG("do_huge_pmd_numa_page: VMA without access")
    ptl = pmd_lock(mm, pmdp)
    if _rd(pmdp) == orig_pmd:
        was_writable = orig_pmd & _PAGE_RW
        keep = pgtable.pmd_pfn_mask(orig_pmd) | _PAGE_ACCESSED | _PAGE_DIRTY | _PAGE_PSE
        entry = (orig_pmd & keep) | (pgtable.massage_pgprot(vma.vm_page_prot) & ~keep)
        entry = pgtable.pmd_mkyoung(entry)
        if was_writable:
            entry = pgtable.pmd_mkwrite(entry)
        pgtable.set_pmd(pmdp, entry)
    spin_unlock(ptl)
    return 0


# --- handle_pte_fault (seed 2.7; KF 2.4.6) ---------------------------------------------------------

def handle_pte_fault(mm: MmStruct, vma: VmAreaStruct, address: int, pte: int, pmd: int, flags: int) -> int:
    """Seed 2.7 (KF 2.4.6): entered with the pte mapped but unlocked."""
    entry = _rd(pte)
    if not decide("pte_present", bool(pgtable.pte_present(entry)), note=hex(entry)):
        if decide("pte_none", bool(pgtable.pte_none(entry))):
            if decide("vma_is_anonymous", bool(vma_is_anonymous(vma))):
                return do_anonymous_page(mm, vma, address, pte, pmd, flags)
            return do_fault(mm, vma, address, pte, pmd, flags, entry)
        return do_swap_page(mm, vma, address, pte, pmd, flags, entry)

    if decide("pte_protnone", bool(pgtable.pte_protnone(entry))):
        return do_numa_page(mm, vma, address, entry, pte, pmd)

    ptl = pte_lockptr(mm, pmd)
    spin_lock(ptl)
    if decide("pte_same", _pte_unchanged(pte, entry)):
        if decide("flags_write", bool(flags & FAULT_FLAG_WRITE)):
            if not decide("pte_write", bool(pgtable.pte_write(entry))):
                return do_wp_page(mm, vma, address, pte, pmd, ptl, entry)
            entry = pgtable.pte_mkdirty(entry)
        entry = pgtable.pte_mkyoung(entry)
        if decide("ptep_set_access_flags",
                  bool(ptep_set_access_flags(vma, address, pte, entry, flags & FAULT_FLAG_WRITE))):
            update_mmu_cache(vma, address, pte)
        elif flags & FAULT_FLAG_WRITE:
            # Only needed for protection faults; a no-op on x86.
            flush_tlb_fix_spurious_fault(vma, address)
    pte_unmap_unlock(pte, ptl)
    return 0


def ptep_set_access_flags(vma: VmAreaStruct, address: int, ptep: int, entry: int, dirty: int) -> bool:
    """Seed 2.7 (KF 2.4.6, x86): store only if changed and dirty; return whether it changed."""
    changed = not pgtable.pte_same(_rd(ptep), entry)
    if changed and dirty:
        pgtable.set_pte_at(vma.vm_mm, address, ptep, entry)
    return changed


def update_mmu_cache(vma: VmAreaStruct, address: int, ptep: int) -> None:
    """Seed 2.7.13 (KF 2.4.15): empty on x86, the hardware walks the tables."""


def flush_tlb_fix_spurious_fault(vma: VmAreaStruct, address: int) -> None:
    """KF 2.4.15 (no seed section): a no-op on x86 (the #PF already invalidated the entry)."""


# --- do_anonymous_page and the guard page (seed 2.7.4; KF 2.4.7, 2.4.8) ------------------------------

def check_stack_guard_page(vma: VmAreaStruct, address: int) -> int:
    """KF 2.4.8 (no seed section; 4.4 only): keep an unpopulated page below the stack."""
    address &= machine().arch.page_mask
    if decide("guard_lowest_page", bool(vma.vm_flags & VM_GROWSDOWN and address == vma.vm_start)):
        prev = vma.vm_prev
        # Only the same stack, split, may abut it from below.
        if decide("guard_prev_adjacent", bool(prev is not None and prev.vm_end == address)):
            return 0 if decide("guard_prev_growsdown", bool(prev.vm_flags & VM_GROWSDOWN)) else -ENOMEM
        return mmap.expand_downwards(vma, address - PAGE_SIZE)
    # The VM_GROWSUP mirror is dead code on x86 (VM_GROWSUP == 0).
    return 0


def mm_forbids_zeropage(mm: MmStruct) -> bool:
    """KF 2.4.7 (no seed section): always 0 on x86."""
    return False


def alloc_zeroed_user_highpage_movable(vma: VmAreaStruct, address: int) -> Page | None:
    """KF 2.4.7 (no seed section)."""
    return _new_page("anon_page", "anon", anon=True)


def handle_userfault(vma: VmAreaStruct, address: int, flags: int, reason: int) -> int:
    """KF 2.4.12 item 4 (no seed section): the uffd monitor's answer comes from the Env.
    Without ALLOW_RETRY (the retry pass) it is SIGBUS with mmap_sem held; a RETRY answer
    has released mmap_sem."""
    if not flags & FAULT_FLAG_ALLOW_RETRY:
        return VM_FAULT_SIGBUS
    ret = machine().env.handle_userfault()
    if ret & VM_FAULT_RETRY:
        up_read(vma.vm_mm.mmap_sem)
    return ret


def do_anonymous_page(mm: MmStruct, vma: VmAreaStruct, address: int, page_table: int, pmd: int,
                      flags: int) -> int:
    """Seed 2.7.4 (KF 2.4.7): a none pte in an anonymous VMA."""
    pte_unmap(page_table)
    # A shared VMA without vm_ops: abnormal.
    if decide("anon_vm_shared", bool(vma.vm_flags & VM_SHARED)):
        return VM_FAULT_SIGBUS
    # Check that there is room for the guard page below a stack; fall back to SIGSEGV.
    if decide("check_stack_guard_page", check_stack_guard_page(vma, address) < 0):
        return VM_FAULT_SIGSEGV

    page = None
    if decide("anon_read_zero_page", bool(not flags & FAULT_FLAG_WRITE and not mm_forbids_zeropage(mm))):
        entry = pgtable.pte_mkspecial(pgtable.pfn_pte(machine().zero_pfn, vma.vm_page_prot))
        page_table, ptl = pte_offset_map_lock(mm, pmd, address)
        if not decide("anon_pte_none_recheck", _pte_unchanged(page_table, 0)):
            pte_unmap_unlock(page_table, ptl)
            return 0
        if decide("userfaultfd_missing", bool(userfaultfd_missing(vma))):
            pte_unmap_unlock(page_table, ptl)
            ret = handle_userfault(vma, address, flags, VM_UFFD_MISSING)
            decide("handle_userfault", vm_fault_str(ret))
            return ret
    else:
        failed = bool(mmap.anon_vma_prepare(vma))
        if not failed:
            page = alloc_zeroed_user_highpage_movable(vma, address)
            failed = page is None
        if decide("anon_alloc", failed):
            return VM_FAULT_OOM
        entry = pgtable.mk_pte(page.pfn, vma.vm_page_prot)
        if vma.vm_flags & VM_WRITE:
            entry = pgtable.pte_mkwrite(pgtable.pte_mkdirty(entry))
        page_table, ptl = pte_offset_map_lock(mm, pmd, address)
        if not decide("anon_pte_none_recheck", _pte_unchanged(page_table, 0)):
            pte_unmap_unlock(page_table, ptl)
            machine().mem.free_page(page.pfn)  # page_cache_release
            return 0
        if decide("userfaultfd_missing", bool(userfaultfd_missing(vma))):
            pte_unmap_unlock(page_table, ptl)
            machine().mem.free_page(page.pfn)
            ret = handle_userfault(vma, address, flags, VM_UFFD_MISSING)
            decide("handle_userfault", vm_fault_str(ret))
            return ret
        _inc_mm_counter(mm, "MM_ANONPAGES")
        page.mapcount += 1  # page_add_new_anon_rmap
    # setpte:
    pgtable.set_pte_at(mm, address, page_table, entry)
    update_mmu_cache(vma, address, page_table)
    pte_unmap_unlock(page_table, ptl)
    return 0


# --- do_fault (seed 2.7.5; KF 2.4.9) -------------------------------------------------------------------

def filemap_fault(vma: VmAreaStruct, pgoff: int, flags: int) -> int:
    """KF 2.4.9 (no seed section): vma->vm_ops->fault; its result is the Env's.  RETRY means
    it dropped mmap_sem (lock_page_or_retry inside it failed)."""
    ret = machine().env.vma_fault()
    if ret & VM_FAULT_MAJOR:
        count_vm_event("PGMAJFAULT")
    if ret & VM_FAULT_RETRY:
        up_read(vma.vm_mm.mmap_sem)
    return ret


def _page_cache_page(vma: VmAreaStruct, pgoff: int) -> Page:
    m = machine()
    key = (vma.name, pgoff)
    pfn = m.page_cache.get(key)
    if pfn is None:
        pfn = m.mem.alloc_page("file_page")
        assert pfn is not None  # page-cache pages are not an injectable purpose
        m.page_cache[key] = pfn
        m.pages[pfn] = Page(pfn=pfn, anon=False, kind="file")
    return m.pages[pfn]


def __do_fault(vma: VmAreaStruct, address: int, pgoff: int, flags: int,
               cow_page: Page | None) -> tuple[int, Page | None]:
    """KF 2.4.9 (no seed section): call ->fault; on success the page comes back locked."""
    ret = filemap_fault(vma, pgoff, flags)
    decide("vma_fault", vm_fault_str(ret))
    if ret & (VM_FAULT_ERROR | VM_FAULT_NOPAGE | VM_FAULT_RETRY):
        return ret, None
    page = _page_cache_page(vma, pgoff)
    # Not VM_FAULT_LOCKED: lock_page (sleeps until it is ours).
    return ret, page


def do_set_pte(vma: VmAreaStruct, address: int, page: Page, pte: int, write: bool, anon: bool) -> None:
    """KF 2.4.9 (no seed section)."""
    entry = pgtable.mk_pte(page.pfn, vma.vm_page_prot)
    if write:
        entry = pgtable.maybe_mkwrite(pgtable.pte_mkdirty(entry), vma)
    if anon:
        _inc_mm_counter(vma.vm_mm, "MM_ANONPAGES")
        page.anon = True
    else:
        _inc_mm_counter(vma.vm_mm, "MM_FILEPAGES")
    page.mapcount += 1
    pgtable.set_pte_at(vma.vm_mm, address, pte, entry)
    update_mmu_cache(vma, address, pte)


def do_read_fault(mm: MmStruct, vma: VmAreaStruct, address: int, pmd: int, pgoff: int, flags: int,
                  orig_pte: int) -> int:
    """KF 2.4.9 (no seed section; fault-around is not modelled)."""
    ret, page = __do_fault(vma, address, pgoff, flags, None)
    if ret & (VM_FAULT_ERROR | VM_FAULT_NOPAGE | VM_FAULT_RETRY):
        return ret
    pte, ptl = pte_offset_map_lock(mm, pmd, address)
    if not decide("do_fault_pte_same", _pte_unchanged(pte, orig_pte)):
        pte_unmap_unlock(pte, ptl)
        return ret
    do_set_pte(vma, address, page, pte, False, False)
    pte_unmap_unlock(pte, ptl)
    return ret


def do_cow_fault(mm: MmStruct, vma: VmAreaStruct, address: int, pmd: int, pgoff: int, flags: int,
                 orig_pte: int) -> int:
    """KF 2.4.9 (no seed section): a private write: copy the file page into a new anon page."""
    failed = bool(mmap.anon_vma_prepare(vma))
    new_page = None
    if not failed:
        new_page = _new_page("cow_page", "anon", anon=True)
        failed = new_page is None
    if decide("cow_alloc", failed):
        return VM_FAULT_OOM
    ret, page = __do_fault(vma, address, pgoff, flags, new_page)
    if ret & (VM_FAULT_ERROR | VM_FAULT_NOPAGE | VM_FAULT_RETRY):
        machine().mem.free_page(new_page.pfn)
        return ret
    pte, ptl = pte_offset_map_lock(mm, pmd, address)
    if not decide("do_fault_pte_same", _pte_unchanged(pte, orig_pte)):
        pte_unmap_unlock(pte, ptl)
        machine().mem.free_page(new_page.pfn)
        return ret
    do_set_pte(vma, address, new_page, pte, True, True)
    pte_unmap_unlock(pte, ptl)
    return ret


def do_page_mkwrite(vma: VmAreaStruct, page: Page, address: int) -> int:
    """KF 2.4.9 (no seed section): ->page_mkwrite (the Env's answer); the page comes back locked."""
    ret = machine().env.page_mkwrite
    decide("page_mkwrite", vm_fault_str(ret))
    if ret & (VM_FAULT_ERROR | VM_FAULT_NOPAGE):
        return ret
    if not ret & VM_FAULT_LOCKED:
        # lock_page; the page was not truncated meanwhile (not modelled).
        ret |= VM_FAULT_LOCKED
    return ret


def do_shared_fault(mm: MmStruct, vma: VmAreaStruct, address: int, pmd: int, pgoff: int, flags: int,
                    orig_pte: int) -> int:
    """KF 2.4.9 (no seed section): a shared write: map the page cache page writable."""
    ret, page = __do_fault(vma, address, pgoff, flags, None)
    if ret & (VM_FAULT_ERROR | VM_FAULT_NOPAGE | VM_FAULT_RETRY):
        return ret
    if vma.vm_ops.page_mkwrite:
        tmp = do_page_mkwrite(vma, page, address)
        if tmp == 0 or tmp & (VM_FAULT_ERROR | VM_FAULT_NOPAGE):
            return tmp
    pte, ptl = pte_offset_map_lock(mm, pmd, address)
    if not decide("do_fault_pte_same", _pte_unchanged(pte, orig_pte)):
        pte_unmap_unlock(pte, ptl)
        return ret
    do_set_pte(vma, address, page, pte, True, False)
    pte_unmap_unlock(pte, ptl)
    return ret


def do_fault(mm: MmStruct, vma: VmAreaStruct, address: int, page_table: int, pmd: int, flags: int,
             orig_pte: int) -> int:
    """Seed 2.7.5 (KF 2.4.9): a none pte in a VMA with vm_ops."""
    pgoff = (((address & machine().arch.page_mask) - vma.vm_start) >> PAGE_SHIFT) + vma.vm_pgoff
    pte_unmap(page_table)
    # The VMA's ->fault is mandatory (CVE-2015-3288).
    if not decide("vm_ops_fault", bool(vma.vm_ops is not None and vma.vm_ops.fault)):
        return VM_FAULT_SIGBUS
    if not flags & FAULT_FLAG_WRITE:
        decide("do_fault_kind", "read")
        return do_read_fault(mm, vma, address, pmd, pgoff, flags, orig_pte)
    if not vma.vm_flags & VM_SHARED:
        decide("do_fault_kind", "cow")
        return do_cow_fault(mm, vma, address, pmd, pgoff, flags, orig_pte)
    decide("do_fault_kind", "shared")
    return do_shared_fault(mm, vma, address, pmd, pgoff, flags, orig_pte)


# --- lock_page_or_retry (KF 2.4.11) ----------------------------------------------------------------

def trylock_page(page: Page) -> bool:
    """KF 2.4.11 (no seed section): fails when another task holds the page lock (Env)."""
    return not machine().env.page_lock_contended()


def __lock_page_killable(page: Page) -> int:
    """KF 2.4.11 (no seed section): sleep for the page lock; a fatal signal ends the wait."""
    tsk = current()
    if machine().env.fatal_signal_in_wait():
        tsk.send_sigkill()
    if fault.fatal_signal_pending(tsk):
        return -EINTR
    return 0


def __lock_page_or_retry(page: Page, mm: MmStruct, flags: int) -> int:
    """KF 2.4.11 (no seed section)."""
    if flags & FAULT_FLAG_ALLOW_RETRY:
        # RETRY_NOWAIT: the caller keeps mmap_sem (x86 never asks for it).
        if flags & FAULT_FLAG_RETRY_NOWAIT:
            return 0
        up_read(mm.mmap_sem)
        # Wait for the page to be unlocked, without taking it.
        return 0
    if flags & FAULT_FLAG_KILLABLE:
        if __lock_page_killable(page):
            up_read(mm.mmap_sem)
            return 0
    # else __lock_page: uninterruptible
    return 1


def lock_page_or_retry(page: Page, mm: MmStruct, flags: int) -> int:
    """KF 2.4.11 (no seed section): 1 with the page locked, 0 with mmap_sem dropped."""
    return 1 if trylock_page(page) else __lock_page_or_retry(page, mm, flags)


# --- do_swap_page (seed 2.7.6; KF 2.4.10) ----------------------------------------------------------

def migration_entry_wait(mm: MmStruct, pmd: int, address: int) -> None:
    """KF 2.4.10 (no seed section): sleep until the migration is over.  The migrating CPU
    then replaces the entry with the new page's pte (remove_migration_pte)."""
    m = machine()
    ptep = pgtable.pte_offset_map(pmd, address)
    entry = pgtable.pte_to_swp_entry(_rd(ptep))
    vma = mmap.find_vma(mm, address)
    page = _new_page("migrated_page", "anon" if vma is None or vma_is_anonymous(vma) else "file",
                     anon=vma is None or vma_is_anonymous(vma))
    assert page is not None
    new = pgtable.pte_mkold(pgtable.mk_pte(page.pfn, vma.vm_page_prot if vma else 0))
    if pgtable.is_write_migration_entry(entry) and vma is not None:
        new = pgtable.maybe_mkwrite(new, vma)
    pgtable.set_pte_at(mm, address, ptep, new)
    m.notes.append(f"the migration of the page at {address:#x} completed while the task waited")


def reuse_swap_page(page: Page) -> bool:
    """KF 2.4.10 (no seed section): mapcount + swapcount <= 1 (the Env's answer)."""
    return bool(machine().env.reuse)


def do_swap_page(mm: MmStruct, vma: VmAreaStruct, address: int, page_table: int, pmd: int, flags: int,
                 orig_pte: int) -> int:
    """Seed 2.7.6 (KF 2.4.10): a non-present, non-none pte (swap, migration, hwpoison)."""
    m = machine()
    ret = 0
    entry = pgtable.pte_to_swp_entry(orig_pte)
    if pgtable.non_swap_entry(entry):
        if pgtable.is_migration_entry(entry):
            decide("swap_entry_kind", "migration")
            migration_entry_wait(mm, pmd, address)
        elif pgtable.is_hwpoison_entry(entry):
            decide("swap_entry_kind", "hwpoison")
            ret = VM_FAULT_HWPOISON
        else:
            decide("swap_entry_kind", "bad")
            m.printk(f"BUG: Bad page map at {address:#x} pte:{orig_pte:#x}")
            ret = VM_FAULT_SIGBUS
        return ret
    decide("swap_entry_kind", "swap", note=f"type={entry.type} offset={entry.offset:#x}")

    cache = m.env.swap_cache
    if cache in ("readahead", "readahead_failed"):
        # A swap-cache miss: read it in (I/O; sleeps).
        if cache == "readahead_failed":
            decide("swap_cache", "readahead_failed")
            page_table, ptl = pte_offset_map_lock(mm, pmd, address)
            # Somebody else may have faulted it in while we slept.
            if decide("swap_pte_same", _pte_unchanged(page_table, orig_pte)):
                ret = VM_FAULT_OOM
            pte_unmap_unlock(page_table, ptl)
            return ret
        decide("swap_cache", "readahead")
        ret = VM_FAULT_MAJOR
        count_vm_event("PGMAJFAULT")
    elif cache == "hwpoison":
        decide("swap_cache", "hwpoison")
        return VM_FAULT_HWPOISON
    else:
        decide("swap_cache", "hit")
    page = Page(pfn=m.mem.alloc_page("swap_page"), anon=True, kind="swap", swapcache=True)
    m.pages[page.pfn] = page

    locked = lock_page_or_retry(page, mm, flags)
    if not decide("lock_page_or_retry", bool(locked)):
        return ret | VM_FAULT_RETRY

    page_table, ptl = pte_offset_map_lock(mm, pmd, address)
    if not decide("swap_pte_same", _pte_unchanged(page_table, orig_pte)):
        pte_unmap_unlock(page_table, ptl)
        return ret

    _inc_mm_counter(mm, "MM_ANONPAGES")
    _inc_mm_counter(mm, "MM_SWAPENTS", -1)
    pte = pgtable.mk_pte(page.pfn, vma.vm_page_prot)
    if flags & FAULT_FLAG_WRITE:
        if decide("reuse_swap_page", bool(reuse_swap_page(page))):
            pte = pgtable.maybe_mkwrite(pgtable.pte_mkdirty(pte), vma)
            flags &= ~FAULT_FLAG_WRITE
            ret |= VM_FAULT_WRITE
            page.swapcache = False
    if orig_pte & 0x80 and m.config.soft_dirty:  # _PAGE_SWP_SOFT_DIRTY
        pte |= m.config.soft_dirty
    pgtable.set_pte_at(mm, address, page_table, pte)
    page.mapcount += 1  # do_page_add_anon_rmap; swap_free(entry)

    if flags & FAULT_FLAG_WRITE:
        ret |= do_wp_page(mm, vma, address, page_table, pmd, ptl, pte)
        if ret & VM_FAULT_ERROR:
            ret &= VM_FAULT_ERROR
        return ret
    update_mmu_cache(vma, address, page_table)
    pte_unmap_unlock(page_table, ptl)
    return ret


# --- do_numa_page (seed 2.7.8; KF 2.4.13) ------------------------------------------------------------

def do_numa_page(mm: MmStruct, vma: VmAreaStruct, addr: int, pte: int, ptep: int, pmd: int) -> int:
    """Seed 2.7.8 (KF 2.4.13): restore access to a NUMA-hinting pte; always returns 0."""
    was_writable = pgtable.pte_write(pte)
    if not vma.vm_flags & (VM_READ | VM_EXEC | VM_WRITE):
        fault.BUG("do_numa_page: VMA without access")
    ptl = pte_lockptr(mm, pmd)
    spin_lock(ptl)
    if not decide("numa_pte_same", _pte_unchanged(ptep, pte)):
        pte_unmap_unlock(ptep, ptl)
        return 0
    pte = pgtable.pte_mkyoung(pgtable.pte_modify(pte, vma.vm_page_prot))
    if was_writable:
        pte = pgtable.pte_mkwrite(pte)
    pgtable.set_pte_at(mm, addr, ptep, pte)
    update_mmu_cache(vma, addr, ptep)
    # vm_normal_page and the migration decision: the page stays where it is (target -1).
    pte_unmap_unlock(ptep, ptl)
    return 0


# --- do_wp_page (seed 2.7.10; KF 2.4.14) ----------------------------------------------------------------

def vm_normal_page(vma: VmAreaStruct, addr: int, pte: int) -> Page | None:
    """KF 2.4.14 (no seed section): NULL for special ptes (the zero page, PFN mappings)."""
    if pgtable.pte_special(pte):
        return None
    return page_of(pgtable.pte_pfn(pte), vma)


def wp_page_reuse(mm: MmStruct, vma: VmAreaStruct, address: int, page_table: int, ptl: str,
                  orig_pte: int, page: Page | None, page_mkwrite: int, dirty_shared: int) -> int:
    """KF 2.4.14 (no seed section): make the existing page writable; VM_FAULT_WRITE."""
    entry = pgtable.pte_mkyoung(orig_pte)
    entry = pgtable.maybe_mkwrite(pgtable.pte_mkdirty(entry), vma)
    if ptep_set_access_flags(vma, address, page_table, entry, 1):
        update_mmu_cache(vma, address, page_table)
    pte_unmap_unlock(page_table, ptl)
    # dirty_shared: set_page_dirty and balance_dirty_pages (not modelled).
    return VM_FAULT_WRITE


def wp_page_copy(mm: MmStruct, vma: VmAreaStruct, address: int, page_table: int, pmd: int,
                 orig_pte: int, old_page: Page | None) -> int:
    """KF 2.4.14 (no seed section): COW into a new anonymous page (entered without the ptl)."""
    failed = bool(mmap.anon_vma_prepare(vma))
    new_page = None
    if not failed:
        new_page = _new_page("cow_page", "anon", anon=True)  # zeroed for the zero pfn, else a copy
        failed = new_page is None
    if decide("wp_copy_alloc", failed):
        return VM_FAULT_OOM
    page_table, ptl = pte_offset_map_lock(mm, pmd, address)
    page_copied = False
    if pgtable.pte_same(_rd(page_table), orig_pte):
        if old_page is not None:
            if not old_page.anon:
                _inc_mm_counter(mm, "MM_FILEPAGES", -1)
                _inc_mm_counter(mm, "MM_ANONPAGES")
        else:
            _inc_mm_counter(mm, "MM_ANONPAGES")
        entry = pgtable.mk_pte(new_page.pfn, vma.vm_page_prot)
        entry = pgtable.maybe_mkwrite(pgtable.pte_mkdirty(entry), vma)
        new_page.mapcount += 1
        pgtable.set_pte_at(mm, address, page_table, entry)  # after ptep_clear_flush_notify
        update_mmu_cache(vma, address, page_table)
        if old_page is not None:
            old_page.mapcount = max(0, old_page.mapcount - 1)  # page_remove_rmap
        page_copied = True
    else:
        machine().mem.free_page(new_page.pfn)
    pte_unmap_unlock(page_table, ptl)
    return VM_FAULT_WRITE if page_copied else 0


def wp_pfn_shared(mm: MmStruct, vma: VmAreaStruct, address: int, page_table: int, ptl: str,
                  orig_pte: int, pmd: int) -> int:
    """KF 2.4.14 (no seed section): a shared writable PFN mapping (no ->pfn_mkwrite modelled)."""
    return wp_page_reuse(mm, vma, address, page_table, ptl, orig_pte, None, 0, 0)


def wp_page_shared(mm: MmStruct, vma: VmAreaStruct, address: int, page_table: int, pmd: int, ptl: str,
                   orig_pte: int, old_page: Page) -> int:
    """KF 2.4.14 (no seed section): a shared writable file page (write notify)."""
    page_mkwrite = 0
    if vma.vm_ops is not None and vma.vm_ops.page_mkwrite:
        pte_unmap_unlock(page_table, ptl)
        tmp = do_page_mkwrite(vma, old_page, address)
        if tmp == 0 or tmp & (VM_FAULT_ERROR | VM_FAULT_NOPAGE):
            return tmp
        page_table, ptl = pte_offset_map_lock(mm, pmd, address)
        if not pgtable.pte_same(_rd(page_table), orig_pte):
            pte_unmap_unlock(page_table, ptl)
            return 0
        page_mkwrite = 1
    return wp_page_reuse(mm, vma, address, page_table, ptl, orig_pte, old_page, page_mkwrite, 1)


def do_wp_page(mm: MmStruct, vma: VmAreaStruct, address: int, page_table: int, pmd: int, ptl: str,
               orig_pte: int) -> int:
    """Seed 2.7.10 (KF 2.4.14): a write to a present read-only pte; entered with the ptl."""
    old_page = vm_normal_page(vma, address, orig_pte)
    shared_writable = vma.vm_flags & (VM_WRITE | VM_SHARED) == VM_WRITE | VM_SHARED
    if not decide("vm_normal_page", old_page is not None, note=hex(orig_pte)):
        # The zero page or a PFN mapping.
        if decide("wp_shared_writable", bool(shared_writable)):
            return wp_pfn_shared(mm, vma, address, page_table, ptl, orig_pte, pmd)
        pte_unmap_unlock(page_table, ptl)
        return wp_page_copy(mm, vma, address, page_table, pmd, orig_pte, None)
    if decide("page_anon", bool(old_page.anon)):
        # We hold the page lock here (trylock contention is not modelled).
        if decide("reuse_page", bool(reuse_swap_page(old_page))):
            return wp_page_reuse(mm, vma, address, page_table, ptl, orig_pte, old_page, 0, 0)
    elif decide("wp_shared_writable", bool(shared_writable)):
        return wp_page_shared(mm, vma, address, page_table, pmd, ptl, orig_pte, old_page)
    pte_unmap_unlock(page_table, ptl)
    return wp_page_copy(mm, vma, address, page_table, pmd, orig_pte, old_page)

