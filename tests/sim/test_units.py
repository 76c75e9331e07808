"""Function-level tests of transcribed kernel functions, on a built machine, for the
branches a single CPU cannot reach through a run: "another CPU populated it" races,
BUG()s on inconsistent tables, and the walks of vmalloc_fault / spurious_fault /
dump_pagetable over every kind of entry."""

from contextlib import contextmanager

import pytest
from simkit import HEAP, NX, RW, R, heap, pte, spec, stack

from pfmodel.outcome import Outcome
from pfmodel.sim import fault, memory, pgtable
from pfmodel.sim import run as _run_fn  # noqa: F401  (the package exports the function)
from pfmodel.sim.constants import VM_FAULT_FALLBACK, VM_FAULT_OOM, VM_FAULT_RETRY, VM_FAULT_WRITE, VM_HUGEPAGE
from pfmodel.sim.machine import build
from pfmodel.sim.spec import EntrySpec, EnvSpec, KernelSpec, RegsSpec
from pfmodel.sim.state import KernelExit, installed
from pfmodel.trace import Trace

A = HEAP[0] + 0x1000
THP = (0x40000000, 0x40400000)
VADDR = 0xFFFFC90000005000


@contextmanager
def machine_for(s):
    m = build(s)
    with installed(m):
        m.trace = Trace()
        yield m


def kernel_spec(arch="x86_64", mappings=(), **kw):
    addr = VADDR if arch == "x86_64" else 0xF8805000
    return spec(addr, "read", "kernel", arch=arch, vmas=[],
                kernel=KernelSpec(kernel_mappings=list(mappings), **kw))


def link_of(m, ptr):
    return m.mem.read_entry(ptr) & m.arch.pte_pfn_mask


# --- races in the allocators (seed 2.4.1, 2.5; KF 2.4.2, 2.4.3) ----------------------------------

def test___pud_alloc_another_cpu_populated_it_frees_the_new_page():
    with machine_for(spec(A, entries=[pte(A, 0)])) as m:
        mm = m.current.mm
        pgd = pgtable.pgd_offset(mm, A)
        before = m.mem.read_entry(pgd)
        assert memory.__pud_alloc(mm, pgd, A) == 0
        assert m.mem.read_entry(pgd) == before and m.mem.allocations[-1][0] == "pud"
        assert m.mem.allocations[-1][1] not in m.mem.pages  # freed


def test___pmd_alloc_another_cpu_populated_it_and_nr_pmds_is_unchanged():
    with machine_for(spec(A, entries=[pte(A, 0)])) as m:
        mm = m.current.mm
        pud = pgtable.pud_offset(pgtable.pgd_offset(mm, A), A)
        n = mm.nr_pmds
        assert memory.__pmd_alloc(mm, pud, A) == 0
        assert mm.nr_pmds == n and m.ptl_held == 0


@pytest.mark.parametrize("value", [0x067 | (0x999 << 12), 0x400 | 0x80 | 0x25])
def test___pte_alloc_when_the_pmd_is_no_longer_none(value):
    with machine_for(spec(A, entries=[EntrySpec(A, 0x80 | 0x25, level="pmd")])) as m:
        mm = m.current.mm
        pmd = pgtable.pmd_offset(pgtable.pud_offset(pgtable.pgd_offset(mm, A), A), A)
        m.mem.write_entry(pmd, value)
        n = mm.nr_ptes
        assert memory.__pte_alloc(mm, mm.mmap[0], pmd, A) == 0
        assert mm.nr_ptes == n and m.mem.read_entry(pmd) == value and m.ptl_held == 0


# --- vmalloc_fault (seed 1.1.2; KF 2.2.4) ---------------------------------------------------------

def test_vmalloc_fault_64_outside_the_vmalloc_area_is_minus_1():
    with machine_for(kernel_spec()) as m:
        assert fault.vmalloc_fault(0xFFFF880000000000) == -1
        assert fault.vmalloc_fault(0xFFFFFFFFFF600000) == -1


@pytest.mark.parametrize("level", ["pud", "pmd", "pte"])
def test_vmalloc_fault_64_missing_reference_entry_is_minus_1(level):
    with machine_for(kernel_spec(mappings=[EntrySpec(VADDR, 0, level=level)])) as m:
        assert fault.vmalloc_fault(VADDR) == -1


