"""The simulator's input: a fully-resolved description of one machine and one access.

This is the contract between the scenario format (``pfmodel.scenario`` parses JSON,
names and defaults into these classes) and the simulator (which builds real page
tables, VMAs and task state from them).  Every field has a default except the
address.  All numbers are plain ints; all bit sets are already resolved.

Nondeterminism enters only through ``EnvSpec``: each field is the answer the
environment gives to one question the handler asks (DESIGN.md, "one environment
object whose answers a scenario fixes").
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .constants import VM_FAULT_NAMES  # noqa: F401  (documented vocabulary)

MIB = 1 << 20

# Names a scenario may give for one call of vm_ops->fault, handle_userfault,
# hugetlb_fault or page_mkwrite; each maps to a VM_FAULT_* word (see sim.env).
FAULT_RESULTS = ("0", "MAJOR", "RETRY", "MAJOR|RETRY", "OOM", "SIGBUS", "SIGSEGV",
                 "HWPOISON", "NOPAGE", "LOCKED", "MAJOR|LOCKED")


@dataclass
class VmaSpec:
    start: int
    end: int
    flags: int
    kind: str = "anon"          # "anon" (vm_ops == NULL), "file" (vm_ops with ->fault), "hugetlb"
    pgoff: int | None = None    # default: start >> PAGE_SHIFT (anonymous convention)
    anon_vma: bool = True       # anon_vma already prepared (else anon_vma_prepare allocates)
    fault_handler: bool = True  # file VMAs: vm_ops->fault exists
    page_mkwrite: bool = False  # file VMAs: vm_ops->page_mkwrite exists
    name: str = ""


@dataclass
class EntrySpec:
    """A page-table entry the scenario sets, at the level that maps ``address``."""

    address: int
    value: int
    level: str = "pte"  # "pte", "pmd" (may be a huge pmd), "pud", "pgd"


@dataclass
class AccessSpec:
    address: int
    kind: str = "read"          # "read", "write", "fetch"
    mode: str = "user"          # "user" (CPL 3) or "kernel" (CPL 0)
    implicit: bool = False      # an implicit supervisor access made at CPL 3 (GDT/IDT/TSS read)
    error_code: int | None = None  # given directly: the first fault skips the MMU


@dataclass
class RegsSpec:
    ip: int | None = None       # default: a plausible text address for the mode
    sp: int | None = None       # default: the top of the highest GROWSDOWN VMA, else 0
    flags: int = 0x202          # EFLAGS: IF set (bit 1 is always 1)
    vm86: bool = False          # 32-bit only


@dataclass
class CpuSpec:
    smap: bool = True
    smep: bool = True
    nx: bool = True
    wp: bool = True             # CR0.WP; Linux always sets it


@dataclass
class TaskSpec:
    has_mm: bool = True
    pagefault_disabled: int = 0
    preempt_count: int = 0
    in_interrupt: bool = False
    fatal_signal_pending: bool = False   # SIGKILL queued and TIF_SIGPENDING set
    memcg_oom: bool = False              # task_in_memcg_oom() at handle_mm_fault's end
    rlimit_stack: int = 8 * MIB
    rlimit_as: int | None = None         # None: RLIM_INFINITY
    rlimit_memlock: int = 64 * 1024
    cap_sys_rawio: bool = False
    cap_ipc_lock: bool = False


@dataclass
class KernelSpec:
    mmap_min_addr: int = 4096
    thp: str = "never"                   # "always", "madvise", "never"
    numa_balancing: bool = False         # x86-64 only
    exception_table: list[int] = field(default_factory=list)  # kernel ips with a fixup
    kernel_mappings: list[EntrySpec] = field(default_factory=list)  # entries of init_mm
    kernel_synced: bool = True           # the task's pgd already has init_mm's top-level entries
    seed_expand_stack: bool = False      # take the seed's grows-up expand_stack literally (1.1.7)


@dataclass
class EnvSpec:
    mmap_sem: str = "free"               # "free" or "contended" (down_read_trylock fails)
    kmemcheck: bool = False              # kmemcheck_active / kmemcheck_fault claim the fault
    kmmio: bool = False                  # kmmio_fault claims the fault
    kprobes: bool = False                # a running kprobe's fault handler claims it
    alloc_fail: list[str] = field(default_factory=list)       # purposes that always fail
    alloc_fail_once: list[str] = field(default_factory=list)  # purposes whose first request fails
    fault: list[str] = field(default_factory=lambda: ["0"])    # vm_ops->fault per call; the last repeats
    page_lock: str = "free"              # "free" or "contended": lock_page_or_retry's trylock
    fatal_signal_in_wait: bool = False   # SIGKILL arrives in the retry pass's killable page-lock wait (KF 2.4.11)
    die_notifier: str = "continue"       # "continue" (oops kills) or "stop" (NOTIFY_STOP)
    oom: str = "killed"                  # pagefault_out_of_memory: "memcg", "lock_busy", "killed", "disabled"
    swap_cache: str = "hit"              # "hit", "readahead", "readahead_failed", "hwpoison"
    reuse: bool = True                   # do_wp_page / do_swap_page: we are the only user of the page
    userfault: list[str] = field(default_factory=lambda: ["RETRY"])  # handle_userfault per call
    hugetlb: list[str] = field(default_factory=lambda: ["0"])        # hugetlb_fault per call
    page_mkwrite: str = "LOCKED"         # ->page_mkwrite result
    overcommit: bool = True              # security_vm_enough_memory_mm succeeds
    is_prefetch: bool = False            # the faulting instruction is a prefetch (AMD quirk)
    errata: bool = False                 # K8 errata 93/100, F00F
    vsyscall: str = "emulate"            # "emulate" or "none" (vsyscall=none)
    pte_race: bool = False               # another CPU changes the pte before the ptl is taken


@dataclass
class MachineSpec:
    """Everything the simulator needs for one run."""

    access: AccessSpec
    arch: str = "x86_64"
    regs: RegsSpec = field(default_factory=RegsSpec)
    cpu: CpuSpec = field(default_factory=CpuSpec)
    task: TaskSpec = field(default_factory=TaskSpec)
    kernel: KernelSpec = field(default_factory=KernelSpec)
    vmas: list[VmaSpec] = field(default_factory=list)
    entries: list[EntrySpec] = field(default_factory=list)
    env: EnvSpec = field(default_factory=EnvSpec)
    max_faults: int = 4                  # bound on hardware faults for one access
