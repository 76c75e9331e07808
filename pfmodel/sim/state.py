"""Kernel state with real values: mm, vm_area_struct, task, pt_regs, the CPU, struct page.

The transcribed kernel functions keep the kernel's signatures (``regs, error_code,
address``); what the kernel reaches through ``current`` and per-cpu data (the task,
the CPU, init_mm, the environment, the trace) lives on one ``Machine`` that the run
installs for its duration (``installed``) and the functions reach with ``machine()``
and ``current()``, as C reaches ``current``.  One machine at a time: runs do not nest.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterator

from ..outcome import Outcome
from ..trace import Trace
from ..x86.memory import PhysMem
from ..x86.paging import Arch
from .constants import HARDIRQ_OFFSET, SIGKILL

if TYPE_CHECKING:  # pragma: no cover
    from .env import Env


# --- Locks ---------------------------------------------------------------------------

@dataclass
class RwSemaphore:
    """mm->mmap_sem: how many readers hold it (this task's reads) and whether a writer does."""

    readers: int = 0
    writer: bool = False


@dataclass
class VmOps:
    """vm_operations_struct: which callbacks exist (their answers come from the Env)."""

    name: str
    fault: bool = True
    page_mkwrite: bool = False
    pfn_mkwrite: bool = False
    pmd_fault: bool = False


# --- mm ------------------------------------------------------------------------------

@dataclass(eq=False)
class VmAreaStruct:
    """vm_area_struct.  vm_prev/vm_next come from the mm's sorted list."""

    vm_start: int
    vm_end: int
    vm_flags: int
    vm_pgoff: int
    vm_page_prot: int
    vm_ops: VmOps | None
    anon_vma: bool
    vm_mm: "MmStruct"
    name: str = ""
    vm_file: bool = False

    @property
    def vm_prev(self) -> "VmAreaStruct | None":
        vmas = self.vm_mm.mmap
        i = vmas.index(self)
        return vmas[i - 1] if i > 0 else None

    @property
    def vm_next(self) -> "VmAreaStruct | None":
        vmas = self.vm_mm.mmap
        i = vmas.index(self)
        return vmas[i + 1] if i + 1 < len(vmas) else None

    def to_json(self) -> dict[str, str]:
        return {"start": hex(self.vm_start), "end": hex(self.vm_end), "flags": hex(self.vm_flags)}


@dataclass(eq=False)
class MmStruct:
    """mm_struct: the pgd (a physical address in PhysMem), the VMAs and the counters."""

    pgd: int
    mmap: list[VmAreaStruct] = field(default_factory=list)
    mmap_sem: RwSemaphore = field(default_factory=RwSemaphore)
    page_table_lock: int = 0          # times held (spinlock; 0 or 1)
    nr_ptes: int = 0
    nr_pmds: int = 0
    total_vm: int = 0
    locked_vm: int = 0
    stack_vm: int = 0
    shared_vm: int = 0
    exec_vm: int = 0
    highest_vm_end: int = 0
    rss: dict[str, int] = field(default_factory=lambda: {"MM_FILEPAGES": 0, "MM_ANONPAGES": 0,
                                                        "MM_SWAPENTS": 0})
    name: str = "mm"


# --- task ----------------------------------------------------------------------------

@dataclass
class ThreadStruct:
    """tsk->thread: what the fault paths record for signal delivery and oopses."""

    cr2: int = 0
    trap_nr: int = 0
    error_code: int = 0


@dataclass
class TaskStruct:
    comm: str
    mm: MmStruct | None
    active_mm: MmStruct
    pagefault_disabled: int = 0
    preempt_count: int = 0            # preempt_disable nesting
    hardirq: bool = False             # in_interrupt(): adds HARDIRQ_OFFSET to preempt_count()
    pending: set[int] = field(default_factory=set)   # tsk->pending.signal
    tif_sigpending: bool = False
    maj_flt: int = 0
    min_flt: int = 0
    thread: ThreadStruct = field(default_factory=ThreadStruct)
    forced_signals: list[str] = field(default_factory=list)
    state: int = 0
    memcg_may_oom: bool = False
    memcg_in_oom: bool = False
    rlimit_stack: int = 8 << 20
    rlimit_as: int | None = None
    rlimit_memlock: int = 64 << 10
    cap_sys_rawio: bool = False
    cap_ipc_lock: bool = False
    vm86: bool = False                # tsk->thread.vm86 != NULL
    screen_bitmap: int = 0            # vm86: VGA window writes
    sig_on_uaccess_error: bool = False
    uaccess_err: bool = False

    def preempt_count_value(self) -> int:
        return self.preempt_count + (HARDIRQ_OFFSET if self.hardirq else 0)

    def send_sigkill(self) -> None:
        """A fatal signal arrives (the killable wait's or the OOM killer's)."""
        self.pending.add(SIGKILL)
        self.tif_sigpending = True


@dataclass
class PtRegs:
    """struct pt_regs: the interrupted context."""

    ip: int
    sp: int
    cs: int
    flags: int


@dataclass
class Cpu:
    cr0: int
    cr2: int
    cr3: int
    cr4: int
    efer: int
    irqs_enabled: bool = True          # the CPU's EFLAGS.IF while the handler runs


@dataclass
class Page:
    """struct page, for the pages the handler maps: what do_wp_page and the swap path ask."""

    pfn: int
    anon: bool
    kind: str                          # "anon", "file", "zero", "swap", "huge", "huge_zero", "data"
    mapcount: int = 0
    swapcache: bool = False


@dataclass
class KernelConfig:
    """Build and boot choices that change behaviour (kernel-facts §0.3)."""

    mmap_min_addr: int = 4096
    thp: str = "never"
    numa_balancing: bool = False
    exception_table: tuple[int, ...] = ()
    seed_expand_stack: bool = False
    soft_dirty: int = 0               # _PAGE_SOFT_DIRTY: 0 (CONFIG_MEM_SOFT_DIRTY off)
    fixup_base: int = 0


# --- The machine ---------------------------------------------------------------------

class KernelExit(Exception):
    """The current task left the handler for good: do_exit after an oops, or a BUG()."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(detail or reason)
        self.reason = reason
        self.detail = detail


@dataclass(eq=False)
class Machine:
    arch: Arch
    mem: PhysMem
    cpu: Cpu
    regs: PtRegs
    current: TaskStruct
    init_mm: MmStruct
    config: KernelConfig
    env: "Env"
    zero_pfn: int
    trace: Trace = field(default_factory=Trace)
    pages: dict[int, Page] = field(default_factory=dict)
    page_cache: dict[tuple[str, int], int] = field(default_factory=dict)
    huge_zero_pfn: int | None = None
    next_huge_pfn: int = 0x40000      # 2/4 MiB-aligned data frames for huge pages (1 GiB up)
    outcome: Outcome | None = None
    oops_reason: str | None = None
    instruction_emulated: bool = False  # the handler completed the instruction itself (vsyscall)
    log: list[str] = field(default_factory=list)
    vm_events: dict[str, int] = field(default_factory=dict)
    perf_events: dict[str, int] = field(default_factory=dict)
    ptl_held: int = 0
    pte_race_used: bool = False
    notes: list[str] = field(default_factory=list)

    def set_outcome(self, outcome: Outcome) -> None:
        self.outcome = outcome

    def printk(self, text: str) -> None:
        self.log.append(text)


_MACHINE: Machine | None = None


def machine() -> Machine:
    if _MACHINE is None:
        raise RuntimeError("no simulated machine is installed: call pfmodel.sim.run()")
    return _MACHINE


def current() -> TaskStruct:
    """The kernel's ``current``."""
    return machine().current


@contextmanager
def installed(m: Machine) -> Iterator[Machine]:
    """Make ``m`` the machine the kernel functions run on, for the duration."""
    global _MACHINE
    if _MACHINE is not None:
        raise RuntimeError("a simulated machine is already installed: runs do not nest")
    _MACHINE = m
    try:
        yield m
    finally:
        _MACHINE = None


def decide(label: str, value: Any, note: str = "", **changes: Any) -> Any:
    """Record a decision on the current fault's trace; returns ``value``."""
    return machine().trace.decide(label, value, note, **changes)


def change(**changes: Any) -> None:
    """Attach state changes to the decision recorded last (the one that led here)."""
    machine().trace.change(**changes)


# --- mmap_sem (the lock primitives record their own change on the last decision) --------

def down_read_trylock(sem: RwSemaphore) -> bool:
    """Fails when another task holds mmap_sem for writing (the Env's answer)."""
    if machine().env.mmap_sem_contended():
        return False
    sem.readers += 1
    return True


def down_read(sem: RwSemaphore) -> None:
    """Blocks until any writer is gone, then holds mmap_sem for reading."""
    sem.readers += 1
    change(mmap_sem="acquire")


def up_read(sem: RwSemaphore) -> None:
    # A reader count below zero is kept, not hidden: it is a lock bug (a mutant's).
    sem.readers -= 1
    change(mmap_sem="release")