def test_vmalloc_fault_64_pgd_pointing_elsewhere_is_a_bug():
    with machine_for(kernel_spec(mappings=[EntrySpec(VADDR, 0x163)])) as m:
        pgd = pgtable.pgd_offset(m.current.mm, VADDR)
        other = m.mem.alloc_page("table")
        m.mem.write_entry(pgd, (other << 12) | 0x63)
        with pytest.raises(KernelExit) as info:
            fault.vmalloc_fault(VADDR)
        assert info.value.reason == "bug"


@pytest.mark.parametrize("level", ["pud", "pmd", "pte"])
def test_vmalloc_fault_64_lower_level_mismatch_is_a_bug(level):
    """The task's pgd shares init_mm's pud page in 4.4; make its own copy differ."""
    with machine_for(kernel_spec(mappings=[EntrySpec(VADDR, (0x77 << 12) | 0x163)])) as m:
        arch = m.arch
        pgd = pgtable.pgd_offset(m.current.mm, VADDR)
        # Give the task a private copy of the pud table and break one level below it.
        own = m.mem.alloc_page("table")
        old = link_of(m, pgd)
        for i in range(512):
            m.mem.write_entry(own * 4096 + i * 8, m.mem.read_entry(old + i * 8))
        m.mem.write_entry(pgd, (own << 12) | 0x63)
        pud = pgtable.pud_offset(pgd, VADDR)
        if level == "pud":
            m.mem.write_entry(pud, 0)
        else:
            own_pmd = m.mem.alloc_page("table")
            old_pmd = link_of(m, pud)
            for i in range(512):
                m.mem.write_entry(own_pmd * 4096 + i * 8, m.mem.read_entry(old_pmd + i * 8))
            m.mem.write_entry(pud, (own_pmd << 12) | 0x63)
            pmd = pgtable.pmd_offset(pud, VADDR)
            if level == "pmd":
                m.mem.write_entry(pmd, 0)
            else:
                own_pte = m.mem.alloc_page("table")
                m.mem.write_entry(pmd, (own_pte << 12) | 0x63)
        with pytest.raises(KernelExit):
            fault.vmalloc_fault(VADDR)


@pytest.mark.parametrize("arch", ["i386", "i386-pae"])
def test_vmalloc_fault_32_paths(arch):
    addr = 0xF8805000
    with machine_for(kernel_spec(arch, mappings=[EntrySpec(addr, 0x163)], kernel_synced=False)) as m:
        assert fault.vmalloc_fault(0xC0001000) == -1          # below VMALLOC_START
        assert fault.vmalloc_fault(addr) == 0                  # synced (or shared on PAE)
        assert fault.vmalloc_fault(addr + 0x1000) == -1        # the pte is not present
        assert fault.vmalloc_fault(0xFF400000) == -1           # no pmd in init_mm
    if arch == "i386-pae":
        with machine_for(kernel_spec(arch, mappings=[EntrySpec(addr, 0x163)])) as m:
            m.mem.write_entry(m.init_mm.pgd + 24, 0)            # init_mm's kernel PDPTE gone
            assert fault.vmalloc_fault(addr) == -1
    else:
        with machine_for(kernel_spec(arch, mappings=[EntrySpec(addr, 0x163)])) as m:
            pgd = pgtable.pgd_offset(m.current.mm, addr)
            m.mem.write_entry(pgd, (m.mem.alloc_page("table") << 12) | 0x63)
            with pytest.raises(KernelExit):
                fault.vmalloc_fault(addr)


# --- kmemcheck_fault, spurious_fault (KF 2.2.5, 2.2.6) --------------------------------------------

def test_kmemcheck_fault_only_for_kernel_cs_outside_vm86():
    with machine_for(kernel_spec()) as m:
        m.env.spec.kmemcheck = True
        assert fault.kmemcheck_fault(m.regs, VADDR, 0) is True
        m.regs.cs = 0x33
        assert fault.kmemcheck_fault(m.regs, VADDR, 0) is False
    with machine_for(spec(0xA0000, arch="i386", vmas=[], regs=RegsSpec(vm86=True))) as m:
        m.env.spec.kmemcheck = True
        assert fault.kmemcheck_fault(m.regs, 0xA0000, 0) is False


