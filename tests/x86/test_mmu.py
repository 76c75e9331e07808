"""Hand cases for the MMU walk (KF 3.1-3.8; SDM Vol. 3A §4.6-4.8), on every arch where
the case applies.  Expected error codes are written out as numbers on purpose."""

import copy

import pytest

from pfmodel.x86.memory import PhysMem
from pfmodel.x86.mmu import (
    Access,
    CpuState,
    GeneralProtection,
    PageFault,
    Translation,
    error_code_possible,
    translate,
    walk,
)
from pfmodel.x86.paging import I386, I386_PAE, X86_64

ALL = [X86_64, I386_PAE, I386]
PAE_AND_64 = [X86_64, I386_PAE]
NX = 1 << 63

# Levels each mode walks, top-down (folded levels absent).
LEVELS = {X86_64: ("pgd", "pud", "pmd", "pte"), I386_PAE: ("pgd", "pmd", "pte"), I386: ("pgd", "pte")}
SHIFT = {"pgd": None, "pud": 30, "pmd": 21, "pte": 12}

USER_ADDR = 0x40201000  # pgd 0 on 64 (slot 0), PAE slot 1, 2L slot 0x100
FRAME = 0x1234000       # the physical page user leaves map


class Tables:
    """A page-table tree in PhysMem, built by hand.  Links are _PAGE_TABLE (0x067),
    except PAE PDPTEs, which Linux writes as address|P (KF 1.11)."""

    def __init__(self, arch):
        self.arch = arch
        self.mem = PhysMem(arch.entry_bytes)
        self.cr3 = self.mem.alloc_page("pgd") * 4096

    def index(self, level, address):
        a = self.arch
        return {"pgd": a.pgd_index, "pud": a.pud_index, "pmd": a.pmd_index, "pte": a.pte_index}[level](address)

    def default_link(self, level):
        return 0x001 if (self.arch is I386_PAE and level == "pgd") else 0x067

    def map(self, address, value, leaf="pte", links=None):
        """Write ``value`` at level ``leaf`` for ``address``, creating tables above it.
        ``links`` overrides the flag bits of the link at a level.  Returns the entry's
        physical address."""
        links = links or {}
        table = self.cr3
        for level in LEVELS[self.arch]:
            slot = table + self.index(level, address) * self.arch.entry_bytes
            if level == leaf:
                self.mem.write_entry(slot, value)
                return slot
            entry = self.mem.read_entry(slot)
            if not entry & 1:
                next_table = self.mem.alloc_page(level) * 4096
            else:
                next_table = entry & 0x000FFFFFFFFFF000
            self.mem.write_entry(slot, next_table | links.get(level, self.default_link(level)))
            table = next_table
        raise AssertionError(f"no level {leaf} on {self.arch.name}")

    def slot(self, level, address):
        """Physical address of the entry at ``level`` for ``address`` (tables must exist)."""
        return {name: paddr for name, paddr, _ in walk(self.mem, self.arch, self.cr3, address)}[level]

    def snapshot(self):
        return copy.deepcopy(self.mem.pages)


def cpu(arch, cpl=3, **kw):
    return CpuState.make(arch, cpl=cpl, **kw)


def go(t, address, kind="read", c=None, implicit=False, **kw):
    return translate(t.mem, t.arch, t.cr3, address, Access(kind, implicit), c or cpu(t.arch), **kw)


def user_page(arch, flags=0x067):
    """A user 4K page mapped at USER_ADDR with ``flags``."""
    t = Tables(arch)
    pte = t.map(USER_ADDR, FRAME | flags)
    return t, pte


# --- walk() ----------------------------------------------------------------------


@pytest.mark.parametrize("arch", ALL, ids=lambda a: a.name)
def test_walk_lists_levels_top_down_and_stops_at_not_present(arch):
    t, pte = user_page(arch)
    entries = walk(t.mem, arch, t.cr3, USER_ADDR + 0x123)
    assert [name for name, _, _ in entries] == list(LEVELS[arch])
    assert entries[-1] == ("pte", pte, FRAME | 0x067)
    assert entries[0][1] == t.cr3 + arch.pgd_index(USER_ADDR) * arch.entry_bytes
    # A neighbouring address whose pte is empty: the walk ends at the pte.
    other = walk(t.mem, arch, t.cr3, USER_ADDR + 0x1000)
    assert [name for name, _, _ in other] == list(LEVELS[arch])
    assert other[-1][2] == 0
    # Under an empty top-level slot the walk reads one entry.
    far = 0x00007F0000000000 if arch is X86_64 else 0xC0000000
    assert walk(t.mem, arch, t.cr3, far) == [("pgd", t.cr3 + arch.pgd_index(far) * arch.entry_bytes, 0)]


