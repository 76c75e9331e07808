"""Build the 4.4 scenario (a ``MachineSpec``) for one oracle case.

The kernel chooses the addresses, so the scenario is built from the case *and* the
probe's observation of the layout before the access: every VMA of the probe process
(from /proc/self/maps), the target VMA's flags as the mapping really has them, the
page-table entry the pre-state implies under Linux 4.4's rules (KF 1.1: protection_map,
pte_modify; KF 2.4.7: the zero page), the task's sp and RLIMIT_STACK, and the CPU's
features.  Syscall cases become kernel-mode accesses from an ip with an
exception-table entry (a ``copy_*_user``), with EFLAGS.AC set as ``stac`` leaves it.
"""

from __future__ import annotations

from ..sim.constants import (
    PAGE_KERNEL_RO,
    PAGE_KERNEL_RX,
    PAGE_NONE,
    PROTECTION_MAP,
    VM_EXEC,
    VM_GROWSDOWN,
    VM_MAYEXEC,
    VM_MAYREAD,
    VM_MAYSHARE,
    VM_MAYWRITE,
    VM_READ,
    VM_SHARED,
    VM_STACK_FLAGS,
    VM_WRITE,
)
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
from ..x86.constants import (
    _PAGE_TABLE,
    _PAGE_ACCESSED,
    _PAGE_DIRTY,
    _PAGE_PRESENT,
    _PAGE_PROTNONE,
    _PAGE_RW,
    _PAGE_SPECIAL,
    _PAGE_USER,
    PAGE_SHIFT,
    PAGE_SIZE,
    X86_EFLAGS_AC,
    X86_EFLAGS_IF,
)
from ..x86.paging import X86_64
from .cases import VSYSCALL, Case, writable
from .machine import Machine
from .probe import MapEntry, Observation

# Frames the scenario uses.  The zero page's frame must be the simulator's (is_zero_pfn);
# the others only need to be distinct.
ZERO_PFN_DEFAULT = 0x100
DATA_PFN = 0x2345            # the target's page when the pre-state has one
VSYSCALL_PFN = 0x1FFF        # the vsyscall page's frame
KERNEL_TEXT_PFN = 0x1000     # the kernel text page's frame

# The kernel ip of the user-copy instruction that faults in syscall cases; it has an
# exception-table entry (KF 2.2.20), as every copy_to_user/copy_from_user access does.
UACCESS_IP = 0xFFFFFFFF81400000
USER_IP = 0x0000555555555000
_EFLAGS_FIXED = 0x2          # EFLAGS bit 1 always reads as 1


def prot_vm_flags(prot: str) -> int:
    flags = 0
    if "r" in prot:
        flags |= VM_READ
    if "w" in prot:
        flags |= VM_WRITE
    if "x" in prot:
        flags |= VM_EXEC
    return flags


def perms_vm_flags(perms: str) -> int:
    """vm_flags for a /proc/self/maps line: rwx plus the MAY bits every mmap sets."""
    flags = VM_MAYREAD | VM_MAYWRITE | VM_MAYEXEC
    if perms[0] == "r":
        flags |= VM_READ
    if perms[1] == "w":
        flags |= VM_WRITE
    if perms[2] == "x":
        flags |= VM_EXEC
    if perms[3] == "s":
        flags |= VM_SHARED | VM_MAYSHARE
    return flags


def page_prot(vm_flags: int, write_notify: bool = False) -> int:
    """vm_page_prot (KF 1.1): protection_map, with the private (read-only) entry for a
    shared mapping whose writes must be noticed (write notify)."""
    index = vm_flags & (VM_READ | VM_WRITE | VM_EXEC | VM_SHARED)
    if write_notify:
        index &= ~VM_SHARED
    return PROTECTION_MAP[index]


def _pte_modify(pte: int, prot: int) -> int:
    """What mprotect leaves (KF 1.1 _PAGE_CHG_MASK): frame, A, D and SPECIAL survive,
    the permission bits come from the new protection."""
    keep = X86_64.pte_pfn_mask | _PAGE_ACCESSED | _PAGE_DIRTY | _PAGE_SPECIAL
    return (pte & keep) | prot


