"""The model's inputs: what the handler branches on, their abstract domains, and scopes.

Every input is read by the model through an *inputs object* (``Inputs`` below is the
interface), so each engine decides how to bind it:

* the exhaustive explorer binds an input the first time a guard reads it, enumerating
  its whole (abstract) domain;
* the later SMT engine binds words and booleans to z3 terms and forks on choices.

Three kinds of inputs:

* ``bool`` inputs (``env.kmmio``, ``cpu.smap``, ...): read with ``inputs.bool(name)``,
  returning an ops Bool;
* ``choice`` inputs (``vma.kind``, ``env.oom``, ...): categorical, read with
  ``inputs.choice(name)``, returning a Python value (structural: both engines fork);
* ``word`` inputs (``address``, ``sp``, ``error_code``, ``T.flags``, ``pte``, ...):
  fixed-width words read with ``inputs.word(name)``.  A word either has a domain of
  representative values (``address``: the boundary classes of the layout) or is made
  of *groups* of bits, each group a ``fragment`` input with its own small domain
  (``error_code`` = ``ec.P | ec.W | ec.U | ec.RSVD | ec.I``), so the explicit explorer
  binds only the bits a guard looks at.

Domains may depend on other inputs (the error code's PF_USER bit on ``user_mode``; the
PTE's RW bit on the PTE's kind): a domain function reads them through ``get`` and the
explorer binds those first.  The first value of every domain is the *default*: the
value a scenario gets for an input its path never read.

A *scope* restricts domains (``SCOPES``): the full product of every environment
answer is far too large to enumerate in one go, and most of it is orthogonal (the
memory-management layer does not care whether kmemcheck was active).  Each scope is a
sub-space whose paths partition it; ``pfmodel check`` runs the default scopes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Protocol

from ..sim.constants import (
    TASK_SIZE_MAX,
    VM_EXEC,
    VM_GROWSDOWN,
    VM_HUGETLB,
    VM_LOCKED,
    VM_MAYEXEC,
    VM_MAYREAD,
    VM_MAYSHARE,
    VM_MAYWRITE,
    VM_READ,
    VM_SHARED,
    VM_UFFD_MISSING,
    VM_WRITE,
    VMALLOC_END_32,
    VMALLOC_END_64,
    VMALLOC_START_32,
    VMALLOC_START_64,
    VSYSCALL_ADDR,
    PAGE_OFFSET_64,
    stack_cushion,
)
from ..x86.constants import (
    PAGE_SIZE,
    PF_INSTR,
    PF_PROT,
    PF_RSVD,
    PF_USER,
    PF_WRITE,
    _PAGE_ACCESSED,
    _PAGE_DIRTY,
    _PAGE_GLOBAL,
    _PAGE_NX,
    _PAGE_PRESENT,
    _PAGE_PROTNONE,
    _PAGE_PSE,
    _PAGE_RW,
    _PAGE_SOFT_DIRTY,
    _PAGE_SPECIAL,
    _PAGE_SPLITTING,
    _PAGE_TABLE,
    _PAGE_USER,
)

ARCHES = ("x86_64", "i386-pae")

MIB = 1 << 20
RLIMIT_STACK = 8 * MIB          # the default RLIMIT_STACK (TaskSpec's default too)
MMAP_MIN_ADDR = 4096            # KernelSpec's default
RLIM_INFINITY = (1 << 63) - 1   # "unlimited" for a limit the scenario must state as a number


class NeedInput(Exception):
    """Raised by the explicit inputs when an unbound input is read; the explorer forks."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


class Inputs(Protocol):
    """How the model reads inputs; each engine provides one."""

    def bool(self, name: str) -> Any: ...
    def choice(self, name: str) -> Any: ...
    def word(self, name: str) -> Any: ...


Getter = Callable[[str], Any]
Domain = list | Callable[[Getter], list]


@dataclass(frozen=True)
class Input:
    """One input: its kind, doc and (possibly dependent) domain of abstract values."""

    name: str
    kind: str                      # "bool", "choice", "fragment", "word"
    doc: str
    domain: Any                    # list, or function(get) -> list
    width: int = 0                 # words and fragments
    labels: Callable[[Any], str] | None = None  # how to print a value

    def values(self, get: Getter) -> list:
        return list(self.domain(get)) if callable(self.domain) else list(self.domain)

    def show(self, value: Any) -> str:
        if self.labels is not None:
            return self.labels(value)
        if isinstance(value, bool) or value is None:
            return str(value).lower()
        if isinstance(value, int):
            return hex(value)
        return str(value)


ALL64 = (1 << 64) - 1


@dataclass(frozen=True)
class WordDecl:
    """A word input made of bit groups (each group a ``fragment`` input), plus fixed bits.

    A group's mask must cover every bit its fragment may set (masks may overlap: a
    PTE's kind sets swap-type bits where a present PTE has flags); an operation binds
    every group whose mask overlaps the bits it looks at.
    """

    name: str
    width: int
    groups: tuple[tuple[str, int], ...]   # (fragment input name, mask of the bits it may set)
    fixed: int = 0                          # bits always set
    doc: str = ""


