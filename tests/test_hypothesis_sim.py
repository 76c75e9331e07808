"""The Hypothesis strategies (pfmodel.strategies) and simulator properties over them.

Part 1 checks that every generated MachineSpec is valid (the simulator's builder and
the scenario format accept it) and that the strategies reach the corners they
promise.  Part 2 runs the simulator on generated specs and checks properties that
must hold on every run, whatever the machine.
"""

import copy
import json
from contextlib import contextmanager

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pfmodel.outcome import HANDLED, KINDS, Outcome
from pfmodel.scenario import Scenario, dumps_scenario, fingerprint, loads_scenario
from pfmodel.sim.constants import TASK_SIZE_MAX, VM_GROWSDOWN, VM_HUGETLB
from pfmodel.sim.env import ALLOC_PURPOSES
from pfmodel.sim.result import Run
from pfmodel.sim.spec import FAULT_RESULTS, MachineSpec, TaskSpec
from pfmodel.strategies import (
    ARCH_NAMES,
    env_specs,
    error_codes,
    machine_specs,
    pmd_values,
    pte_values,
    vma_layouts,
    vma_specs,
)
from pfmodel.x86.constants import PF_PROT, PF_RSVD, PF_USER, PF_WRITE
from pfmodel.x86.paging import ARCHES

try:
    from pfmodel.sim import machine as sim_machine
    from pfmodel.sim.run import run
except ModuleNotFoundError as missing:  # the simulator has not landed in this checkout
    if missing.name not in ("pfmodel.sim.run", "pfmodel.sim.machine"):
        raise
    run = sim_machine = None

needs_sim = pytest.mark.skipif(run is None, reason="pfmodel.sim.run is not available")


def level_span(arch, level):
    return {"pte": 1 << 12, "pmd": 1 << arch.pmd_shift, "pud": 1 << arch.pud_shift}[level]


ENTRY_ORDER = ("pgd", "pud", "pmd", "pte")


def assert_valid(spec: MachineSpec):
    """Everything pfmodel.strategies promises about one spec."""
    assert spec.arch in ARCHES
    a = ARCHES[spec.arch]
    top = TASK_SIZE_MAX[spec.arch]
    prev_end = 4096
    for vma in spec.vmas:
        assert vma.start % 4096 == 0 and vma.end % 4096 == 0
        assert prev_end <= vma.start < vma.end <= top, (hex(vma.start), hex(vma.end))
        prev_end = vma.end
        assert vma.kind in ("anon", "file", "hugetlb")
        assert (vma.kind == "hugetlb") == bool(vma.flags & VM_HUGETLB)
        if vma.kind == "hugetlb":
            assert vma.start % a.pmd_size == 0 and vma.end % a.pmd_size == 0
        assert 0 <= vma.flags < 1 << 32
    assert spec.entries == sorted(spec.entries, key=lambda e: (ENTRY_ORDER.index(e.level), e.address))
    spans = []
    for e in spec.entries:
        assert e.level in ("pte", "pmd", "pud")
        assert not (e.level == "pmd" and a.pmd_folded) and not (e.level == "pud" and a.pud_folded)
        span = level_span(a, e.level)
        assert e.address % span == 0 and e.address + span <= top
        assert 0 <= e.value <= a.entry_mask
        if e.level != "pte":
            # never a present table link (P=1, PSE=0)
            assert not (e.value & 1 and not e.value & 0x80), hex(e.value)
        assert all(e.address + span <= lo or hi <= e.address for lo, hi in spans)
        spans.append((e.address, e.address + span))
    for m in spec.kernel.kernel_mappings:
        assert m.address >= top and m.address % 4096 == 0 and a.is_canonical(m.address)
        assert 0 <= m.value <= a.entry_mask
    acc = spec.access
    assert a.is_canonical(acc.address)
    assert acc.kind in ("read", "write", "fetch") and acc.mode in ("user", "kernel")
    assert not acc.implicit or (acc.mode == "user" and acc.kind != "fetch")
    assert acc.error_code is None or 0 <= acc.error_code < 1 << 16
    assert not spec.regs.vm86 or (a.word_bits == 32 and acc.mode == "user")
    assert spec.regs.flags & 0x2
    assert spec.regs.sp is None or 0 <= spec.regs.sp <= a.word_mask
    assert spec.kernel.numa_balancing is False or spec.arch == "x86_64"
    env = spec.env
    assert env.fault and env.userfault and env.hugetlb
    assert set(env.fault + env.userfault + env.hugetlb + [env.page_mkwrite]) <= set(FAULT_RESULTS)
    assert spec.max_faults >= 1
    assert spec.task.has_mm or not (spec.vmas or spec.entries)
    assert set(env.alloc_fail + env.alloc_fail_once) <= set(ALLOC_PURPOSES)


