"""Exhaustive MMU check in the style of kvm-unit-tests x86/access.c.

Every combination of leaf PTE bits (P, RW, US, NX, one reserved bit) x PDE bits (P,
RW, US, NX, one reserved bit) x access kind x CPL (0/3) x CR0.WP x CR4.SMEP x
CR4.SMAP x EFLAGS.AC x EFER.NXE is run through ``translate`` and compared with
``predict``, a software model written here from the SDM's rules (Vol. 3A §4.6-4.8;
KF 3.2, 3.3, 3.5, 3.6) without using anything from ``pfmodel.x86.mmu``.  Compared:
fault or not, the exact error code, the physical address, and the A/D bits of the
PDE and PTE afterwards.
"""

import itertools

from pfmodel.x86.memory import PhysMem
from pfmodel.x86.mmu import Access, CpuState, PageFault, Translation, translate
from pfmodel.x86.paging import I386_PAE, X86_64

# Plain numbers from the SDM, deliberately not imported.
P, RW, US, A, D = 0x1, 0x2, 0x4, 0x20, 0x40
XD = 1 << 63
RSVD = 1 << 51          # reserved in 4-level (51:46) and PAE (62:44) entries alike
ENTRY_BITS = {"P": P, "RW": RW, "US": US, "NX": XD, "RSVD": RSVD}

ADDRESS = 0x40201ABC
FRAME = 0x5555000
KINDS = ("read", "write", "fetch")


def predict(pde, pte, kind, cpl, wp, smep, smap, ac, nxe, implicit=False):
    """(faults, error code, PDE after, PTE after), from the SDM.  The PDE is a
    page-table pointer (PS=0); every entry above it is P|RW|US|A|D.  ``implicit``:
    an implicit supervisor access (GDT/IDT/TSS), supervisor-mode at any CPL."""
    write = kind == "write"
    fetch = kind == "fetch"
    user = cpl == 3 and not implicit
    code = (2 if write else 0) | (4 if user else 0) | (0x10 if fetch and (smep or nxe) else 0)

    def reserved(entry):
        return bool(entry & RSVD) or (not nxe and bool(entry & XD))

    for entry in (pde, pte):
        if not entry & P:
            return True, code, pde, pte
        if reserved(entry):
            return True, code | 0x1 | 0x8, pde, pte

    user_page = bool(pde & US) and bool(pte & US)
    writable = bool(pde & RW) and bool(pte & RW)
    no_exec = nxe and bool((pde | pte) & XD)
    if user:
        allowed = user_page and (not write or writable) and (not fetch or not no_exec)
    elif fetch:
        allowed = not (user_page and smep) and not no_exec
    else:
        smap_blocks = user_page and smap and (implicit or not ac)
        wp_blocks = write and wp and not writable
        allowed = not smap_blocks and not wp_blocks
    if not allowed:
        return True, code | 0x1, pde, pte
    return False, 0, pde | A, pte | A | (D if write else 0)


def combos():
    entry_sets = list(itertools.product((False, True), repeat=len(ENTRY_BITS)))
    flags = list(itertools.product((0, 3), (False, True), (False, True), (False, True), (False, True), (False, True)))
    for pde_set, pte_set in itertools.product(entry_sets, entry_sets):
        pde_bits = sum(m for m, on in zip(ENTRY_BITS.values(), pde_set) if on)
        pte_bits = sum(m for m, on in zip(ENTRY_BITS.values(), pte_set) if on)
        yield pde_bits, pte_bits, flags