def test_walk_stops_at_large_leaf():
    t = Tables(X86_64)
    t.map(0x40000000, 0x80000000 | 0x0E7, leaf="pud")  # 1 GiB page
    assert [n for n, _, _ in walk(t.mem, X86_64, t.cr3, 0x40001000)] == ["pgd", "pud"]
    t2 = Tables(I386)
    t2.map(0x00400000, 0x00800000 | 0x0E7, leaf="pgd")  # 4 MiB page
    assert [n for n, _, _ in walk(t2.mem, I386, t2.cr3, 0x00401000)] == ["pgd"]


# --- Not present -----------------------------------------------------------------


@pytest.mark.parametrize(
    "arch, level",
    [(a, lvl) for a in ALL for lvl in LEVELS[a]],
    ids=lambda x: getattr(x, "name", x),
)
@pytest.mark.parametrize("kind, mode, code", [("read", 3, 0x04), ("write", 3, 0x06), ("write", 0, 0x02), ("read", 0, 0x00)])
def test_not_present_at_each_level(arch, level, kind, mode, code):
    t, _ = user_page(arch)
    slot = t.slot(level, USER_ADDR)
    t.mem.write_entry(slot, t.mem.read_entry(slot) & ~1)  # clear only P
    before = t.snapshot()
    r = go(t, USER_ADDR, kind, cpu(arch, cpl=mode))
    assert r == PageFault(USER_ADDR, code, f"not present at {level}")
    assert t.snapshot() == before


@pytest.mark.parametrize("arch, code", [(X86_64, 0x14), (I386_PAE, 0x14), (I386, 0x04)], ids=lambda x: getattr(x, "name", x))
def test_not_present_fetch_reports_id_only_with_nx_paging(arch, code):
    t = Tables(arch)
    assert go(t, USER_ADDR, "fetch").error_code == code
    # SMEP alone makes I/D reported, even on 2-level (KF 3.3, rule 4).
    assert go(t, USER_ADDR, "fetch", cpu(arch, smep=True)).error_code == 0x14
    # NXE off: only SMEP could make I/D appear.
    assert go(t, USER_ADDR, "fetch", cpu(arch, nx=False)).error_code == 0x04


# --- Reserved bits ---------------------------------------------------------------


@pytest.mark.parametrize(
    "arch, level, bit",
    [
        (X86_64, "pte", 51), (X86_64, "pte", 46), (X86_64, "pmd", 47), (X86_64, "pud", 50), (X86_64, "pgd", 46),
        (X86_64, "pgd", 7),                      # PS in a PML4E
        (I386_PAE, "pte", 44), (I386_PAE, "pte", 52), (I386_PAE, "pte", 62), (I386_PAE, "pmd", 50),
    ],
    ids=str,
)
def test_reserved_bit_in_present_entry(arch, level, bit):
    t, _ = user_page(arch)
    slot = t.slot(level, USER_ADDR)
    t.mem.write_entry(slot, t.mem.read_entry(slot) | (1 << bit))
    before = t.snapshot()
    r = go(t, USER_ADDR, "write")
    assert r == PageFault(USER_ADDR, 0x0F, f"reserved bit {bit} set in {level}")  # P|W|U|RSVD
    assert t.snapshot() == before
    assert go(t, USER_ADDR, "read", cpu(arch, cpl=0)).error_code == 0x09


