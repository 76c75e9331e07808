"""run(): the machine build (and its ScenarioErrors), the MMU loop, the bound, the
scenario-given error code, and Run.final."""

import pytest
from simkit import HEAP, NX, RW, go, heap, pte, spec, stack

from pfmodel.errors import ScenarioError
from pfmodel.outcome import Outcome
from pfmodel.sim import run
from pfmodel.sim.machine import build
from pfmodel.sim.spec import EntrySpec, EnvSpec, KernelSpec, RegsSpec, TaskSpec, VmaSpec

A = HEAP[0] + 0x1000


def where(s):
    with pytest.raises(ScenarioError) as info:
        run(s)
    return info.value.where


@pytest.mark.parametrize("make,field", [
    (lambda: spec(A, arch="sparc"), "arch"),
    (lambda: spec(0x0000800000000000), "access.address"),
    (lambda: spec(1 << 32, arch="i386"), "access.address"),
    (lambda: spec(A, kind="exec"), "access.kind"),
    (lambda: spec(A, mode="root"), "access.mode"),
    (lambda: spec(A, "fetch", implicit=True), "access.implicit"),
    (lambda: spec(A, "read", "kernel", implicit=True), "access.implicit"),
    (lambda: spec(A, error_code=1 << 20), "access.error_code"),
    (lambda: spec(A, max_faults=0), "max_faults"),
    (lambda: spec(A, regs=RegsSpec(vm86=True)), "regs.vm86"),
    (lambda: spec(A, regs=RegsSpec(sp=-1)), "regs.sp"),
    (lambda: spec(A, arch="i386", regs=RegsSpec(ip=1 << 40)), "regs.ip"),
    (lambda: spec(A, arch="i386", kernel=KernelSpec(numa_balancing=True)), "kernel.numa_balancing"),
    (lambda: spec(A, kernel=KernelSpec(thp="sometimes")), "kernel.thp"),
    (lambda: spec(A, vmas=[VmaSpec(0x600100, 0x700000, RW)]), "vmas[0].start"),
    (lambda: spec(A, vmas=[VmaSpec(0x600000, 0x700010, RW)]), "vmas[0].end"),
    (lambda: spec(A, vmas=[VmaSpec(0x700000, 0x600000, RW)]), "vmas[0].end"),
    (lambda: spec(A, vmas=[VmaSpec(-4096, 0x600000, RW)]), "vmas[0].start"),
    (lambda: spec(A, vmas=[VmaSpec(0x600000, 0x800000000000, RW)]), "vmas[0].end"),
    (lambda: spec(A, vmas=[VmaSpec(0x600000, 0x700000, RW, kind="device")]), "vmas[0].kind"),
    (lambda: spec(A, vmas=[VmaSpec(0x600000, 0x700000, -1)]), "vmas[0].flags"),
    (lambda: spec(A, vmas=[VmaSpec(0x600000, 0x700000, RW, pgoff=-1)]), "vmas[0].pgoff"),
    (lambda: spec(A, vmas=[VmaSpec(0x680000, 0x780000, RW), VmaSpec(0x600000, 0x700000, RW)]), "vmas[0].start"),
    (lambda: spec(A, entries=[EntrySpec(A, 0x25, level="pde")]), "entries[0].level"),
    (lambda: spec(A, entries=[EntrySpec(A, 1 << 64)]), "entries[0].value"),
    (lambda: spec(A, arch="i386", entries=[EntrySpec(A, 1 << 32)]), "entries[0].value"),
    (lambda: spec(A, entries=[EntrySpec(0xFFFF880000000000, 0x25)]), "entries[0].address"),
    (lambda: spec(A, entries=[EntrySpec(0x0000900000000000, 0x25)]), "entries[0].address"),
    (lambda: spec(A, entries=[EntrySpec(A, 0x80 | 0x25, level="pmd"), EntrySpec(A, 0x25)]), "entries[1]"),
    (lambda: spec(A, entries=[EntrySpec(A, (0x999 << 12) | 0x67, level="pmd")]), "entries[0].value"),
    (lambda: spec(A, kernel=KernelSpec(kernel_mappings=[EntrySpec(A, 0x163)])), "kernel.kernel_mappings[0].address"),
    # 4.4 never has a non-present, non-zero pud/pgd, nor 1 GiB user pages.
    (lambda: spec(A, entries=[EntrySpec(A, 0x4000, level="pud")]), "entries[0].value"),
    (lambda: spec(A, entries=[EntrySpec(A, 0x4000, level="pgd")]), "entries[0].value"),
    (lambda: spec(A, entries=[EntrySpec(A, (0x40000 << 12) | 0xE7, level="pud")], vmas=[heap()]),
     "entries[0].value"),
    (lambda: spec(A, env=EnvSpec(fault=["MAYBE"])), "env.fault[0]"),
    (lambda: spec(A, env=EnvSpec(fault=[])), "env.fault"),
    (lambda: spec(A, env=EnvSpec(oom="panic")), "env.oom"),
    (lambda: spec(A, env=EnvSpec(alloc_fail=["disk"])), "env.alloc_fail[0]"),
])
def test_impossible_machines_raise_scenario_error_naming_the_field(make, field):
    assert where(make()) == field


def test_a_scenario_error_says_what_why_and_what_to_do():
    with pytest.raises(ScenarioError) as info:
        run(spec(A, vmas=[VmaSpec(0x680000, 0x780000, RW), VmaSpec(0x600000, 0x700000, RW)]))
    text = info.value.message
    assert "overlaps" in text and "why:" in text and "fix:" in text