@pytest.mark.parametrize("entry,level,ec,expected", [
    (0x163 | NX, "pte", 0x2, 0),                   # not PROT: never spurious
    (0x163 | NX, "pte", 0x3, 1),                   # writable now
    (0x161 | NX, "pte", 0x3, 0),                   # still read-only
    (0x161, "pte", 0x11, 1),                       # executable now
    (0x161 | NX, "pte", 0x11, 0),                  # still NX
    (0x0, "pte", 0x3, 0),                          # pte not present
    (0x0, "pmd", 0x3, 0),                          # pmd not present
    (0x0, "pud", 0x3, 0),                          # pud not present
    (0x0, "pgd", 0x3, 0),                          # pgd not present
    (0x1E3 | NX, "pmd", 0x3, 1),                   # a writable 2 MiB page
    (0x1E3 | NX, "pud", 0x3, 1),                   # a writable 1 GiB page
])
def test_spurious_fault_walk(entry, level, ec, expected):
    with machine_for(kernel_spec(mappings=[EntrySpec(VADDR, entry, level=level)])) as m:
        assert fault.spurious_fault(ec, VADDR) == expected


def test_spurious_fault_pmd_without_the_permission_warns_and_refuses():
    with machine_for(kernel_spec(mappings=[EntrySpec(VADDR, 0x163 | NX)])) as m:
        pmd = pgtable.pmd_offset(pgtable.pud_offset(pgtable.pgd_offset_k(VADDR), VADDR), VADDR)
        m.mem.write_entry(pmd, m.mem.read_entry(pmd) & ~0x2)
        assert fault.spurious_fault(0x3, VADDR) == 0
        assert any("wrong pmd permissions" in line for line in m.log)


# --- dump_pagetable, show_fault_oops, oops_end (KF 2.2.9, 2.2.10, 2.2.23) --------------------------

def test_dump_pagetable_64_stops_at_non_present_large_and_bad_entries():
    with machine_for(spec(A, entries=[pte(A, 0x25)])) as m:
        assert [p.split()[0] for p in fault.dump_pagetable(A)] == ["PGD", "PUD", "PMD", "PTE"]
        assert fault.dump_pagetable(0x7FF000000000) == ["PGD 0"]
    with machine_for(spec(A, entries=[EntrySpec(A, 0x80 | 0x25, level="pmd")])) as m:
        assert [p.split()[0] for p in fault.dump_pagetable(A)] == ["PGD", "PUD", "PMD"]
        pmd = pgtable.pmd_offset(pgtable.pud_offset(pgtable.pgd_offset(m.current.mm, A), A), A)
        m.mem.write_entry(pmd, (0x7777 << 12) | 0x67)     # links to a frame that is no table
        assert fault.dump_pagetable(A)[-1] == "BAD"


def test_dump_pagetable_pae_pdpt_not_present_and_large_pde():
    with machine_for(spec(A, arch="i386-pae", entries=[EntrySpec(A, 0, level="pgd")])) as m:
        assert fault.dump_pagetable(A) == ["*pdpt = 0000000000000000"]
    with machine_for(spec(A, arch="i386-pae", entries=[EntrySpec(A, 0x80 | 0x25, level="pmd")])) as m:
        assert len(fault.dump_pagetable(A)) == 2  # *pdpt, *pde; no *pte under a large pde


def test_show_fault_oops_nx_and_smep_lines_for_kernel_fetches():
    with machine_for(kernel_spec(mappings=[EntrySpec(VADDR, 0x163 | NX), EntrySpec(VADDR + 0x1000, 0x167)])) as m:
        fault.show_fault_oops(m.regs, 0x11, VADDR)
        assert any("NX-protected" in line for line in m.log)
        fault.show_fault_oops(m.regs, 0x11, VADDR + 0x1000)
        assert any("SMEP" in line for line in m.log)
        fault.show_fault_oops(m.regs, 0x11, VADDR + 0x200000)  # nothing mapped there
        fault.show_fault_oops(m.regs, 0x11, 0xFFFF880000000000)  # no pgd there
        assert m.oops_reason == "kernel_paging_request"
    with machine_for(kernel_spec(mappings=[EntrySpec(VADDR, 0x1E3, level="pmd"),
                                           EntrySpec(VADDR + (1 << 30), 0, level="pud")])) as m:
        fault.show_fault_oops(m.regs, 0x11, VADDR)                # a large pmd
        fault.show_fault_oops(m.regs, 0x11, VADDR + (1 << 30))    # pud not present


