"""Build a real machine from a ``MachineSpec``: page tables in PhysMem, VMAs with their
vm_page_prot, the task, the registers, the CPU, init_mm with the kernel mappings.

Everything a MachineSpec can get wrong that makes the machine impossible is a
``ScenarioError`` naming the field.  The build writes memory directly (it is the
state before the fault, not something the handler did) and records no trace.
"""

from __future__ import annotations

from ..errors import ScenarioError
from ..x86.constants import (
    _KERNPG_TABLE,
    _PAGE_PRESENT,
    _PAGE_PSE,
    _PAGE_TABLE,
    PAGE_SHIFT,
    PAGE_SIZE,
    X86_EFLAGS_AC,
    X86_EFLAGS_IF,
    X86_EFLAGS_VM,
)
from ..x86.memory import PhysMem
from ..x86.mmu import CpuState
from ..x86.paging import ARCHES, Arch
from . import pgtable
from .constants import (
    KERNEL_CS,
    SIGKILL,
    START_KERNEL_MAP_64,
    TASK_SIZE_MAX,
    USER_CS,
    VM_EXEC,
    VM_GROWSDOWN,
    VM_HUGETLB,
    VM_LOCKED,
    VM_SHARED,
    VM_WRITE,
)
from .env import Env
from .spec import EntrySpec, MachineSpec, VmaSpec
from .state import (
    Cpu,
    KernelConfig,
    Machine,
    MmStruct,
    PtRegs,
    TaskStruct,
    VmAreaStruct,
    VmOps,
    installed,
)

# Default instruction pointers: user text, kernel text (no exception-table entry).
USER_TEXT_IP = {"x86_64": 0x400000, "i386-pae": 0x08048000, "i386": 0x08048000}
KERNEL_TEXT_IP = {"x86_64": START_KERNEL_MAP_64 + 0x1000000, "i386-pae": 0xC1000000, "i386": 0xC1000000}
# Where exception-table fixups jump to (the .fixup section); entry i fixes up to base + 16*i.
FIXUP_BASE = {"x86_64": START_KERNEL_MAP_64 + 0x2000000, "i386-pae": 0xC2000000, "i386": 0xC2000000}

LEVEL_NAMES = ("pgd", "pud", "pmd", "pte")


def _err(what: str, where: str, why: str = "", todo: str = "") -> ScenarioError:
    return ScenarioError(what, why, todo, where=where)


def hw_levels(arch: Arch) -> tuple[str, ...]:
    """The levels the hardware walks, top-down, named as the kernel names them."""
    return {4: ("pgd", "pud", "pmd", "pte"), 3: ("pgd", "pmd", "pte"), 2: ("pgd", "pte")}[arch.levels]


def resolve_level(arch: Arch, level: str) -> str:
    """A folded level is the entry above it: PAE pud = pgd (PDPTE); 2-level pud, pmd = pgd."""
    if level in hw_levels(arch):
        return level
    if level == "pud":
        return "pgd"
    return "pgd"  # "pmd" on 2-level


def _index(arch: Arch, level: str, address: int) -> int:
    return {"pgd": arch.pgd_index, "pud": arch.pud_index, "pmd": arch.pmd_index,
            "pte": arch.pte_index}[level](address)


def is_leaf(arch: Arch, level: str, value: int) -> bool:
    """Nothing can exist below this entry: it is not present or it maps a large page."""
    if not value & _PAGE_PRESENT:
        return True
    if level == "pte":
        return True
    large_here = (level in ("pud", "pmd")) or (level == "pgd" and arch.levels == 2)
    return large_here and bool(value & _PAGE_PSE)