def test_an_access_that_needs_no_fault_completes_with_no_faults():
    r = go(spec(A, "read", entries=[pte(A, (0x4321 << 12) | 0x25 | NX)]))
    assert r.faults == [] and r.access_completed and r.outcome == Outcome.handled()
    assert "without a page fault" in r.notes[0]


def test_a_pae_pdpte_with_reserved_bits_is_general_protection_not_a_page_fault():
    # RW is reserved in a PAE PDPTE: #GP when CR3 loads it.
    s = spec(A, arch="i386-pae", entries=[EntrySpec(A, 0x1 | 0x2, level="pgd")])
    with pytest.raises(ScenarioError, match="#GP"):
        run(s)


def test_error_code_given_directly_is_used_for_the_first_fault_only():
    r = go(spec(A, "write", error_code=0x6))
    assert not r.first.hardware and r.first.hardware_possible
    assert "could produce it" in r.notes[0]
    assert r.access_completed and len(r.faults) == 1


def test_error_code_the_hardware_cannot_produce_is_noted():
    r = go(spec(A, "read", error_code=0x8))  # RSVD without P
    assert not r.first.hardware_possible
    assert "could not produce it" in r.notes[0] and "rule 1" in r.notes[0]


def test_bound_hit_when_every_fault_is_handled_and_the_access_still_faults():
    r = go(spec(A, env=EnvSpec(kmmio=True), max_faults=3))
    assert r.bound_hit and len(r.faults) == 3 and not r.access_completed
    assert any("max_faults=3" in n for n in r.notes)


def test_run_final_fields():
    r = go(spec(A, "write"))
    fin = r.final
    for key in ("pte", "pmd", "vmas", "mmap_sem", "maj_flt", "min_flt", "nr_ptes", "nr_pmds", "signals",
                "thread", "irqs_enabled", "ip"):
        assert key in fin
    assert fin["vmas"] == [{"start": hex(HEAP[0]), "end": hex(HEAP[1]), "flags": hex(RW)}]
    assert fin["irqs_enabled"] is True and fin["ip"] == "0x400000"
    assert r.to_json()["faults"][0]["error_code_source"] == "mmu"


def test_final_pte_is_none_for_an_address_with_no_tables():
    r = go(spec(0x900000, vmas=[heap()]))
    assert r.final["pte"] is None and r.final["pmd"] is None


def test_defaults_sp_is_the_top_of_the_highest_stack():
    st = stack("x86_64")
    m = build(spec(A, vmas=[heap(), st]))
    assert m.regs.sp == st.end
    m = build(spec(A, "read", "kernel"))
    assert m.regs.ip == 0xFFFFFFFF81000000 and m.regs.cs == 0x10 and m.regs.sp == 0


def test_kernel_synced_copies_kernel_pgd_entries_on_64_and_2_level():
    for arch, addr in (("x86_64", 0xFFFFC90000005000), ("i386", 0xF8805000)):
        km = [EntrySpec(addr, 0x163)]
        synced = build(spec(A, arch=arch, kernel=KernelSpec(kernel_mappings=km)))
        unsynced = build(spec(A, arch=arch, kernel=KernelSpec(kernel_mappings=km, kernel_synced=False)))
        index = synced.arch.pgd_index(addr) * synced.arch.entry_bytes
        assert synced.mem.read_entry(synced.current.mm.pgd + index) == \
            synced.mem.read_entry(synced.init_mm.pgd + index) != 0
        assert unsynced.mem.read_entry(unsynced.current.mm.pgd + index) == 0


def test_explicit_table_link_with_frame_0_gets_a_fresh_table():
    # A pmd link without USER: the user access is denied at the pmd level.
    r = go(spec(A, "read", entries=[EntrySpec(A, 0x063, level="pmd"), pte(A, (0x4321 << 12) | 0x25 | NX)]))
    assert r.first.error_code == 0x5
    assert r.outcome == Outcome.sigsegv("SEGV_ACCERR")


def test_pae_pgd_level_entries_are_the_pdpte_and_pud_is_folded_into_it():
    m = build(spec(A, arch="i386-pae", entries=[EntrySpec(A, 0, level="pud")]))
    assert m.mem.read_entry(m.current.mm.pgd + 0) == 0  # PDPTE 0 emptied
    assert m.current.mm.nr_pmds == 3


def test_scenario_pages_count_rss():
    swap = (5 << 9) | (1 << 1)
    m = build(spec(A, entries=[pte(A, (0x4321 << 12) | 0x25), pte(A + 0x1000, swap),
                               pte(A + 0x2000, (0x99 << 12) | 0x225), pte(A + 0x3000, (0x1F << 1) | (7 << 9))]))
    assert m.current.mm.rss == {"MM_FILEPAGES": 0, "MM_ANONPAGES": 1, "MM_SWAPENTS": 1}


def test_runs_do_not_leak_the_installed_machine():
    from pfmodel.sim.state import machine

    go(spec(A))
    with pytest.raises(RuntimeError, match="no simulated machine"):
        machine()


def test_no_mm_kernel_thread_uses_the_borrowed_active_mm_for_the_walk():
    s = spec(A, "read", "kernel", task=TaskSpec(has_mm=False), uaccess=True)
    r = go(s)
    assert r.outcome == Outcome.fixup()