def test_oops_end_in_interrupt_panics():
    with machine_for(spec(A)) as m:
        m.current.hardirq = True
        with pytest.raises(KernelExit):
            fault.oops_end(True, m.regs, 9)
        assert any("Fatal exception in interrupt" in line for line in m.log)


def test_no_context_prefetch_is_ignored():
    s = spec(0x900000, "read", "kernel", vmas=[], env=EnvSpec(is_prefetch=True), max_faults=1)
    s.regs.flags |= 1 << 18
    r = _run_fn(s)
    assert r.first.outcome == Outcome.handled("prefetch")


def test_is_prefetch_false_for_user_mode_with_a_kernel_ip():
    with machine_for(spec(A, env=EnvSpec(is_prefetch=True), regs=RegsSpec(ip=0xFFFFFFFF81000000))) as m:
        assert fault.is_prefetch(m.regs, 0x4, A) == 0


def test_check_v8086_mode_outside_the_vga_window_sets_nothing():
    with machine_for(spec(0x10000, arch="i386", vmas=[], regs=RegsSpec(vm86=True))) as m:
        fault.check_v8086_mode(m.regs, 0x10000, m.current)
        fault.check_v8086_mode(m.regs, 0xC0000, m.current)
        assert m.current.screen_bitmap == 0


# --- THP and hugetlb corners (KF 2.4.4, 2.4.5) ----------------------------------------------------

def thp_spec(kind="write", **kw):
    vma_kw = {"flags": RW | VM_HUGEPAGE} | kw.pop("vma_kw", {})
    vma = heap(start=THP[0], end=THP[1], **vma_kw)
    kernel = kw.pop("kernel", None) or KernelSpec(thp="always")
    return spec(THP[0] + 0x3000, kind, vmas=[vma], kernel=kernel, **kw)


@pytest.mark.parametrize("kind,fail,expected", [
    ("write", ["anon_vma"], "VM_FAULT_OOM"),
    ("read", ["pte"], "VM_FAULT_OOM"),
    ("read", ["huge_page"], "VM_FAULT_FALLBACK"),
    ("write", ["pte"], "VM_FAULT_OOM"),
])
def test_do_huge_pmd_anonymous_page_failures(kind, fail, expected):
    vk = {"anon_vma": False} if "anon_vma" in fail else {}
    r = _run_fn(thp_spec(kind, env=EnvSpec(alloc_fail=fail), vma_kw=vk, max_faults=1))
    assert [s.value for s in r.first.trace if s.label == "create_huge_pmd"] == [expected]


@pytest.mark.parametrize("kind", ["read", "write"])
def test_do_huge_pmd_anonymous_page_userfaultfd(kind):
    from pfmodel.sim.constants import VM_UFFD_MISSING
    r = _run_fn(thp_spec(kind, vma_kw={"flags": RW | VM_HUGEPAGE | VM_UFFD_MISSING}))
    assert [s.value for s in r.first.trace if s.label == "create_huge_pmd"][0] == "VM_FAULT_RETRY"


@pytest.mark.parametrize("kind", ["read", "write"])
def test_do_huge_pmd_anonymous_page_when_the_pmd_was_populated_meanwhile(kind):
    with machine_for(thp_spec(kind)) as m:
        mm = m.current.mm
        vma = mm.mmap[0]
        pmd = pgtable.pmd_alloc(mm, pgtable.pud_alloc(mm, pgtable.pgd_offset(mm, THP[0]), THP[0]), THP[0])
        m.mem.write_entry(pmd, (0x999 << 12) | 0x67)
        flags = 0x55 if kind == "write" else 0x54
        assert memory.do_huge_pmd_anonymous_page(mm, vma, THP[0], pmd, flags) == 0
        assert m.mem.read_entry(pmd) == (0x999 << 12) | 0x67 and m.ptl_held == 0


def test_transparent_hugepage_not_for_a_temporary_stack_or_a_file_vma():
    from pfmodel.sim.constants import VM_GROWSDOWN, VM_RAND_READ, VM_SEQ_READ
    r = _run_fn(spec(THP[0] + 0x3000, "write",
                     vmas=[heap(RW | VM_GROWSDOWN | VM_SEQ_READ | VM_RAND_READ, start=THP[0], end=THP[1])],
                     kernel=KernelSpec(thp="always"), regs=RegsSpec(sp=THP[0] + 0x4000)))
    assert [s.value for s in r.first.trace if s.label == "pmd_none_thp"] == ["false"]
    r = _run_fn(spec(THP[0] + 0x3000, "write", vmas=[heap(RW, kind="file", start=THP[0], end=THP[1])],
                     kernel=KernelSpec(thp="always")))
    assert [s.value for s in r.first.trace if s.label == "create_huge_pmd"] == ["VM_FAULT_FALLBACK"]
    assert r.access_completed


