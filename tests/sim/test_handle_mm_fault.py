"""Scenarios for handle_mm_fault, __handle_mm_fault (seed 1.1.10, 2) and handle_pte_fault
(seed 2.7), one per decision and branch, with the page-table bits they write."""

import pytest
from simkit import (
    ARCHES,
    HEAP,
    NX,
    RW,
    RW_SHARED,
    R,
    changes,
    go,
    heap,
    in_order,
    labels,
    pte,
    spec,
    step,
    value,
)

from pfmodel.outcome import Outcome
from pfmodel.sim.constants import VM_HUGEPAGE, VM_NOHUGEPAGE, VM_UFFD_MISSING
from pfmodel.sim.spec import EntrySpec, EnvSpec, KernelSpec, TaskSpec

A = HEAP[0] + 0x1000
PFN = 0x4321
HUGE = 0x200000  # a 2 MiB-aligned VMA for THP
THP_VMA = (0x40000000, 0x40400000)


def frame(value, arch="x86_64"):
    mask = {"x86_64": 0x3FFFFFFFF000, "i386-pae": 0xFFFFFF000, "i386": 0xFFFFF000}[arch]
    return (value & mask) >> 12


# --- handle_mm_fault (seed 1.1.10) ----------------------------------------------------------

def test_memcg_oom_cleanup_true_for_user_fault_in_memcg_oom_without_vm_fault_oom():
    f = go(spec(A, task=TaskSpec(memcg_oom=True))).first
    assert in_order(f, ("memcg_oom_cleanup", "true"), ("handle_mm_fault", "0"))


def test_memcg_oom_cleanup_false_when_handle_mm_fault_returned_oom():
    r = go(spec(A, "write", task=TaskSpec(memcg_oom=True), env=EnvSpec(alloc_fail=["anon_page"])))
    f = r.first
    assert in_order(f, ("anon_alloc", "true"), ("memcg_oom_cleanup", "false"), ("handle_mm_fault", "VM_FAULT_OOM"))
    # The memcg OOM recorded by the task is handled by pagefault_out_of_memory.
    assert value(f, "mem_cgroup_oom_synchronize") == "true"
    assert r.outcome == Outcome.oom()


def test_memcg_oom_cleanup_not_evaluated_for_kernel_faults():
    f = go(spec(A, "write", "kernel", uaccess=True, task=TaskSpec(memcg_oom=True))).first
    assert value(f, "memcg_oom_cleanup") is None


# --- __handle_mm_fault (seed 2) --------------------------------------------------------------

@pytest.mark.parametrize("result,outcome", [
    ("0", Outcome.handled()),
    ("SIGBUS", Outcome.sigbus("BUS_ADRERR")),
    ("OOM", Outcome.oom()),
    ("HWPOISON", Outcome.sigbus("BUS_MCEERR_AR")),
])
def test_is_vm_hugetlb_page_true_goes_to_hugetlb_fault(result, outcome):
    vma = heap(RW, kind="hugetlb", start=THP_VMA[0], end=THP_VMA[1])
    r = go(spec(THP_VMA[0] + 0x1234, "write", vmas=[vma], env=EnvSpec(hugetlb=[result])))
    f = r.first
    assert in_order(f, ("is_vm_hugetlb_page", "true"), ("hugetlb_fault", "0" if result == "0" else "VM_FAULT_" + result))
    assert value(f, "pud_alloc") is None
    assert r.outcome == outcome
    if result == "0":
        assert r.access_completed
        pmd = int(r.final["pmd"], 16)
        assert pmd & 0x80 and pmd & 0x2 and pmd & 0x40  # PSE, RW, DIRTY
        assert r.final["pte"] is None


def test_pud_alloc_fails_is_vm_fault_oom_user_oom_killer():
    r = go(spec(A, "write", env=EnvSpec(alloc_fail=["pud"])))
    f = r.first
    assert in_order(f, ("pud_alloc", "true"), ("handle_mm_fault", "VM_FAULT_OOM"), ("fault_error", "true"),
                    ("mm_fault_error_fatal_kernel", "false"), ("vm_fault_oom", "true"), ("oom_pf_user", "true"),
                    ("mem_cgroup_oom_synchronize", "false"), ("oom_lock_trylock", "true"), ("out_of_memory", "true"))
    assert step(f, "out_of_memory").changes == {"oom_killer": "invoked"}
    assert r.outcome == Outcome.oom()