# --- Part 1: the strategies themselves ----------------------------------------------

# Corners the strategies promise to reach (pfmodel.strategies docstring).
SPEC_CORNERS = {
    "stack VMA": lambda s: any(v.flags & VM_GROWSDOWN for v in s.vmas),
    "adjacent VMAs": lambda s: any(x.end == y.start for x, y in zip(s.vmas, s.vmas[1:])),
    "hugetlb VMA": lambda s: any(v.kind == "hugetlb" for v in s.vmas),
    "address inside a VMA": lambda s: any(v.start <= s.access.address < v.end for v in s.vmas),
    "error code given": lambda s: s.access.error_code is not None,
    "implicit access": lambda s: s.access.implicit,
    "kernel address": lambda s: s.access.address >= TASK_SIZE_MAX[s.arch],
    "page 0": lambda s: s.access.address < 4096,
    "pte at the fault": lambda s: any(e.level == "pte" and e.address == s.access.address & ~0xFFF for e in s.entries),
    "huge pmd": lambda s: any(e.level == "pmd" and e.value & 0x81 == 0x81 for e in s.entries),
    "vm86": lambda s: s.regs.vm86,
    "kernel mode, mmap_sem contended": lambda s: s.access.mode == "kernel" and s.env.mmap_sem == "contended",
    "init_mm mappings": lambda s: bool(s.kernel.kernel_mappings),
    "every arch": None,  # checked on the set of arches seen
}

PTE_CORNERS = {
    "none": lambda a, v: v == 0,
    "present": lambda a, v: v & 1,
    "PROT_NONE": lambda a, v: v & 0x101 == 0x100,
    "migration entry": lambda a, v: a != "i386-pae" and v and not v & 0x101 and (v >> 1) & 0x1F in (30, 31),
    "PAE swap entry": lambda a, v: a == "i386-pae" and v and v & 0xFFFFFFFF == 0,
    "reserved bit": lambda a, v: v & 1 and a != "i386" and v >> ARCHES[a].phys_mask_shift & 0x3F,
    "NX": lambda a, v: v & 1 and v >> 63,
}


def test_machine_specs_are_valid_and_reach_the_corners():
    seen: set[str] = set()
    arches: set[str] = set()

    @settings(max_examples=250, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow])
    @given(machine_specs())
    def check(spec):
        assert_valid(spec)
        arches.add(spec.arch)
        seen.update(name for name, pred in SPEC_CORNERS.items() if pred and pred(spec))

    check()
    if arches == set(ARCH_NAMES):
        seen.add("every arch")
    assert seen == set(SPEC_CORNERS), set(SPEC_CORNERS) - seen


def test_pte_values_fit_the_arch_and_reach_the_corners():
    seen: set[str] = set()

    @settings(max_examples=300, deadline=None, derandomize=True, database=None)
    @given(st.sampled_from(ARCH_NAMES).flatmap(lambda n: st.tuples(st.just(n), pte_values(n), pmd_values(n))))
    def check(triple):
        name, pte, pmd = triple
        mask = ARCHES[name].entry_mask
        assert 0 <= pte <= mask and 0 <= pmd <= mask
        assert not (pmd & 1 and not pmd & 0x80)  # pmd_values never gives a table link
        seen.update(k for k, pred in PTE_CORNERS.items() if pred(name, pte))

    check()
    assert seen == set(PTE_CORNERS), set(PTE_CORNERS) - seen


