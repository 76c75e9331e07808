"""Scenarios for do_fault, do_swap_page, do_wp_page and do_numa_page (seed 2.7.5, 2.7.6,
2.7.8, 2.7.10; KF 2.4.9-2.4.14): decisions, results and the entries written."""

import pytest
from simkit import HEAP, NX, RW, RW_SHARED, R, go, heap, in_order, pte, spec, step, value

from pfmodel.outcome import Outcome
from pfmodel.sim.spec import EnvSpec, TaskSpec

A = HEAP[0] + 0x1000
PFN = 0x4321
MASK = 0x3FFFFFFFF000


def swap_pte(type_, offset, arch="x86_64"):
    if arch == "i386-pae":
        return ((offset << 5) | type_) << 32
    return (offset << 9) | (type_ << 1)


def frame(v):
    return (v & MASK) >> 12


# --- do_fault (seed 2.7.5; KF 2.4.9) ------------------------------------------------------------

def test_vm_ops_fault_missing_is_sigbus():
    r = go(spec(A, "read", vmas=[heap(R, kind="file", fault_handler=False)]))
    assert in_order(r.first, ("vma_is_anonymous", "false"), ("vm_ops_fault", "false"))
    assert value(r.first, "do_fault_kind") is None
    assert r.outcome == Outcome.sigbus("BUS_ADRERR")


def test_do_fault_kind_read_maps_the_page_cache_page_read_only_for_a_private_mapping():
    r = go(spec(A, "read", vmas=[heap(RW, kind="file")]))
    assert value(r.first, "do_fault_kind") == "read"
    v = int(r.final["pte"], 16)
    assert v & 0xFFF == 0x025 and v & NX  # PAGE_COPY: no RW, the first write will COW
    assert r.final["rss"]["MM_FILEPAGES"] == 1


def test_do_fault_kind_cow_private_write_maps_a_new_anonymous_page():
    r = go(spec(A, "write", vmas=[heap(RW, kind="file")]))
    f = r.first
    assert in_order(f, ("do_fault_kind", "cow"), ("cow_alloc", "false"), ("vma_fault", "0"),
                    ("do_fault_pte_same", "true"))
    v = int(r.final["pte"], 16)
    assert v & 0xFFF == 0x067
    assert r.final["rss"] == {"MM_FILEPAGES": 0, "MM_ANONPAGES": 1, "MM_SWAPENTS": 0}


def test_cow_alloc_fails_is_oom():
    r = go(spec(A, "write", vmas=[heap(RW, kind="file")], env=EnvSpec(alloc_fail=["cow_page"])))
    assert value(r.first, "cow_alloc") == "true"
    assert value(r.first, "vma_fault") is None
    assert r.outcome == Outcome.oom()


def test_do_fault_kind_shared_write_maps_the_page_cache_page_writable():
    r = go(spec(A, "write", vmas=[heap(RW_SHARED, kind="file")]))
    f = r.first
    assert in_order(f, ("do_fault_kind", "shared"), ("vma_fault", "0"), ("do_fault_pte_same", "true"))
    assert value(f, "page_mkwrite") is None
    v = int(r.final["pte"], 16)
    assert v & 0xFFF == 0x067 and v & NX  # PAGE_SHARED, dirty
    assert r.final["rss"]["MM_FILEPAGES"] == 1


@pytest.mark.parametrize("result,outcome", [
    ("LOCKED", Outcome.handled()),
    ("0", Outcome.handled()),
    ("SIGBUS", Outcome.sigbus("BUS_ADRERR")),
])
def test_page_mkwrite_result_decides_the_shared_write(result, outcome):
    vma = heap(RW_SHARED, kind="file", page_mkwrite=True)
    r = go(spec(A, "write", vmas=[vma], env=EnvSpec(page_mkwrite=result)))
    assert value(r.first, "page_mkwrite") == ("0" if result == "0" else "VM_FAULT_" + result)
    assert r.outcome == outcome


def test_write_notify_shared_mapping_reads_map_read_only_then_write_goes_to_wp_page_shared():
    vma = heap(RW_SHARED, kind="file", page_mkwrite=True)
    r = go(spec(A, "read", vmas=[vma]))
    v = int(r.final["pte"], 16)
    assert not v & 0x2  # write notify: built from the private protection
    ro = (PFN << 12) | 0x25 | NX
    r = go(spec(A, "write", vmas=[vma], entries=[pte(A, ro)]))
    f = r.first
    assert in_order(f, ("vm_normal_page", "true"), ("page_anon", "false"), ("wp_shared_writable", "true"),
                    ("page_mkwrite", "VM_FAULT_LOCKED"), ("handle_mm_fault", "VM_FAULT_WRITE"))
    v = int(r.final["pte"], 16)
    assert frame(v) == PFN and v & 0x42 == 0x42  # the same page, now RW|D