class BuildInfo:
    """Facts about the built scenario that the comparison needs (not part of the spec)."""

    def __init__(self) -> None:
        self.pte_before: int | None = None   # the target's PTE as the scenario sets it
        self.target_vma: tuple[int, int] | None = None
        self.growsdown_start: int | None = None  # the stack VMA the case may grow, before
        self.growsdown_end: int | None = None
        self.notes: list[str] = []


def target_flags(case: Case) -> int:
    """The vm_flags the probe's mapping really has."""
    flags = prot_vm_flags(case.prot) | VM_MAYREAD | VM_MAYWRITE | VM_MAYEXEC
    if case.share == "shared":
        flags |= VM_SHARED | VM_MAYSHARE
    return flags


def pre_state_pte(case: Case, vm_flags: int, write_notify: bool, zero_pfn: int) -> int:
    """The target's PTE after the case's pre-state steps, by Linux 4.4's rules."""
    state = case.pre_state
    shared = case.share == "shared"
    anon_private = case.map == "anon" and not shared
    prot = page_prot(vm_flags, write_notify)
    data = DATA_PFN << PAGE_SHIFT
    if state in ("untouched", "dontneed", "beyond_eof"):
        return 0                                     # pte_none (DONTNEED zaps it)
    if state == "read":
        if anon_private:
            # do_anonymous_page: the zero page, special, with vm_page_prot (read-only)
            return (zero_pfn << PAGE_SHIFT) | prot | _PAGE_SPECIAL
        return data | prot                           # a page-cache (or shmem) page
    if state == "written":
        # do_anonymous_page / do_cow_fault / do_shared_fault: writable and dirty
        return data | prot | _PAGE_RW | _PAGE_DIRTY
    # The remaining states start from a page written under the creation protection.
    created = prot_vm_flags(case.mprot or case.prot) | (vm_flags & (VM_SHARED | VM_MAYSHARE))
    pte = data | page_prot(created, write_notify) | _PAGE_RW | _PAGE_DIRTY
    for step in case.pre:
        if step.startswith("mprotect:"):
            new = prot_vm_flags(step.split(":", 1)[1]) | (vm_flags & (VM_SHARED | VM_MAYSHARE))
            pte = _pte_modify(pte, page_prot(new, write_notify))
        elif step == "fork" and not shared:
            pte &= ~_PAGE_RW                         # copy_one_pte write-protects a COW mapping
        elif step == "forkexit" and not shared:
            pte &= ~_PAGE_RW
    if state in ("fork", "forkexit", "mprotect"):
        return pte
    raise ValueError(f"unknown pre-state {state!r}")


def _vma_from_map(entry: MapEntry) -> VmaSpec:
    flags = perms_vm_flags(entry.perms)
    kind = "file" if entry.name.startswith("/") or entry.name in ("[vdso]", "[vvar]", "[vvar_vclock]") \
        else "anon"
    if entry.name == "[stack]":
        flags |= VM_STACK_FLAGS
    return VmaSpec(start=entry.start, end=entry.end, flags=flags, kind=kind,
                   pgoff=0 if kind == "file" else None, name=entry.name or "anon")