def test_pud_alloc_fails_once_then_the_re_executed_access_succeeds():
    r = go(spec(A, "write", env=EnvSpec(alloc_fail_once=["pud"])))
    assert [f.outcome.kind for f in r.faults] == ["oom"]
    # The run stops at the oom outcome: user space re-faults later (T14).
    assert not r.access_completed


def test_pud_alloc_never_allocates_on_pae_or_2_level():
    for arch in ("i386-pae", "i386"):
        r = go(spec(A, "write", arch=arch, env=EnvSpec(alloc_fail=["pud", "pmd"])))
        assert value(r.first, "pud_alloc") == "false" and value(r.first, "pmd_alloc") == "false"
        assert r.access_completed


def test_pmd_alloc_fails_on_x86_64_is_oom_and_kernel_mode_is_fixup():
    r = go(spec(A, "write", env=EnvSpec(alloc_fail=["pmd"])))
    assert in_order(r.first, ("pud_alloc", "false"), ("pmd_alloc", "true"))
    assert r.outcome == Outcome.oom()
    r = go(spec(A, "write", "kernel", uaccess=True, env=EnvSpec(alloc_fail=["pmd"])))
    f = r.first
    assert in_order(f, ("pmd_alloc", "true"), ("vm_fault_oom", "true"), ("oom_pf_user", "false"),
                    ("fixup_exception", "true"))
    assert value(f, "out_of_memory") is None  # the OOM killer never runs for the kernel
    assert r.outcome == Outcome.fixup()


def test_pmd_alloc_on_pae_with_an_empty_pdpte_allocates_and_counts_nr_pmds():
    s = spec(A, "write", arch="i386-pae", entries=[EntrySpec(A, 0, level="pgd")])
    r = go(s)
    assert value(r.first, "pmd_alloc") == "false"
    assert r.access_completed
    assert r.final["nr_pmds"] == 4  # 3 preallocated + the new one


def test_pte_alloc_fails_is_oom():
    r = go(spec(A, "write", env=EnvSpec(alloc_fail=["pte"])))
    assert in_order(r.first, ("pmd_none_thp", "false"), ("pmd_trans_huge", "false"), ("pte_alloc", "true"))
    assert r.outcome == Outcome.oom()
    assert r.final["nr_ptes"] == 0


def test_pte_alloc_counts_nr_ptes_and_writes_the_table_link():
    r = go(spec(A, "write"))
    assert r.final["nr_ptes"] == 1
    assert int(r.final["pmd"], 16) & 0xFFF == 0x067  # _PAGE_TABLE


@pytest.mark.parametrize("kind,writable", [("read", False), ("write", True)])
def test_pmd_none_thp_creates_a_huge_pmd(kind, writable):
    vma = heap(RW | VM_HUGEPAGE, start=THP_VMA[0], end=THP_VMA[1])
    r = go(spec(THP_VMA[0] + 0x3000, kind, vmas=[vma], kernel=KernelSpec(thp="madvise")))
    f = r.first
    assert in_order(f, ("pmd_none_thp", "true"), ("create_huge_pmd", "0"), ("handle_mm_fault", "0"))
    assert value(f, "pte_alloc") is None
    pmd = int(r.final["pmd"], 16)
    assert pmd & 0x80 and bool(pmd & 0x2) is writable
    assert r.access_completed and r.final["pte"] is None


def test_pmd_none_thp_false_with_vm_nohugepage():
    vma = heap(RW | VM_NOHUGEPAGE, start=THP_VMA[0], end=THP_VMA[1])
    f = go(spec(THP_VMA[0], "write", vmas=[vma], kernel=KernelSpec(thp="always"))).first
    assert value(f, "pmd_none_thp") == "false"


def test_create_huge_pmd_fallback_for_a_vma_smaller_than_a_huge_page():
    r = go(spec(A, "write", kernel=KernelSpec(thp="always")))
    f = r.first
    assert in_order(f, ("pmd_none_thp", "true"), ("create_huge_pmd", "VM_FAULT_FALLBACK"), ("pte_alloc", "false"),
                    ("pte_present", "false"))
    assert r.access_completed and r.final["pte"] is not None


