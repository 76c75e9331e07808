"""The MMU: the page walk, access rights and the #PF error code (Intel SDM Vol. 3A
§4.6-§4.8; kernel-facts.md §3).

Hardware only: nothing here knows about Linux.  ``translate`` walks the page tables
held in a ``PhysMem`` exactly as the processor does in the three paging modes
(32-bit 2-level, PAE, 4-level), checks reserved bits (KF 3.5) and access rights
(KF 3.2), and either returns the translation, having set the Accessed and Dirty
flags (KF 3.6), or the #PF the processor raises with the error code it pushes
(KF 3.3).  Non-canonical addresses and reserved bits in a PAE PDPTE are not page
faults; they come back as ``GeneralProtection``.

There is no TLB: every call walks the tables as they are now.  Stale-TLB
(spurious) faults are the simulator's business (KF 3.7).
"""

from __future__ import annotations

from dataclasses import dataclass

from .constants import (
    EFER_LMA,
    EFER_LME,
    EFER_NX,
    PAGE_SHIFT,
    PF_INSTR,
    PF_PK,
    PF_PROT,
    PF_RSVD,
    PF_USER,
    PF_WRITE,
    X86_CR0_PG,
    X86_CR0_WP,
    X86_CR4_PAE,
    X86_CR4_PKE,
    X86_CR4_PSE,
    X86_CR4_SMAP,
    X86_CR4_SMEP,
    X86_EFLAGS_AC,
    X86_EFLAGS_IF,
    _PAGE_ACCESSED,
    _PAGE_DIRTY,
    _PAGE_NX,
    _PAGE_PRESENT,
    _PAGE_PSE,
    _PAGE_RW,
    _PAGE_USER,
)
from .memory import PhysMem
from .paging import Arch

__all__ = [
    "CpuState",
    "Access",
    "Translation",
    "PageFault",
    "GeneralProtection",
    "walk",
    "translate",
    "error_code_possible",
]

ACCESS_KINDS = ("read", "write", "fetch")

# EFLAGS bit 1 is architecturally always 1.
_EFLAGS_FIXED = 1 << 1


def _bits(hi: int, lo: int) -> int:
    """Mask of bits hi..lo inclusive (empty when hi < lo)."""
    if hi < lo:
        return 0
    return ((1 << (hi - lo + 1)) - 1) << lo


@dataclass(frozen=True)
class CpuState:
    """The registers the page walk reads (KF 1.9, 3.4)."""

    cr0: int
    cr4: int
    efer: int
    eflags: int
    cpl: int

    @property
    def wp(self) -> bool:
        return bool(self.cr0 & X86_CR0_WP)

    @property
    def smep(self) -> bool:
        return bool(self.cr4 & X86_CR4_SMEP)

    @property
    def smap(self) -> bool:
        return bool(self.cr4 & X86_CR4_SMAP)

    @property
    def nxe(self) -> bool:
        return bool(self.efer & EFER_NX)

    @property
    def ac(self) -> bool:
        return bool(self.eflags & X86_EFLAGS_AC)

    @property
    def pae(self) -> bool:
        return bool(self.cr4 & X86_CR4_PAE)

    @property
    def pse(self) -> bool:
        return bool(self.cr4 & X86_CR4_PSE)

    @property
    def pke(self) -> bool:
        return bool(self.cr4 & X86_CR4_PKE)

    @property
    def lma(self) -> bool:
        return bool(self.efer & EFER_LMA)

    @property
    def paging_mode(self) -> str:
        """"2-level", "pae" or "4-level", as CR4.PAE and EFER.LMA select it (KF 3.4)."""
        if not self.pae:
            return "2-level"
        return "4-level" if self.lma else "pae"

    @classmethod
    def make(
        cls,
        arch: Arch,
        *,
        cpl: int,
        wp: bool = True,
        smep: bool = False,
        smap: bool = False,
        nx: bool = True,
        ac: bool = False,
        if_: bool = True,
        pse: bool = True,
    ) -> "CpuState":
        """The register state of a kernel running ``arch`` with the given features.

        ``nx`` sets EFER.NXE only where the XD bit exists (PAE, 4-level).  ``pse``
        sets CR4.PSE (4 MiB pages on 2-level; PAE and 4-level ignore it).
        """
        if cpl not in (0, 1, 2, 3):
            raise ValueError(f"cpl must be 0..3, got {cpl!r}")
        cr0 = X86_CR0_PG | (X86_CR0_WP if wp else 0)
        cr4 = 0
        if pse:
            cr4 |= X86_CR4_PSE
        if arch.entry_bytes == 8:
            cr4 |= X86_CR4_PAE
        if smep:
            cr4 |= X86_CR4_SMEP
        if smap:
            cr4 |= X86_CR4_SMAP
        efer = 0
        if arch.levels == 4:
            efer |= EFER_LME | EFER_LMA
        if nx and arch.has_nx:
            efer |= EFER_NX
        eflags = _EFLAGS_FIXED | (X86_EFLAGS_AC if ac else 0) | (X86_EFLAGS_IF if if_ else 0)
        return cls(cr0=cr0, cr4=cr4, efer=efer, eflags=eflags, cpl=cpl)


