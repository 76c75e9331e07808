"""The Hypothesis strategies (pfmodel.strategies) and simulator properties over them.

Part 1 checks that every generated MachineSpec is valid and that the strategies
reach the corners they promise.  Part 2 runs the simulator on generated specs and
checks properties that must hold on every run.
"""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pfmodel.sim.constants import TASK_SIZE_MAX, VM_GROWSDOWN, VM_HUGETLB
from pfmodel.sim.spec import FAULT_RESULTS, MachineSpec
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
from pfmodel.x86.paging import ARCHES

def level_span(arch, level):
    return {"pte": 1 << 12, "pmd": 1 << arch.pmd_shift, "pud": 1 << arch.pud_shift}[level]


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