# ---------------------------------------------------------------------------------
# The address-space layout of the model, per architecture
# ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Vma:
    """A VMA of the model's layout.  ``flags`` names the word input of its vm_flags."""

    name: str
    start: int
    end: int
    flags: str


@dataclass(frozen=True)
class Layout:
    """The concrete frame the abstract classes live in (one per architecture).

    Two user VMAs: ``A`` low in the address space (the ``vm_prev`` of ``T``), and ``T``
    high up, the VMA most faults hit (a stack when its flags have VM_GROWSDOWN).  The
    gap between them is wider than RLIMIT_STACK so both outcomes of every stack-growth
    limit are reachable.  Addresses are enumerated as boundary classes of this layout.
    """

    arch: str
    width: int
    task_size_max: int
    cushion: int
    vmas: tuple[Vma, ...]
    vmalloc: tuple[int, int]
    addresses: tuple[tuple[str, int], ...]   # (class name, representative address)

    @property
    def mask(self) -> int:
        return (1 << self.width) - 1

    def vma(self, name: str) -> Vma:
        for v in self.vmas:
            if v.name == name:
                return v
        raise KeyError(name)

    def address_class(self, value: int) -> str:
        for name, v in self.addresses:
            if v == value:
                return name
        return hex(value)


def make_layout(arch: str) -> Layout:
    if arch not in ARCHES:
        raise ValueError(f"unknown architecture {arch!r}; expected one of {', '.join(ARCHES)}")
    tsm = TASK_SIZE_MAX[arch]
    if arch == "x86_64":
        width = 64
        a = Vma("A", 0x400000, 0x600000, "A.flags")
        t = Vma("T", 0x7F0000000000, 0x7F0000200000, "T.flags")
        vmalloc = (VMALLOC_START_64, VMALLOC_END_64)
        kernel = [("kernel_direct", PAGE_OFFSET_64), ("vmalloc", VMALLOC_START_64 + 0x1000),
                  ("vsyscall", VSYSCALL_ADDR)]
    else:
        width = 32
        a = Vma("A", 0x400000, 0x600000, "A.flags")
        t = Vma("T", 0xBF000000, 0xBF200000, "T.flags")
        vmalloc = (VMALLOC_START_32, VMALLOC_END_32)
        kernel = [("kernel_direct", 0xC0100000), ("vmalloc", VMALLOC_START_32 + 0x1000)]
    addresses = [
        ("T_inside", t.start + PAGE_SIZE),            # inside T, above its lowest page (the default)
        ("page0", 0x0),                               # below mmap_min_addr, below A
        ("above_A", a.end),                           # the page right above A (= vm_prev's end)
        ("above_A_gap", a.end + PAGE_SIZE),           # one page above A: growth leaves a one-page gap
        ("stack_far", t.start - 16 * MIB),           # below T, beyond RLIMIT_STACK
        ("stack_near", t.start - PAGE_SIZE),         # the page right below T
        ("T_lowest", t.start),                        # T's lowest page (stack guard page)
        ("T_end", t.end),                             # vm_end: first address above T (no VMA)
        ("user_top", tsm - 1),                        # last user address (no VMA)
        ("kernel_start", tsm),                        # first kernel-space address
    ] + kernel + [
        ("top", (1 << width) - 1),                    # the last address: address + cushion wraps
    ]
    return Layout(arch, width, tsm, stack_cushion(arch), (a, t), vmalloc, tuple(addresses))


# ---------------------------------------------------------------------------------
# Values used by several domains
# ---------------------------------------------------------------------------------

PFN_PAGE = 0x1234        # frame of the page a present PTE maps
PFN_TABLE = 0x2345       # frame of the PTE page a table pmd points to
PFN_HUGE = 0x40000       # 2 MiB-aligned frame of a huge pmd (1 GiB physical)
PFN_KERNEL = 0x1000      # frame a kernel mapping points to

_HUGE = (PFN_HUGE << 12) | _PAGE_PRESENT | _PAGE_USER | _PAGE_ACCESSED | _PAGE_DIRTY | _PAGE_PSE
# pmd values by kind, without the RW bit (a separate group).
PMD_KINDS = {
    "none": 0,
    "table": (PFN_TABLE << 12) | (_PAGE_TABLE & ~_PAGE_RW),
    "huge": _HUGE,
    "splitting": _HUGE | _PAGE_SPLITTING,
    "protnone": (PFN_HUGE << 12) | _PAGE_PROTNONE | _PAGE_ACCESSED | _PAGE_PSE,
}

PTE_PRESENT = (PFN_PAGE << 12) | _PAGE_PRESENT | _PAGE_USER   # without RW/A/D/NX/SPECIAL

SWP_TYPE_HWPOISON = 29   # MAX_SWAPFILES with CONFIG_MIGRATION and CONFIG_MEMORY_FAILURE
SWP_TYPE_MIGRATION = 30  # SWP_MIGRATION_READ


def swap_pte(arch: str, swp_type: int, offset: int) -> int:
    """The arch swap PTE for (type, offset), KF 1.3."""
    if arch == "x86_64":
        return (swp_type << 1) | (offset << 9)
    # PAE: the whole entry lives in the high word: type in bits 32..36, offset above.
    return (swp_type | (offset << 5)) << 32