@settings(max_examples=40, deadline=None, derandomize=True, database=None)
@given(st.sampled_from(ARCH_NAMES).flatmap(lambda name: st.tuples(st.just(name), machine_specs(
    name, mode="kernel", kind="fetch", given_error_code=False))))
def test_machine_specs_honour_their_arguments(pair):
    name, spec = pair
    assert_valid(spec)
    assert (spec.arch, spec.access.mode, spec.access.kind, spec.access.error_code) == (name, "kernel", "fetch", None)
    assert not spec.access.implicit


@settings(max_examples=40, deadline=None, derandomize=True, database=None)
@given(error_codes(odd=False), vma_layouts("i386", max_vmas=2, stack=True))
def test_building_blocks(code, vmas):
    assert 0 <= code <= 0x3F
    assert len(vmas) <= 2
    if vmas:
        assert vmas[-1].flags & VM_GROWSDOWN and vmas[-1].name == "[stack]"


def test_strategy_arguments_are_checked():
    with pytest.raises(TypeError, match="no field"):
        env_specs(nonsense=st.just(1))
    with pytest.raises(ValueError, match="page-aligned"):
        vma_specs("x86_64", start=0x1001, end=0x3000)
    with pytest.raises(ValueError, match="unknown arch"):
        pte_values("arm64")


@needs_sim
@settings(max_examples=60, deadline=None, derandomize=True, database=None)
@given(machine_specs())
def test_generated_specs_build_and_round_trip_through_the_scenario_format(spec):
    sim_machine.build(copy.deepcopy(spec))  # raises ScenarioError for an impossible machine
    text = dumps_scenario(Scenario(spec=copy.deepcopy(spec)))
    assert fingerprint(loads_scenario(text)) == fingerprint(spec)


# --- Part 2: properties of every simulator run ------------------------------------------


@contextmanager
def captured_machines():
    """Keep each Machine the simulator builds, to inspect its memory after the run."""
    built = []
    original = sim_machine.build

    def build(spec):
        m = original(spec)
        built.append(m)
        return m

    sim_machine.build = build
    try:
        yield built
    finally:
        sim_machine.build = original


# Purposes of pages that hold page tables (the builder's and the allocators').
TABLE_PURPOSES = {"pgd", "pud", "pmd", "pte", "table"}
LEVELS = {4: ("pgd", "pud", "pmd", "pte"), 3: ("pgd", "pmd", "pte"), 2: ("pgd", "pte")}
PDPTE_RESERVED = 0x6 | 0x1E0  # PAE PDPTE bits 2:1 and 8:5 (bits 63:M checked separately)


def table_problems(mem, arch, root_paddr):
    """Every way the tree under ``root_paddr`` is not a well-formed page table: a present
    link to something that is not a table page, a table linked twice, an entry wider
    than the arch, a PAE PDPTE with reserved bits."""
    problems = []
    linked = set()
    levels = LEVELS[arch.levels]

    def visit(pfn, depth):
        level = levels[depth]
        if not mem.is_page(pfn):
            problems.append(f"{level} table {pfn:#x} is not an allocated page")
            return
        if mem.purposes.get(pfn) not in TABLE_PURPOSES:
            problems.append(f"{level} table {pfn:#x} is a {mem.purposes.get(pfn)!r} page")
            return
        for offset, value in sorted(mem.pages[pfn].items()):
            where = f"{level}[{offset // arch.entry_bytes}] of table {pfn:#x} = {value:#x}"
            if not 0 <= value <= arch.entry_mask:
                problems.append(f"{where} is wider than {arch.entry_bytes * 8} bits")
            if level == "pte" or not value & 1:
                continue
            if arch.levels == 3 and level == "pgd" and (value & PDPTE_RESERVED or value >> arch.phys_mask_shift):
                problems.append(f"{where}: a PAE PDPTE with reserved bits (#GP at load)")
            large = value & 0x80 and (level in ("pud", "pmd") or arch.levels == 2)
            if large:
                continue
            child = (value & arch.pte_pfn_mask) >> 12
            if value & ~arch.pte_pfn_mask & ~0xFFF & ~(1 << 63):
                problems.append(f"{where}: a table link with bits above the physical address")
            if child in linked:
                problems.append(f"{where}: table {child:#x} is linked twice")
            linked.add(child)
            visit(child, depth + 1)

    visit(root_paddr >> 12, 0)
    return problems


