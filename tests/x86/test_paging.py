"""Paging geometry (KF 1.11, the seed's PAE diagram) and simulated physical memory."""

import pytest

from pfmodel.x86.memory import PhysMem
from pfmodel.x86.paging import ARCHES, I386, I386_PAE, X86_64, get_arch


def indices(arch, address):
    return (
        arch.pgd_index(address),
        arch.pud_index(address),
        arch.pmd_index(address),
        arch.pte_index(address),
        arch.page_offset(address),
    )


# Index fields worked out by hand from the bit splits of KF 1.11:
#   64:  [47:39] pgd [38:30] pud [29:21] pmd [20:12] pte [11:0] offset
#   PAE: [31:30] pgd [29:21] pmd [20:12] pte            (the seed's 2+9+9+12 diagram)
#   2L:  [31:22] pgd [21:12] pte                        (10+10+12)
# Folded levels always give index 0.
@pytest.mark.parametrize(
    "arch, address, expected",
    [
        # 0x7f68d8b67abc = 0 1111 1110 | 1 1010 0011 | 0 1100 0101 | 1 0110 0111 | abc
        (X86_64, 0x7F68D8B67ABC, (0x0FE, 0x1A3, 0x0C5, 0x167, 0xABC)),
        # the direct map starts at pgd slot 273 (0x111)
        (X86_64, 0xFFFF888012345678, (0x111, 0x000, 0x091, 0x145, 0x678)),
        (X86_64, 0x00007FFFFFFFF000, (0x0FF, 0x1FF, 0x1FF, 0x1FF, 0x000)),
        (X86_64, 0xFFFFFFFFFF600000, (0x1FF, 0x1FF, 0x1FB, 0x000, 0x000)),
        # 0xC0801234 = 11 | 00 0000 100 | 0 0000 0001 | 234
        (I386_PAE, 0xC0801234, (3, 0, 0x004, 0x001, 0x234)),
        (I386_PAE, 0xBFFFE123, (2, 0, 0x1FF, 0x1FE, 0x123)),
        (I386_PAE, 0x00000FFF, (0, 0, 0, 0, 0xFFF)),
        # 0xC0801234 = 1100 0000 10 | 00 0000 0001 | 234
        (I386, 0xC0801234, (0x302, 0, 0, 0x001, 0x234)),
        (I386, 0xBFFFE123, (0x2FF, 0, 0, 0x3FE, 0x123)),
        (I386, 0xFFFFFFFF, (0x3FF, 0, 0, 0x3FF, 0xFFF)),
    ],
)
def test_index_functions(arch, address, expected):
    assert indices(arch, address) == expected


def test_geometry_numbers():
    # KF 1.10/1.11: PTE_PFN_MASK per mode; folding; entry widths.
    assert X86_64.pte_pfn_mask == 0x00003FFFFFFFF000
    assert I386_PAE.pte_pfn_mask == 0x00000FFFFFFFF000
    assert I386.pte_pfn_mask == 0xFFFFF000
    assert (X86_64.pud_folded, X86_64.pmd_folded) == (False, False)
    assert (I386_PAE.pud_folded, I386_PAE.pmd_folded) == (True, False)
    assert (I386.pud_folded, I386.pmd_folded) == (True, True)
    assert X86_64.entry_mask == (1 << 64) - 1
    assert I386_PAE.entry_mask == (1 << 64) - 1
    assert I386.entry_mask == 0xFFFFFFFF
    assert X86_64.page_mask == 0xFFFFFFFFFFFFF000
    assert I386.page_mask == 0xFFFFF000
    assert (X86_64.pmd_size, I386_PAE.pmd_size, I386.pmd_size) == (2 << 20, 2 << 20, 4 << 20)
    # Every address bit below the word width is covered exactly once by the fields.
    for arch in ARCHES.values():
        covered = 12 + sum(
            (n - 1).bit_length() for n in (arch.ptrs_per_pgd, arch.ptrs_per_pud, arch.ptrs_per_pmd, arch.ptrs_per_pte)
        )
        assert covered == (48 if arch.word_bits == 64 else 32)