def pte_kind_values(arch: str) -> dict[str, int]:
    """The PTE value of each kind (without the RW/A/D/SPECIAL/NX groups)."""
    return {
        "none": 0,
        "present": PTE_PRESENT,
        "protnone": (PFN_PAGE << 12) | _PAGE_PROTNONE | _PAGE_USER,
        "swap": swap_pte(arch, 0, 1),
        "migration": swap_pte(arch, SWP_TYPE_MIGRATION, 1),
        "hwpoison": swap_pte(arch, SWP_TYPE_HWPOISON, 1),
    }


def soft_dirty(arch: str) -> int:
    """_PAGE_SOFT_DIRTY: CONFIG_MEM_SOFT_DIRTY exists only on x86-64 (KF 0.3)."""
    return _PAGE_SOFT_DIRTY if arch == "x86_64" else 0


VM_MAY = VM_MAYREAD | VM_MAYWRITE | VM_MAYEXEC
RWX_NAMES = {0: "NONE", VM_READ: "R", VM_WRITE: "W", VM_EXEC: "X", VM_READ | VM_WRITE: "RW",
             VM_READ | VM_EXEC: "RX", VM_WRITE | VM_EXEC: "WX", VM_READ | VM_WRITE | VM_EXEC: "RWX"}
RWX_ALL = [VM_READ | VM_WRITE, VM_READ, 0, VM_WRITE, VM_EXEC, VM_READ | VM_EXEC,
           VM_READ | VM_WRITE | VM_EXEC, VM_WRITE | VM_EXEC]


# ---------------------------------------------------------------------------------
# The input space of one architecture and scope
# ---------------------------------------------------------------------------------

@dataclass
class Space:
    """All inputs of one (architecture, scope): declarations and domains."""

    arch: str
    scope: str
    layout: Layout
    inputs: dict[str, Input] = field(default_factory=dict)
    words: dict[str, WordDecl] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)

    full: dict[str, Input] = field(default_factory=dict)   # domains before the scope

    def add(self, inp: Input) -> None:
        self.inputs[inp.name] = inp
        self.full[inp.name] = inp

    def add_word(self, decl: WordDecl) -> None:
        self.words[decl.name] = decl

    def domain(self, name: str, get: Getter) -> list:
        return self.inputs[name].values(get)

    def restrict(self, name: str, values: Iterable[Any] | Callable[[Getter], list]) -> None:
        """Narrow an input's domain (a scope's job); values must come from the full domain."""
        old = self.inputs[name]
        full = self.full[name]
        if callable(values):
            new_domain: Any = values
        else:
            vals = list(values)
            if not callable(full.domain):
                unknown = [v for v in vals if v not in full.domain]
                if unknown:
                    raise ValueError(f"scope value(s) {unknown} not in the domain of {name}")
            new_domain = vals
        self.inputs[name] = Input(old.name, old.kind, old.doc, new_domain, old.width, old.labels)

    def keep_only(self, name: str, pred: Callable[[Any], bool]) -> None:
        """Narrow an input's (possibly dependent) domain to the values ``pred`` accepts."""
        old = self.inputs[name]

        def dom(get: Getter, _old: Input = old) -> list:
            vals = [v for v in _old.values(get) if pred(v)]
            return vals or _old.values(get)[:1]
        self.restrict(name, dom)


def _b(name: str, doc: str, domain: Domain = (False, True)) -> Input:
    return Input(name, "bool", doc, list(domain) if not callable(domain) else domain)


def _c(name: str, doc: str, domain: Domain) -> Input:
    return Input(name, "choice", doc, list(domain) if not callable(domain) else domain)


def _f(name: str, doc: str, domain: Domain, width: int, labels: Callable[[Any], str] | None = None) -> Input:
    return Input(name, "fragment", doc, list(domain) if not callable(domain) else domain, width, labels)


FAULT_RESULTS_MODEL = ("0", "MAJOR", "RETRY", "MAJOR|RETRY", "OOM", "SIGBUS", "SIGSEGV",
                       "HWPOISON", "NOPAGE", "LOCKED", "MAJOR|LOCKED")