@dataclass(frozen=True)
class Access:
    """One linear-address access.  ``implicit``: an implicit supervisor access to a
    system structure (GDT/LDT/IDT/TSS), supervisor-mode even at CPL 3 (KF 3.2)."""

    kind: str
    implicit: bool = False

    def __post_init__(self) -> None:
        if self.kind not in ACCESS_KINDS:
            raise ValueError(f"access kind must be one of {ACCESS_KINDS}, got {self.kind!r}")
        if self.implicit and self.kind == "fetch":
            raise ValueError("implicit supervisor accesses are data accesses; an implicit fetch does not exist")


@dataclass(frozen=True)
class Translation:
    """A successful translation.  ``leaf_level`` names the page size class: "pte"
    (4 KiB), "pmd" (2 MiB, or a 4 MiB page on 2-level whose PDE the kernel calls a
    folded pmd) or "pud" (1 GiB)."""

    paddr: int
    page_size: int
    leaf_level: str
    leaf_entry_paddr: int


@dataclass(frozen=True)
class PageFault:
    """#PF (vector 14): CR2 and the error code the processor pushes."""

    address: int
    error_code: int
    reason: str


@dataclass(frozen=True)
class GeneralProtection:
    """Not a page fault: #GP (non-canonical address, or a reserved bit in a PAE PDPTE)."""

    address: int
    reason: str


# --- The walk ------------------------------------------------------------------

# One step of the walk for a mode: the level name the kernel uses, how to index the
# table from the address, and what the entry may be.
@dataclass(frozen=True)
class _Level:
    name: str            # "pgd", "pud", "pmd", "pte"
    shift: int           # address bits this level's index starts at
    entries: int         # entries per table
    large: str | None    # leaf_level of a PS=1 entry here ("pmd"/"pud"), None if PS is not a page size here
    rights: bool         # the entry's R/W, U/S, XD take part in the access rights
    accessed: bool       # the processor sets A here


def _levels(arch: Arch) -> tuple[_Level, ...]:
    if arch.levels == 4:
        return (
            _Level("pgd", arch.pgdir_shift, arch.ptrs_per_pgd, None, True, True),   # PML4E: PS reserved
            _Level("pud", arch.pud_shift, arch.ptrs_per_pud, "pud", True, True),    # PDPTE: 1 GiB
            _Level("pmd", arch.pmd_shift, arch.ptrs_per_pmd, "pmd", True, True),    # PDE: 2 MiB
            _Level("pte", PAGE_SHIFT, arch.ptrs_per_pte, None, True, True),
        )
    if arch.levels == 3:
        # PAE PDPTEs carry no rights and no A bit (SDM §4.4.1).
        return (
            _Level("pgd", arch.pgdir_shift, arch.ptrs_per_pgd, None, False, False),
            _Level("pmd", arch.pmd_shift, arch.ptrs_per_pmd, "pmd", True, True),
            _Level("pte", PAGE_SHIFT, arch.ptrs_per_pte, None, True, True),
        )
    if arch.levels == 2:
        # The PDE is the kernel's pgd (pud and pmd folded into it); a PS=1 PDE is a
        # 4 MiB page the kernel sees as a large (folded) pmd.
        return (
            _Level("pgd", arch.pgdir_shift, arch.ptrs_per_pgd, "pmd", True, True),
            _Level("pte", PAGE_SHIFT, arch.ptrs_per_pte, None, True, True),
        )
    raise ValueError(f"unsupported number of paging levels: {arch.levels}")