def build_spec(case: Case, obs: Observation, machine: Machine, zero_pfn: int = ZERO_PFN_DEFAULT
               ) -> tuple[MachineSpec, BuildInfo]:
    info = BuildInfo()
    target = obs.target
    page = target & ~(PAGE_SIZE - 1)
    shared = case.share == "shared"
    write_notify = case.map == "file" and shared and machine.tmpdir_fs not in ("tmpfs", "shmem")

    # --- VMAs: the process's real layout before the access ---------------------------
    vmas: list[VmaSpec] = []
    for entry in obs.maps_before:
        if entry.name == "[vsyscall]" or entry.start >= (1 << 47):
            continue        # the vsyscall page is a gate area, not a VMA
        vma = _vma_from_map(entry)
        if case.map in ("anon", "file") and entry.contains(target):
            vma.flags = target_flags(case)
            vma.kind = "anon" if case.map == "anon" and not shared else "file"
            vma.pgoff = None if vma.kind == "anon" else 0     # mapped from file offset 0
            vma.anon_vma = case.map == "anon" and not shared and case.pre_state not in ("untouched", "read")
            vma.page_mkwrite = write_notify
            vma.name = f"target ({case.map} {case.share} {case.prot})"
            info.target_vma = (entry.start, entry.end)
        if case.map == "growsdown" and entry.start == obs.anchor:
            vma.flags = prot_vm_flags(case.prot) | VM_MAYREAD | VM_MAYWRITE | VM_MAYEXEC | VM_GROWSDOWN
            vma.anon_vma = False
            vma.name = "MAP_GROWSDOWN"
            info.growsdown_start, info.growsdown_end = entry.start, entry.end
        if case.map == "stack" and entry.name == "[stack]":
            info.growsdown_start, info.growsdown_end = entry.start, entry.end
        vmas.append(vma)

    # --- the target's page-table entry ------------------------------------------------
    entries: list[EntrySpec] = []
    if info.target_vma is not None:
        pte = pre_state_pte(case, target_flags(case), write_notify, zero_pfn)
        info.pte_before = pte
        entries.append(EntrySpec(address=page, value=pte, level="pte"))
    elif target < (1 << 47):
        # Stack pages and holes: what pagemap shows.  A present stack page is a private
        # anonymous page the process wrote (writable and dirty).
        pm = obs.pm_before
        pte = 0
        if pm is not None and pm.present and case.stack_like:
            pte = (DATA_PFN << PAGE_SHIFT) | page_prot(VM_READ | VM_WRITE) | _PAGE_RW | _PAGE_DIRTY
            entries.append(EntrySpec(address=page, value=pte, level="pte"))
        info.pte_before = pte

    # --- the access ----------------------------------------------------------------------
    user = case.user
    access = AccessSpec(address=target, kind=case.kind, mode="user" if user else "kernel")
    if user:
        regs = RegsSpec(ip=USER_IP if case.access != "exec" else target, sp=obs.rsp,
                        flags=_EFLAGS_FIXED | X86_EFLAGS_IF)
    else:
        regs = RegsSpec(ip=UACCESS_IP, sp=None, flags=_EFLAGS_FIXED | X86_EFLAGS_IF | X86_EFLAGS_AC)

    cpu = CpuSpec(smap=machine.cpu_flags.get("smap", False), smep=machine.cpu_flags.get("smep", False),
                  nx=machine.cpu_flags.get("nx", False), wp=True)
    rlimit = int(obs.raw.get("rlim_stack", 0)) or (machine.rlimit_stack or 8 << 20)
    if rlimit >= 1 << 62:
        rlimit = 1 << 62
    task = TaskSpec(rlimit_stack=rlimit)

    # Kernel page tables the user-mode cases can reach: the vsyscall page as 4.4 maps it
    # by default (vsyscall=emulate: a fixmap page readable by user, not executable; the
    # fixmap's upper-level tables carry _PAGE_USER, as head_64.S builds them), and kernel
    # text (present, supervisor) unless page-table isolation hides it from user mode.
    kernel_mappings = [EntrySpec(address=VSYSCALL, value=_PAGE_TABLE, level=level)
                       for level in ("pgd", "pud", "pmd")]
    kernel_mappings.append(EntrySpec(address=VSYSCALL,
                                     value=(VSYSCALL_PFN << PAGE_SHIFT) | PAGE_KERNEL_RO | _PAGE_USER))
    if machine.kernel_text is not None and not machine.pti:
        kernel_mappings.append(EntrySpec(address=machine.kernel_text & ~(PAGE_SIZE - 1),
                                         value=(KERNEL_TEXT_PFN << PAGE_SHIFT) | PAGE_KERNEL_RX))
    kernel = KernelSpec(mmap_min_addr=machine.mmap_min_addr,
                        thp=machine.thp if machine.thp in ("always", "madvise", "never") else "never",
                        exception_table=[UACCESS_IP], kernel_mappings=kernel_mappings)

    env = EnvSpec(
        fault=["SIGBUS"] if case.pre_state == "beyond_eof" else ["0"],
        reuse=case.pre_state != "fork",         # the child still maps the page
        vsyscall="emulate",
    )
    spec = MachineSpec(access=access, arch="x86_64", regs=regs, cpu=cpu, task=task, kernel=kernel,
                       vmas=sorted(vmas, key=lambda v: v.start), entries=entries, env=env)
    if info.pte_before is not None and info.pte_before & _PAGE_PROTNONE and not info.pte_before & _PAGE_PRESENT:
        info.notes.append("PROT_NONE pte (not present to the MMU)")
    return spec, info


__all__ = ["build_spec", "BuildInfo", "pre_state_pte", "page_prot", "target_flags", "PAGE_NONE"]