@pytest.mark.parametrize("arch", PAE_AND_64, ids=lambda a: a.name)
def test_bits_below_maxphyaddr_and_ignored_bits_are_not_reserved(arch):
    m = arch.phys_mask_shift
    t, _ = user_page(arch, flags=0x067 | (1 << (m - 1)) | (0x7 << 9))
    r = go(t, USER_ADDR + 0x10, "read")
    assert r == Translation((1 << (m - 1)) | FRAME | 0x10, 4096, "pte", t.slot("pte", USER_ADDR))
    # A larger MAXPHYADDR makes bit M an address bit; a smaller one makes bit M-1 reserved.
    assert isinstance(go(t, USER_ADDR, maxphyaddr=m - 1), PageFault)
    if arch is X86_64:
        # Bits 62:52 are ignored in 4-level entries, reserved in PAE ones.
        t.mem.write_entry(t.slot("pte", USER_ADDR), FRAME | 0x067 | (1 << 55))
        assert isinstance(go(t, USER_ADDR), Translation)


@pytest.mark.parametrize("arch", PAE_AND_64, ids=lambda a: a.name)
def test_nx_bit_is_reserved_when_nxe_off(arch):
    t, _ = user_page(arch, flags=0x067 | NX)
    assert go(t, USER_ADDR, "read", cpu(arch, nx=False)) == PageFault(USER_ADDR, 0x0D, "reserved bit 63 set in pte")
    # Without SMEP or NXE a fetch does not report I/D, even for this fault.
    assert go(t, USER_ADDR, "fetch", cpu(arch, nx=False)).error_code == 0x0D
    assert go(t, USER_ADDR, "fetch", cpu(arch, nx=False, smep=True)).error_code == 0x1D
    assert isinstance(go(t, USER_ADDR, "read", cpu(arch, nx=True)), Translation)


def test_reserved_bit_higher_up_wins_over_not_present_below():
    t = Tables(X86_64)
    t.map(USER_ADDR, 0)  # pte none
    pmd = t.slot("pmd", USER_ADDR)
    t.mem.write_entry(pmd, t.mem.read_entry(pmd) | (1 << 48))
    assert go(t, USER_ADDR).error_code == 0x0D


def test_rsvd_not_checked_in_not_present_entries():
    # Swap-like and PROT_NONE-like values (P=0) with "reserved" bits give P=0 faults.
    for arch in ALL:
        t = Tables(arch)
        high = 0xFFFF0000 if arch is I386 else 0x7FFF000000000000
        t.map(USER_ADDR, high | 0x100 | 0x3E)
        assert go(t, USER_ADDR).error_code == 0x04


def test_pae_pdpte_reserved_bits_are_general_protection():
    t, _ = user_page(I386_PAE)
    pdpte = t.slot("pgd", USER_ADDR)
    for bit in (1, 2, 5, 6, 7, 8, 44, 63):
        t.mem.write_entry(pdpte, (t.mem.read_entry(pdpte) & 0xFFFFF000) | 1 | (1 << bit))
        before = t.snapshot()
        r = go(t, USER_ADDR)
        assert isinstance(r, GeneralProtection), bit
        assert f"reserved bit {bit}" in r.reason
        assert t.snapshot() == before
    # PWT, PCD and the ignored bits 11:9 are allowed; no A bit is set in a PDPTE.
    t.mem.write_entry(pdpte, (t.mem.read_entry(pdpte) & 0xFFFFF000) | 0xE19)
    assert isinstance(go(t, USER_ADDR), Translation)
    assert t.mem.read_entry(pdpte) & 0xFFF == 0xE19
    # A not-present PDPTE is an ordinary P=0 page fault.
    t.mem.write_entry(pdpte, 0)
    assert go(t, USER_ADDR) == PageFault(USER_ADDR, 0x04, "not present at pgd")


def test_two_level_has_no_reserved_bits_in_ptes():
    t, _ = user_page(I386, flags=0xFFF)
    assert isinstance(go(t, USER_ADDR, "write"), Translation)


# --- Large pages -----------------------------------------------------------------


@pytest.mark.parametrize("arch", PAE_AND_64, ids=lambda a: a.name)
def test_2mib_page(arch):
    t = Tables(arch)
    pmd = t.map(0x40200000, 0x3FE00000 | 0x1000 | 0x0A7, leaf="pmd")  # PAT_LARGE bit 12 is not address
    r = go(t, 0x40212345, "write")
    assert r == Translation(0x3FE12345, 2 << 20, "pmd", pmd)
    assert t.mem.read_entry(pmd) == 0x3FE00000 | 0x1000 | 0x0E7  # A and D set
    for bit in (13, 20):
        t.mem.write_entry(pmd, 0x3FE00000 | 0x0A7 | (1 << bit))
        assert go(t, 0x40212345) == PageFault(0x40212345, 0x0D, f"reserved bit {bit} set in pmd")