def build_space(arch: str, scope: str = "full", *, error_codes: str = "hardware") -> Space:
    """The full input space of ``arch``, narrowed to ``scope`` (see ``SCOPES``).

    ``error_codes``: "hardware" keeps only error codes the CPU can produce (KF 3.8: RSVD
    implies P, a fetch is not a write, PF_USER only from user mode); "all" enumerates
    every combination of the five 4.4 bits.
    """
    layout = make_layout(arch)
    W = layout.width
    sp = Space(arch, scope, layout, options={"error_codes": error_codes})
    sd = soft_dirty(arch)
    nx = _PAGE_NX

    # --- the access and the registers ---------------------------------------------
    sp.add(_b("user_mode", "the CPU was in user mode (CPL 3) when it faulted", (True, False)))
    hw = error_codes == "hardware"
    sp.add(_f("ec.P", "error code PF_PROT: protection (1) or not-present (0) fault", [0, PF_PROT], W))
    sp.add(_f("ec.W", "error code PF_WRITE: the access was a write", [0, PF_WRITE], W))
    sp.add(_f("ec.U", "error code PF_USER: a user-mode access (hardware U/S)",
              (lambda get: [PF_USER, 0] if get("user_mode") else [0]) if hw else [PF_USER, 0], W))
    sp.add(_f("ec.RSVD", "error code PF_RSVD: a reserved bit was set in a present entry",
              (lambda get: [0, PF_RSVD] if get("ec.P") else [0]) if hw else [0, PF_RSVD], W))
    def ec_i(get: Getter) -> list:
        # A fetch is not a write; an implicit supervisor access at CPL 3 is a data access;
        # the CPU reports I/D only with SMEP or NX enabled (KF 3.8 rules 3, 4, 6).
        if get("ec.W") or (get("user_mode") and not get("ec.U")):
            return [0]
        if not (get("cpu.nx") or get("cpu.smep")):
            return [0]
        return [0, PF_INSTR]
    sp.add(_f("ec.I", "error code PF_INSTR: an instruction fetch", ec_i if hw else [0, PF_INSTR], W))
    sp.add_word(WordDecl("error_code", W, (("ec.P", PF_PROT), ("ec.W", PF_WRITE), ("ec.U", PF_USER),
                                           ("ec.RSVD", PF_RSVD), ("ec.I", PF_INSTR)),
                         doc="the error code the hardware pushed"))

    addr_names = dict((v, n) for n, v in layout.addresses)
    sp.add(Input("address", "word", "the faulting address (CR2), as a boundary class of the layout",
                 [v for _, v in layout.addresses], W, labels=lambda v: f"{addr_names.get(v, '?')}={v:#x}"))
    cushion = layout.cushion
    mask = layout.mask

    def sp_domain(get: Getter) -> list:
        a = get("address")
        return [(a + cushion) & mask, (a + cushion + 1) & mask]
    sp.add(Input("sp", "word", "the user stack pointer: at the cushion's edge, or one byte beyond",
                 sp_domain, W))
    sp.add(_b("regs.IF", "the interrupted context had EFLAGS.IF set",
              lambda get: [True] if get("user_mode") else [True, False]))
    sp.add(_b("regs.AC", "EFLAGS.AC (stac) was set in the interrupted kernel context",
              lambda get: [False] if get("user_mode") else [False, True]))
    sp.add(_b("extable", "the faulting kernel ip has an exception-table entry",
              lambda get: [False] if get("user_mode") else [False, True]))

    # --- CPU, task, kernel --------------------------------------------------------
    sp.add(_b("cpu.smap", "the CPU has SMAP and the kernel enabled it", (True, False)))
    sp.add(_b("cpu.smep", "CR4.SMEP (the handler never reads it; it decides whether fetches report I/D)",
              (True, False)))
    sp.add(_b("cpu.nx", "EFER.NXE (the handler never reads it; it decides whether fetches report I/D)",
              (True, False)))
    sp.add(_c("task.context", "where the fault happened: normal process context, inside "
              "pagefault_disable(), in atomic context, or in an interrupt",
              ("normal", "pagefault_disabled", "atomic", "interrupt")))
    sp.add(_b("task.has_mm", "current->mm is not NULL (not a kernel thread)", (True, False)))
    sp.add(_b("task.fatal_signal", "a fatal signal (SIGKILL) is pending at entry", (False, True)))
    sp.add(_b("task.memcg_oom", "the task is in a memcg OOM situation when handle_mm_fault ends",
              (False, True)))
    sp.add(_b("task.cap_sys_rawio", "the task has CAP_SYS_RAWIO (may map below mmap_min_addr)",
              (False, True)))
    sp.add(_b("task.cap_ipc_lock", "the task has CAP_IPC_LOCK", (False, True)))
    sp.add(_c("task.rlimit_as", "RLIMIT_AS: unlimited, or exhausted (0)", ("unlimited", "exhausted")))
    sp.add(_c("task.rlimit_stack", "RLIMIT_STACK: the default 8 MiB, or unlimited", ("8MiB", "unlimited")))
    sp.add(_c("task.rlimit_memlock", "RLIMIT_MEMLOCK: unlimited, or exhausted (0)",
              ("unlimited", "exhausted")))
    sp.add(_b("kernel.numa_balancing", "CONFIG_NUMA_BALANCING (x86-64 only)",
              (False, True) if arch == "x86_64" else (False,)))
    sp.add(_c("kernel.thp", "transparent huge pages (sysfs enabled): never, or always",
              ("never", "always")))
    sp.add(_b("kernel.seed_expand_stack", "take the seed's grows-up expand_stack literally (1.1.7)",
              (False, True)))

    # The init_mm entry mapping a kernel address (vmalloc_fault, spurious_fault).
    sp.add(_f("kpte.present", "init_mm maps the kernel address",
              [0, _PAGE_PRESENT | _PAGE_ACCESSED | _PAGE_DIRTY | _PAGE_GLOBAL | (PFN_KERNEL << 12)], 64))
    sp.add(_f("kpte.rw", "the kernel mapping is writable",
              lambda get: [_PAGE_RW, 0] if get("kpte.present") else [0], 64))
    sp.add(_f("kpte.nx", "the kernel mapping is not executable",
              lambda get: [nx, 0] if get("kpte.present") else [0], 64))
    sp.add_word(WordDecl("kpte", 64, (("kpte.present", ALL64),
                                      ("kpte.rw", _PAGE_RW), ("kpte.nx", nx)),
                         doc="init_mm's PTE for a kernel-space address"))

    # --- the VMAs -----------------------------------------------------------------
    sp.add(_c("T.kind", "what backs T: anonymous memory (no vm_ops), a file (vm_ops), hugetlbfs",
              ("anon", "file", "hugetlb")))
    sp.add(_f("T.flags.rwx", "T's VM_READ/VM_WRITE/VM_EXEC", RWX_ALL, W, labels=lambda v: RWX_NAMES[v]))
    sp.add(_f("T.flags.shared", "T is a shared mapping (VM_SHARED|VM_MAYSHARE)",
              [0, VM_SHARED | VM_MAYSHARE], W))
    sp.add(_f("T.flags.growsdown", "T is a stack (VM_GROWSDOWN)", [0, VM_GROWSDOWN], W))
    sp.add(_f("T.flags.locked", "T is mlocked (VM_LOCKED)", [0, VM_LOCKED], W))
    sp.add(_f("T.flags.uffd", "T is registered with userfaultfd for missing pages (anonymous only in 4.4)",
              lambda get: [0, VM_UFFD_MISSING] if get("T.kind") == "anon" else [0], W))
    sp.add(_f("T.flags.hugetlb", "VM_HUGETLB, set exactly for a hugetlbfs VMA",
              lambda get: [VM_HUGETLB] if get("T.kind") == "hugetlb" else [0], W))
    sp.add_word(WordDecl("T.flags", W, (("T.flags.rwx", VM_READ | VM_WRITE | VM_EXEC),
                                        ("T.flags.shared", VM_SHARED | VM_MAYSHARE),
                                        ("T.flags.growsdown", VM_GROWSDOWN),
                                        ("T.flags.locked", VM_LOCKED),
                                        ("T.flags.uffd", VM_UFFD_MISSING),
                                        ("T.flags.hugetlb", VM_HUGETLB)),
                         fixed=VM_MAY, doc="T's vm_flags"))
    sp.add(_b("T.anon_vma", "T's anon_vma is already prepared", (True, False)))
    sp.add(_c("T.pgoff", "T's vm_pgoff: the anonymous convention (start >> PAGE_SHIFT), or 0",
              ("default", "zero")))
    sp.add(_b("T.fault_handler", "file VMA: vm_ops->fault exists",
              lambda get: [True, False] if get("T.kind") == "file" else [True]))
    sp.add(_b("T.page_mkwrite", "file VMA: vm_ops->page_mkwrite exists",
              lambda get: [False, True] if get("T.kind") == "file" else [False]))
    sp.add(_f("A.flags.growsdown", "A (T's vm_prev) is itself a stack", [0, VM_GROWSDOWN], W))
    sp.add_word(WordDecl("A.flags", W, (("A.flags.growsdown", VM_GROWSDOWN),),
                         fixed=VM_READ | VM_WRITE | VM_MAY, doc="A's vm_flags"))

    # --- the page tables at the faulting address ------------------------------------
    def in_t(get: Getter) -> bool:
        t = layout.vma("T")
        return t.start <= get("address") < t.end

    pmd_kinds = PMD_KINDS
    pmd_names = {v: k for k, v in pmd_kinds.items()}

    def upper_domain(get: Getter) -> list:
        # x86-64 allocates PUD and PMD pages on demand; PAE preallocates its PMD pages and
        # has no PUD level of its own (KF 1.11, 2.4.2).
        if arch != "x86_64":
            return ["present"]
        if not in_t(get):
            return ["pgd_none"]                    # nothing maps that part of the address space
        return ["present", "pgd_none", "pud_none"]
    sp.add(_c("pt.upper", "the page-table levels above the pmd: present, or the pgd / pud entry "
              "still none (x86-64)", upper_domain))

    def pmd_domain(get: Getter) -> list:
        if not in_t(get) or get("pt.upper") != "present":
            return [pmd_kinds["none"]]            # no page tables outside VMAs
        kinds = ["table", "none"]
        if get("T.kind") == "anon":                # 4.4 has THP for anonymous memory only
            kinds += ["huge", "splitting"]
            if get("kernel.numa_balancing"):
                kinds.append("protnone")
        return [pmd_kinds[k] for k in kinds]
    sp.add(_f("pmd.kind", "the pmd mapping the address: none, a PTE table, a transparent huge "
              "page, a huge page being split, a NUMA-hinting huge pmd", pmd_domain, 64,
              labels=lambda v: pmd_names.get(v, hex(v))))

    def pmd_rw_domain(get: Getter) -> list:
        k = get("pmd.kind")
        if k == pmd_kinds["table"]:
            return [_PAGE_RW]
        if k in (pmd_kinds["huge"], pmd_kinds["splitting"]):
            return [_PAGE_RW, 0]
        return [0]
    sp.add(_f("pmd.rw", "the pmd's RW bit", pmd_rw_domain, 64))
    sp.add_word(WordDecl("pmd", 64, (("pmd.kind", ALL64), ("pmd.rw", _PAGE_RW)),
                         doc="the pmd entry for the address"))

    pte_kinds = pte_kind_values(arch)
    pte_names = {v: k for k, v in pte_kinds.items()}

    def pte_domain(get: Getter) -> list:
        if get("pmd.kind") != pmd_kinds["table"]:
            return [0]                             # a fresh PTE page is all none
        kinds = ["none", "present", "swap", "migration", "hwpoison"]
        if get("kernel.numa_balancing"):
            kinds.append("protnone")
        return [pte_kinds[k] for k in kinds]
    sp.add(_f("pte.kind", "the PTE: none, present, a swap / migration / hwpoison entry, or a "
              "NUMA-hinting (protnone) entry", pte_domain, 64, labels=lambda v: pte_names.get(v, hex(v))))

    def present_bit(values: list, protnone: list | None = None) -> Callable[[Getter], list]:
        def dom(get: Getter) -> list:
            k = get("pte.kind")
            if k == pte_kinds["present"]:
                return values
            if k == pte_kinds["protnone"] and protnone is not None:
                return protnone
            return [0]
        return dom
    sp.add(_f("pte.rw", "the PTE is writable", present_bit([_PAGE_RW, 0]), 64))
    sp.add(_f("pte.accessed", "the PTE's Accessed bit", present_bit([_PAGE_ACCESSED, 0], [_PAGE_ACCESSED]), 64))
    sp.add(_f("pte.dirty", "the PTE's Dirty (and soft-dirty) bits", present_bit([0, _PAGE_DIRTY | sd]), 64))
    sp.add(_f("pte.special", "the PTE maps no struct page (the zero page, a PFN mapping)",
              present_bit([0, _PAGE_SPECIAL]), 64))
    sp.add(_f("pte.nx", "the PTE's NX bit", present_bit([0, nx]), 64))
    sp.add_word(WordDecl("pte", 64, (("pte.kind", ALL64),
                                     ("pte.rw", _PAGE_RW), ("pte.accessed", _PAGE_ACCESSED),
                                     ("pte.dirty", _PAGE_DIRTY | sd), ("pte.special", _PAGE_SPECIAL),
                                     ("pte.nx", nx)),
                         doc="the PTE for the address"))

    # --- the environment's answers (sim.spec.EnvSpec) ----------------------------------
    sp.add(_b("env.kmemcheck", "kmemcheck is single-stepping a hidden page / claims the fault", (False, True)))
    sp.add(_b("env.kmmio", "mmiotrace (kmmio) claims the fault", (False, True)))
    sp.add(_b("env.kprobes", "a running kprobe's fault handler claims a kernel-mode fault", (False, True)))
    sp.add(_c("env.die_notifier", "what a die notifier says to an oops", ("continue", "stop")))
    sp.add(_c("env.mmap_sem", "down_read_trylock(mmap_sem): free or contended", ("free", "contended")))
    sp.add(_b("env.is_prefetch", "the faulting instruction is a prefetch (AMD quirk)", (False, True)))
    sp.add(_b("env.errata", "a CPU erratum (K8 93/100, F00F) claims the fault", (False, True)))
    sp.add(_c("env.vsyscall", "vsyscall page handling: emulate, or none",
              ("emulate", "none") if arch == "x86_64" else ("emulate",)))
    sp.add(_c("env.oom", "pagefault_out_of_memory: OOM-killed something, memcg handled it, "
              "oom_lock busy, OOM killer disabled", ("killed", "memcg", "lock_busy", "disabled")))
    sp.add(_b("env.overcommit", "security_vm_enough_memory_mm accepts the stack growth", (True, False)))
    sp.add(_c("env.fault.1", "vm_ops->fault's result on the first handle_mm_fault call", FAULT_RESULTS_MODEL))
    sp.add(_c("env.fault.2", "vm_ops->fault's result on the retry", FAULT_RESULTS_MODEL))
    sp.add(_c("env.page_lock", "lock_page_or_retry's trylock: free or contended", ("free", "contended")))
    sp.add(_b("env.fatal_signal_in_wait", "a fatal signal arrives during a killable wait", (False, True)))
    sp.add(_c("env.swap_cache", "the swap-cache lookup", ("hit", "readahead", "readahead_failed", "hwpoison")))
    sp.add(_b("env.reuse", "we are the only user of the page (reuse instead of copy)", (True, False)))
    sp.add(_b("env.pte_race", "another CPU changed the PTE before the page-table lock was taken", (False, True)))
    sp.add(_c("env.userfault.1", "handle_userfault's result, first call", ("RETRY", "0", "SIGBUS", "MAJOR|RETRY")))
    sp.add(_c("env.userfault.2", "handle_userfault's result on the retry (unused: without "
              "ALLOW_RETRY it returns VM_FAULT_SIGBUS)", ("RETRY",)))
    sp.add(_c("env.hugetlb.1", "hugetlb_fault's result, first call", ("0", "OOM", "SIGBUS", "HWPOISON")))
    sp.add(_c("env.hugetlb.2", "hugetlb_fault's result, on the retry", ("0",)))
    sp.add(_c("env.page_mkwrite", "->page_mkwrite's result", ("LOCKED", "0", "SIGBUS", "NOPAGE")))
    for purpose in ALLOC_PURPOSES:
        sp.add(_b(f"alloc.{purpose}", f"allocating for '{purpose}' fails", (False, True)))

    apply_scope(sp, scope)
    return sp