def test_create_huge_pmd_huge_page_allocation_failure_falls_back_to_4k():
    vma = heap(RW, start=THP_VMA[0], end=THP_VMA[1])
    r = go(spec(THP_VMA[0], "write", vmas=[vma], kernel=KernelSpec(thp="always"),
                env=EnvSpec(alloc_fail=["huge_page"])))
    assert value(r.first, "create_huge_pmd") == "VM_FAULT_FALLBACK"
    assert r.access_completed and int(r.final["pte"], 16) & 0x2


def huge_pmd(value_flags, pfn=0x40000):
    return (pfn << 12) | 0x80 | value_flags


def test_pmd_trans_splitting_returns_0_and_the_access_refaults():
    vma = heap(RW, start=THP_VMA[0], end=THP_VMA[1])
    entry = EntrySpec(THP_VMA[0], huge_pmd(0x400 | 0x25 | (1 << 63)) & ~0x1, level="pmd")
    r = go(spec(THP_VMA[0], "read", vmas=[vma], entries=[entry], max_faults=2))
    f = r.first
    assert in_order(f, ("pmd_none_thp", "false"), ("pmd_trans_huge", "true"), ("pmd_trans_splitting", "true"),
                    ("handle_mm_fault", "0"))
    assert r.bound_hit


def test_pmd_protnone_huge_numa_hint_restores_access():
    vma = heap(RW, start=THP_VMA[0], end=THP_VMA[1])
    entry = EntrySpec(THP_VMA[0], huge_pmd(0x100 | 0x20 | 0x4), level="pmd")  # PROTNONE, no P
    r = go(spec(THP_VMA[0], "read", vmas=[vma], entries=[entry], kernel=KernelSpec(numa_balancing=True)))
    f = r.first
    assert in_order(f, ("pmd_trans_huge", "true"), ("pmd_trans_splitting", "false"), ("pmd_protnone", "true"))
    assert r.access_completed and int(r.final["pmd"], 16) & 0x1


@pytest.mark.parametrize("reuse", [True, False])
def test_dirty_not_pmd_write_goes_to_wp_huge_pmd(reuse):
    vma = heap(RW, start=THP_VMA[0], end=THP_VMA[1])
    entry = EntrySpec(THP_VMA[0], huge_pmd(0x25 | NX), level="pmd")  # present, read-only
    r = go(spec(THP_VMA[0] + 0x5000, "write", vmas=[vma], entries=[entry], env=EnvSpec(reuse=reuse)))
    f = r.first
    assert in_order(f, ("pmd_protnone", "false"), ("dirty_not_pmd_write", "true"), ("wp_huge_pmd", "VM_FAULT_WRITE"))
    assert r.access_completed
    if reuse:
        assert int(r.final["pmd"], 16) & 0x82 == 0x82  # still huge, now writable
    else:
        # No huge page for the copy (THP off): the 4 KiB-copy fallback.
        assert int(r.final["pte"], 16) & 0x42 == 0x42


def test_huge_pmd_set_accessed_read_of_present_huge_pmd_returns_0():
    vma = heap(RW, start=THP_VMA[0], end=THP_VMA[1])
    entry = EntrySpec(THP_VMA[0], huge_pmd(0x5 | NX), level="pmd")  # P|U, A clear
    r = go(spec(THP_VMA[0], "read", vmas=[vma], entries=[entry], error_code=0x4))
    f = r.first
    assert in_order(f, ("pmd_trans_huge", "true"), ("dirty_not_pmd_write", "false"), ("handle_mm_fault", "0"))
    assert value(f, "pte_alloc") is None
    assert r.access_completed


# --- handle_pte_fault (seed 2.7) ---------------------------------------------------------------

def test_pte_none_anonymous_goes_to_do_anonymous_page_and_maps_a_page():
    r = go(spec(A, "write"))
    f = r.first
    assert in_order(f, ("pte_present", "false"), ("pte_none", "true"), ("vma_is_anonymous", "true"),
                    ("anon_vm_shared", "false"))
    value_ = int(r.final["pte"], 16)
    assert value_ & ~0x7FFFFFFFFF000 == 0x067 | NX  # P|RW|U|A|D, NX from PAGE_COPY
    assert r.final["rss"]["MM_ANONPAGES"] == 1


