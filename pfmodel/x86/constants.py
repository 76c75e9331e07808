"""Architectural bit values (Intel SDM Vol. 3A; kernel-facts.md §1.1, §1.4, §1.9).

Names follow the kernel's spelling so that code that mirrors the kernel reads the
same.  This module is the one home of every hardware bit in pfmodel.
"""

from __future__ import annotations

# --- Page-table entry bits (kernel-facts §1.1) --------------------------------
_PAGE_BIT_PRESENT = 0
_PAGE_BIT_RW = 1
_PAGE_BIT_USER = 2
_PAGE_BIT_PWT = 3
_PAGE_BIT_PCD = 4
_PAGE_BIT_ACCESSED = 5
_PAGE_BIT_DIRTY = 6
_PAGE_BIT_PSE = 7
_PAGE_BIT_PAT = 7
_PAGE_BIT_GLOBAL = 8
_PAGE_BIT_PROTNONE = 8  # same bit as GLOBAL; meaningful only when P=0
_PAGE_BIT_SOFTW1 = 9
_PAGE_BIT_SPECIAL = 9
_PAGE_BIT_SOFTW2 = 10
_PAGE_BIT_SPLITTING = 10  # 4.4 only: THP pmd being split
_PAGE_BIT_SOFTW3 = 11
_PAGE_BIT_SOFT_DIRTY = 11
_PAGE_BIT_HIDDEN = 11
_PAGE_BIT_PAT_LARGE = 12
_PAGE_BIT_NX = 63

_PAGE_PRESENT = 1 << _PAGE_BIT_PRESENT
_PAGE_RW = 1 << _PAGE_BIT_RW
_PAGE_USER = 1 << _PAGE_BIT_USER
_PAGE_PWT = 1 << _PAGE_BIT_PWT
_PAGE_PCD = 1 << _PAGE_BIT_PCD
_PAGE_ACCESSED = 1 << _PAGE_BIT_ACCESSED
_PAGE_DIRTY = 1 << _PAGE_BIT_DIRTY
_PAGE_PSE = 1 << _PAGE_BIT_PSE
_PAGE_PAT = 1 << _PAGE_BIT_PAT
_PAGE_GLOBAL = 1 << _PAGE_BIT_GLOBAL
_PAGE_PROTNONE = 1 << _PAGE_BIT_PROTNONE
_PAGE_SPECIAL = 1 << _PAGE_BIT_SPECIAL
_PAGE_SPLITTING = 1 << _PAGE_BIT_SPLITTING
_PAGE_SOFT_DIRTY = 1 << _PAGE_BIT_SOFT_DIRTY
_PAGE_HIDDEN = 1 << _PAGE_BIT_HIDDEN
_PAGE_PAT_LARGE = 1 << _PAGE_BIT_PAT_LARGE
_PAGE_NX = 1 << _PAGE_BIT_NX  # the kernel's mask is 0 on 2-level paging
_PAGE_SWP_SOFT_DIRTY = _PAGE_PSE  # inside a swap entry only

# Composite link values written by *_populate (kernel-facts §1.1).
_PAGE_TABLE = _PAGE_PRESENT | _PAGE_RW | _PAGE_USER | _PAGE_ACCESSED | _PAGE_DIRTY  # 0x067
_KERNPG_TABLE = _PAGE_PRESENT | _PAGE_RW | _PAGE_ACCESSED | _PAGE_DIRTY  # 0x063

# Named PTE bits a scenario may use ("PRESENT|RW|USER"), mapped to their masks.
PTE_BIT_NAMES: dict[str, int] = {
    "PRESENT": _PAGE_PRESENT,
    "RW": _PAGE_RW,
    "USER": _PAGE_USER,
    "PWT": _PAGE_PWT,
    "PCD": _PAGE_PCD,
    "ACCESSED": _PAGE_ACCESSED,
    "DIRTY": _PAGE_DIRTY,
    "PSE": _PAGE_PSE,
    "PAT": _PAGE_PAT,
    "GLOBAL": _PAGE_GLOBAL,
    "PROTNONE": _PAGE_PROTNONE,
    "SPECIAL": _PAGE_SPECIAL,
    "SPLITTING": _PAGE_SPLITTING,
    "SOFT_DIRTY": _PAGE_SOFT_DIRTY,
    "PAT_LARGE": _PAGE_PAT_LARGE,
    "NX": _PAGE_NX,
}

PAGE_SHIFT = 12
PAGE_SIZE = 1 << PAGE_SHIFT
PAGE_MASK_LOW = PAGE_SIZE - 1  # PAGE_MASK is ~this, at the word width of the arch

# --- Page-fault error code (kernel-facts §1.4; SDM §4.7) ----------------------
PF_PROT = 1 << 0
PF_WRITE = 1 << 1
PF_USER = 1 << 2
PF_RSVD = 1 << 3
PF_INSTR = 1 << 4
PF_PK = 1 << 5  # defined by hardware; Linux 4.4 never enables PKE, so never seen

PF_BIT_NAMES: dict[str, int] = {
    "PF_PROT": PF_PROT,
    "PF_WRITE": PF_WRITE,
    "PF_USER": PF_USER,
    "PF_RSVD": PF_RSVD,
    "PF_INSTR": PF_INSTR,
    "PF_PK": PF_PK,
}

X86_TRAP_PF = 14

# --- Control and flag registers (kernel-facts §1.9) ---------------------------
X86_EFLAGS_TF = 1 << 8
X86_EFLAGS_IF = 1 << 9
X86_EFLAGS_VM = 1 << 17
X86_EFLAGS_AC = 1 << 18

EFLAGS_BIT_NAMES: dict[str, int] = {
    "TF": X86_EFLAGS_TF,
    "IF": X86_EFLAGS_IF,
    "VM": X86_EFLAGS_VM,
    "AC": X86_EFLAGS_AC,
}

X86_CR0_WP = 1 << 16
X86_CR0_PG = 1 << 31
X86_CR4_PSE = 1 << 4
X86_CR4_PAE = 1 << 5
X86_CR4_PGE = 1 << 7
X86_CR4_SMEP = 1 << 20
X86_CR4_SMAP = 1 << 21
X86_CR4_PKE = 1 << 22
EFER_LME = 1 << 8
EFER_LMA = 1 << 10
EFER_NX = 1 << 11  # _EFER_NX: the NXE bit


def names_of(value: int, table: dict[str, int]) -> list[str]:
    """The names in ``table`` whose masks are all set in ``value`` (masks in table order)."""
    return [name for name, mask in table.items() if mask and value & mask == mask]