def check_run(spec, result, m):
    """The properties every run must have, whatever the machine."""
    assert isinstance(result, Run) and result.arch == spec.arch
    arch = ARCHES[spec.arch]

    # One outcome per fault; only the last fault may end the access; the run's outcome
    # is the last fault's.
    faults = result.faults
    assert len(faults) <= spec.max_faults
    for record in faults:
        assert isinstance(record.outcome, Outcome) and record.outcome.kind in KINDS
    assert all(f.outcome.kind == HANDLED for f in faults[:-1])
    if faults:
        assert result.outcome == faults[-1].outcome
    else:
        assert result.access_completed and result.outcome.kind == HANDLED
    if result.access_completed:
        assert result.outcome.kind == HANDLED and not result.bound_hit
    if result.bound_hit:
        assert len(faults) == spec.max_faults and all(f.outcome.kind == HANDLED for f in faults)

    # Every fault is at the access's address; error codes the MMU formed describe the
    # access (W/R, U/S) and never have RSVD without P (KF 3.3, 3.8).
    user_access = spec.access.mode == "user" and not spec.access.implicit
    for i, record in enumerate(faults):
        assert record.address == spec.access.address
        if i or spec.access.error_code is None:
            assert record.hardware and record.hardware_possible
            code = record.error_code
            assert bool(code & PF_WRITE) == (spec.access.kind == "write")
            assert bool(code & PF_USER) == user_access
            assert not (code & PF_RSVD and not code & PF_PROT)
        else:
            assert not record.hardware and record.error_code == spec.access.error_code

    # No lock is held when the handler is done.
    assert result.final["mmap_sem"] == 0
    assert not result.final["ptl_held"]
    json.dumps(result.to_json())

    # The page tables are still page tables.
    for mm in (m.current.active_mm, m.init_mm):
        assert table_problems(m.mem, arch, mm.pgd) == [], mm.name


@needs_sim
def test_every_run_ends_cleanly_and_runs_reach_the_common_outcomes():
    reached: set[str] = set()

    @settings(max_examples=300, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow])
    @given(machine_specs())
    def check(spec):
        with captured_machines() as built:
            result = run(copy.deepcopy(spec))  # no Python exception may escape
        (m,) = built
        check_run(spec, result, m)
        reached.add(result.outcome.kind)

    check()
    # The generated machines are not all alike: the common outcomes all occur (the
    # rare ones are steered to below).
    assert {"handled", "sigsegv", "oops", "fixup"} <= reached


# Narrowed strategies that steer toward the rarer outcomes; the same properties hold.
STEERED = {
    "fatal_signal": machine_specs(
        mode="user", vma_kinds=("file",), given_error_code=False,
        task=st.builds(TaskSpec, fatal_signal_pending=st.just(True)),
        env=env_specs(quiet=True, fault=st.just(["RETRY"]))),
    "oom": machine_specs(mode="user", vma_kinds=("anon",), given_error_code=False,
                         env=env_specs(quiet=True, alloc_fail=st.just(["anon_page", "pte"]))),
    "sigbus": machine_specs(mode="user", vma_kinds=("file",), given_error_code=False,
                            env=env_specs(quiet=True, fault=st.just(["SIGBUS"]))),
}


@needs_sim
@pytest.mark.parametrize("kind", sorted(STEERED))
def test_steered_specs_reach_the_rare_outcomes(kind):
    reached: set[str] = set()

    @settings(max_examples=100, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow])
    @given(STEERED[kind])
    def check(spec):
        with captured_machines() as built:
            result = run(copy.deepcopy(spec))
        check_run(spec, result, built[0])
        reached.add(result.outcome.kind)

    check()
    assert kind in reached


@needs_sim
@settings(max_examples=40, deadline=None, derandomize=True, database=None)
@given(machine_specs())
def test_runs_are_deterministic(spec):
    first = run(copy.deepcopy(spec)).to_json()
    assert run(copy.deepcopy(spec)).to_json() == first