@pytest.mark.parametrize("arch,expected", [("x86_64", 0x225 | NX), ("i386-pae", 0x225 | NX), ("i386", 0x225)])
def test_anon_read_zero_page_maps_the_zero_page_special_read_only(arch, expected):
    r = go(spec(A, "read", arch=arch))
    f = r.first
    assert in_order(f, ("anon_read_zero_page", "true"), ("anon_pte_none_recheck", "true"),
                    ("userfaultfd_missing", "false"))
    v = int(r.final["pte"], 16)
    assert v & 0xFFF | (v & NX) == expected  # P|U|A|SPECIAL, no RW
    assert r.final["rss"]["MM_ANONPAGES"] == 0


def test_anon_read_zero_page_without_nx_cpu_drops_nx():
    from pfmodel.sim.spec import CpuSpec
    r = go(spec(A, "read", cpu=CpuSpec(nx=False)))
    assert not int(r.final["pte"], 16) & NX


def test_pte_none_file_vma_goes_to_do_fault():
    f = go(spec(A, "read", vmas=[heap(R, kind="file")])).first
    assert in_order(f, ("pte_none", "true"), ("vma_is_anonymous", "false"), ("vm_ops_fault", "true"),
                    ("do_fault_kind", "read"), ("vma_fault", "0"), ("do_fault_pte_same", "true"))


def test_pte_not_none_goes_to_do_swap_page():
    f = go(spec(A, "read", entries=[pte(A, (7 << 9) | (2 << 1))])).first
    assert in_order(f, ("pte_present", "false"), ("pte_none", "false"), ("swap_entry_kind", "swap"))


def test_pte_protnone_numa_hint_goes_to_do_numa_page():
    numa = (PFN << 12) | 0x100 | 0x20 | 0x4 | 0x2  # PROTNONE|A|U|RW, P clear
    r = go(spec(A, "read", entries=[pte(A, numa)], kernel=KernelSpec(numa_balancing=True)))
    f = r.first
    assert in_order(f, ("pte_present", "true"), ("pte_protnone", "true"), ("numa_pte_same", "true"))
    v = int(r.final["pte"], 16)
    assert v & 0x1 and v & 0x2 and frame(v) == PFN  # access restored, writable kept
    assert r.access_completed


def test_pte_protnone_without_numa_balancing_is_just_present_and_livelocks():
    numa = (PFN << 12) | 0x100 | 0x20 | 0x4
    r = go(spec(A, "read", entries=[pte(A, numa)], max_faults=3))
    f = r.first
    assert in_order(f, ("pte_present", "true"), ("pte_protnone", "false"), ("pte_same", "true"),
                    ("flags_write", "false"), ("ptep_set_access_flags", "false"))
    assert r.bound_hit and len(r.faults) == 3


def test_numa_pte_same_false_returns_0_without_writing():
    numa = (PFN << 12) | 0x100 | 0x20 | 0x4
    r = go(spec(A, "read", entries=[pte(A, numa)], kernel=KernelSpec(numa_balancing=True),
                env=EnvSpec(pte_race=True)))
    assert value(r.first, "numa_pte_same") == "false"
    assert len(r.faults) == 2 and r.access_completed


def test_pte_same_false_race_unlocks_and_returns_0():
    ro = (PFN << 12) | 0x25 | NX
    r = go(spec(A, "write", entries=[pte(A, ro)], env=EnvSpec(pte_race=True)))
    f = r.first
    assert in_order(f, ("pte_same", "false"), ("handle_mm_fault", "0"))
    assert value(f, "flags_write") is None
    assert f.outcome == Outcome.handled()
    assert len(r.faults) == 2 and value(r.faults[1], "pte_same") == "true"
    assert r.final["ptl_held"] == 0


def test_flags_write_on_read_only_pte_goes_to_do_wp_page():
    ro = (PFN << 12) | 0x25 | NX
    r = go(spec(A, "write", entries=[pte(A, ro)]))
    f = r.first
    assert f.error_code == 0x7
    assert in_order(f, ("pte_same", "true"), ("flags_write", "true"), ("pte_write", "false"),
                    ("vm_normal_page", "true"), ("page_anon", "true"), ("reuse_page", "true"),
                    ("handle_mm_fault", "VM_FAULT_WRITE"))
    v = int(r.final["pte"], 16)
    assert frame(v) == PFN and v & 0x62 == 0x62  # reused in place: RW|A|D