def test_wp_huge_pmd_on_the_huge_zero_page():
    # Read maps the huge zero page; a write copies into a new huge page (THP on) ...
    r = _run_fn(thp_spec("read"))
    zero = EntrySpec(THP[0], int(r.final["pmd"], 16), level="pmd")
    assert zero.value & 0x80 and not zero.value & 0x2  # the huge zero page, read-only
    s = thp_spec("write")
    s.entries = [zero]
    m = build(s)
    with installed(m):
        m.huge_zero_pfn = (zero.value & 0x3FFFFFFFF000) >> 12
        from pfmodel.sim.run import _run
        r2 = _run(m, s)
    assert [x.value for x in r2.first.trace if x.label == "wp_huge_pmd"] == ["VM_FAULT_WRITE"]
    assert r2.access_completed and int(r2.final["pmd"], 16) & 0x82 == 0x82
    assert r2.final["rss"]["MM_ANONPAGES"] == 512
    # ... and splits into 4 KiB zero ptes when no huge page can be had, then COWs one page.
    s = thp_spec("write", env=EnvSpec(alloc_fail_once=["huge_page"]))
    s.entries = [zero]
    s.kernel.thp = "never"
    m = build(s)
    with installed(m):
        m.huge_zero_pfn = (zero.value & 0x3FFFFFFFF000) >> 12
        r3 = _run(m, s)
    f = r3.first
    assert [x.value for x in f.trace if x.label == "wp_huge_pmd"] == ["VM_FAULT_FALLBACK"]
    assert r3.access_completed and int(r3.final["pte"], 16) & 0x42 == 0x42
    assert not int(r3.final["pmd"], 16) & 0x80  # split into a pte table


def test_do_huge_pmd_wp_page_copy_with_thp_and_fallback_oom_split():
    entry = EntrySpec(THP[0], (0x40000 << 12) | 0x80 | 0x25 | NX, level="pmd")
    r = _run_fn(thp_spec("write", entries=[entry], env=EnvSpec(reuse=False)))
    assert [s.value for s in r.first.trace if s.label == "wp_huge_pmd"] == ["VM_FAULT_WRITE"]
    assert int(r.final["pmd"], 16) & 0x82 == 0x82 and (int(r.final["pmd"], 16) >> 12) != 0x40000
    s = thp_spec("write", entries=[entry], env=EnvSpec(reuse=False, alloc_fail=["huge_page", "cow_page"]))
    r = _run_fn(s)
    assert [x.value for x in r.first.trace if x.label == "wp_huge_pmd"][0] == "VM_FAULT_OOM|VM_FAULT_FALLBACK"


def test_do_huge_pmd_wp_page_when_the_pmd_changed_meanwhile_returns_0():
    entry = EntrySpec(THP[0], (0x40000 << 12) | 0x80 | 0x25 | NX, level="pmd")
    with machine_for(thp_spec("write", entries=[entry])) as m:
        mm = m.current.mm
        pmd = pgtable.pmd_offset(pgtable.pud_offset(pgtable.pgd_offset(mm, THP[0]), THP[0]), THP[0])
        assert memory.do_huge_pmd_wp_page(mm, mm.mmap[0], THP[0], pmd, entry.value ^ 0x20) == 0
        memory.huge_pmd_set_accessed(mm, mm.mmap[0], THP[0], pmd, entry.value ^ 0x20, 0)
        assert m.mem.read_entry(pmd) == entry.value and m.ptl_held == 0


def test_wp_huge_pmd_file_vma_falls_back():
    with machine_for(spec(THP[0], "write", vmas=[heap(RW, kind="file", start=THP[0], end=THP[1])])) as m:
        assert memory.wp_huge_pmd(m.current.mm, m.current.mm.mmap[0], THP[0], 0, 0, 0x55) == VM_FAULT_FALLBACK


