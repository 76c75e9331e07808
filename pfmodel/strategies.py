"""Hypothesis strategies that generate valid simulator inputs (``MachineSpec``).

Use them to state your own properties of the page-fault handler and let Hypothesis
search for (and shrink) a counterexample::

    from hypothesis import given, settings
    from pfmodel.sim.run import run
    from pfmodel.strategies import machine_specs
    from pfmodel.x86.constants import PF_USER

    @settings(max_examples=300, deadline=None)
    @given(machine_specs(arch="x86_64"))
    def test_sigsegv_only_for_user_faults(spec):
        result = run(spec)
        if result.outcome.kind == "sigsegv":
            last = result.faults[-1]
            assert spec.access.mode == "user" or last.error_code & PF_USER

A property that is false shrinks to a small, readable ``MachineSpec``; save it as a
scenario file with ``pfmodel.scenario.Scenario(spec=...)`` and ``save_scenario``.

The building blocks compose the same way::

    from hypothesis import strategies as st
    from pfmodel.strategies import env_specs, error_codes, pte_values, vma_layouts

    @given(pte_values("i386-pae"))                 # one raw PTE word
    def test_my_pte_decoder(value): ...

    @given(machine_specs(env=env_specs(fault=st.just(["RETRY"]))))
    def test_retry_once(spec): ...

What is generated (every value is a valid ``MachineSpec``):

* ``arch``: one of ``x86_64``, ``i386-pae``, ``i386`` (or the one you ask for).
* ``vmas``: 0-4 VMAs, sorted, non-overlapping, page-aligned, inside the arch's user
  range (``[PAGE_SIZE, TASK_SIZE_MAX)``); adjacent ones and one-page gaps are common;
  a GROWSDOWN stack near the top is common; hugetlb VMAs are huge-page aligned.
* ``entries``: page-table entries at addresses inside the VMAs (mostly) or
  anywhere in user space, with realistic and odd values: present user pages,
  PROT_NONE / NUMA-hint entries, swap, migration and hwpoison entries, reserved
  bits, raw noise, and on the pmd/pud level huge (PSE) entries.  No two entries
  cover one another (a huge pmd never shares its 2 MiB with a pte entry).
* ``access``: read / write / fetch, user or kernel mode, sometimes an implicit
  supervisor access; the address is chosen relative to the layout (inside a VMA,
  at its edges, just below a stack, page 0, kernel space, TASK_SIZE_MAX, vmalloc,
  the vsyscall page); sometimes an ``error_code`` given directly.
* ``regs``, ``cpu``, ``task``, ``kernel`` and ``env``: across their domains.  A task
  without an mm (a kernel thread) has no VMAs and no user entries.

All strategies are deterministic functions of Hypothesis's choice sequence, so
``@settings(derandomize=True)`` and the example database work as usual.
"""

from __future__ import annotations

from dataclasses import replace
from functools import lru_cache

from hypothesis import strategies as st

from .sim.constants import (
    KERNEL_MAPPINGS_START,
    TASK_SIZE_MAX,
    VM_ACCOUNT,
    VM_DONTEXPAND,
    VM_EXEC,
    VM_GROWSDOWN,
    VM_HUGEPAGE,
    VM_HUGETLB,
    VM_IO,
    VM_LOCKED,
    VM_MAYEXEC,
    VM_MAYREAD,
    VM_MAYSHARE,
    VM_MAYWRITE,
    VM_MIXEDMAP,
    VM_NOHUGEPAGE,
    VM_PFNMAP,
    VM_READ,
    VM_SHARED,
    VM_STACK_FLAGS,
    VM_UFFD_MISSING,
    VM_WRITE,
    VMALLOC_START_32,
    VMALLOC_START_64,
    PAGE_OFFSET_64,
    START_KERNEL_MAP_64,
    VSYSCALL_ADDR,
    stack_cushion,
)
from .sim.env import ALLOC_PURPOSES  # the allocation purposes a scenario may fail
from .sim.spec import (
    FAULT_RESULTS,
    AccessSpec,
    CpuSpec,
    EntrySpec,
    EnvSpec,
    KernelSpec,
    MachineSpec,
    RegsSpec,
    TaskSpec,
    VmaSpec,
)
from .x86.constants import (
    PAGE_SIZE,
    PF_INSTR,
    PF_PROT,
    PF_RSVD,
    PF_USER,
    PF_WRITE,
    X86_EFLAGS_AC,
    X86_EFLAGS_IF,
    X86_EFLAGS_TF,
    X86_EFLAGS_VM,
    _PAGE_ACCESSED,
    _PAGE_DIRTY,
    _PAGE_GLOBAL,
    _PAGE_NX,
    _PAGE_TABLE,
    _PAGE_PCD,
    _PAGE_PRESENT,
    _PAGE_PROTNONE,
    _PAGE_PSE,
    _PAGE_PWT,
    _PAGE_RW,
    _PAGE_SOFT_DIRTY,
    _PAGE_SPECIAL,
    _PAGE_SPLITTING,
    _PAGE_USER,
)
from .x86.paging import ARCHES, Arch

__all__ = [
    "realism_problem",
    "ARCH_NAMES",
    "arches",
    "machine_specs",
    "vma_specs",
    "vma_layouts",
    "pte_values",
    "pmd_values",
    "entry_specs",
    "error_codes",
    "access_specs",
    "cpu_specs",
    "regs_specs",
    "task_specs",
    "kernel_specs",
    "env_specs",
]

ARCH_NAMES: tuple[str, ...] = tuple(sorted(ARCHES))