def test_1gib_page_on_64():
    t = Tables(X86_64)
    pud = t.map(0x40000000, 0x1C0000000 | 0x0A5, leaf="pud")
    r = go(t, 0x7FFFFFFF, "read")
    assert r == Translation(0x1FFFFFFFF, 1 << 30, "pud", pud)
    assert go(t, 0x40000000, "write").error_code == 0x07  # RO large page
    t.mem.write_entry(pud, 0x1C0000000 | 0x0A5 | (1 << 29))
    assert go(t, 0x40000000).reason == "reserved bit 29 set in pud"


def test_4mib_page_on_two_level_needs_cr4_pse():
    t = Tables(I386)
    pde = t.map(0x00400000, 0x00C00000 | (0x3 << 13) | 0x0E7, leaf="pgd")  # PSE-36: phys bits 33:32 = 3
    # With M=40 the PSE-36 field holds physical bits 39:32.
    r = go(t, 0x0045A678, "read", maxphyaddr=40)
    assert r == Translation(0x3_00C5A678, 4 << 20, "pmd", pde)
    # With the default M=32 those bits are reserved.
    assert go(t, 0x0045A678).error_code == 0x0D
    t.mem.write_entry(pde, 0x00C00000 | (1 << 21) | 0x0E7)
    assert go(t, 0x0045A678, maxphyaddr=40).reason == "reserved bit 21 set in pgd"
    # CR4.PSE=0: PS is ignored and the PDE points to a page table (at 0x00C00000, absent here).
    t.mem.write_entry(pde, 0x00C00000 | 0x0E7)
    with pytest.raises(ValueError, match="not in an allocated page"):
        go(t, 0x0045A678, c=cpu(I386, pse=False))


def test_ps_bit_in_pte_is_pat_not_a_page_size():
    for arch in ALL:
        t, pte = user_page(arch, flags=0x0E7)
        assert go(t, USER_ADDR + 8) == Translation(FRAME + 8, 4096, "pte", pte)


# --- Access rights ---------------------------------------------------------------


@pytest.mark.parametrize("arch", ALL, ids=lambda a: a.name)
def test_user_access_to_supervisor_page(arch):
    t, _ = user_page(arch, flags=0x063)  # no U/S
    assert go(t, USER_ADDR, "read") == PageFault(USER_ADDR, 0x05, "user read of a supervisor page")
    assert go(t, USER_ADDR, "write").error_code == 0x07
    assert go(t, USER_ADDR, "fetch").error_code == (0x15 if arch.has_nx else 0x05)
    assert isinstance(go(t, USER_ADDR, "write", cpu(arch, cpl=0)), Translation)


@pytest.mark.parametrize("arch", ALL, ids=lambda a: a.name)
def test_effective_rights_are_and_of_us_and_rw(arch):
    # The leaf allows everything, a link above it does not (KF 3.2): US and RW are ANDed.
    top_rights = "pgd" if arch is not I386_PAE else "pmd"  # PAE PDPTEs carry no rights
    t = Tables(arch)
    t.map(USER_ADDR, FRAME | 0x067, links={top_rights: 0x063})
    assert go(t, USER_ADDR).error_code == 0x05
    t = Tables(arch)
    t.map(USER_ADDR, FRAME | 0x067, links={top_rights: 0x065})
    assert isinstance(go(t, USER_ADDR, "read"), Translation)
    assert go(t, USER_ADDR, "write").error_code == 0x07
    assert go(t, USER_ADDR, "write", cpu(arch, cpl=0)).error_code == 0x03


@pytest.mark.parametrize("arch", PAE_AND_64, ids=lambda a: a.name)
def test_nx(arch):
    t, _ = user_page(arch, flags=0x067 | NX)
    assert go(t, USER_ADDR, "fetch") == PageFault(USER_ADDR, 0x15, "user fetch from an execute-disable page")
    assert isinstance(go(t, USER_ADDR, "read"), Translation)
    assert go(t, USER_ADDR, "fetch", cpu(arch, cpl=0)).error_code == 0x11
    # XD is ORed over the levels: NX on the pmd link forbids fetches from an exec pte.
    t = Tables(arch)
    t.map(USER_ADDR, FRAME | 0x067, links={"pmd": 0x067 | NX})
    assert go(t, USER_ADDR, "fetch").error_code == 0x15