# Allocation purposes the model asks about (sim.spec EnvSpec.alloc_fail vocabulary).
ALLOC_PURPOSES = ("pud", "pmd", "pte", "anon_vma", "anon_page", "cow_page", "huge_page")


# ---------------------------------------------------------------------------------
# Scopes
# ---------------------------------------------------------------------------------

def _one(sp: Space, **values: Any) -> None:
    """Fix inputs to one value each (``T__kind="anon"`` fixes ``T.kind``)."""
    for name, v in values.items():
        sp.restrict(name.replace("__", "."), [v])


def _addresses(sp: Space, *names: str) -> None:
    sp.restrict("address", [v for n, v in sp.layout.addresses if n in names])


def _no_hooks(sp: Space) -> None:
    _one(sp, env__kmemcheck=False, env__kmmio=False, env__kprobes=False, env__is_prefetch=False,
         env__errata=False, env__die_notifier="continue")


def _no_alloc_failures(sp: Space) -> None:
    for p in ALLOC_PURPOSES:
        sp.restrict(f"alloc.{p}", [False])


def _default_stack_limits(sp: Space) -> None:
    _one(sp, task__rlimit_as="unlimited", task__rlimit_stack="8MiB", task__rlimit_memlock="unlimited",
         task__cap_sys_rawio=False,
         task__cap_ipc_lock=False, env__overcommit=True, T__pgoff="default", T__anon_vma=True)
    sp.restrict("T.flags.locked", [0])


