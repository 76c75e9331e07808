"""Small builders for simulator tests: a MachineSpec in one call, trace lookups.

Numbers that matter to a test (error codes, PTE bits, flag words) are written out in
the tests themselves; this module only saves typing.
"""

from __future__ import annotations

from pfmodel.sim import run
from pfmodel.sim.constants import (
    VM_EXEC,
    VM_GROWSDOWN,
    VM_MAYREAD,
    VM_MAYWRITE,
    VM_READ,
    VM_SHARED,
    VM_WRITE,
)
from pfmodel.sim.spec import (
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

R = VM_READ | VM_MAYREAD
RW = VM_READ | VM_WRITE | VM_MAYREAD | VM_MAYWRITE
RX = VM_READ | VM_EXEC | VM_MAYREAD
RW_SHARED = RW | VM_SHARED
STACK = RW | VM_GROWSDOWN

NX = 1 << 63
AC = 1 << 18
IF = 1 << 9

# A user heap VMA, a stack VMA and a kernel ip with an exception-table entry.
HEAP = (0x600000, 0x700000)
STACK_TOP = {"x86_64": 0x7FFFFFFFF000, "i386-pae": 0xBFFFF000, "i386": 0xBFFFF000}
UACCESS_IP = {"x86_64": 0xFFFFFFFF81234560, "i386-pae": 0xC1234560, "i386": 0xC1234560}
ARCHES = ("x86_64", "i386-pae", "i386")


def heap(flags: int = RW, kind: str = "anon", start: int = HEAP[0], end: int = HEAP[1], **kw) -> VmaSpec:
    return VmaSpec(start=start, end=end, flags=flags, kind=kind, **kw)


def stack(arch: str = "x86_64", pages: int = 32, flags: int = STACK) -> VmaSpec:
    top = STACK_TOP[arch]
    return VmaSpec(start=top - pages * 4096, end=top, flags=flags, name="[stack]")


def spec(address: int, kind: str = "read", mode: str = "user", *, arch: str = "x86_64",
         vmas=None, entries=(), error_code: int | None = None, implicit: bool = False,
         regs: RegsSpec | None = None, cpu: CpuSpec | None = None, task: TaskSpec | None = None,
         kernel: KernelSpec | None = None, env: EnvSpec | None = None, max_faults: int = 4,
         uaccess: bool = False) -> MachineSpec:
    """One access.  ``uaccess``: a kernel access from an exception-table ip with AC set,
    as copy_to_user/copy_from_user make it."""
    if vmas is None:
        vmas = [heap()]
    kernel = kernel or KernelSpec()
    regs = regs or RegsSpec()
    if uaccess:
        regs.ip = UACCESS_IP[arch]
        regs.flags |= AC
        kernel.exception_table = list(kernel.exception_table) + [UACCESS_IP[arch]]
    return MachineSpec(access=AccessSpec(address=address, kind=kind, mode=mode, implicit=implicit,
                                         error_code=error_code),
                       arch=arch, regs=regs, cpu=cpu or CpuSpec(), task=task or TaskSpec(),
                       kernel=kernel, vmas=list(vmas), entries=list(entries), env=env or EnvSpec(),
                       max_faults=max_faults)


def pte(address: int, value: int) -> EntrySpec:
    return EntrySpec(address=address, value=value, level="pte")


def go(s: MachineSpec, **kw):
    return run(s, **kw)


def keys(fault) -> list[tuple[str, str]]:
    return fault.trace.keys()


def value(fault, label: str, nth: int = 0) -> str | None:
    """The value of the nth step with ``label`` (None if it was not recorded)."""
    found = [s.value for s in fault.trace if s.label == label]
    return found[nth] if nth < len(found) else None


def step(fault, label: str, nth: int = 0):
    found = [s for s in fault.trace if s.label == label]
    return found[nth] if nth < len(found) else None


def labels(fault) -> list[str]:
    return [s.label for s in fault.trace]


def changes(fault, key: str) -> list:
    return [s.changes[key] for s in fault.trace if key in s.changes]


def in_order(fault, *expected: tuple[str, str]) -> bool:
    """Are these (label, value) steps in the trace, in this order (others may come between)?"""
    it = iter(keys(fault))
    return all(any(k == e for k in it) for e in expected)