def test_do_huge_pmd_numa_page_keeps_write_and_bugs_without_access():
    entry = EntrySpec(THP[0], (0x40000 << 12) | 0x80 | 0x100 | 0x20 | 0x2, level="pmd")
    with machine_for(thp_spec("read", entries=[entry], kernel=KernelSpec(numa_balancing=True))) as m:
        mm = m.current.mm
        pmd = pgtable.pmd_offset(pgtable.pud_offset(pgtable.pgd_offset(mm, THP[0]), THP[0]), THP[0])
        assert memory.do_huge_pmd_numa_page(mm, mm.mmap[0], THP[0], entry.value, pmd) == 0
        assert m.mem.read_entry(pmd) & 0x3 == 0x3
        mm.mmap[0].vm_flags = 0
        with pytest.raises(KernelExit):
            memory.do_huge_pmd_numa_page(mm, mm.mmap[0], THP[0], entry.value, pmd)


@pytest.mark.parametrize("fail,expected", [(["pud"], "VM_FAULT_OOM"), (["pmd"], "VM_FAULT_OOM"),
                                           (["huge_page"], "VM_FAULT_OOM")])
def test_hugetlb_fault_allocation_failures(fail, expected):
    vma = heap(RW, kind="hugetlb", start=THP[0], end=THP[1])
    r = _run_fn(spec(THP[0], "write", vmas=[vma], env=EnvSpec(alloc_fail=fail)))
    assert [s.value for s in r.first.trace if s.label == "hugetlb_fault"] == [expected]


def test_hugetlb_fault_retry_releases_mmap_sem_and_cow_of_a_read_only_huge_page():
    vma = heap(RW, kind="hugetlb", start=THP[0], end=THP[1])
    r = _run_fn(spec(THP[0], "write", vmas=[vma], env=EnvSpec(hugetlb=["RETRY", "0"])))
    assert r.access_completed and r.final["mmap_sem"] == 0
    ro = EntrySpec(THP[0], (0x40000 << 12) | 0x80 | 0x25 | NX, level="pmd")
    r = _run_fn(spec(THP[0], "write", vmas=[vma], entries=[ro]))
    assert r.access_completed and (int(r.final["pmd"], 16) >> 12) != 0x40000
    # A pte table where the huge page would go: nothing to do, the access re-faults.
    r = _run_fn(spec(THP[0], "write", vmas=[vma], entries=[pte(THP[0], 0)], max_faults=2))
    assert r.bound_hit


# --- pte-level corners ------------------------------------------------------------------------------

def test_flush_tlb_fix_spurious_fault_when_the_write_changes_nothing():
    full = (0x4321 << 12) | 0x67 | NX
    r = _run_fn(spec(A, "write", entries=[pte(A, full)], error_code=0x7))
    assert [s.value for s in r.first.trace if s.label == "ptep_set_access_flags"] == ["false"]
    assert r.access_completed


def test_zero_page_recheck_lost_race():
    r = _run_fn(spec(A, "read", env=EnvSpec(pte_race=True)))
    assert [s.value for s in r.first.trace if s.label == "anon_pte_none_recheck"] == ["false"]
    assert r.access_completed and len(r.faults) == 2


def test_do_swap_page_bad_entry_is_sigbus():
    from pfmodel.sim import patched
    with patched({"non_swap_entry": lambda entry: True}):
        r = _run_fn(spec(A, "read", entries=[pte(A, (5 << 9) | (1 << 1))]))
    assert [s.value for s in r.first.trace if s.label == "swap_entry_kind"] == ["bad"]
    assert r.outcome == Outcome.sigbus("BUS_ADRERR")


def test_soft_dirty_kernels_mark_dirty_ptes_soft_dirty_and_keep_swap_soft_dirty():
    from pfmodel.sim.run import _run
    for entries, kind in (([], "write"), ([pte(A, (5 << 9) | (1 << 1) | 0x80)], "read")):
        s = spec(A, kind, entries=entries)
        m = build(s)
        m.config.soft_dirty = 0x800
        with installed(m):
            r = _run(m, s)
        assert int(r.final["pte"], 16) & 0x800


def test_do_numa_page_without_access_is_a_bug():
    with machine_for(spec(A, vmas=[heap(0)], kernel=KernelSpec(numa_balancing=True))) as m:
        with pytest.raises(KernelExit):
            memory.do_numa_page(m.current.mm, m.current.mm.mmap[0], A, 0x120, 0, 0)


