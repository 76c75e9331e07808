"""Simulated physical memory holding real page-table pages, and a page allocator.

Entries are stored as integers of the architecture's entry width (64-bit on PAE and
x86-64, 32-bit on 2-level).  A "pointer" to an entry is its physical address, as the
kernel's pgd_t*/pmd_t*/pte_t* are (virtual aliases of) physical addresses.
Only pages that were allocated exist; reading elsewhere is a simulator bug and raises.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .constants import PAGE_SIZE


class AllocationFailure(Exception):
    """Not raised to the handler: allocators return None like the kernel's.  Internal use only."""


@dataclass
class PhysMem:
    """Sparse physical memory: page frame number -> {offset: entry value} for table pages.

    ``fail`` lists allocation purposes that must fail ("pte", "pmd", "pud", "anon_page",
    ...); each listed purpose fails every time it is asked unless ``fail_once`` holds it,
    in which case only its first request fails.
    """

    entry_bytes: int
    next_pfn: int = 0x100  # leave low frames free so physical addresses look real
    pages: dict[int, dict[int, int]] = field(default_factory=dict)
    purposes: dict[int, str] = field(default_factory=dict)
    fail: set[str] = field(default_factory=set)
    fail_once: set[str] = field(default_factory=set)
    allocations: list[tuple[str, int | None]] = field(default_factory=list)

    def alloc_page(self, purpose: str) -> int | None:
        """Allocate a zeroed page; returns its pfn, or None when the scenario injects a failure."""
        if purpose in self.fail_once:
            self.fail_once.discard(purpose)
            self.allocations.append((purpose, None))
            return None
        if purpose in self.fail:
            self.allocations.append((purpose, None))
            return None
        pfn = self.next_pfn
        self.next_pfn += 1
        self.pages[pfn] = {}
        self.purposes[pfn] = purpose
        self.allocations.append((purpose, pfn))
        return pfn

    def free_page(self, pfn: int) -> None:
        self.pages.pop(pfn, None)
        self.purposes.pop(pfn, None)

    def _locate(self, paddr: int) -> tuple[dict[int, int], int]:
        pfn, off = divmod(paddr, PAGE_SIZE)
        if off % self.entry_bytes:
            raise ValueError(f"misaligned entry address {paddr:#x}")
        try:
            return self.pages[pfn], off
        except KeyError:
            raise ValueError(f"physical address {paddr:#x} is not in an allocated page") from None

    def read_entry(self, paddr: int) -> int:
        page, off = self._locate(paddr)
        return page.get(off, 0)

    def write_entry(self, paddr: int, value: int) -> None:
        page, off = self._locate(paddr)
        mask = (1 << (8 * self.entry_bytes)) - 1
        if value < 0 or value > mask:
            raise ValueError(f"entry value {value:#x} does not fit {8 * self.entry_bytes} bits")
        if value:
            page[off] = value
        else:
            page.pop(off, None)

    def is_page(self, pfn: int) -> bool:
        return pfn in self.pages