# Error codes real x86 pushes often (KF 1.4, 3.3), to weight the mix toward them.
_COMMON_CODES = (
    0,
    PF_WRITE,
    PF_USER,
    PF_USER | PF_WRITE,
    PF_USER | PF_INSTR,
    PF_PROT,
    PF_PROT | PF_WRITE,
    PF_PROT | PF_USER,
    PF_PROT | PF_USER | PF_WRITE,
    PF_PROT | PF_USER | PF_INSTR,
    PF_PROT | PF_INSTR,
    PF_PROT | PF_RSVD,
    PF_PROT | PF_RSVD | PF_USER,
    PF_PROT | PF_RSVD | PF_USER | PF_WRITE,
    PF_INSTR,
)


def _arch(arch: str | Arch) -> Arch:
    if isinstance(arch, Arch):
        return arch
    try:
        return ARCHES[arch]
    except KeyError:
        raise ValueError(f"unknown arch {arch!r}; expected one of {', '.join(ARCH_NAMES)}") from None


def _user_top(arch: Arch) -> int:
    """First address above user space (TASK_SIZE_MAX)."""
    return TASK_SIZE_MAX[arch.name]


def _weighted(*choices: tuple[int, st.SearchStrategy]) -> st.SearchStrategy:
    """Draw from one of the strategies with the given relative weights.  (``one_of``
    merges identical branches, so repeating a branch there does not weight it.)
    Shrinks toward the first choice."""
    table = tuple(i for i, (weight, _) in enumerate(choices) for _ in range(weight))
    strategies = [strategy for _, strategy in choices]
    return st.sampled_from(table).flatmap(lambda i: strategies[i])


@lru_cache(maxsize=None)
def arches() -> st.SearchStrategy[str]:
    """An arch name."""
    return st.sampled_from(ARCH_NAMES)


# --- Page-table entry values ----------------------------------------------------

@lru_cache(maxsize=None)
def _frames(arch: Arch) -> st.SearchStrategy[int]:
    """A physical frame address that fits every arch (below 4 GiB)."""
    return st.integers(0x100, 0xFFFFF).map(lambda pfn: pfn << 12)


@lru_cache(maxsize=None)
def _bitset(*masks: int) -> st.SearchStrategy[int]:
    return st.lists(st.sampled_from(masks), max_size=len(masks)).map(lambda ms: sum(set(ms)))


@lru_cache(maxsize=None)
def _present_ptes(arch: Arch) -> st.SearchStrategy[int]:
    nx = (_PAGE_NX,) if arch.has_nx else ()
    return st.builds(
        lambda frame, rights, extra: frame | _PAGE_PRESENT | rights | extra,
        _frames(arch),
        _bitset(_PAGE_RW, _PAGE_USER, _PAGE_ACCESSED, _PAGE_DIRTY, *nx),
        st.one_of(st.just(0), _bitset(_PAGE_PWT, _PAGE_PCD, _PAGE_GLOBAL, _PAGE_SPECIAL, _PAGE_SOFT_DIRTY)),
    )


@lru_cache(maxsize=None)
def _protnone_ptes(arch: Arch) -> st.SearchStrategy[int]:
    # PAGE_NONE (PROTNONE|ACCESSED) and NUMA hints: P=0, bit 8 = 1 (KF 1.3).
    nx = (_PAGE_NX,) if arch.has_nx else ()
    return st.builds(
        lambda frame, extra: frame | _PAGE_PROTNONE | extra,
        _frames(arch),
        _bitset(_PAGE_ACCESSED, _PAGE_DIRTY, _PAGE_RW, _PAGE_USER, *nx),
    )


@lru_cache(maxsize=None)
def _swap_ptes(arch: Arch) -> st.SearchStrategy[int]:
    """Swap, migration (types 30, 31) and hwpoison (type 29) entries (KF 1.3)."""
    types = st.one_of(st.integers(0, 3), st.sampled_from((29, 30, 31)), st.integers(0, 31))
    offsets = st.one_of(st.integers(0, 0xFF), st.integers(0, 0x7FFFF))
    soft_dirty = st.sampled_from((0, _PAGE_PSE))  # _PAGE_SWP_SOFT_DIRTY

    def encode(swp_type: int, offset: int, sd: int) -> int:
        if arch.name == "i386-pae":
            # The whole entry lives in the high word; the low word is 0.
            return (swp_type | (offset << 5)) << 32
        value = (swp_type << 1) | (offset << 9) | sd
        return value & arch.entry_mask

    return st.builds(encode, types, offsets, soft_dirty).filter(bool)


@lru_cache(maxsize=None)
def _reserved_ptes(arch: Arch) -> st.SearchStrategy[int]:
    """Present entries with a reserved physical-address bit set (KF 3.5)."""
    if arch.entry_bytes == 4:
        return _present_ptes(arch)  # 2-level PTEs have no reserved bits
    low = arch.phys_mask_shift
    high = 51 if arch.levels == 4 else 62
    return st.builds(lambda v, bit: v | (1 << bit), _present_ptes(arch), st.integers(low, high))


@lru_cache(maxsize=None)
def pte_values(arch: str | Arch = "x86_64") -> st.SearchStrategy[int]:
    """One raw PTE word of ``arch``'s width: none, present (realistic rights), PROT_NONE,
    swap/migration/hwpoison, reserved bits set, or noise."""
    a = _arch(arch)
    return _weighted(
        (2, st.just(0)),
        (3, _present_ptes(a)),
        (1, _protnone_ptes(a)),
        (1, _swap_ptes(a)),
        (1, _reserved_ptes(a)),
        (1, st.integers(0, a.entry_mask)),
    )