@pytest.mark.parametrize("result,outcome", [
    ("SIGBUS", Outcome.sigbus("BUS_ADRERR")),
    ("SIGSEGV", Outcome.sigsegv("SEGV_MAPERR")),
    ("OOM", Outcome.oom()),
    ("HWPOISON", Outcome.sigbus("BUS_MCEERR_AR")),
    ("NOPAGE", Outcome.handled()),
])
def test_vma_fault_result_is_returned_by_handle_mm_fault(result, outcome):
    r = go(spec(A, "read", vmas=[heap(R, kind="file")], env=EnvSpec(fault=[result]), max_faults=1))
    assert value(r.first, "vma_fault") == "VM_FAULT_" + result
    assert value(r.first, "do_fault_pte_same") is None
    assert r.first.outcome == outcome


def test_do_fault_pte_same_false_race_returns_without_mapping():
    r = go(spec(A, "read", vmas=[heap(R, kind="file")], env=EnvSpec(pte_race=True)))
    assert value(r.first, "do_fault_pte_same") == "false"
    assert len(r.faults) == 2 and r.access_completed


def test_do_fault_pte_same_false_in_cow_and_shared_paths():
    for flags in (RW, RW_SHARED):
        r = go(spec(A, "write", vmas=[heap(flags, kind="file")], env=EnvSpec(pte_race=True)))
        assert value(r.first, "do_fault_pte_same") == "false"
        assert r.access_completed


def test_do_fault_retry_releases_mmap_sem_in_the_fault_handler():
    r = go(spec(A, "write", vmas=[heap(RW, kind="file")], env=EnvSpec(fault=["RETRY", "0"])))
    f = r.first
    assert [s.value for s in f.trace if s.label == "cow_alloc"] == ["false", "false"]
    assert r.final["mmap_sem"] == 0 and r.access_completed


# --- do_swap_page (seed 2.7.6; KF 2.4.10) -------------------------------------------------------

@pytest.mark.parametrize("arch", ["x86_64", "i386-pae", "i386"])
def test_swap_entry_kind_swap_hit_maps_the_swapped_in_page(arch):
    r = go(spec(A, "read", arch=arch, entries=[pte(A, swap_pte(1, 0x77, arch))]))
    f = r.first
    assert in_order(f, ("swap_entry_kind", "swap"), ("swap_cache", "hit"), ("lock_page_or_retry", "true"),
                    ("swap_pte_same", "true"), ("handle_mm_fault", "0"))
    assert value(f, "reuse_swap_page") is None  # a read
    assert step(f, "swap_entry_kind").note == "type=1 offset=0x77"
    assert r.access_completed
    assert r.final["rss"] == {"MM_FILEPAGES": 0, "MM_ANONPAGES": 1, "MM_SWAPENTS": 0}


def test_reuse_swap_page_write_maps_writable_and_dirty_vm_fault_write():
    r = go(spec(A, "write", entries=[pte(A, swap_pte(1, 0x77))]))
    f = r.first
    assert in_order(f, ("swap_pte_same", "true"), ("reuse_swap_page", "true"), ("handle_mm_fault", "VM_FAULT_WRITE"))
    assert value(f, "vm_normal_page") is None
    assert int(r.final["pte"], 16) & 0x42 == 0x42


def test_reuse_swap_page_false_write_copies_via_do_wp_page():
    r = go(spec(A, "write", entries=[pte(A, swap_pte(1, 0x77))], env=EnvSpec(reuse=False)))
    f = r.first
    assert in_order(f, ("reuse_swap_page", "false"), ("vm_normal_page", "true"), ("page_anon", "true"),
                    ("reuse_page", "false"), ("wp_copy_alloc", "false"), ("handle_mm_fault", "VM_FAULT_WRITE"))
    assert r.access_completed


def test_reuse_swap_page_false_copy_fails_returns_only_the_error_bits():
    r = go(spec(A, "write", entries=[pte(A, swap_pte(1, 0x77))], env=EnvSpec(reuse=False, alloc_fail=["cow_page"])))
    assert value(r.first, "handle_mm_fault") == "VM_FAULT_OOM"
    assert r.outcome == Outcome.oom()