def _anon_none_pte(sp: Space) -> None:
    """The mm layer reduced to an anonymous VMA whose PTE is none (do_anonymous_page)."""
    _one(sp, T__kind="anon")
    sp.restrict("T.flags.shared", [0])
    sp.restrict("T.flags.uffd", [0])
    sp.keep_only("pmd.kind", lambda v: v in (PMD_KINDS["table"], PMD_KINDS["none"]))
    sp.keep_only("pte.kind", lambda v: v == 0)
    sp.restrict("kernel.numa_balancing", [False])
    _one(sp, env__pte_race=False, task__memcg_oom=False, task__fatal_signal=False)
    _no_alloc_failures(sp)


def _scope_handler(sp: Space) -> None:
    """fault.c's decisions: every error code, mode, context, SMAP/AC, IF, lock answer and
    address class, VMA permissions and stack flag; hooks off; the mm layer reduced to a
    none PTE in an anonymous VMA; default stack limits."""
    _no_hooks(sp)
    _anon_none_pte(sp)
    _default_stack_limits(sp)
    sp.restrict("T.flags.rwx", [VM_READ | VM_WRITE, VM_READ, 0, VM_WRITE, VM_EXEC])
    sp.restrict("env.vsyscall", ["emulate"])


def _scope_stack(sp: Space) -> None:
    """Stack growth: every limit, capability and anon_vma answer at the addresses around
    a stack VMA, for plain reads and writes from user and kernel mode."""
    _no_hooks(sp)
    _anon_none_pte(sp)
    _addresses(sp, "page0", "above_A", "above_A_gap", "stack_far", "stack_near", "T_lowest")
    _one(sp, cpu__smap=False, task__context="normal", task__has_mm=True, env__mmap_sem="free")
    sp.restrict("regs.IF", lambda get: [True])
    sp.restrict("ec.P", [0])
    sp.restrict("ec.RSVD", [0])
    sp.restrict("ec.I", [0])
    sp.restrict("ec.U", lambda get: [PF_USER] if get("user_mode") else [0])
    sp.restrict("T.flags.rwx", [VM_READ | VM_WRITE])
    sp.restrict("T.flags.growsdown", [VM_GROWSDOWN])
    sp.restrict("alloc.anon_vma", [False, True])
    sp.restrict("kernel.seed_expand_stack", [False])