@lru_cache(maxsize=None)
def pmd_values(arch: str | Arch = "x86_64", *, level: str = "pmd") -> st.SearchStrategy[int]:
    """A leaf-or-none entry for the pmd (or pud) level: none, a huge (PSE) page or a
    huge page with reserved bits; on the pmd level also a PROT_NONE/NUMA huge entry, a
    THP being split (4.4), also in the split's invalidated phase (P=0, PSE=1, SPLITTING:
    4.4 clears P on a huge pmd only while splitting it, after setting SPLITTING; KF
    1.2 pmd_present).  Never a present
    table link (the simulator builds those itself; a scenario link would point at
    memory that holds no table) and never a non-present pud other than none (4.4 has
    no such puds: the kernel would follow it as a table)."""
    a = _arch(arch)
    shift = a.pud_shift if level == "pud" else a.pmd_shift
    aligned = st.integers(1, 0xFFFFFFFF >> shift).map(lambda n: n << shift)
    nx = (_PAGE_NX,) if a.has_nx else ()
    rights = _bitset(_PAGE_RW, _PAGE_USER, _PAGE_ACCESSED, _PAGE_DIRTY, *nx)
    huge = st.builds(lambda f, r: f | _PAGE_PRESENT | _PAGE_PSE | r, aligned, rights)
    options = [(1, st.just(0)), (2, huge)]
    if level == "pmd":
        options += [
            (1, st.builds(lambda f, r: f | _PAGE_PROTNONE | _PAGE_PSE | r, aligned, rights)),
            (1, st.builds(lambda f, r: f | _PAGE_PSE | _PAGE_SPLITTING | r, aligned, rights)),  # split, P=0
            (1, huge.map(lambda v: v | _PAGE_SPLITTING)),
        ]
    if a.entry_bytes == 8:
        options.append((1, st.builds(lambda v, b: v | (1 << b), huge, st.integers(13, shift - 1))))
    return _weighted(*options).map(lambda v: v & a.entry_mask)


# --- VMAs -----------------------------------------------------------------------

_EXTRA_FLAGS = (VM_LOCKED, VM_HUGEPAGE, VM_NOHUGEPAGE, VM_UFFD_MISSING, VM_PFNMAP, VM_IO,
                VM_MIXEDMAP, VM_ACCOUNT, VM_DONTEXPAND)


@st.composite
def _vm_flags(draw, kind: str) -> int:
    perms = draw(_bitset(VM_READ, VM_WRITE, VM_EXEC))
    shared = draw(st.booleans()) if kind != "hugetlb" else draw(st.sampled_from((0, 1, 1)))
    flags = perms
    if shared:
        flags |= VM_SHARED | VM_MAYSHARE
    # MAY* normally cover the current rights; sometimes they do not (odd but legal input).
    if draw(st.integers(0, 9)):
        flags |= VM_MAYREAD | VM_MAYWRITE | VM_MAYEXEC
    else:
        flags |= draw(_bitset(VM_MAYREAD, VM_MAYWRITE, VM_MAYEXEC))
    if kind == "anon" and draw(st.integers(0, 5)) == 0:
        flags |= VM_GROWSDOWN
    if draw(st.integers(0, 3)) == 0:
        flags |= draw(st.sampled_from(_EXTRA_FLAGS))
    if kind == "hugetlb":
        flags |= VM_HUGETLB
    return flags


def vma_specs(arch: str | Arch = "x86_64", *, start: int, end: int,
              kind: str | None = None, stack: bool = False) -> st.SearchStrategy[VmaSpec]:
    """One VMA covering exactly [start, end) (page-aligned; the caller chooses the range).
    ``stack``: a VM_STACK_FLAGS anonymous stack."""
    _arch(arch)
    if start % PAGE_SIZE or end % PAGE_SIZE or not 0 <= start < end:
        raise ValueError(f"vma_specs needs a page-aligned range with start < end, got [{start:#x}, {end:#x})")

    @st.composite
    def build(draw) -> VmaSpec:
        k = "anon" if stack else (kind or draw(st.sampled_from(("anon", "anon", "file", "file", "hugetlb"))))
        flags = VM_STACK_FLAGS if stack else draw(_vm_flags(k))
        if stack and draw(st.integers(0, 4)) == 0:
            flags |= VM_EXEC
        return VmaSpec(
            start=start,
            end=end,
            flags=flags,
            kind=k,
            pgoff=draw(st.one_of(st.none(), st.integers(0, 0xFFFF))) if k == "file" else None,
            anon_vma=draw(st.booleans()) if draw(st.integers(0, 3)) == 0 else True,
            fault_handler=draw(st.integers(0, 7)) != 0 if k == "file" else True,
            page_mkwrite=draw(st.booleans()) if k == "file" else False,
            name="[stack]" if stack else "",
        )

    return build()


