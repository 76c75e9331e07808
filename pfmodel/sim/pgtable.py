"""Page-table entries as the kernel reads and writes them (kernel-facts §1.1-§1.3, §1.11;
seed 2.2-2.7).

Entry values are plain ints of the arch's entry width; a "pointer" to an entry
(``pgd_t *``, ``pmd_t *``, ``pte_t *``) is the entry's physical address in PhysMem.
Folding follows the arch: on 2-level the pud and pmd are the pgd entry, on PAE the
pud is the pgd entry (the PDPTE).  Allocation helpers that can fail call into
``memory`` (``__pud_alloc``, ``__pmd_alloc``) through the module, so mutants apply.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..x86.constants import (
    EFER_NX,
    _PAGE_ACCESSED,
    _PAGE_DIRTY,
    _PAGE_NX,
    _PAGE_PCD,
    _PAGE_PRESENT,
    _PAGE_PROTNONE,
    _PAGE_PSE,
    _PAGE_PWT,
    _PAGE_RW,
    _PAGE_SPECIAL,
    _PAGE_SPLITTING,
    _PAGE_TABLE,
    PAGE_SHIFT,
)
from . import memory
from .constants import (
    MAX_SWAPFILES,
    PROTECTION_MAP,
    SWP_HWPOISON,
    SWP_MIGRATION_READ,
    SWP_MIGRATION_WRITE,
    SWP_OFFSET_SHIFT,
    VM_EXEC,
    VM_READ,
    VM_SHARED,
    VM_WRITE,
)
from .state import MmStruct, machine


# --- Reading and writing entries -------------------------------------------------------

def read_entry(ptr: int) -> int:
    """*ptr.  A frame that is not a page-table page reads as zeros (data is not modelled)."""
    mem = machine().mem
    if not mem.is_page(ptr >> PAGE_SHIFT):
        return 0
    return mem.read_entry(ptr)


def write_entry(ptr: int, value: int) -> None:
    machine().mem.write_entry(ptr, value)


def set_pte_at(mm: MmStruct, address: int, ptep: int, pte: int) -> None:
    """KF 2.4.7 (no seed section): store a pte (PAE: high word then low word; one store here)."""
    write_entry(ptep, pte)


def set_pmd(pmdp: int, pmd: int) -> None:
    """KF 2.2.4 (no seed section)."""
    write_entry(pmdp, pmd)


def set_pud(pudp: int, pud: int) -> None:
    """KF 2.4.2 (no seed section)."""
    write_entry(pudp, pud)


def set_pgd(pgdp: int, pgd: int) -> None:
    """KF 2.4.2 (no seed section)."""
    write_entry(pgdp, pgd)


# --- Masks -------------------------------------------------------------------------------

def pte_pfn_mask() -> int:
    return machine().arch.pte_pfn_mask


def _chg_mask() -> int:
    """_PAGE_CHG_MASK: what pte_modify keeps (KF 1.1)."""
    return (pte_pfn_mask() | _PAGE_PCD | _PAGE_PWT | _PAGE_SPECIAL | _PAGE_ACCESSED | _PAGE_DIRTY
            | machine().config.soft_dirty)


def supported_pte_mask() -> int:
    """__supported_pte_mask: every bit, less NX when NX is off or does not exist (2-level)."""
    m = machine()
    full = m.arch.entry_mask
    if not m.arch.has_nx or not m.cpu.efer & EFER_NX:
        full &= ~_PAGE_NX
    return full


def massage_pgprot(prot: int) -> int:
    """KF 1.1 (no seed section): a present prot loses the bits the CPU does not support."""
    if prot & _PAGE_PRESENT:
        return prot & supported_pte_mask()
    return prot


def vm_get_page_prot(vm_flags: int) -> int:
    """KF 1.1 (no seed section): protection_map[flags & (R|W|X|SHARED)] | arch prot (0 on x86)."""
    prot = PROTECTION_MAP[vm_flags & (VM_READ | VM_WRITE | VM_EXEC | VM_SHARED)]
    if not machine().arch.has_nx:
        prot &= ~_PAGE_NX          # _PAGE_NX is 0 on 2-level
    return prot


# --- PTE predicates and updaters (KF 1.2) -------------------------------------------------

def pte_flags(pte: int) -> int:
    """KF 1.2 (no seed section): everything outside the frame field."""
    return pte & ~pte_pfn_mask()


def pte_none(pte: int) -> bool:
    """Seed 2.7.2."""
    return not pte


def pte_present(pte: int) -> bool:
    """Seed 2.7.1."""
    return bool(pte_flags(pte) & (_PAGE_PRESENT | _PAGE_PROTNONE))


def pte_protnone(pte: int) -> bool:
    """Seed 2.7.7 (constant 0 without CONFIG_NUMA_BALANCING)."""
    if not machine().config.numa_balancing:
        return False
    return (pte_flags(pte) & (_PAGE_PROTNONE | _PAGE_PRESENT)) == _PAGE_PROTNONE


def pte_write(pte: int) -> bool:
    """Seed 2.7.9 (KF 2.4.15)."""
    return bool(pte_flags(pte) & _PAGE_RW)


def pte_dirty(pte: int) -> bool:
    """KF 1.2 (no seed section)."""
    return bool(pte_flags(pte) & _PAGE_DIRTY)


def pte_young(pte: int) -> bool:
    """KF 1.2 (no seed section)."""
    return bool(pte_flags(pte) & _PAGE_ACCESSED)


def pte_special(pte: int) -> bool:
    """KF 1.2 (no seed section)."""
    return bool(pte_flags(pte) & _PAGE_SPECIAL)


def pte_same(a: int, b: int) -> bool:
    """KF 1.2 (no seed section): full-value equality."""
    return a == b


def pte_mkdirty(pte: int) -> int:
    """Seed 2.7.11."""
    return pte | _PAGE_DIRTY | machine().config.soft_dirty


def pte_mkyoung(pte: int) -> int:
    """Seed 2.7.12."""
    return pte | _PAGE_ACCESSED


def pte_mkwrite(pte: int) -> int:
    """KF 1.2 (no seed section)."""
    return pte | _PAGE_RW


def pte_mkold(pte: int) -> int:
    """KF 1.2 (no seed section)."""
    return pte & ~_PAGE_ACCESSED


def pte_mkspecial(pte: int) -> int:
    """KF 1.2 (no seed section)."""
    return pte | _PAGE_SPECIAL


def pte_pfn(pte: int) -> int:
    """KF 1.2 (no seed section)."""
    return (pte & pte_pfn_mask()) >> PAGE_SHIFT


def pfn_pte(pfn: int, prot: int) -> int:
    """KF 1.2 (no seed section): a pte for ``pfn`` with the massaged protection."""
    return ((pfn << PAGE_SHIFT) & pte_pfn_mask()) | massage_pgprot(prot)


def mk_pte(pfn: int, prot: int) -> int:
    """KF 2.4.7 (no seed section): mk_pte(page, prot) = pfn_pte(page_to_pfn(page), prot)."""
    return pfn_pte(pfn, prot)


def pte_modify(pte: int, prot: int) -> int:
    """KF 1.2 (no seed section): keep _PAGE_CHG_MASK, take the rest from the new prot."""
    chg = _chg_mask()
    return (pte & chg) | (massage_pgprot(prot) & ~chg)


def maybe_mkwrite(pte: int, vma) -> int:
    """KF 1.2 (no seed section): RW only if the VMA is VM_WRITE."""
    if vma.vm_flags & VM_WRITE:
        return pte_mkwrite(pte)
    return pte


# --- PMD / PUD / PGD predicates (KF 1.2) ------------------------------------------------

def pmd_pfn_mask(pmd: int) -> int:
    if pmd & _PAGE_PSE:
        return pte_pfn_mask() & ~(machine().arch.pmd_size - 1)
    return pte_pfn_mask()


def pmd_flags(pmd: int) -> int:
    return pmd & ~pmd_pfn_mask(pmd)


def pmd_none(pmd: int) -> bool:
    """KF 1.2 (no seed section): the low machine word is 0 (PAE tests only 32 bits)."""
    return not (pmd & machine().arch.word_mask)


def pmd_present(pmd: int) -> bool:
    """KF 1.2 (no seed section): P, PROTNONE or PSE (a THP split briefly clears P)."""
    return bool(pmd_flags(pmd) & (_PAGE_PRESENT | _PAGE_PROTNONE | _PAGE_PSE))


def pmd_large(pmd: int) -> bool:
    """KF 1.2 (no seed section)."""
    return bool(pmd_flags(pmd) & _PAGE_PSE)


def pmd_trans_huge(pmd: int) -> bool:
    """Seed 2 (KF 1.2): val & PSE."""
    return bool(pmd & _PAGE_PSE)


def pmd_trans_splitting(pmd: int) -> bool:
    """Seed 2 (KF 1.2): val & _PAGE_SPLITTING (4.4 only)."""
    return bool(pmd & _PAGE_SPLITTING)


def pmd_protnone(pmd: int) -> bool:
    """Seed 2 (KF 1.2): as pte_protnone; constant 0 without NUMA balancing."""
    if not machine().config.numa_balancing:
        return False
    return (pmd_flags(pmd) & (_PAGE_PROTNONE | _PAGE_PRESENT)) == _PAGE_PROTNONE


def pmd_write(pmd: int) -> bool:
    """Seed 2 (KF 1.2)."""
    return bool(pmd & _PAGE_RW)


def pmd_mkyoung(pmd: int) -> int:
    """KF 1.2 (no seed section)."""
    return pmd | _PAGE_ACCESSED


def pmd_mkdirty(pmd: int) -> int:
    """KF 1.2 (no seed section)."""
    return pmd | _PAGE_DIRTY | machine().config.soft_dirty


def pmd_mkwrite(pmd: int) -> int:
    """KF 1.2 (no seed section)."""
    return pmd | _PAGE_RW


def pmd_pfn(pmd: int) -> int:
    return (pmd & pmd_pfn_mask(pmd)) >> PAGE_SHIFT


def pud_none(pud: int) -> bool:
    """KF 1.2 (no seed section): constant 0 when the pmd is folded (2-level)."""
    if machine().arch.pmd_folded:
        return False
    return pud == 0


def pud_present(pud: int) -> bool:
    """KF 1.2 (no seed section): constant 1 when the pmd is folded (2-level)."""
    if machine().arch.pmd_folded:
        return True
    return bool(pud & _PAGE_PRESENT)


def pud_large(pud: int) -> bool:
    """KF 1.2 (no seed section)."""
    if machine().arch.pmd_folded:
        return False
    return (pud & (_PAGE_PSE | _PAGE_PRESENT)) == (_PAGE_PSE | _PAGE_PRESENT)


def pgd_none(pgd: int) -> bool:
    """KF 1.2 (no seed section): constant 0 when the pud is folded (PAE, 2-level)."""
    if machine().arch.pud_folded:
        return False
    return pgd == 0


def pgd_present(pgd: int) -> bool:
    """KF 1.2 (no seed section): constant 1 when the pud is folded (PAE, 2-level)."""
    if machine().arch.pud_folded:
        return True
    return bool(pgd & _PAGE_PRESENT)


# --- Indexes and offsets (seed 2.2, 2.4.2, 2.6) -------------------------------------------

def pgd_index(address: int) -> int:
    """Seed 2.2."""
    return machine().arch.pgd_index(address)


def pmd_index(address: int) -> int:
    """Seed 2.4.2.2."""
    return machine().arch.pmd_index(address)


def pte_index(address: int) -> int:
    """Seed 2.6.1."""
    return machine().arch.pte_index(address)


def pgd_offset(mm: MmStruct, address: int) -> int:
    """Seed 2.2: mm->pgd + pgd_index(address)."""
    return mm.pgd + pgd_index(address) * machine().arch.entry_bytes


def pgd_offset_k(address: int) -> int:
    """KF 1.2 (no seed section): pgd_offset on init_mm."""
    return pgd_offset(machine().init_mm, address)


def pud_page_vaddr(pud: int) -> int:
    """Seed 2.4.2.1: the table a pud points to."""
    mask = pte_pfn_mask() & ~((1 << 30) - 1) if pud & _PAGE_PSE else pte_pfn_mask()
    return pud & mask


def pud_offset(pgd: int, address: int) -> int:
    """KF 1.2 (no seed section): on a folded pud, the pgd entry itself."""
    arch = machine().arch
    if arch.pud_folded:
        return pgd
    return (read_entry(pgd) & pte_pfn_mask()) + arch.pud_index(address) * arch.entry_bytes


def pmd_offset(pud: int, address: int) -> int:
    """Seed 2.4.2: pud_page_vaddr(*pud) + pmd_index(address); on 2-level the pud itself."""
    arch = machine().arch
    if arch.pmd_folded:
        return pud
    return pud_page_vaddr(read_entry(pud)) + pmd_index(address) * arch.entry_bytes


def pmd_page_vaddr(pmd: int) -> int:
    return pmd & pmd_pfn_mask(pmd)


def pte_offset_map(pmd: int, address: int) -> int:
    """Seed 2.6: the pte table of *pmd plus pte_index(address)."""
    return pmd_page_vaddr(read_entry(pmd)) + pte_index(address) * machine().arch.entry_bytes


def pte_offset_kernel(pmd: int, address: int) -> int:
    """KF 1.2 (no seed section): as pte_offset_map."""
    return pmd_page_vaddr(read_entry(pmd)) + pte_index(address) * machine().arch.entry_bytes


def pud_alloc(mm: MmStruct, pgd: int, address: int) -> int | None:
    """Seed 2.3; x86 uses the generic inline (KF 4 item 5): NULL only if the pgd entry is
    none and __pud_alloc fails."""
    if pgd_none(read_entry(pgd)) and memory.__pud_alloc(mm, pgd, address):
        return None
    return pud_offset(pgd, address)


def pmd_alloc(mm: MmStruct, pud: int, address: int) -> int | None:
    """Seed 2.4."""
    if pud_none(read_entry(pud)) and memory.__pmd_alloc(mm, pud, address):
        return None
    return pmd_offset(pud, address)


# --- *_populate (seed 2.4.1.3, 2.5.3; KF 2.4.2) -----------------------------------------

def pgd_populate(mm: MmStruct, pgd: int, pud_pfn: int) -> None:
    """Seed 2.4.1.3: set_pgd(pgd, _PAGE_TABLE | __pa(pud)); a no-op when the pud is folded."""
    if machine().arch.pud_folded:
        return
    set_pgd(pgd, _PAGE_TABLE | (pud_pfn << PAGE_SHIFT))


def pud_populate(mm: MmStruct, pud: int, pmd_pfn: int) -> None:
    """KF 2.4.2 (no seed section): 64: _PAGE_TABLE | pa; PAE: pa | _PAGE_PRESENT and a TLB
    flush of the mm; 2-level: nothing (folded)."""
    arch = machine().arch
    if arch.pmd_folded:
        return
    if arch.levels == 3:
        set_pud(pud, (pmd_pfn << PAGE_SHIFT) | _PAGE_PRESENT)
        flush_tlb_mm(mm)
        return
    set_pud(pud, _PAGE_TABLE | (pmd_pfn << PAGE_SHIFT))


def pmd_populate(mm: MmStruct, pmd: int, pte_pfn_: int) -> None:
    """Seed 2.5.3: set_pmd(pmd, (pfn << PAGE_SHIFT) | _PAGE_TABLE)."""
    set_pmd(pmd, (pte_pfn_ << PAGE_SHIFT) | _PAGE_TABLE)


def flush_tlb_mm(mm: MmStruct) -> None:
    """KF 1.11 (no seed section): no TLB is modelled; the MMU walks the tables every time."""


# --- Swap entries (KF 1.3) ------------------------------------------------------------------

@dataclass(frozen=True)
class SwpEntry:
    type: int
    offset: int


def pte_to_swp_entry(pte: int) -> SwpEntry:
    """KF 1.3 (no seed section): decode a non-present, non-none pte per arch."""
    arch = machine().arch
    if arch.levels == 3:
        high = pte >> 32
        return SwpEntry(high & 0x1F, high >> 5)
    return SwpEntry((pte >> 1) & 0x1F, pte >> SWP_OFFSET_SHIFT)


def swp_entry_to_pte(entry: SwpEntry) -> int:
    """KF 1.3 (no seed section): the inverse of pte_to_swp_entry."""
    if machine().arch.levels == 3:
        return ((entry.offset << 5) | entry.type) << 32
    return (entry.offset << SWP_OFFSET_SHIFT) | (entry.type << 1)


def non_swap_entry(entry: SwpEntry) -> bool:
    """KF 1.3 (no seed section)."""
    return entry.type >= MAX_SWAPFILES


def is_migration_entry(entry: SwpEntry) -> bool:
    """KF 1.3 (no seed section)."""
    return entry.type in (SWP_MIGRATION_READ, SWP_MIGRATION_WRITE)


def is_write_migration_entry(entry: SwpEntry) -> bool:
    """KF 1.3 (no seed section)."""
    return entry.type == SWP_MIGRATION_WRITE


def is_hwpoison_entry(entry: SwpEntry) -> bool:
    """KF 1.3 (no seed section)."""
    return entry.type == SWP_HWPOISON