@pytest.mark.parametrize("type_,write", [(30, False), (31, True)])
def test_swap_entry_kind_migration_waits_and_the_migrated_page_is_mapped(type_, write):
    r = go(spec(A, "write" if write else "read", entries=[pte(A, swap_pte(type_, PFN))]))
    f = r.first
    assert in_order(f, ("swap_entry_kind", "migration"), ("handle_mm_fault", "0"))
    assert value(f, "swap_cache") is None
    assert r.access_completed
    assert bool(int(r.final["pte"], 16) & 0x2) is write


def test_swap_entry_kind_hwpoison_is_sigbus_mceerr():
    r = go(spec(A, "read", entries=[pte(A, swap_pte(29, PFN))]))
    assert in_order(r.first, ("swap_entry_kind", "hwpoison"), ("handle_mm_fault", "VM_FAULT_HWPOISON"),
                    ("vm_fault_sigbus", "true"), ("sigbus_pf_user", "true"), ("is_prefetch", "false"),
                    ("sigbus_hwpoison", "true"))
    assert r.outcome == Outcome.sigbus("BUS_MCEERR_AR")
    assert r.final["signals"] == ["SIGBUS/BUS_MCEERR_AR"]


def test_swap_cache_readahead_is_a_major_fault():
    r = go(spec(A, "read", entries=[pte(A, swap_pte(1, 5))], env=EnvSpec(swap_cache="readahead")))
    assert in_order(r.first, ("swap_cache", "readahead"), ("handle_mm_fault", "VM_FAULT_MAJOR"), ("major", "true"))
    assert r.outcome == Outcome.handled(major=True) and r.final["maj_flt"] == 1


def test_swap_cache_readahead_failed_is_oom():
    r = go(spec(A, "read", entries=[pte(A, swap_pte(1, 5))], env=EnvSpec(swap_cache="readahead_failed")))
    assert in_order(r.first, ("swap_cache", "readahead_failed"), ("swap_pte_same", "true"),
                    ("handle_mm_fault", "VM_FAULT_OOM"))
    assert r.outcome == Outcome.oom()


def test_swap_cache_readahead_failed_but_pte_changed_is_0():
    r = go(spec(A, "read", entries=[pte(A, swap_pte(1, 5))],
                env=EnvSpec(swap_cache="readahead_failed", pte_race=True), max_faults=1))
    assert value(r.first, "swap_pte_same") == "false"
    assert value(r.first, "handle_mm_fault") == "0"


def test_swap_cache_hwpoison_is_sigbus_mceerr():
    r = go(spec(A, "read", entries=[pte(A, swap_pte(1, 5))], env=EnvSpec(swap_cache="hwpoison")))
    assert value(r.first, "swap_cache") == "hwpoison"
    assert r.outcome == Outcome.sigbus("BUS_MCEERR_AR")


def test_swap_pte_same_false_returns_and_refaults():
    r = go(spec(A, "read", entries=[pte(A, swap_pte(1, 5))], env=EnvSpec(pte_race=True)))
    assert in_order(r.first, ("lock_page_or_retry", "true"), ("swap_pte_same", "false"), ("handle_mm_fault", "0"))
    assert len(r.faults) == 2 and r.access_completed


def test_lock_page_or_retry_first_pass_contention_drops_mmap_sem_and_retries():
    r = go(spec(A, "read", entries=[pte(A, swap_pte(1, 5))], env=EnvSpec(page_lock="contended")))
    f = r.first
    first = step(f, "lock_page_or_retry")
    assert first.value == "false"
    assert in_order(f, ("lock_page_or_retry", "false"), ("handle_mm_fault", "VM_FAULT_RETRY"),
                    ("lock_page_or_retry", "true"), ("handle_mm_fault", "0"))
    assert r.final["mmap_sem"] == 0


def test_swap_page_keeps_the_major_bit_with_retry():
    r = go(spec(A, "read", entries=[pte(A, swap_pte(1, 5))],
                env=EnvSpec(page_lock="contended", swap_cache="readahead")))
    assert value(r.first, "handle_mm_fault") == "VM_FAULT_MAJOR|VM_FAULT_RETRY"
    assert r.final["maj_flt"] == 1


# --- do_wp_page (seed 2.7.10; KF 2.4.14) --------------------------------------------------------

def test_vm_normal_page_false_zero_page_write_copies_into_a_new_zeroed_page():
    r = go(spec(A, "read"))
    zero = int(r.final["pte"], 16)
    r = go(spec(A, "write", entries=[pte(A, zero)]))
    f = r.first
    assert in_order(f, ("pte_write", "false"), ("vm_normal_page", "false"), ("wp_shared_writable", "false"),
                    ("wp_copy_alloc", "false"), ("handle_mm_fault", "VM_FAULT_WRITE"))
    v = int(r.final["pte"], 16)
    assert frame(v) != frame(zero) and v & 0xFFF == 0x067 and not v & 0x200
    assert r.final["rss"]["MM_ANONPAGES"] == 1