def check_all(arch, implicit=False):
    """Run every combination on ``arch``; returns (checked, faults, by-error-code counts).
    ``implicit``: implicit supervisor data accesses instead of explicit ones."""
    mem = PhysMem(arch.entry_bytes)
    cr3 = mem.alloc_page("pgd") * 4096
    # Fixed upper levels; the PDE and PTE slots are rewritten for each case.
    table = cr3
    if arch is X86_64:
        pud_table = mem.alloc_page("pud") * 4096
        mem.write_entry(cr3 + arch.pgd_index(ADDRESS) * 8, pud_table | 0x067)
        table = pud_table
        upper_slot = pud_table + arch.pud_index(ADDRESS) * 8
        upper_link = 0x067
    else:
        upper_slot = cr3 + arch.pgd_index(ADDRESS) * 8
        upper_link = 0x001  # a PAE PDPTE: P only
    pmd_table = mem.alloc_page("pmd") * 4096
    pte_table = mem.alloc_page("pte") * 4096
    mem.write_entry(upper_slot, pmd_table | upper_link)
    pde_slot = pmd_table + arch.pmd_index(ADDRESS) * 8
    pte_slot = pte_table + arch.pte_index(ADDRESS) * 8
    fixed = {p: mem.read_entry(p) for p in (cr3 + arch.pgd_index(ADDRESS) * 8, upper_slot)}

    cpus = {}
    checked = faults = 0
    by_code: dict[int, int] = {}
    for pde_bits, pte_bits, flags in combos():
        pde = pte_table | pde_bits
        pte = FRAME | pte_bits
        for cpl, wp, smep, smap, ac, nxe in flags:
            key = (cpl, wp, smep, smap, ac, nxe)
            if key not in cpus:
                cpus[key] = CpuState.make(arch, cpl=cpl, wp=wp, smep=smep, smap=smap, ac=ac, nx=nxe)
            cpu = cpus[key]
            assert cpu.nxe == nxe
            for kind in KINDS[:2] if implicit else KINDS:
                mem.write_entry(pde_slot, pde)
                mem.write_entry(pte_slot, pte)
                got = translate(mem, arch, cr3, ADDRESS, Access(kind, implicit), cpu)
                fault, code, pde_after, pte_after = predict(pde, pte, kind, cpl, wp, smep, smap, ac, nxe, implicit)
                case = (hex(pde_bits), hex(pte_bits), kind, key)
                if fault:
                    assert isinstance(got, PageFault), case
                    assert got.address == ADDRESS, case
                    assert got.error_code == code, (case, hex(got.error_code), hex(code))
                    faults += 1
                    by_code[code] = by_code.get(code, 0) + 1
                else:
                    assert got == Translation(FRAME | (ADDRESS & 0xFFF), 4096, "pte", pte_slot), case
                assert mem.read_entry(pde_slot) == pde_after, case
                assert mem.read_entry(pte_slot) == pte_after, case
                checked += 1
    for paddr, value in fixed.items():
        assert mem.read_entry(paddr) == value  # upper links already had A; nothing else touched
    return checked, faults, by_code


EXPECTED_COMBINATIONS = 32 * 32 * 3 * 2**6  # PTE bits x PDE bits x kind x (CPL, WP, SMEP, SMAP, AC, NXE)


def _check_arch(arch):
    checked, faults, by_code = check_all(arch)
    assert checked == EXPECTED_COMBINATIONS == 196608
    # Both outcomes and every family of error code occur: the product is not vacuous.
    assert 0 < faults < checked
    assert {0x00, 0x04, 0x06, 0x14, 0x01, 0x03, 0x11, 0x05, 0x07, 0x15, 0x09, 0x0D, 0x0F, 0x1D} <= set(by_code)
    assert not any(code & 0x20 for code in by_code)


def test_x86_64_full_product():
    _check_arch(X86_64)


def test_pae_full_product():
    _check_arch(I386_PAE)


def test_x86_64_implicit_supervisor_accesses():
    # Implicit accesses are reads and writes only; at CPL 3 they are supervisor-mode,
    # so U/S is never in the error code and AC never lifts SMAP.
    checked, faults, by_code = check_all(X86_64, implicit=True)
    assert checked == 32 * 32 * 2 * 2**6
    assert set(by_code) == {0x00, 0x02, 0x01, 0x03, 0x09, 0x0B}


def test_predict_spot_checks():
    """The reference model itself against a few cases worked out by hand."""
    table = 0x1000
    # Kernel write (WP=1) to a user read-only page, SMAP on, AC=1: a WP fault, 0x03.
    assert predict(table | P | RW | US, FRAME | P | US, "write", 0, True, False, True, True, True)[:2] == (True, 0x03)
    # Same with WP=0: allowed, PTE gets A and D.
    assert predict(table | P | RW | US, FRAME | P | US, "write", 0, False, False, True, True, True) == (
        False, 0, table | P | RW | US | A, FRAME | P | US | A | D)
    # NX in the PDE with NXE=0 is a reserved-bit fault even for a read.
    assert predict(table | P | RW | US | XD, FRAME | P, "read", 3, True, False, False, False, False)[:2] == (True, 0x0D)