def _check_address(arch: Arch, address: int) -> None:
    if not isinstance(address, int) or address < 0 or address > arch.word_mask:
        raise ValueError(f"address {address!r} is not a {arch.word_bits}-bit linear address")


def _table_base(arch: Arch, entry: int) -> int:
    """Physical address of the table a non-leaf entry points to."""
    if arch.entry_bytes == 4:
        return entry & 0xFFFFF000
    # Bits 51:12; reserved bits above M are caught by the reserved-bit check.
    return entry & _bits(51, PAGE_SHIFT)


def _large_page_base(arch: Arch, entry: int, size_shift: int) -> int:
    if arch.entry_bytes == 4:
        # 4 MiB PDE: bits 31:22, plus PSE-36 high address bits 20:13 -> 39:32.
        return (entry & 0xFFC00000) | (((entry >> 13) & 0xFF) << 32)
    return entry & _bits(51, size_shift)


def _is_large(level: _Level, arch: Arch, cpu: CpuState | None, entry: int) -> bool:
    """PS=1 maps a page here.  On 2-level only when CR4.PSE is set (KF 3.4);
    ``cpu`` None (``walk``) assumes PSE on, as Linux sets it."""
    if level.large is None or not entry & _PAGE_PSE:
        return False
    if arch.entry_bytes == 4 and cpu is not None and not cpu.pse:
        return False
    return True


def _walk_entries(mem: PhysMem, arch: Arch, cr3: int, address: int, cpu: CpuState | None):
    """Yield (level, entry paddr, value, is_large_leaf) top-down, stopping after a
    non-present entry or a large leaf."""
    table = cr3
    for level in _levels(arch):
        index = (address >> level.shift) & (level.entries - 1)
        paddr = table + index * arch.entry_bytes
        value = mem.read_entry(paddr)
        large = bool(value & _PAGE_PRESENT) and _is_large(level, arch, cpu, value)
        yield level, paddr, value, large
        if not value & _PAGE_PRESENT or large:
            return
        table = _table_base(arch, value)


def walk(mem: PhysMem, arch: Arch, cr3: int, address: int) -> list[tuple[str, int, int]]:
    """The entries the hardware reads for ``address``, top-down, as
    (level name, entry physical address, value).  Stops at a non-present entry or a
    large leaf (a PS=1 PMD/PUD; a PS=1 PDE on 2-level, assuming CR4.PSE).  Folded
    levels are not listed.  Checks nothing else: use ``translate`` for that."""
    _check_address(arch, address)
    return [(lvl.name, paddr, value) for lvl, paddr, value, _ in _walk_entries(mem, arch, cr3, address, None)]


# --- Reserved bits (KF 3.5) ----------------------------------------------------

def _reserved_mask(arch: Arch, cpu: CpuState, level: _Level, large: bool, m: int) -> int:
    """Bits that must be 0 in a present entry at ``level`` (PAE PDPTEs excluded:
    they are checked at CR3 load and give #GP)."""
    if arch.entry_bytes == 4:
        if not large:
            return 0  # 32-bit paging: no reserved bits in PTEs and table PDEs
        # 4 MiB PDE: bit 21, and the PSE-36 address bits 20:13 above min(M, 40).
        m32 = min(m, 40)
        return (1 << 21) | _bits(20, 13 + (m32 - 32))
    if arch.levels == 4:
        mask = _bits(51, m)
        if level.name == "pgd":
            mask |= _PAGE_PSE  # PS is reserved in a PML4E
    else:
        mask = _bits(62, m)  # PAE PDE/PTE: bits 62:M
    if not cpu.nxe:
        mask |= _PAGE_NX
    if large:
        mask |= _bits(29, 13) if level.large == "pud" else _bits(20, 13)
    return mask