def test_wp_shared_writable_special_pte_reuses_the_pfn():
    special = (PFN << 12) | 0x225 | NX
    r = go(spec(A, "write", vmas=[heap(RW_SHARED, kind="file")], entries=[pte(A, special)]))
    f = r.first
    assert in_order(f, ("vm_normal_page", "false"), ("wp_shared_writable", "true"))
    v = int(r.final["pte"], 16)
    assert frame(v) == PFN and v & 0x42 == 0x42


def test_reuse_page_false_anonymous_page_is_copied():
    ro = (PFN << 12) | 0x25 | NX
    r = go(spec(A, "write", entries=[pte(A, ro)], env=EnvSpec(reuse=False)))
    f = r.first
    assert in_order(f, ("page_anon", "true"), ("reuse_page", "false"), ("wp_copy_alloc", "false"))
    v = int(r.final["pte"], 16)
    assert frame(v) != PFN and v & 0x42 == 0x42


def test_page_anon_false_private_file_page_is_copied():
    ro = (PFN << 12) | 0x25 | NX
    r = go(spec(A, "write", vmas=[heap(RW, kind="file")], entries=[pte(A, ro)]))
    f = r.first
    assert in_order(f, ("page_anon", "false"), ("wp_shared_writable", "false"), ("wp_copy_alloc", "false"))
    assert value(f, "reuse_page") is None
    assert frame(int(r.final["pte"], 16)) != PFN
    assert r.final["rss"] == {"MM_FILEPAGES": 0, "MM_ANONPAGES": 1, "MM_SWAPENTS": 0}


def test_wp_copy_alloc_fails_is_oom():
    ro = (PFN << 12) | 0x25 | NX
    r = go(spec(A, "write", entries=[pte(A, ro)], env=EnvSpec(reuse=False, alloc_fail=["cow_page"])))
    assert value(r.first, "wp_copy_alloc") == "true"
    assert r.outcome == Outcome.oom()
    assert frame(int(r.final["pte"], 16)) == PFN


def test_wp_page_shared_page_mkwrite_error_is_returned():
    vma = heap(RW_SHARED, kind="file", page_mkwrite=True)
    ro = (PFN << 12) | 0x25 | NX
    r = go(spec(A, "write", vmas=[vma], entries=[pte(A, ro)], env=EnvSpec(page_mkwrite="SIGBUS")))
    assert value(r.first, "page_mkwrite") == "VM_FAULT_SIGBUS"
    assert r.outcome == Outcome.sigbus("BUS_ADRERR")


def test_wp_page_shared_without_page_mkwrite_reuses():
    ro = (PFN << 12) | 0x25 | NX
    r = go(spec(A, "write", vmas=[heap(RW_SHARED, kind="file")], entries=[pte(A, ro)]))
    assert in_order(r.first, ("page_anon", "false"), ("wp_shared_writable", "true"))
    assert value(r.first, "page_mkwrite") is None
    assert frame(int(r.final["pte"], 16)) == PFN


def test_kernel_copy_to_user_into_cow_page_succeeds_with_cr0_wp():
    # T1's second half: a writable VMA, a read-only pte (COW after fork): a normal COW fault.
    ro = (PFN << 12) | 0x25 | NX
    r = go(spec(A, "write", "kernel", uaccess=True, entries=[pte(A, ro)], env=EnvSpec(reuse=False)))
    f = r.first
    assert f.error_code == 0x3  # P|W, supervisor
    assert value(f, "access_error") == "false"
    assert r.outcome == Outcome.handled() and r.access_completed


def test_fatal_signal_during_retry_kernel_mode_handles_mm_fault_error_fatal_kernel():
    # A kernel fault whose handle_mm_fault returns an error while SIGKILL is pending.
    r = go(spec(A, "read", "kernel", uaccess=True, vmas=[heap(R, kind="file")], env=EnvSpec(fault=["SIGBUS"]),
                task=TaskSpec(fatal_signal_pending=True)))
    assert in_order(r.first, ("fault_error", "true"), ("mm_fault_error_fatal_kernel", "true"),
                    ("fixup_exception", "true"))
    assert value(r.first, "vm_fault_oom") is None
    assert r.outcome == Outcome.fixup() and r.final["signals"] == []