def test_no_nx_on_two_level():
    t, _ = user_page(I386, flags=0x065)
    assert isinstance(go(t, USER_ADDR, "fetch"), Translation)
    assert isinstance(go(t, USER_ADDR, "fetch", cpu(I386, cpl=0)), Translation)


@pytest.mark.parametrize("arch", ALL, ids=lambda a: a.name)
def test_smep(arch):
    t, _ = user_page(arch, flags=0x065)
    assert go(t, USER_ADDR, "fetch", cpu(arch, cpl=0, smep=True)) == PageFault(
        USER_ADDR, 0x11, "SMEP: supervisor fetch from a user page"
    )
    assert isinstance(go(t, USER_ADDR, "fetch", cpu(arch, cpl=0, smep=False)), Translation)
    assert isinstance(go(t, USER_ADDR, "fetch", cpu(arch, cpl=3, smep=True)), Translation)
    # SMEP does not concern supervisor pages.
    t2, _ = user_page(arch, flags=0x061)
    assert isinstance(go(t2, USER_ADDR, "fetch", cpu(arch, cpl=0, smep=True)), Translation)


@pytest.mark.parametrize("arch", ALL, ids=lambda a: a.name)
def test_smap(arch):
    t, _ = user_page(arch, flags=0x067)
    k = dict(cpl=0, smap=True)
    assert go(t, USER_ADDR, "read", cpu(arch, **k)) == PageFault(
        USER_ADDR, 0x01, "SMAP: supervisor read of user page with AC=0"
    )
    assert go(t, USER_ADDR, "write", cpu(arch, **k)).error_code == 0x03
    assert isinstance(go(t, USER_ADDR, "read", cpu(arch, ac=True, **k)), Translation)
    assert isinstance(go(t, USER_ADDR, "write", cpu(arch, ac=True, **k)), Translation)
    # AC does not help an implicit access.
    r = go(t, USER_ADDR, "read", cpu(arch, ac=True, **k), implicit=True)
    assert r == PageFault(USER_ADDR, 0x01, "SMAP: implicit supervisor read of user page with implicit access")
    # At CPL 3 explicit accesses are user accesses: SMAP and AC do not matter.
    assert isinstance(go(t, USER_ADDR, "write", cpu(arch, cpl=3, smap=True, ac=False)), Translation)
    # SMAP off: allowed.
    assert isinstance(go(t, USER_ADDR, "read", cpu(arch, cpl=0)), Translation)
    # No translation: an ordinary P=0 fault, not a SMAP one.
    assert go(t, USER_ADDR + 0x1000, "read", cpu(arch, **k)).error_code == 0x00


@pytest.mark.parametrize("arch", ALL, ids=lambda a: a.name)
def test_implicit_access_at_cpl3_is_supervisor(arch):
    t, _ = user_page(arch, flags=0x061)  # supervisor, read-only
    assert go(t, USER_ADDR, "read").error_code == 0x05
    assert isinstance(go(t, USER_ADDR, "read", implicit=True), Translation)
    assert go(t, USER_ADDR, "write", implicit=True).error_code == 0x03  # U/S=0 despite CPL 3
    assert go(t, USER_ADDR + 0x1000, "read", implicit=True).error_code == 0x00
    assert isinstance(go(t, USER_ADDR, "write", cpu(arch, wp=False), implicit=True), Translation)


@pytest.mark.parametrize("arch", ALL, ids=lambda a: a.name)
def test_cr0_wp(arch):
    t, pte = user_page(arch, flags=0x025)  # user, read-only, A set
    assert go(t, USER_ADDR, "write", cpu(arch, cpl=0, wp=True)) == PageFault(
        USER_ADDR, 0x03, "supervisor write to read-only page with CR0.WP=1"
    )
    assert t.mem.read_entry(pte) == FRAME | 0x025
    assert isinstance(go(t, USER_ADDR, "write", cpu(arch, cpl=0, wp=False)), Translation)
    assert t.mem.read_entry(pte) == FRAME | 0x065  # D set by the write
    # WP never lets a user write to a read-only page.
    assert go(t, USER_ADDR, "write", cpu(arch, cpl=3, wp=False)).error_code == 0x07