def _pdpte_reserved_mask(m: int) -> int:
    """PAE PDPTE (SDM §4.4.1): bits 2:1, 8:5 and 63:M."""
    return _bits(2, 1) | _bits(8, 5) | _bits(63, m)


def _lowest_bit(mask: int) -> int:
    return (mask & -mask).bit_length() - 1


# --- Access rights and the error code (KF 3.2, 3.3) ----------------------------

def _user_mode_access(access: Access, cpu: CpuState) -> bool:
    return cpu.cpl == 3 and not access.implicit


def _base_error_code(access: Access, cpu: CpuState) -> int:
    """W/R, U/S and I/D: they describe the access, whatever the fault's cause."""
    code = 0
    if access.kind == "write":
        code |= PF_WRITE
    if _user_mode_access(access, cpu):
        code |= PF_USER
    if access.kind == "fetch" and (cpu.smep or (cpu.pae and cpu.nxe)):
        code |= PF_INSTR
    return code


def _rights_violation(access: Access, cpu: CpuState, us: bool, rw: bool, xd: bool) -> str | None:
    """None if the effective rights allow the access, else why not (KF 3.2)."""
    kind = access.kind
    if _user_mode_access(access, cpu):
        if not us:
            return f"user {kind} of a supervisor page"
        if kind == "write" and not rw:
            return "user write to read-only page"
        if kind == "fetch" and xd:
            return "user fetch from an execute-disable page"
        return None
    who = "implicit supervisor" if access.implicit else "supervisor"
    if kind == "fetch":
        if us and cpu.smep:
            return "SMEP: supervisor fetch from a user page"
        if xd:
            return "supervisor fetch from an execute-disable page"
        return None
    if us and cpu.smap and (access.implicit or not cpu.ac):
        why = "implicit access" if access.implicit else "AC=0"
        return f"SMAP: {who} {kind} of user page with {why}"
    if kind == "write" and cpu.wp and not rw:
        return f"{who} write to read-only page with CR0.WP=1"
    return None


def _check_mode(arch: Arch, cpu: CpuState) -> None:
    expected = {2: "2-level", 3: "pae", 4: "4-level"}[arch.levels]
    if cpu.paging_mode != expected:
        raise ValueError(
            f"CpuState selects {cpu.paging_mode} paging (CR4.PAE/EFER.LMA) but arch {arch.name} "
            f"uses {expected}; build it with CpuState.make(arch, ...)"
        )


def translate(
    mem: PhysMem,
    arch: Arch,
    cr3: int,
    address: int,
    access: Access,
    cpu: CpuState,
    *,
    maxphyaddr: int | None = None,
) -> Translation | PageFault | GeneralProtection:
    """Translate ``address`` for ``access`` as the processor does.

    On success sets A in every entry used (not in PAE PDPTEs, which have none) and D
    in the leaf on a write; these updates never fault (KF 3.6).  On a fault nothing
    changes.  ``maxphyaddr`` is M of KF 3.5 (default ``arch.phys_mask_shift``).
    """
    _check_address(arch, address)
    _check_mode(arch, cpu)
    m = arch.phys_mask_shift if maxphyaddr is None else maxphyaddr
    if not arch.is_canonical(address):
        return GeneralProtection(address, f"non-canonical address {address:#x}")

    base_code = _base_error_code(access, cpu)
    us = rw = True
    xd = False
    nx_applies = cpu.pae and cpu.nxe
    used: list[tuple[_Level, int, int]] = []
    leaf: tuple[_Level, int, int, bool] | None = None

    for level, paddr, value, large in _walk_entries(mem, arch, cr3, address, cpu):
        if not value & _PAGE_PRESENT:
            return PageFault(address, base_code, f"not present at {level.name}")
        if arch.levels == 3 and level.name == "pgd":
            bad = value & _pdpte_reserved_mask(m)
            if bad:
                return GeneralProtection(
                    address, f"reserved bit {_lowest_bit(bad)} set in PAE PDPTE (#GP at PDPTE load)"
                )
        else:
            bad = value & _reserved_mask(arch, cpu, level, large, m)
            if bad:
                return PageFault(
                    address,
                    base_code | PF_PROT | PF_RSVD,
                    f"reserved bit {_lowest_bit(bad)} set in {level.name}",
                )
        if level.rights:
            us = us and bool(value & _PAGE_USER)
            rw = rw and bool(value & _PAGE_RW)
            if nx_applies:
                xd = xd or bool(value & _PAGE_NX)
        used.append((level, paddr, value))
        leaf = (level, paddr, value, large)

    assert leaf is not None
    why = _rights_violation(access, cpu, us, rw, xd)
    if why is not None:
        return PageFault(address, base_code | PF_PROT, why)

    leaf_level, leaf_paddr, leaf_value, large = leaf
    if large:
        size_shift = arch.pgdir_shift if arch.entry_bytes == 4 else leaf_level.shift
        page_size = 1 << size_shift
        paddr = _large_page_base(arch, leaf_value, size_shift) | (address & (page_size - 1))
        leaf_name = leaf_level.large
    else:
        page_size = 1 << PAGE_SHIFT
        paddr = (leaf_value & _bits(51 if arch.entry_bytes == 8 else 31, PAGE_SHIFT)) | (
            address & (page_size - 1)
        )
        leaf_name = "pte"

    # Atomic A/D updates (KF 3.6).
    for level, entry_paddr, value in used:
        new = value
        if level.accessed:
            new |= _PAGE_ACCESSED
        if entry_paddr == leaf_paddr and access.kind == "write":
            new |= _PAGE_DIRTY
        if new != value:
            mem.write_entry(entry_paddr, new)

    assert leaf_name is not None
    return Translation(paddr=paddr, page_size=page_size, leaf_level=leaf_name, leaf_entry_paddr=leaf_paddr)


