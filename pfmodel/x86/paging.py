"""Paging geometry of the three x86 modes (kernel-facts.md §1.11; seed section 0 diagram).

An ``Arch`` holds the numbers; the index functions are computed from them, so the
seed's PAE diagram (2+9+9+12), x86-64 (9+9+9+9+12) and 2-level (10+10+12) all come
from the same code.  Folded levels have one entry per table and are never allocated.
"""

from __future__ import annotations

from dataclasses import dataclass

from .constants import PAGE_SHIFT


@dataclass(frozen=True)
class Arch:
    name: str
    word_bits: int          # sizeof(unsigned long) * 8
    levels: int             # CONFIG_PGTABLE_LEVELS
    pgdir_shift: int
    ptrs_per_pgd: int
    pud_shift: int
    ptrs_per_pud: int       # 1 when folded
    pmd_shift: int
    ptrs_per_pmd: int       # 1 when folded
    ptrs_per_pte: int
    entry_bytes: int        # 8 (PAE, 64) or 4 (2-level)
    phys_mask_shift: int    # __PHYSICAL_MASK_SHIFT
    virt_bits: int          # 48 on x86-64 (canonical), 32 otherwise
    has_nx: bool            # the XD bit exists (PAE and 4-level)

    @property
    def word_mask(self) -> int:
        return (1 << self.word_bits) - 1

    @property
    def entry_mask(self) -> int:
        return (1 << (8 * self.entry_bytes)) - 1

    @property
    def pte_pfn_mask(self) -> int:
        """PTE_PFN_MASK: bits 12 .. __PHYSICAL_MASK_SHIFT-1."""
        return ((1 << self.phys_mask_shift) - 1) & ~((1 << PAGE_SHIFT) - 1)

    @property
    def page_mask(self) -> int:
        """PAGE_MASK at the word width."""
        return self.word_mask & ~((1 << PAGE_SHIFT) - 1)

    @property
    def pmd_size(self) -> int:
        return 1 << self.pmd_shift

    @property
    def pud_folded(self) -> bool:
        return self.ptrs_per_pud == 1

    @property
    def pmd_folded(self) -> bool:
        return self.ptrs_per_pmd == 1

    def is_canonical(self, address: int) -> bool:
        """64-bit: bits 63..47 all equal.  32-bit: any 32-bit value."""
        if address < 0 or address > self.word_mask:
            return False
        if self.word_bits == 32:
            return True
        top = address >> (self.virt_bits - 1)
        return top == 0 or top == (1 << (64 - self.virt_bits + 1)) - 1

    # Index functions (seed 2.2, 2.4.2.2, 2.6.1).
    def pgd_index(self, address: int) -> int:
        return (address >> self.pgdir_shift) & (self.ptrs_per_pgd - 1)

    def pud_index(self, address: int) -> int:
        return (address >> self.pud_shift) & (self.ptrs_per_pud - 1)

    def pmd_index(self, address: int) -> int:
        return (address >> self.pmd_shift) & (self.ptrs_per_pmd - 1)

    def pte_index(self, address: int) -> int:
        return (address >> PAGE_SHIFT) & (self.ptrs_per_pte - 1)

    def page_offset(self, address: int) -> int:
        return address & ((1 << PAGE_SHIFT) - 1)


X86_64 = Arch("x86_64", 64, 4, 39, 512, 30, 512, 21, 512, 512, 8, 46, 48, True)
I386_PAE = Arch("i386-pae", 32, 3, 30, 4, 30, 1, 21, 512, 512, 8, 44, 32, True)
I386 = Arch("i386", 32, 2, 22, 1024, 22, 1, 22, 1, 1024, 4, 32, 32, False)

ARCHES: dict[str, Arch] = {a.name: a for a in (X86_64, I386_PAE, I386)}


def get_arch(name: str) -> Arch:
    try:
        return ARCHES[name]
    except KeyError:
        raise KeyError(f"unknown architecture {name!r}; expected one of {', '.join(ARCHES)}") from None