@pytest.mark.parametrize(
    "arch, address, canonical",
    [
        (X86_64, 0, True),
        (X86_64, 0x00007FFFFFFFFFFF, True),
        (X86_64, 0x0000800000000000, False),
        (X86_64, 0x8000000000000000, False),
        (X86_64, 0xFFFF7FFFFFFFFFFF, False),
        (X86_64, 0xFFFF800000000000, True),
        (X86_64, 0xFFFFFFFFFFFFFFFF, True),
        (X86_64, 1 << 64, False),
        (X86_64, -1, False),
        (I386_PAE, 0xFFFFFFFF, True),
        (I386_PAE, 1 << 32, False),
        (I386, 0x80000000, True),
        (I386, -4096, False),
    ],
)
def test_is_canonical(arch, address, canonical):
    assert arch.is_canonical(address) is canonical


def test_get_arch():
    assert get_arch("i386-pae") is I386_PAE
    with pytest.raises(KeyError, match="x86_64"):
        get_arch("arm64")


def test_physmem_pages_are_zeroed_and_sparse():
    mem = PhysMem(8)
    pfn = mem.alloc_page("pte")
    other = mem.alloc_page("pmd")
    assert other == pfn + 1
    assert mem.is_page(pfn) and mem.is_page(other)
    assert all(mem.read_entry(pfn * 4096 + off) == 0 for off in range(0, 4096, 8))
    mem.write_entry(pfn * 4096 + 8, 0x8000000000000067)
    assert mem.read_entry(pfn * 4096 + 8) == 0x8000000000000067
    assert mem.read_entry(other * 4096 + 8) == 0  # pages do not alias
    mem.write_entry(pfn * 4096 + 8, 0)
    assert mem.pages[pfn] == {}  # zero entries are not stored
    assert mem.purposes[other] == "pmd"
    mem.free_page(other)
    assert not mem.is_page(other)
    with pytest.raises(ValueError, match="not in an allocated page"):
        mem.read_entry(other * 4096)


def test_physmem_width_and_alignment_checks():
    mem32 = PhysMem(4)
    pfn = mem32.alloc_page("pte")
    base = pfn * 4096
    mem32.write_entry(base + 4, 0xFFFFFFFF)
    with pytest.raises(ValueError, match="does not fit 32 bits"):
        mem32.write_entry(base + 4, 1 << 32)
    with pytest.raises(ValueError, match="does not fit"):
        mem32.write_entry(base + 4, -1)
    with pytest.raises(ValueError, match="misaligned"):
        mem32.read_entry(base + 2)
    mem64 = PhysMem(8)
    base64 = mem64.alloc_page("pte") * 4096
    mem64.write_entry(base64, (1 << 64) - 1)
    with pytest.raises(ValueError, match="does not fit 64 bits"):
        mem64.write_entry(base64, 1 << 64)
    with pytest.raises(ValueError, match="misaligned"):
        mem64.write_entry(base64 + 4, 1)
    with pytest.raises(ValueError, match="not in an allocated page"):
        mem64.write_entry(0, 1)


def test_physmem_injected_allocation_failure():
    mem = PhysMem(8, fail={"pte"}, fail_once={"pmd"})
    assert mem.alloc_page("pte") is None
    assert mem.alloc_page("pte") is None  # "fail" fails every time
    assert mem.alloc_page("pmd") is None
    pmd = mem.alloc_page("pmd")  # "fail_once" only the first request
    assert pmd is not None and mem.is_page(pmd)
    anon = mem.alloc_page("anon_page")
    assert anon == pmd + 1  # failed requests consume no frame
    assert mem.allocations == [
        ("pte", None),
        ("pte", None),
        ("pmd", None),
        ("pmd", pmd),
        ("anon_page", anon),
    ]