class _Builder:
    def __init__(self, spec: MachineSpec) -> None:
        self.spec = spec
        try:
            self.arch = ARCHES[spec.arch]
        except KeyError:
            raise _err(f"unknown architecture {spec.arch!r}", "arch",
                       todo=f"use one of: {', '.join(ARCHES)}") from None
        self.mem = PhysMem(entry_bytes=self.arch.entry_bytes)
        self.task_size = TASK_SIZE_MAX[spec.arch]

    # -- validation helpers -----------------------------------------------------------
    def check_address(self, address: int, where: str) -> None:
        arch = self.arch
        if not isinstance(address, int) or address < 0 or address > arch.word_mask:
            raise _err(f"address {address!r} is outside the {arch.word_bits}-bit address space", where,
                       todo=f"give a value in 0..{arch.word_mask:#x}")
        if not arch.is_canonical(address):
            raise _err(f"address {address:#x} is not canonical", where,
                       "x86-64 addresses must have bits 63..47 all equal; a non-canonical access is #GP, "
                       "not a page fault",
                       "use an address below 0x0000800000000000 or at/above 0xffff800000000000")

    def alloc_table(self, purpose: str) -> int:
        pfn = self.mem.alloc_page(purpose)
        assert pfn is not None  # no failures are injected while building
        return pfn

    def link_value(self, level: str, pfn: int, kernel: bool) -> int:
        if self.arch.levels == 3 and level == "pgd":
            return (pfn << PAGE_SHIFT) | _PAGE_PRESENT      # PAE PDPTE: address | P
        return (pfn << PAGE_SHIFT) | (_KERNPG_TABLE if kernel else _PAGE_TABLE)

    def count_table(self, mm: MmStruct | None, below: str) -> None:
        """A table was created below an entry at level ``below``: count pte/pmd pages."""
        if mm is None:
            return
        child = hw_levels(self.arch)[hw_levels(self.arch).index(below) + 1]
        if child == "pte":
            mm.nr_ptes += 1
        elif child == "pmd":
            mm.nr_pmds += 1

    def handler_may_walk(self, address: int, span: int) -> bool:
        """Could the mm layer walk this range: a VMA overlaps it, or a stack VMA above may grow into it?"""
        lo = address & ~(span - 1)
        hi = lo + span
        return any((v.start < hi and lo < v.end) or (v.flags & VM_GROWSDOWN and v.start >= hi)
                   for v in self.spec.vmas)

    def install(self, root: int, entry: EntrySpec, where: str, mm: MmStruct | None, kernel: bool) -> None:
        arch = self.arch
        if entry.level not in LEVEL_NAMES:
            raise _err(f"unknown level {entry.level!r}", f"{where}.level", todo="use pgd, pud, pmd or pte")
        if not isinstance(entry.value, int) or entry.value < 0 or entry.value > arch.entry_mask:
            raise _err(f"entry value {entry.value!r} does not fit a {8 * arch.entry_bytes}-bit entry",
                       f"{where}.value")
        target = resolve_level(arch, entry.level)
        table = root
        for level in hw_levels(arch):
            ptr = table * PAGE_SIZE + _index(arch, level, entry.address) * arch.entry_bytes
            current = self.mem.read_entry(ptr)
            if level == target:
                value = entry.value
                upper = level == "pud" or (level == "pgd" and arch.levels > 2)
                if upper and value and not value & _PAGE_PRESENT:
                    # 4.4 never leaves a non-zero, non-present pgd or pud (no swap or
                    # migration entries above the pmd); the walkers would follow it.
                    raise _err(f"a non-present {level} entry must be 0, not {value:#x}", f"{where}.value",
                               "Linux 4.4 keeps swap, migration and PROT_NONE entries at pte or pmd level only",
                               f"give 0 or a present {level} entry")
                if (level == "pud" and not kernel and value & _PAGE_PRESENT and value & _PAGE_PSE
                        and self.handler_may_walk(entry.address, 1 << arch.pud_shift)):
                    raise _err(f"a 1 GiB user page (pud {value:#x}) under a VMA is not modelled",
                               f"{where}.value",
                               "pfmodel's mm walks model user huge pages at pmd level (THP, 2 MiB hugetlb)",
                               "map the range with huge pmd entries, or keep VMAs out of this 1 GiB")
                if not is_leaf(arch, level, value):
                    frame = (value & arch.pte_pfn_mask) >> PAGE_SHIFT
                    if frame == 0:
                        value |= self.alloc_table("table") << PAGE_SHIFT
                        self.count_table(mm, level)
                    elif not (self.mem.is_page(frame) and self.mem.purposes.get(frame) not in ("zero_page",)):
                        raise _err(f"the {level} entry {value:#x} links to frame {frame:#x}, which is not a "
                                   "page table", f"{where}.value",
                                   "a present table link points at the next table",
                                   "give the link with frame 0: pfmodel allocates the table and fills it in")
                self.mem.write_entry(ptr, value)
                return
            if current == 0:
                pfn = self.alloc_table("table")
                self.mem.write_entry(ptr, self.link_value(level, pfn, kernel))
                self.count_table(mm, level)
                table = pfn
                continue
            if is_leaf(arch, level, current):
                raise _err(f"no {target} can exist for address {entry.address:#x}: the {level} entry above "
                           f"it is {current:#x} (not present or a large page)", where,
                           "page tables below a non-present or large entry do not exist",
                           "drop this entry or the one above it")
            table = (current & arch.pte_pfn_mask) >> PAGE_SHIFT
        raise AssertionError("unreachable: the target level is always on the walk")

    def count_rss(self, mm: MmStruct, entry: EntrySpec) -> None:
        """The RSS counters of the pages the scenario mapped (and of its swap entries)."""
        if not entry.value:
            return
        vma = next((v for v in mm.mmap if v.vm_start <= entry.address < v.vm_end), None)
        if pgtable.pte_present(entry.value):
            if pgtable.pte_special(entry.value):
                return  # the zero page and PFN maps are not counted
            mm.rss["MM_FILEPAGES" if vma is not None and vma.vm_file else "MM_ANONPAGES"] += 1
        elif not pgtable.non_swap_entry(pgtable.pte_to_swp_entry(entry.value)):
            mm.rss["MM_SWAPENTS"] += 1

    # -- pieces ------------------------------------------------------------------------------
    def vmas(self, mm: MmStruct) -> None:
        arch = self.arch
        order = sorted(range(len(self.spec.vmas)), key=lambda i: self.spec.vmas[i].start)
        prev: VmaSpec | None = None
        prev_i = -1
        for i in order:
            v = self.spec.vmas[i]
            where = f"vmas[{i}]"
            for name in ("start", "end"):
                value = getattr(v, name)
                if not isinstance(value, int) or value < 0:
                    raise _err(f"{name} {value!r} is not an address", f"{where}.{name}")
                if value % PAGE_SIZE:
                    raise _err(f"{name} {value:#x} is not page-aligned", f"{where}.{name}",
                               "VMAs cover whole pages", f"round to {value & ~0xFFF:#x}")
            if v.start >= v.end:
                raise _err(f"start {v.start:#x} is not below end {v.end:#x}", f"{where}.end",
                           todo="give end > start")
            if v.end > self.task_size:
                raise _err(f"end {v.end:#x} is above TASK_SIZE_MAX {self.task_size:#x}", f"{where}.end",
                           "VMAs live in the user half of the address space")
            if v.kind not in ("anon", "file", "hugetlb"):
                raise _err(f"unknown kind {v.kind!r}", f"{where}.kind", todo="use anon, file or hugetlb")
            if not isinstance(v.flags, int) or v.flags < 0 or v.flags > arch.word_mask:
                raise _err(f"flags {v.flags!r} do not fit vm_flags", f"{where}.flags")
            if prev is not None and prev.end > v.start:
                raise _err(f"VMA [{v.start:#x}, {v.end:#x}) overlaps vmas[{prev_i}] "
                           f"[{prev.start:#x}, {prev.end:#x})", f"{where}.start",
                           "VMAs of one mm never overlap", "move or shrink one of them")
            prev, prev_i = v, i
            flags = v.flags | (VM_HUGETLB if v.kind == "hugetlb" else 0)
            if v.kind == "anon":
                ops = None
            elif v.kind == "hugetlb":
                ops = VmOps("hugetlb_vm_ops")
            else:
                ops = VmOps("file", fault=v.fault_handler, page_mkwrite=v.page_mkwrite)
            pgoff = (v.start >> PAGE_SHIFT) if v.pgoff is None else v.pgoff
            if pgoff < 0:
                raise _err(f"pgoff {pgoff} is negative", f"{where}.pgoff")
            prot_flags = flags
            # Shared writable mappings that track dirtying start read-only (write notify, KF 1.1).
            if ops is not None and ops.page_mkwrite and flags & (VM_WRITE | VM_SHARED) == VM_WRITE | VM_SHARED:
                prot_flags &= ~VM_SHARED
            vma = VmAreaStruct(vm_start=v.start, vm_end=v.end, vm_flags=flags, vm_pgoff=pgoff,
                               vm_page_prot=pgtable.vm_get_page_prot(prot_flags), vm_ops=ops,
                               anon_vma=v.anon_vma, vm_mm=mm, name=v.name or f"vma{i}",
                               vm_file=v.kind != "anon")
            mm.mmap.append(vma)
            pages = (v.end - v.start) >> PAGE_SHIFT
            mm.total_vm += pages
            if vma.vm_file:
                mm.shared_vm += pages
                if flags & VM_EXEC and not flags & VM_WRITE:
                    mm.exec_vm += pages
            elif flags & VM_GROWSDOWN:
                mm.stack_vm += pages
            if flags & VM_LOCKED:
                mm.locked_vm += pages
            mm.highest_vm_end = max(mm.highest_vm_end, v.end)

    def build(self) -> Machine:
        spec, arch, mem = self.spec, self.arch, self.mem
        acc = spec.access
        self.check_address(acc.address, "access.address")
        if acc.kind not in ("read", "write", "fetch"):
            raise _err(f"unknown access kind {acc.kind!r}", "access.kind", todo="use read, write or fetch")
        if acc.mode not in ("user", "kernel"):
            raise _err(f"unknown mode {acc.mode!r}", "access.mode", todo="use user or kernel")
        if acc.implicit and (acc.mode != "user" or acc.kind == "fetch"):
            raise _err("an implicit supervisor access must be a user-mode read or write", "access.implicit",
                       "implicit accesses are the CPU reading system structures for a CPL-3 instruction")
        if acc.error_code is not None and (not isinstance(acc.error_code, int) or not 0 <= acc.error_code < 1 << 16):
            raise _err(f"error code {acc.error_code!r} is not a 16-bit value", "access.error_code")
        if spec.max_faults < 1:
            raise _err(f"max_faults is {spec.max_faults}", "max_faults", todo="give at least 1")
        if spec.regs.vm86 and (arch.word_bits != 32 or acc.mode != "user"):
            raise _err("vm86 mode exists only for user mode on 32-bit kernels", "regs.vm86")
        if spec.kernel.numa_balancing and arch.name != "x86_64":
            raise _err("NUMA balancing is x86-64 only", "kernel.numa_balancing",
                       "CONFIG_NUMA_BALANCING is not available on 32-bit x86 (KF 0.3)")
        if spec.kernel.thp not in ("always", "madvise", "never"):
            raise _err(f"unknown THP mode {spec.kernel.thp!r}", "kernel.thp", todo="use always, madvise or never")
        for name in ("ip", "sp"):
            value = getattr(spec.regs, name)
            if value is not None and (not isinstance(value, int) or not 0 <= value <= arch.word_mask):
                raise _err(f"{name} {value!r} does not fit a {arch.word_bits}-bit register", f"regs.{name}")
        env = Env(spec.env)

        user = acc.mode == "user"
        flags = spec.regs.flags | 0x2 | (X86_EFLAGS_VM if spec.regs.vm86 else 0)
        cpl = 3 if user else 0
        state = CpuState.make(arch, cpl=cpl, wp=spec.cpu.wp, smep=spec.cpu.smep, smap=spec.cpu.smap,
                              nx=spec.cpu.nx, ac=bool(flags & X86_EFLAGS_AC), if_=bool(flags & X86_EFLAGS_IF))

        init_mm = MmStruct(pgd=self.alloc_table("pgd") * PAGE_SIZE, name="init_mm")
        mm = MmStruct(pgd=self.alloc_table("pgd") * PAGE_SIZE, name="mm")
        zero_pfn = self.alloc_table("zero_page")
        config = KernelConfig(mmap_min_addr=spec.kernel.mmap_min_addr, thp=spec.kernel.thp,
                              numa_balancing=spec.kernel.numa_balancing,
                              exception_table=tuple(sorted(set(spec.kernel.exception_table))),
                              seed_expand_stack=spec.kernel.seed_expand_stack,
                              fixup_base=FIXUP_BASE[arch.name])
        cpu = Cpu(cr0=state.cr0, cr2=0, cr3=mm.pgd, cr4=state.cr4, efer=state.efer,
                  irqs_enabled=bool(flags & X86_EFLAGS_IF))
        t = spec.task
        task = TaskStruct(comm="pfmodel", mm=mm if t.has_mm else None, active_mm=mm,
                          pagefault_disabled=t.pagefault_disabled, preempt_count=t.preempt_count,
                          hardirq=t.in_interrupt, memcg_in_oom=t.memcg_oom, rlimit_stack=t.rlimit_stack,
                          rlimit_as=t.rlimit_as, rlimit_memlock=t.rlimit_memlock,
                          cap_sys_rawio=t.cap_sys_rawio, cap_ipc_lock=t.cap_ipc_lock, vm86=spec.regs.vm86)
        if t.fatal_signal_pending:
            task.pending.add(SIGKILL)
            task.tif_sigpending = True
        regs = PtRegs(ip=0, sp=0, cs=USER_CS[arch.name] if user else KERNEL_CS[arch.name], flags=flags)
        m = Machine(arch=arch, mem=mem, cpu=cpu, regs=regs, current=task, init_mm=init_mm, config=config,
                    env=env, zero_pfn=zero_pfn)

        with installed(m):
            self.vmas(mm)
            # init_mm: the kernel half.  PAE shares one kernel pmd page (SHARED_KERNEL_PMD).
            if arch.levels == 3:
                kpmd = self.alloc_table("table")
                mem.write_entry(init_mm.pgd + 3 * 8, (kpmd << PAGE_SHIFT) | _PAGE_PRESENT)
            for i in sorted(range(len(spec.kernel.kernel_mappings)),
                            key=lambda i: LEVEL_NAMES.index(spec.kernel.kernel_mappings[i].level)
                            if spec.kernel.kernel_mappings[i].level in LEVEL_NAMES else 0):
                e = spec.kernel.kernel_mappings[i]
                where = f"kernel.kernel_mappings[{i}]"
                self.check_address(e.address, f"{where}.address")
                if e.address < self.task_size:
                    raise _err(f"address {e.address:#x} is in the user half", f"{where}.address",
                               "init_mm holds the kernel's own mappings",
                               f"give a kernel address (>= {self.task_size:#x}); user pages go in 'entries'")
                self.install(init_mm.pgd >> PAGE_SHIFT, e, where, None, kernel=True)
            # The task's pgd: PAE preallocates the user pmds and shares the kernel one;
            # elsewhere the kernel-half top-level entries are copied when synced.
            boundary = arch.pgd_index(self.task_size)
            if arch.levels == 3:
                for idx in range(boundary):
                    pmd = self.alloc_table("table")
                    mem.write_entry(mm.pgd + idx * 8, (pmd << PAGE_SHIFT) | _PAGE_PRESENT)
                    mm.nr_pmds += 1
                mem.write_entry(mm.pgd + 3 * 8, mem.read_entry(init_mm.pgd + 3 * 8))
            elif spec.kernel.kernel_synced:
                for idx in range(boundary, arch.ptrs_per_pgd):
                    value = mem.read_entry(init_mm.pgd + idx * arch.entry_bytes)
                    if value:
                        mem.write_entry(mm.pgd + idx * arch.entry_bytes, value)
            for i in sorted(range(len(spec.entries)),
                            key=lambda i: LEVEL_NAMES.index(spec.entries[i].level)
                            if spec.entries[i].level in LEVEL_NAMES else 0):
                e = spec.entries[i]
                where = f"entries[{i}]"
                self.check_address(e.address, f"{where}.address")
                if e.address >= self.task_size:
                    raise _err(f"address {e.address:#x} is in the kernel half", f"{where}.address",
                               "entries are the task's user page tables",
                               "put kernel mappings in kernel.kernel_mappings")
                self.install(mm.pgd >> PAGE_SHIFT, e, where, mm, kernel=False)
                if resolve_level(arch, e.level) == "pte":
                    self.count_rss(mm, e)

        regs.ip = spec.regs.ip if spec.regs.ip is not None else (
            USER_TEXT_IP if user else KERNEL_TEXT_IP)[arch.name]
        if spec.regs.sp is not None:
            regs.sp = spec.regs.sp
        else:
            stacks = [v.vm_end for v in mm.mmap if v.vm_flags & VM_GROWSDOWN]
            regs.sp = max(stacks) if stacks else 0
        mem.fail = set(spec.env.alloc_fail)
        mem.fail_once = set(spec.env.alloc_fail_once)
        return m


def build(spec: MachineSpec) -> Machine:
    """A Machine for ``spec``, not installed.  Raises ScenarioError for impossible specs."""
    return _Builder(spec).build()


def cpu_state(m: Machine, spec: MachineSpec) -> CpuState:
    """The register state the MMU sees when the access (re-)executes."""
    user = spec.access.mode == "user"
    return CpuState.make(m.arch, cpl=3 if user else 0, wp=spec.cpu.wp, smep=spec.cpu.smep,
                         smap=spec.cpu.smap, nx=spec.cpu.nx, ac=bool(m.regs.flags & X86_EFLAGS_AC),
                         if_=bool(m.regs.flags & X86_EFLAGS_IF))