# --- Accessed / dirty ------------------------------------------------------------


@pytest.mark.parametrize("arch", ALL, ids=lambda a: a.name)
def test_accessed_and_dirty(arch):
    t = Tables(arch)
    pte = t.map(USER_ADDR, FRAME | 0x007, links={lvl: 0x007 for lvl in LEVELS[arch]})
    if arch is I386_PAE:
        t.mem.write_entry(t.slot("pgd", USER_ADDR), t.mem.read_entry(t.slot("pgd", USER_ADDR)) & ~0x6)
    links = [(n, p) for n, p, _ in walk(t.mem, arch, t.cr3, USER_ADDR)][:-1]
    assert isinstance(go(t, USER_ADDR, "read"), Translation)
    assert t.mem.read_entry(pte) & 0x060 == 0x020  # A, not D
    for name, paddr in links:
        expect = 0x001 if (arch is I386_PAE and name == "pgd") else 0x027
        assert t.mem.read_entry(paddr) & 0xFFF == expect, name
    assert isinstance(go(t, USER_ADDR, "fetch"), Translation)
    assert t.mem.read_entry(pte) & 0x060 == 0x020
    assert isinstance(go(t, USER_ADDR, "write"), Translation)
    assert t.mem.read_entry(pte) & 0xFFF == 0x067  # D in the leaf
    for name, paddr in links:  # never D in a link
        assert not t.mem.read_entry(paddr) & 0x040


@pytest.mark.parametrize("arch", ALL, ids=lambda a: a.name)
def test_fault_changes_nothing(arch):
    t = Tables(arch)
    t.map(USER_ADDR, FRAME | 0x005, links={lvl: 0x007 for lvl in LEVELS[arch] if lvl != "pgd" or arch is not I386_PAE})
    before = t.snapshot()
    for kind, c in [("write", cpu(arch)), ("write", cpu(arch, cpl=0)), ("read", cpu(arch, cpl=0, smap=True))]:
        assert isinstance(go(t, USER_ADDR, kind, c), PageFault)
        assert t.snapshot() == before


# --- Not a page fault ------------------------------------------------------------


def test_non_canonical_is_general_protection():
    t, _ = user_page(X86_64)
    before = t.snapshot()
    for address in (0x0000800000000000, 0xFFFF7FFFFFFFF000, 0x8000000000000000):
        r = go(t, address, "read")
        assert isinstance(r, GeneralProtection) and r.address == address
        assert "non-canonical" in r.reason
    assert t.snapshot() == before
    # The top of the lower half and the bottom of the upper half are ordinary addresses.
    assert go(t, 0x00007FFFFFFFF000) == PageFault(0x00007FFFFFFFF000, 0x04, "not present at pgd")
    assert go(t, 0xFFFF800000000000, c=cpu(X86_64, cpl=0)).error_code == 0x00


def test_bad_arguments_are_loud():
    t, _ = user_page(X86_64)
    with pytest.raises(ValueError, match="CpuState.make"):
        go(t, USER_ADDR, c=cpu(I386))
    with pytest.raises(ValueError, match="64-bit linear address"):
        go(t, 1 << 64)
    t32, _ = user_page(I386_PAE)
    with pytest.raises(ValueError, match="32-bit linear address"):
        go(t32, 1 << 32)
    with pytest.raises(ValueError, match="implicit"):
        Access("fetch", implicit=True)
    with pytest.raises(ValueError, match="access kind"):
        Access("execute")


def test_cpustate_make():
    c = CpuState.make(X86_64, cpl=0, smep=True, smap=True, ac=True)
    assert (c.wp, c.smep, c.smap, c.nxe, c.ac, c.pae, c.lma) == (True,) * 7
    assert c.cr0 == 0x80010000
    assert c.efer == 0xD00
    assert c.eflags == 0x40202
    p = CpuState.make(I386_PAE, cpl=3, wp=False, if_=False)
    assert (p.wp, p.pae, p.lma, p.nxe, p.smep, p.smap) == (False, True, False, True, False, False)
    assert p.eflags == 0x2 and p.paging_mode == "pae"
    two = CpuState.make(I386, cpl=3, nx=True)
    assert (two.pae, two.nxe, two.pse, two.paging_mode) == (False, False, True, "2-level")
    with pytest.raises(ValueError):
        CpuState.make(X86_64, cpl=4)