# --- Which error codes exist (KF 3.8) ------------------------------------------

def error_code_possible(error_code: int, arch: Arch, cpu: CpuState) -> tuple[bool, str]:
    """Could the processor push ``error_code`` for a #PF taken in state ``cpu``?

    Rules 1-9 are KF 3.8's; rules 10-13 follow from KF 3.2/3.5 (what can be denied at
    all in this state).  Returns (True, "") or (False, the rule that excludes it).
    """
    p = bool(error_code & PF_PROT)
    w = bool(error_code & PF_WRITE)
    u = bool(error_code & PF_USER)
    rsvd = bool(error_code & PF_RSVD)
    instr = bool(error_code & PF_INSTR)
    pk = bool(error_code & PF_PK)

    if error_code < 0 or error_code >> 6:
        return False, "rule 9: only bits 0-5 exist on the CPUs Linux 4.4 targets"
    if rsvd and not p:
        return False, "rule 1: RSVD=1 requires P=1"
    if pk:
        if not (cpu.lma and cpu.pke):
            return False, "rule 2: PK=1 needs EFER.LMA=1 and CR4.PKE=1 (Linux 4.4 never sets PKE; never on 32-bit)"
        if not p or rsvd or instr:
            return False, "rule 2: PK=1 requires P=1, RSVD=0, I/D=0"
    if instr and w:
        return False, "rule 3: I/D=1 requires W/R=0 (a fetch is not a write)"
    if instr and not (cpu.smep or (cpu.pae and cpu.nxe)):
        return False, "rule 4: I/D=1 requires CR4.SMEP=1 or (CR4.PAE=1 and EFER.NXE=1)"
    if u and cpu.cpl != 3:
        return False, "rule 6: U/S=1 requires an access at CPL 3"
    # Derived rules.
    if not u and instr and cpu.cpl == 3:
        return False, "rule 10: at CPL 3 U/S=0 means an implicit access, which is never a fetch"
    if rsvd and arch.entry_bytes == 4 and not cpu.pse:
        return False, "rule 11: 32-bit paging without CR4.PSE has no reserved bits"
    if p and not rsvd and not pk and not u and not instr:
        if not w and not cpu.smap:
            return False, "rule 12: a supervisor read is denied only by SMAP, and CR4.SMAP=0"
        if w and not (cpu.wp or cpu.smap):
            return False, "rule 13: a supervisor write is denied only with CR0.WP=1 or SMAP, and both are 0"
    return True, ""