def _scope_seed(sp: Space) -> None:
    """The seed's grows-up expand_stack taken literally (KF 4.1): every growth is refused."""
    _scope_stack(sp)
    _default_stack_limits(sp)
    sp.restrict("kernel.seed_expand_stack", [True])
    sp.restrict("alloc.anon_vma", [False])


def _scope_hooks(sp: Space) -> None:
    """The hooks and quirks (kmemcheck, kmmio, kprobes, prefetch, CPU errata, vsyscall,
    die notifiers) on every error code and mode, at one address of each kind."""
    _anon_none_pte(sp)
    _default_stack_limits(sp)
    _addresses(sp, "page0", "T_inside", "T_end", "kernel_start", "kernel_direct", "vmalloc", "vsyscall")
    _one(sp, task__has_mm=True, env__mmap_sem="free")
    sp.restrict("task.context", ["normal", "interrupt"])
    sp.restrict("regs.IF", lambda get: [True])
    sp.restrict("T.flags.rwx", [VM_READ | VM_WRITE, 0])
    sp.restrict("T.flags.growsdown", [0])


def _scope_mm(sp: Space) -> None:
    """The mm layer in full (VMA kind, pmd and PTE states, every answer of the fault
    handlers, retries, fatal signals, OOM), under a fault.c that reaches handle_mm_fault:
    no hooks, mmap_sem free, normal context, an address inside T."""
    _no_hooks(sp)
    _addresses(sp, "T_inside")
    _one(sp, env__mmap_sem="free", task__context="normal", task__has_mm=True, cpu__smap=False)
    sp.restrict("regs.IF", lambda get: [True])
    sp.restrict("regs.AC", lambda get: [False])
    sp.restrict("ec.RSVD", [0])
    sp.restrict("ec.I", [0])
    sp.restrict("ec.U", lambda get: [PF_USER] if get("user_mode") else [0])
    sp.restrict("T.flags.growsdown", [0])
    sp.restrict("T.flags.locked", [0])
    sp.restrict("T.flags.rwx", [VM_READ | VM_WRITE, VM_READ])
    sp.restrict("pte.nx", lambda get: [0])
    sp.restrict("kernel.numa_balancing", [True] if sp.arch == "x86_64" else [False])
    sp.restrict("env.fault.2", ["0", "MAJOR", "RETRY", "OOM"])
    sp.restrict("pt.upper", lambda get: ["pgd_none"] if sp.arch == "x86_64" and not in_t(sp, get) else ["present"])
    _no_alloc_failures(sp)