# --- error_code_possible ---------------------------------------------------------


@pytest.mark.parametrize(
    "arch, kw, code, ok, rule",
    [
        (X86_64, dict(cpl=3), 0x04, True, ""),
        (X86_64, dict(cpl=3), 0x0D, True, ""),
        (X86_64, dict(cpl=3), 0x08, False, "rule 1"),
        (X86_64, dict(cpl=3), 0x25, False, "rule 2"),
        (I386_PAE, dict(cpl=3), 0x25, False, "rule 2"),
        (X86_64, dict(cpl=3), 0x16, False, "rule 3"),
        (X86_64, dict(cpl=3), 0x14, True, ""),
        (X86_64, dict(cpl=3, nx=False), 0x14, False, "rule 4"),
        (X86_64, dict(cpl=3, nx=False, smep=True), 0x14, True, ""),
        (I386, dict(cpl=3), 0x15, False, "rule 4"),
        (I386, dict(cpl=0, smep=True), 0x11, True, ""),
        (X86_64, dict(cpl=0), 0x04, False, "rule 6"),
        (X86_64, dict(cpl=0), 0x40, False, "rule 9"),
        (X86_64, dict(cpl=3), 0x8004, False, "rule 9"),
        (X86_64, dict(cpl=3), 0x10, False, "rule 10"),
        (X86_64, dict(cpl=3), 0x02, True, ""),
        (I386, dict(cpl=3, pse=False), 0x0D, False, "rule 11"),
        (I386, dict(cpl=3), 0x0D, True, ""),
        (X86_64, dict(cpl=0), 0x01, False, "rule 12"),
        (X86_64, dict(cpl=0, smap=True), 0x01, True, ""),
        (X86_64, dict(cpl=0, wp=False), 0x03, False, "rule 13"),
        (X86_64, dict(cpl=0, wp=False, smap=True), 0x03, True, ""),
        (X86_64, dict(cpl=0), 0x03, True, ""),
        (X86_64, dict(cpl=0), 0x11, True, ""),
        (X86_64, dict(cpl=0), 0x00, True, ""),
    ],
    ids=str,
)
def test_error_code_possible(arch, kw, code, ok, rule):
    possible, why = error_code_possible(code, arch, cpu(arch, **kw))
    assert possible is ok
    assert why.startswith(rule) if rule else why == ""


def _all_faults(arch, c):
    """Every error code translate() produces on a small page-table zoo in state ``c``."""
    codes = set()
    variants = [0, FRAME | 0x001, FRAME | 0x063, FRAME | 0x061, FRAME | 0x067, FRAME | 0x065, FRAME | 0x067 | (1 << 21)]
    if arch.has_nx:
        variants += [FRAME | 0x065 | NX, FRAME | 0x067 | NX, FRAME | 0x067 | (1 << 50)]
    for value in variants:
        t = Tables(arch)
        if arch is I386 and value & (1 << 21):
            t.map(0x00400000, 0x00400000 | 0x0E7 | (1 << 21), leaf="pgd")
            address = 0x00400000
        else:
            t.map(USER_ADDR, value)
            address = USER_ADDR
        for kind in ("read", "write", "fetch"):
            for implicit in (False, True):
                if implicit and kind == "fetch":
                    continue
                r = go(t, address, kind, c, implicit=implicit)
                if isinstance(r, PageFault):
                    codes.add(r.error_code)
    return codes


@pytest.mark.parametrize("arch", ALL, ids=lambda a: a.name)
def test_every_code_the_mmu_produces_is_possible_and_the_impossible_never_appear(arch):
    seen_any = set()
    for cpl in (0, 3):
        for smep in (False, True):
            for smap in (False, True):
                for wp in (False, True):
                    for nx in (False, True):
                        c = cpu(arch, cpl=cpl, smep=smep, smap=smap, wp=wp, nx=nx)
                        produced = _all_faults(arch, c)
                        for code in produced:
                            assert error_code_possible(code, arch, c) == (True, ""), (hex(code), c)
                        seen_any |= produced
    # The zoo is rich enough to exercise a good part of the space.
    assert len(seen_any) >= (12 if arch.has_nx else 9)
    assert not any(code & 0x20 for code in seen_any)