def test_flags_write_on_writable_pte_marks_it_dirty_and_writes_it():
    # Stale TLB: the hardware saw a read-only entry, the pte is writable now.
    rw_clean = (PFN << 12) | 0x27 | NX
    r = go(spec(A, "write", entries=[pte(A, rw_clean)], error_code=0x7))
    f = r.first
    assert in_order(f, ("flags_write", "true"), ("pte_write", "true"), ("ptep_set_access_flags", "true"))
    assert int(r.final["pte"], 16) & 0x40  # DIRTY


def test_ptep_set_access_flags_read_never_writes_the_pte_on_x86():
    old = (PFN << 12) | 0x5 | NX  # P|U, A clear
    r = go(spec(A, "read", entries=[pte(A, old)], error_code=0x4))
    f = r.first
    assert in_order(f, ("flags_write", "false"), ("ptep_set_access_flags", "true"))
    # The change was not stored by the handler; the MMU then set A on re-execution.
    assert r.access_completed and int(r.final["pte"], 16) & 0x20


@pytest.mark.parametrize("arch", ARCHES)
def test_handle_pte_fault_writes_real_bits_per_arch(arch):
    r = go(spec(A, "write", arch=arch))
    v = int(r.final["pte"], 16)
    assert v & 0xFFF == 0x067
    assert bool(v & NX) is (arch != "i386")


# --- do_anonymous_page (seed 2.7.4) --------------------------------------------------------------

def test_anon_vm_shared_anonymous_vma_without_vm_ops_is_sigbus():
    r = go(spec(A, "write", vmas=[heap(RW_SHARED)]))
    assert value(r.first, "anon_vm_shared") == "true"
    assert r.outcome == Outcome.sigbus("BUS_ADRERR")
    assert r.final["signals"] == ["SIGBUS/BUS_ADRERR"]


def test_anon_alloc_fails_is_oom():
    r = go(spec(A, "write", env=EnvSpec(alloc_fail=["anon_page"])))
    assert in_order(r.first, ("anon_read_zero_page", "false"), ("anon_alloc", "true"))
    assert r.outcome == Outcome.oom()


def test_anon_alloc_anon_vma_prepare_fails_is_oom():
    r = go(spec(A, "write", vmas=[heap(RW, anon_vma=False)], env=EnvSpec(alloc_fail=["anon_vma"])))
    assert value(r.first, "anon_alloc") == "true"
    assert r.outcome == Outcome.oom()


def test_anon_pte_none_recheck_false_lost_race_returns_0():
    r = go(spec(A, "write", env=EnvSpec(pte_race=True)))
    f = r.first
    assert in_order(f, ("anon_alloc", "false"), ("anon_pte_none_recheck", "false"), ("handle_mm_fault", "0"))
    assert value(f, "userfaultfd_missing") is None
    assert len(r.faults) == 2 and r.access_completed and r.final["rss"]["MM_ANONPAGES"] == 1


@pytest.mark.parametrize("kind", ["read", "write"])
def test_userfaultfd_missing_retry_then_sigbus_on_the_retry_pass(kind):
    r = go(spec(A, kind, vmas=[heap(RW | VM_UFFD_MISSING)]))
    f = r.first
    assert in_order(f, ("userfaultfd_missing", "true"), ("handle_userfault", "VM_FAULT_RETRY"),
                    ("fault_retry", "true"), ("allow_retry", "true"), ("fatal_signal_pending", "false"),
                    ("userfaultfd_missing", "true"), ("handle_userfault", "VM_FAULT_SIGBUS"))
    assert r.outcome == Outcome.sigbus("BUS_ADRERR")
    assert r.final["mmap_sem"] == 0


def test_userfaultfd_missing_answer_0_keeps_mmap_sem_and_returns_minor():
    r = go(spec(A, "read", vmas=[heap(RW | VM_UFFD_MISSING)], env=EnvSpec(userfault=["0"]), max_faults=1))
    assert value(r.first, "handle_userfault") == "0"
    assert r.first.outcome == Outcome.handled()
    assert r.final["mmap_sem"] == 0 and r.final["min_flt"] == 1


def test_do_anonymous_page_never_leaves_a_ptl_or_mmap_sem_held():
    for kind in ("read", "write"):
        r = go(spec(A, kind))
        assert r.final["ptl_held"] == 0 and r.final["mmap_sem"] == 0 and r.final["page_table_lock"] == 0