def test_wp_page_copy_when_the_pte_changed_meanwhile_returns_0():
    ro = (0x4321 << 12) | 0x25 | NX
    with machine_for(spec(A, "write", entries=[pte(A, ro)])) as m:
        mm = m.current.mm
        pmd = pgtable.pmd_offset(pgtable.pud_offset(pgtable.pgd_offset(mm, A), A), A)
        ptep = pgtable.pte_offset_map(pmd, A)
        assert memory.wp_page_copy(mm, mm.mmap[0], A, ptep, pmd, ro ^ 0x20, None) == 0
        assert m.mem.read_entry(ptep) == ro and m.ptl_held == 0


def test_wp_page_shared_when_the_pte_changed_during_page_mkwrite_returns_0():
    ro = (0x4321 << 12) | 0x25 | NX
    vma = heap(RW | 0x8, kind="file", page_mkwrite=True)
    with machine_for(spec(A, "write", vmas=[vma], entries=[pte(A, ro)])) as m:
        mm = m.current.mm
        pmd = pgtable.pmd_offset(pgtable.pud_offset(pgtable.pgd_offset(mm, A), A), A)
        ptep = pgtable.pte_offset_map(pmd, A)
        memory.spin_lock("ptl")
        page = memory.page_of(0x4321, mm.mmap[0])
        assert memory.wp_page_shared(mm, mm.mmap[0], A, ptep, pmd, "ptl", ro ^ 0x20, page) == 0
        assert m.ptl_held == 0


def test_lock_page_or_retry_nowait_keeps_mmap_sem():
    from pfmodel.sim.constants import FAULT_FLAG_RETRY_NOWAIT
    with machine_for(spec(A, env=EnvSpec(page_lock="contended"))) as m:
        mm = m.current.mm
        mm.mmap_sem.readers = 1
        page = memory.page_of(0x10, mm.mmap[0])
        assert memory.lock_page_or_retry(page, mm, 0x14 | FAULT_FLAG_RETRY_NOWAIT) == 0
        assert mm.mmap_sem.readers == 1
        assert memory.lock_page_or_retry(page, mm, 0x20) == 1  # not killable: uninterruptible


def test_handle_userfault_sigbus_without_allow_retry_and_constants():
    with machine_for(spec(A)) as m:
        assert memory.handle_userfault(m.current.mm.mmap[0], A, 0x30, 0) == 0x2
    assert (VM_FAULT_OOM, VM_FAULT_RETRY, VM_FAULT_WRITE) == (0x1, 0x400, 0x8)


def test_stack_vma_helpers_are_consistent():
    st = stack("x86_64")
    with machine_for(spec(st.start, vmas=[st])) as m:
        assert m.current.mm.stack_vm == 32 and m.regs.sp == st.end


def test_pgtable_pure_helpers():
    with machine_for(spec(A, arch="i386-pae")) as m:
        e = pgtable.SwpEntry(3, 0x1234)
        v = pgtable.swp_entry_to_pte(e)
        assert v & 0xFFFFFFFF == 0 and pgtable.pte_to_swp_entry(v) == e
        assert pgtable.pmd_none(1 << 40)  # PAE pmd_none looks at the low word only
        assert not pgtable.pgd_none(0) and pgtable.pgd_present(0)
        assert pgtable.pte_dirty(0x40) and pgtable.pte_young(0x20) and not pgtable.pte_young(0)
        assert pgtable.pmd_large(0x80) and pgtable.pud_large(0x81) and pgtable.pud_page_vaddr(0x40000083) == 0x40000000
    with machine_for(spec(A, arch="i386")) as m:
        assert not pgtable.pud_none(0) and pgtable.pud_present(0) and not pgtable.pud_large(0x81)
        e = pgtable.SwpEntry(3, 0x12)
        assert pgtable.pte_to_swp_entry(pgtable.swp_entry_to_pte(e)) == e
        assert pgtable.vm_get_page_prot(RW) == 0x25  # no NX on 2-level
    with machine_for(spec(A)) as m:
        kept = pgtable.pte_modify((0x1234 << 12) | 0x67 | 0x200, 0x120)
        assert kept == (0x1234 << 12) | 0x260 | 0x100  # frame, A, D, SPECIAL kept; PROTNONE from the prot
        assert pgtable.pmd_mkdirty(0) == 0x40 and pgtable.pte_mkold(0x20) == 0
        assert pgtable.massage_pgprot(0x120) == 0x120  # non-present prots are left alone
        assert R  # the R flag constant is importable for these tests