def _scope_thp(sp: Space) -> None:
    """Transparent huge pages on: a none pmd in an anonymous or file VMA, with every
    allocation of the huge-page path failing or not."""
    _scope_mm(sp)
    _one(sp, kernel__thp="always", env__pte_race=False, task__memcg_oom=False, task__fatal_signal=False)
    sp.restrict("T.kind", ["anon", "file"])
    sp.restrict("T.flags.uffd", lambda get: [0])
    sp.restrict("T.flags.shared", [0])
    sp.keep_only("pmd.kind", lambda v: v == PMD_KINDS["none"])
    sp.restrict("env.fault.1", ["0"])
    for p in ("pte", "anon_vma", "huge_page"):
        sp.restrict(f"alloc.{p}", [False, True])
    sp.restrict("T.anon_vma", [True, False])


def _scope_alloc(sp: Space) -> None:
    """Every allocation of the fault path failing or not, on none PTEs."""
    _scope_mm(sp)
    sp.restrict("user_mode", [True])
    sp.restrict("ec.P", [0])
    sp.keep_only("pmd.kind", lambda v: v in (PMD_KINDS["table"], PMD_KINDS["none"]))
    sp.keep_only("pte.kind", lambda v: v in (0, PTE_PRESENT))
    sp.restrict("pte.special", lambda get: [0])
    _one(sp, env__pte_race=False, task__memcg_oom=False, task__fatal_signal=False,
         env__reuse=False, env__page_lock="free")
    sp.restrict("env.fault.1", ["0"])
    for p in ALLOC_PURPOSES:
        sp.restrict(f"alloc.{p}", [False, True])
    sp.restrict("T.anon_vma", [True, False])
    sp.restrict("pt.upper", sp.full["pt.upper"].domain)


SCOPES: dict[str, tuple[str, Callable[[Space], None] | None]] = {
    "handler": ("fault.c in full; the mm layer reduced to a none PTE in an anonymous VMA", _scope_handler),
    "stack": ("stack growth: every limit and capability around a stack VMA", _scope_stack),
    "seed": ("the seed's grows-up expand_stack, taken literally", _scope_seed),
    "hooks": ("kmemcheck, kmmio, kprobes, prefetch, errata, vsyscall, die notifiers", _scope_hooks),
    "mm": ("the mm layer in full, under a fault.c that reaches handle_mm_fault", _scope_mm),
    "alloc": ("every page-table, anon_vma and page allocation failing or not", _scope_alloc),
    "thp": ("transparent huge pages on: huge page faults and their fallbacks", _scope_thp),
    "full": ("every input over its whole domain (very large: for targeted runs)", None),
}
DEFAULT_SCOPES = ("handler", "stack", "hooks", "mm", "alloc", "seed", "thp")


def apply_scope(sp: Space, scope: str) -> None:
    if scope not in SCOPES:
        raise KeyError(f"unknown scope {scope!r}; expected one of {', '.join(SCOPES)}")
    fn = SCOPES[scope][1]
    if fn is not None:
        _one(sp, cpu__smep=True, cpu__nx=True)
        if scope != "seed":
            sp.restrict("kernel.seed_expand_stack", [False])
        if scope != "thp":
            sp.restrict("kernel.thp", ["never"])
        fn(sp)


def in_t(sp: Space, get: Getter) -> bool:
    """Is the address inside T (as the layout has it, before any growth)?"""
    t = sp.layout.vma("T")
    return t.start <= get("address") < t.end
