"""Concretization: an abstract path's input bindings become the simulator's MachineSpec.

Inputs a path never read take their *default* (the first value of their domain, given
the other inputs): they did not influence the path, so any value would do, and the
default is the most ordinary one.  The resulting spec gives ``access.error_code``
directly, so the simulator's first fault uses exactly the model's error code; the
access kind (read / write / fetch) and the implicit flag are derived from it for the
re-executions.
"""

from __future__ import annotations

from typing import Any

from ..scenario import KERNEL_TEXT_IP
from ..sim.spec import (
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
from ..x86.constants import PAGE_SIZE, PF_INSTR, PF_USER, PF_WRITE, X86_EFLAGS_AC, X86_EFLAGS_IF
from .inputs import (
    ALLOC_PURPOSES,
    MMAP_MIN_ADDR,
    PMD_KINDS,
    RLIM_INFINITY,
    RLIMIT_STACK,
    NeedInput,
    Space,
)

# preempt_count() values for the task contexts (HARDIRQ_OFFSET for an interrupt).
_CONTEXT = {
    "normal": (0, 0, False),
    "pagefault_disabled": (1, 0, False),
    "atomic": (0, 1, False),
    "interrupt": (0, 0x10000, True),
}


class Resolver:
    """Values of every input: the bound ones, and defaults for the rest."""

    def __init__(self, space: Space, bindings: dict[str, Any]) -> None:
        self.space = space
        self.values = dict(bindings)

    def __call__(self, name: str) -> Any:
        try:
            return self.values[name]
        except KeyError:
            pass
        domain = self.space.domain(name, self)
        value = domain[0]
        self.values[name] = value
        return value

    def word(self, name: str) -> int:
        decl = self.space.words[name]
        value = decl.fixed
        for gname, _ in decl.groups:
            value |= self(gname)
        return value

    def bound(self, name: str) -> bool:
        return name in self.values


def _memlock(r: Resolver) -> int:
    """RLIMIT_MEMLOCK: 0 when exhausted; when unlimited, RLIM_INFINITY if it could matter
    (T is VM_LOCKED), else the ordinary default."""
    if r("task.rlimit_memlock") == "exhausted":
        return 0
    if r.bound("T.flags.locked") and r("T.flags.locked"):
        return RLIM_INFINITY
    return TaskSpec().rlimit_memlock


def concretize(space: Space, bindings: dict[str, Any], *, calls: int = 1, max_faults: int = 4) -> MachineSpec:
    """The MachineSpec of a path.  ``calls``: how many handle_mm_fault calls the path
    made (the per-call environment lists get that many answers)."""
    r = Resolver(space, bindings)
    lay = space.layout
    arch = space.arch
    user = bool(r("user_mode"))
    ec = r.word("error_code")
    address = r("address")
    if ec & PF_WRITE:
        kind = "write"
    elif ec & PF_INSTR:
        kind = "fetch"
    else:
        kind = "read"
    implicit = user and not (ec & PF_USER) and kind != "fetch"
    access = AccessSpec(address=address, kind=kind, mode="user" if user else "kernel",
                        implicit=implicit, error_code=ec)

    flags = 0x2
    if r("regs.IF"):
        flags |= X86_EFLAGS_IF
    if r("regs.AC"):
        flags |= X86_EFLAGS_AC
    exception_table: list[int] = []
    ip = None
    if not user:
        ip = KERNEL_TEXT_IP[arch]
        if r("extable"):
            exception_table.append(ip)
    sp = r("sp") if r.bound("sp") else None
    regs = RegsSpec(ip=ip, sp=sp, flags=flags)

    cpu = CpuSpec(smap=bool(r("cpu.smap")), smep=bool(r("cpu.smep")), nx=bool(r("cpu.nx")))
    pf_disabled, preempt, in_irq = _CONTEXT[r("task.context")]
    has_mm = bool(r("task.has_mm"))
    task = TaskSpec(
        has_mm=has_mm, pagefault_disabled=pf_disabled, preempt_count=preempt, in_interrupt=in_irq,
        fatal_signal_pending=bool(r("task.fatal_signal")), memcg_oom=bool(r("task.memcg_oom")),
        rlimit_stack=RLIMIT_STACK if r("task.rlimit_stack") == "8MiB" else RLIM_INFINITY,
        rlimit_as=None if r("task.rlimit_as") == "unlimited" else 0,
        rlimit_memlock=_memlock(r),
        cap_sys_rawio=bool(r("task.cap_sys_rawio")), cap_ipc_lock=bool(r("task.cap_ipc_lock")),
    )

    kernel_mappings: list[EntrySpec] = []
    if address >= lay.task_size_max and r.bound("kpte.present"):
        kpte = r.word("kpte")
        if kpte:
            kernel_mappings.append(EntrySpec(address & ~(PAGE_SIZE - 1) & lay.mask, kpte, "pte"))
    kernel = KernelSpec(mmap_min_addr=MMAP_MIN_ADDR, thp=r("kernel.thp"),
                        numa_balancing=bool(r("kernel.numa_balancing")),
                        seed_expand_stack=bool(r("kernel.seed_expand_stack")),
                        exception_table=exception_table, kernel_mappings=kernel_mappings)

    vmas: list[VmaSpec] = []
    entries: list[EntrySpec] = []
    if has_mm:
        for v in lay.vmas:
            if v.name == "T":
                kind_t = r("T.kind")
                vmas.append(VmaSpec(
                    start=v.start, end=v.end, flags=r.word("T.flags"), kind=kind_t,
                    pgoff=0 if r("T.pgoff") == "zero" else None, anon_vma=bool(r("T.anon_vma")),
                    fault_handler=bool(r("T.fault_handler")), page_mkwrite=bool(r("T.page_mkwrite")),
                    name="T"))
            else:
                vmas.append(VmaSpec(start=v.start, end=v.end, flags=r.word(v.flags), name=v.name))
        t = lay.vma("T")
        if t.start <= address < t.end and r("T.kind") != "hugetlb":
            pmd_kind = r("pmd.kind")
            page = address & ~(PAGE_SIZE - 1)
            upper = r("pt.upper")
            if upper == "pgd_none":
                pass                               # nothing maps the address: the pgd entry is none
            elif upper == "pud_none":
                entries.append(EntrySpec(page, 0, "pud"))
            elif pmd_kind == PMD_KINDS["table"]:
                entries.append(EntrySpec(page, r.word("pte"), "pte"))
            else:
                entries.append(EntrySpec(page, r.word("pmd"), "pmd"))

    n = max(1, min(calls, 2))

    def per_call(what: str) -> list[str]:
        return [r(f"env.{what}.{k}") for k in range(1, n + 1)]

    env = EnvSpec(
        mmap_sem=r("env.mmap_sem"), kmemcheck=bool(r("env.kmemcheck")), kmmio=bool(r("env.kmmio")),
        kprobes=bool(r("env.kprobes")),
        alloc_fail=sorted(p for p in ALLOC_PURPOSES if r(f"alloc.{p}")),
        fault=per_call("fault"), page_lock=r("env.page_lock"),
        fatal_signal_in_wait=bool(r("env.fatal_signal_in_wait")), die_notifier=r("env.die_notifier"),
        oom=r("env.oom"), swap_cache=r("env.swap_cache"), reuse=bool(r("env.reuse")),
        userfault=per_call("userfault"), hugetlb=per_call("hugetlb"), page_mkwrite=r("env.page_mkwrite"),
        overcommit=bool(r("env.overcommit")), is_prefetch=bool(r("env.is_prefetch")),
        errata=bool(r("env.errata")), vsyscall=r("env.vsyscall"), pte_race=bool(r("env.pte_race")),
    )
    return MachineSpec(access=access, arch=arch, regs=regs, cpu=cpu, task=task, kernel=kernel,
                       vmas=vmas, entries=entries, env=env, max_faults=max_faults)


__all__ = ["concretize", "Resolver", "NeedInput"]