@st.composite
def vma_layouts(draw, arch: str | Arch = "x86_64", *, max_vmas: int = 4,
                stack: bool | None = None, kinds: tuple[str, ...] | None = None) -> list[VmaSpec]:
    """0..max_vmas VMAs: sorted, non-overlapping, page-aligned, inside user space.
    ``stack`` True/False forces/forbids a GROWSDOWN stack at the top (None: sometimes).
    ``kinds`` limits the VMA kinds ("anon", "file", "hugetlb"); a stack is anonymous,
    so there is none unless "anon" is allowed."""
    a = _arch(arch)
    allowed = ("anon", "anon", "file", "file", "hugetlb") if kinds is None else tuple(kinds)
    if not allowed or set(allowed) - {"anon", "file", "hugetlb"}:
        raise ValueError(f"kinds must name some of 'anon', 'file', 'hugetlb', got {kinds!r}")
    if "anon" not in allowed:
        if stack:
            raise ValueError("a stack is an anonymous VMA: allow 'anon' in kinds")
        stack = False
    top = _user_top(a)
    huge = a.pmd_size
    count = min(max_vmas, draw(st.sampled_from((0, 1, 1, 2, 2, 3, 4))))
    want_stack = draw(st.booleans()) if stack is None else stack
    plain = count - 1 if (want_stack and count) else count

    vmas: list[VmaSpec] = []
    cursor = draw(st.sampled_from((0x10000, 0x400000, 0x08048000, 0x40000000))) if a.word_bits == 32 else \
        draw(st.sampled_from((0x10000, 0x400000, 0x7F0000000000, 0x600000)))
    cursor = max(PAGE_SIZE, cursor + draw(st.integers(0, 255)) * PAGE_SIZE)
    for _ in range(plain):
        kind = draw(st.sampled_from(allowed))
        gap = draw(st.sampled_from((0, 0, 1, 2, 16, 0x1000))) * PAGE_SIZE
        pages = draw(st.one_of(st.integers(1, 4), st.integers(1, 600)))
        start = cursor + gap
        if kind == "hugetlb":
            start = -(-start // huge) * huge
            end = start + draw(st.integers(1, 2)) * huge
        else:
            end = start + pages * PAGE_SIZE
        if end > top - 0x200000:
            break
        vmas.append(draw(vma_specs(a, start=start, end=end, kind=kind)))
        cursor = end
    if want_stack and count:
        # The stack sits near the top of user space, above everything else; sometimes a
        # VMA right below it (a one-page gap or none) blocks growth.
        size = draw(st.integers(1, 64)) * PAGE_SIZE
        end = top - draw(st.sampled_from((0, 1, 0x800))) * PAGE_SIZE
        start = end - size
        if vmas and len(vmas) + 2 <= count and draw(st.integers(0, 3)) == 0:
            below_end = start - draw(st.sampled_from((0, 1))) * PAGE_SIZE
            below_start = below_end - draw(st.integers(1, 8)) * PAGE_SIZE
            if below_start >= vmas[-1].end:
                vmas.append(draw(vma_specs(a, start=below_start, end=below_end, kind="anon")))
        if start >= (vmas[-1].end if vmas else PAGE_SIZE):
            vmas.append(draw(vma_specs(a, start=start, end=end, stack=True)))
    return vmas


# --- Addresses ------------------------------------------------------------------

@lru_cache(maxsize=None)
def _kernel_addresses(a: Arch) -> st.SearchStrategy[int]:
    top = _user_top(a)
    if a.word_bits == 64:
        fixed = (top, top + PAGE_SIZE - 1, PAGE_OFFSET_64, START_KERNEL_MAP_64, VSYSCALL_ADDR,
                 VSYSCALL_ADDR + 0x400, VMALLOC_START_64, KERNEL_MAPPINGS_START["x86_64"], 0xFFFFFFFFFFFFF000)
        anywhere = st.integers(KERNEL_MAPPINGS_START["x86_64"], 0xFFFFFFFFFFFFFFFF)
        vmalloc = st.integers(0, 0xFFFFF).map(lambda n: VMALLOC_START_64 + n * PAGE_SIZE)
    else:
        fixed = (top, VMALLOC_START_32, 0xFFFFF000, 0xFFFFFFFF)
        anywhere = st.integers(top, 0xFFFFFFFF)
        vmalloc = st.integers(0, 0x3FF).map(lambda n: VMALLOC_START_32 + n * PAGE_SIZE)
    return st.one_of(st.sampled_from(fixed), vmalloc, anywhere)


@st.composite
def _addresses(draw, a: Arch, vmas: list[VmaSpec]) -> int:
    """A canonical address chosen relative to the layout."""
    top = _user_top(a)
    if vmas and draw(st.integers(0, 9)) <= 6:
        vma = draw(st.sampled_from(vmas))
        edge = draw(st.sampled_from(("inside",) * 6 + ("start", "last", "end", "below", "far_below")))
        if edge == "inside":
            return draw(st.integers(vma.start, vma.end - 1))
        if edge == "start":
            return vma.start
        if edge == "last":
            return vma.end - 1
        if edge == "end":
            return vma.end if vma.end < top else vma.end - 1
        if edge == "below":
            return max(0, vma.start - draw(st.integers(1, 3 * PAGE_SIZE)))
        return max(0, vma.start - draw(st.integers(0, stack_cushion(a.name) * 2)))
    choice = draw(st.integers(0, 2))
    if choice == 0:
        return draw(st.sampled_from((0, 8, PAGE_SIZE - 1, PAGE_SIZE, top - 1)))
    if choice == 1:
        return draw(st.integers(0, top - 1))
    return draw(_kernel_addresses(a))


@lru_cache(maxsize=None)
def error_codes(*, odd: bool = True) -> st.SearchStrategy[int]:
    """An error code as do_page_fault receives it: mostly codes real hardware pushes,
    also any 6-bit combination and (``odd``) words with bits no CPU of the era sets."""
    options = [(3, st.sampled_from(_COMMON_CODES)), (1, st.integers(0, 0x3F))]
    if odd:
        options.append((1, st.integers(0, 0x3F).map(lambda c: c | (1 << 15))))
    return _weighted(*options)


def access_specs(arch: str | Arch = "x86_64", vmas: list[VmaSpec] | None = None, *,
                 mode: str | None = None, kind: str | None = None,
                 given_error_code: bool | None = None) -> st.SearchStrategy[AccessSpec]:
    """The faulting access.  ``given_error_code`` True/False forces/forbids an error
    code given directly (None: about one time in five)."""
    a = _arch(arch)
    layout = vmas or []

    @st.composite
    def build(draw) -> AccessSpec:
        m = mode or draw(st.sampled_from(("user", "user", "kernel")))
        k = kind or draw(st.sampled_from(("read", "write", "fetch")))
        implicit = m == "user" and k != "fetch" and draw(st.integers(0, 15)) == 0
        give = draw(st.integers(0, 4)) == 0 if given_error_code is None else given_error_code
        return AccessSpec(
            address=draw(_addresses(a, layout)),
            kind=k,
            mode=m,
            implicit=implicit,
            error_code=draw(error_codes()) if give else None,
        )

    return build()


# --- Page-table entries ---------------------------------------------------------

_LEVEL_ORDER = ("pgd", "pud", "pmd", "pte")


def _pud_allowed(lo: int, hi: int, vmas: list[VmaSpec]) -> bool:
    """No VMA overlaps [lo, hi), and no GROWSDOWN VMA lies above it."""
    for v in vmas:
        if v.start < hi and lo < v.end:
            return False
        if v.flags & VM_GROWSDOWN and v.start >= hi:
            return False
    return True


def _level_span(a: Arch, level: str) -> int:
    return {"pte": PAGE_SIZE, "pmd": 1 << a.pmd_shift, "pud": 1 << a.pud_shift}[level]


@st.composite
def entry_specs(draw, arch: str | Arch = "x86_64", vmas: list[VmaSpec] | None = None, *,
                max_entries: int = 4, address: int | None = None, realistic: bool = False,
                numa_balancing: bool = False) -> list[EntrySpec]:
    """0..max_entries user page-table entries, mostly inside the VMAs and often at the
    faulting ``address``; levels "pte", "pmd" (not on 2-level) and "pud" (x86-64).
    No entry's span contains another's.  A pud entry (a 1 GiB page) covers no VMA and
    no stack can grow into it: Linux 4.4 maps 1 GiB pages only in hugetlbfs VMAs of the
    1 GiB size (which a VmaSpec cannot express), and every other walk of the kernel
    would take such a pud for a table.  So pud entries only meet the MMU.

    ``realistic``: only entries Linux 4.4 itself builds in the VMAs (see ``_as_built``);
    ``numa_balancing`` then allows NUMA-hint (PROT_NONE) entries in accessible VMAs."""
    a = _arch(arch)
    top = _user_top(a)
    levels = ["pte"] * 4
    if not a.pmd_folded:
        levels += ["pmd"]
    if not a.pud_folded:
        levels += ["pud"]
    entries: list[EntrySpec] = []
    spans: list[tuple[int, int]] = []
    for _ in range(draw(st.integers(0, max_entries))):
        level = draw(st.sampled_from(levels))
        span = _level_span(a, level)
        where = draw(st.integers(0, 4))
        if where <= 1 and address is not None and address < top:
            addr = address
        elif where <= 3 and vmas:
            vma = draw(st.sampled_from(vmas))
            addr = draw(st.integers(vma.start, vma.end - 1))
        else:
            addr = draw(st.integers(0, top - 1))
        base = addr - addr % span
        if base + span > top:
            continue
        if any(base < hi and lo < base + span for lo, hi in spans):
            continue
        if level == "pud" and not _pud_allowed(base, base + span, vmas or []):
            continue
        value = draw(pte_values(a) if level == "pte" else pmd_values(a, level=level))
        if realistic:
            value = _as_built(a, level, base, base + span, value, vmas or [], numa_balancing)
            if value is None:
                continue
        spans.append((base, base + span))
        entries.append(EntrySpec(address=base, value=value, level=level))
    # The scenario format's canonical order: top level first, then by address.
    entries.sort(key=lambda e: (_LEVEL_ORDER.index(e.level), e.address))
    return entries


_VM_RIGHTS = VM_READ | VM_WRITE | VM_EXEC


def _as_built(a: Arch, level: str, lo: int, hi: int, value: int, vmas: list[VmaSpec],
              numa: bool) -> int | None:
    """``value`` as Linux 4.4 could have stored it over [lo, hi), adjusted, or None when
    it never stores such an entry there.  Inside a VMA: a present entry carries
    _PAGE_USER (every user protection has it, KF 1.1); a PROT_NONE entry (P=0, bit 8)
    is either a PROT_NONE mapping's or a NUMA hint, so an accessible VMA has one only
    with NUMA balancing on; a hugetlb VMA holds no pte entries and, on the pmd level,
    only none or present huge entries (no THP states).  Outside the VMAs only none
    entries (munmap zaps the rest).  Anywhere, a present pmd/pud that is not a huge
    page is a table link, which *_populate writes as exactly _PAGE_TABLE plus the
    table's frame (reserved bits stay possible: a corrupted table is what pgtable_bad
    is for, T17)."""
    if value & _PAGE_PRESENT and level != "pte" and not value & _PAGE_PSE:
        return _PAGE_TABLE  # frame 0: the machine builder allocates the table
    covering = [v for v in vmas if v.start < hi and lo < v.end]
    if not covering:
        # munmap zaps what it unmaps: user space outside every VMA has no entries.
        return None if value else value
    if any(v.flags & VM_HUGETLB for v in covering):
        if level == "pte":
            return None  # even a none pte means a pte table where the huge page goes
        if value and (value & (_PAGE_PRESENT | _PAGE_PSE) != (_PAGE_PRESENT | _PAGE_PSE)
                      or value & _PAGE_SPLITTING):
            return None
    if not value:
        return value
    if value & _PAGE_PRESENT:
        return value | _PAGE_USER
    if value & _PAGE_PROTNONE and not numa and any(v.flags & _VM_RIGHTS for v in covering):
        return None
    return value


# --- Registers, CPU, task, kernel, environment ------------------------------------

@st.composite
def regs_specs(draw, arch: str | Arch = "x86_64", vmas: list[VmaSpec] | None = None,
               *, mode: str = "user", fixup_ips: list[int] | None = None) -> RegsSpec:
    """Registers: ip (None or a text address of the mode: kernel text, sometimes one of
    ``fixup_ips``, in kernel mode; a user address in user mode, where the CPU runs no
    kernel instruction and so no exception-table entry), sp (None, or near a stack
    VMA), EFLAGS with IF/AC/TF varied, vm86 on 32-bit user mode only."""
    a = _arch(arch)
    ip = None
    if draw(st.booleans()):
        if mode == "kernel":
            if fixup_ips and draw(st.booleans()):
                ip = draw(st.sampled_from(fixup_ips))
            else:
                ip = draw(_KERNEL_IPS[a.word_bits])
        else:
            ip = draw(_USER_IPS)
    sp = None
    stacks = [v for v in (vmas or []) if v.flags & VM_GROWSDOWN]
    if draw(st.integers(0, 2)) == 0:
        if stacks:
            s = draw(st.sampled_from(stacks))
            sp = draw(st.integers(max(0, s.start - 2 * stack_cushion(a.name)), s.end))
        else:
            sp = draw(st.integers(0, _user_top(a) - 1))
        sp -= sp % (a.word_bits // 8)
    flags = 0x2 | draw(_bitset(X86_EFLAGS_IF, X86_EFLAGS_AC, X86_EFLAGS_TF))
    if draw(st.integers(0, 3)):
        flags |= X86_EFLAGS_IF
    vm86 = a.word_bits == 32 and mode == "user" and draw(st.integers(0, 15)) == 0
    if vm86:
        flags |= X86_EFLAGS_VM
    return RegsSpec(ip=ip, sp=sp, flags=flags, vm86=vm86)


def _kernel_ips(a: Arch) -> tuple[int, ...]:
    if a.word_bits == 64:
        return (START_KERNEL_MAP_64 + 0x1000000, START_KERNEL_MAP_64 + 0x123456)
    return (0xC1000000, 0xC1234560)


# Static sub-strategies, built once (building them on every draw dominated its cost).
_KERNEL_IPS = {bits: st.sampled_from(_kernel_ips(ARCHES[name])) for name, bits in
               (("x86_64", 64), ("i386", 32))}
_USER_IPS = st.integers(0x400000, 0x500000)


@lru_cache(maxsize=None)
def cpu_specs() -> st.SearchStrategy[CpuSpec]:
    """CPU features: SMAP, SMEP, NX, CR0.WP.  NX and WP are mostly on, as on the
    machines Linux 4.4 runs (with NX off, an NX bit in a present entry is reserved)."""
    mostly_on = st.sampled_from((True, True, True, False))
    return st.builds(CpuSpec, smap=st.booleans(), smep=st.booleans(), nx=mostly_on, wp=mostly_on)


@lru_cache(maxsize=None)
def task_specs() -> st.SearchStrategy[TaskSpec]:
    """Task context: mm or not, pagefault_disable depth, atomic, signals, rlimits.
    Three tasks in five are ordinary (an mm, faults enabled, not atomic), so runs
    reach handle_mm_fault often; one in five differs in one of those, one in five in
    any of them."""
    rlimits = dict(
        rlimit_stack=st.sampled_from((8 << 20, 8 << 20, 128 * 1024, PAGE_SIZE, 0, 1 << 40)),
        rlimit_as=st.sampled_from((None, None, 1 << 20, 1 << 32)),
        rlimit_memlock=st.sampled_from((64 * 1024, 0, 1 << 30)),
        cap_sys_rawio=st.booleans(),
        cap_ipc_lock=st.booleans(),
    )
    signals = dict(
        fatal_signal_pending=st.sampled_from((False, False, False, True)),
        memcg_oom=st.sampled_from((False, False, False, True)),
    )
    ordinary = st.builds(TaskSpec, **signals, **rlimits)
    one_odd = st.one_of(
        st.builds(TaskSpec, has_mm=st.just(False), **signals, **rlimits),
        st.builds(TaskSpec, pagefault_disabled=st.integers(1, 2), **signals, **rlimits),
        st.builds(TaskSpec, preempt_count=st.integers(1, 2), **signals, **rlimits),
        st.builds(TaskSpec, in_interrupt=st.just(True), **signals, **rlimits),
    )
    small = st.sampled_from((0, 0, 1, 2))
    any_odd = st.builds(
        TaskSpec,
        has_mm=st.booleans(),
        pagefault_disabled=small,
        preempt_count=small,
        in_interrupt=st.booleans(),
        fatal_signal_pending=st.booleans(),
        memcg_oom=st.booleans(),
        **rlimits,
    )
    return _weighted((3, ordinary), (1, one_odd), (1, any_odd))


@st.composite
def kernel_specs(draw, arch: str | Arch = "x86_64", *, fixup_ips: list[int] | None = None,
                 address: int | None = None) -> KernelSpec:
    """Kernel configuration: mmap_min_addr, THP mode, NUMA balancing (x86-64), an
    exception table, init_mm entries (vmalloc/kernel pages, sometimes at ``address``)."""
    a = _arch(arch)
    mappings: list[EntrySpec] = []
    if draw(st.booleans()):
        at = address if (address is not None and address >= _user_top(a) and a.is_canonical(address)) else None
        for _ in range(draw(st.integers(1, 2))):
            addr = at if (at is not None and draw(st.booleans())) else draw(_kernel_addresses(a))
            addr -= addr % PAGE_SIZE
            if addr < KERNEL_MAPPINGS_START[a.name] or any(m.address == addr for m in mappings):
                continue  # the last user page is "kernel space" to the handler, but unmapped
            frame = draw(_frames(a))
            kernel_page = _PAGE_PRESENT | _PAGE_RW | _PAGE_ACCESSED | _PAGE_DIRTY | _PAGE_GLOBAL
            value = draw(st.one_of(
                st.just(frame | kernel_page | (_PAGE_NX if a.has_nx else 0)),
                st.just(frame | (kernel_page & ~_PAGE_RW)),
                st.just(0),
                pte_values(a),
            ))
            mappings.append(EntrySpec(address=addr, value=value, level="pte"))
    mappings.sort(key=lambda e: e.address)
    return KernelSpec(
        mmap_min_addr=draw(st.sampled_from((4096, 4096, 0, 65536))),
        thp=draw(st.sampled_from(("never", "never", "always", "madvise"))),
        numa_balancing=a.levels == 4 and draw(st.integers(0, 3)) == 0,
        exception_table=list(fixup_ips or []),
        kernel_mappings=mappings,
        kernel_synced=draw(st.sampled_from((True, True, False))),
        seed_expand_stack=draw(st.integers(0, 7)) == 0,
    )


@lru_cache(maxsize=None)
def _results(max_size: int = 3) -> st.SearchStrategy[list[str]]:
    """Per-call answers of a callback: any VM_FAULT_* result, "0" and RETRY (the
    answers that drive the retry logic) more often than the rest."""
    weighted = ("0", "0", "RETRY", "RETRY") + FAULT_RESULTS
    return st.lists(st.sampled_from(weighted), min_size=1, max_size=max_size)


def env_specs(*, quiet: bool | None = None, **overrides: st.SearchStrategy) -> st.SearchStrategy[EnvSpec]:
    """The environment's answers, each across its domain.  About half the
    environments are quiet (no claims by kmmio/kmemcheck/kprobes, no contention, no
    allocation failure, no prefetch/errata) and vary only the callbacks' answers;
    the rest vary every field.  ``quiet`` True/False gives only the one kind.
    Keyword arguments replace the strategy of one field (``fault=st.just(["RETRY"])``)."""
    purposes = st.lists(st.sampled_from(ALLOC_PURPOSES), max_size=2, unique=True).map(sorted)
    answers: dict[str, st.SearchStrategy] = dict(
        fault=_results(),
        fatal_signal_in_wait=st.sampled_from((False, False, False, True)),
        oom=st.sampled_from(("killed", "memcg", "lock_busy", "disabled")),
        swap_cache=st.sampled_from(("hit", "readahead", "readahead_failed", "hwpoison")),
        reuse=st.booleans(),
        userfault=_results(),
        hugetlb=_results(),
        page_mkwrite=st.sampled_from(FAULT_RESULTS),
        vsyscall=st.sampled_from(("emulate", "none")),
    )
    noisy: dict[str, st.SearchStrategy] = dict(
        mmap_sem=st.sampled_from(("free", "contended")),
        kmemcheck=st.sampled_from((False, False, False, False, True)),
        kmmio=st.sampled_from((False, False, False, False, True)),
        kprobes=st.sampled_from((False, False, False, False, True)),
        alloc_fail=purposes,
        alloc_fail_once=purposes,
        page_lock=st.sampled_from(("free", "contended")),
        die_notifier=st.sampled_from(("continue", "stop")),
        overcommit=st.booleans(),
        is_prefetch=st.sampled_from((False, False, False, False, True)),
        errata=st.sampled_from((False, False, False, False, True)),
        pte_race=st.booleans(),
    )
    known = set(answers) | set(noisy)
    unknown = set(overrides) - known
    if unknown:
        raise TypeError(f"env_specs() has no field(s) {', '.join(sorted(unknown))}; "
                        f"fields: {', '.join(sorted(known))}")
    quiet_fields = {**answers, **{k: v for k, v in overrides.items()}}
    noisy_fields = {**answers, **noisy, **overrides}
    quiet_envs = st.builds(EnvSpec, **quiet_fields)
    noisy_envs = st.builds(EnvSpec, **noisy_fields)
    if quiet is None:
        return st.one_of(quiet_envs, noisy_envs)
    return quiet_envs if quiet else noisy_envs


# --- The whole machine ----------------------------------------------------------

@st.composite
def machine_specs(
    draw,
    arch: str | None = None,
    *,
    mode: str | None = None,
    kind: str | None = None,
    given_error_code: bool | None = None,
    max_vmas: int = 4,
    vma_kinds: tuple[str, ...] | None = None,
    max_entries: int = 4,
    env: st.SearchStrategy[EnvSpec] | None = None,
    cpu: st.SearchStrategy[CpuSpec] | None = None,
    task: st.SearchStrategy[TaskSpec] | None = None,
    realistic: bool = False,
) -> MachineSpec:
    """A valid MachineSpec.  Fix ``arch``, ``mode`` ("user"/"kernel"), ``kind``
    ("read"/"write"/"fetch"), ``given_error_code`` or ``vma_kinds`` (see
    ``vma_layouts``) to narrow the search; pass strategies for ``env``, ``cpu`` or
    ``task`` to replace those parts.

    By default any machine the scenario format allows.  ``realistic``: only machines
    Linux 4.4 can be in when the fault is taken (what the random engine checks
    properties on): a user-mode fault comes from a task with an mm that runs user
    code, so not atomic, not in an interrupt, with page faults enabled (KF 2.2.12);
    the page-table entries are ones the kernel builds (``entry_specs(realistic=True)``);
    hugetlb_fault answers only what 4.4's can return (``HUGETLB_RESULTS``)."""
    if arch is not None:
        _arch(arch)
    if mode not in (None, "user", "kernel"):
        raise ValueError(f"mode must be 'user', 'kernel' or None, got {mode!r}")
    if kind not in (None, "read", "write", "fetch"):
        raise ValueError(f"kind must be 'read', 'write', 'fetch' or None, got {kind!r}")
    name = arch or draw(arches())
    a = ARCHES[name]
    task_spec = draw(task if task is not None else task_specs())
    if realistic:
        mode = mode or draw(_MODES)
        if mode == "user":
            task_spec = replace(task_spec, has_mm=True, preempt_count=0, pagefault_disabled=0,
                                in_interrupt=False)
    # A task without an mm (a kernel thread) has no VMAs and no user page tables.
    vmas = draw(vma_layouts(a, max_vmas=max_vmas, kinds=vma_kinds)) if task_spec.has_mm else []
    access = draw(access_specs(a, vmas, mode=mode, kind=kind, given_error_code=given_error_code))
    fixup_ips = list(_kernel_ips(a)[:1]) if draw(st.booleans()) else []
    regs = draw(regs_specs(a, vmas, mode=access.mode, fixup_ips=fixup_ips))
    cpu_spec = draw(cpu if cpu is not None else cpu_specs())
    kernel = draw(kernel_specs(a, fixup_ips=fixup_ips, address=access.address))
    entries = draw(entry_specs(a, vmas, max_entries=max_entries, address=access.address, realistic=realistic,
                               numa_balancing=kernel.numa_balancing)) if task_spec.has_mm else []
    return MachineSpec(
        access=access,
        arch=name,
        regs=regs,
        cpu=cpu_spec,
        task=task_spec,
        kernel=kernel,
        vmas=vmas,
        entries=entries,
        env=draw(env if env is not None else (_realistic_env() if realistic else _default_env())),
        # At least two faults, so a handled fault is re-executed and its progress seen.
        max_faults=draw(_MAX_FAULTS),
    )


def realism_problem(spec: MachineSpec) -> str | None:
    """Why Linux 4.4 could not be in ``spec`` when the fault is taken, or None.

    The check behind ``machine_specs(realistic=True)``, for machines that were not drawn
    by it (a minimizer's candidates): a user-mode fault comes from a task with an mm
    running user code (a user ip, not atomic, not in an interrupt, page faults enabled);
    the user page-table entries are ones the kernel builds (``_as_built``); init_mm's
    entries are in the kernel half; the bound lets a handled fault be re-executed."""
    a = ARCHES[spec.arch]
    if spec.access.mode == "user":
        t = spec.task
        if not t.has_mm or t.preempt_count or t.pagefault_disabled or t.in_interrupt:
            return "a user-mode fault from a task without an mm, atomic, in an interrupt or with faults disabled"
        if spec.regs.ip is not None and spec.regs.ip >= _user_top(a):
            return "a user-mode fault at a kernel ip"
    if spec.max_faults < 2:
        return "max_faults < 2: a handled fault is never re-executed"
    if any(m.address < KERNEL_MAPPINGS_START[a.name] for m in spec.kernel.kernel_mappings):
        return "an init_mm entry below the kernel half"
    for e in spec.entries:
        span = {"pte": PAGE_SIZE, "pmd": 1 << a.pmd_shift, "pud": 1 << a.pud_shift}[e.level]
        lo = e.address - e.address % span
        if _as_built(a, e.level, lo, lo + span, e.value, spec.vmas, spec.kernel.numa_balancing) != e.value:
            return f"a {e.level} entry {e.value:#x} at {e.address:#x} that 4.4 does not build there"
    return None


_MODES = st.sampled_from(("user", "user", "kernel"))
_MAX_FAULTS = st.sampled_from((4, 4, 2, 8))


@lru_cache(maxsize=None)
def _default_env() -> st.SearchStrategy[EnvSpec]:
    return env_specs()


# What 4.4's hugetlb_fault can return (KF 2.4.5): it waits for a page lock or a
# migration instead of asking for a RETRY, and never answers NOPAGE, LOCKED or SIGSEGV.
HUGETLB_RESULTS = ("0", "0", "MAJOR", "OOM", "SIGBUS", "HWPOISON")


@lru_cache(maxsize=None)
def _realistic_env() -> st.SearchStrategy[EnvSpec]:
    return env_specs(hugetlb=st.lists(st.sampled_from(HUGETLB_RESULTS), min_size=1, max_size=3))
