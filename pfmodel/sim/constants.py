"""Kernel constants of Linux 4.4 x86 (kernel-facts.md §1.5-§1.10, §1.12).

The one home of every kernel flag value in pfmodel: the simulator, the model,
the scenario loader and the properties all import from here.
"""

from __future__ import annotations

# --- vm_flags (kernel-facts §1.5) ----------------------------------------------
VM_NONE = 0x00000000
VM_READ = 0x00000001
VM_WRITE = 0x00000002
VM_EXEC = 0x00000004
VM_SHARED = 0x00000008
VM_MAYREAD = 0x00000010
VM_MAYWRITE = 0x00000020
VM_MAYEXEC = 0x00000040
VM_MAYSHARE = 0x00000080
VM_GROWSDOWN = 0x00000100
VM_UFFD_MISSING = 0x00000200
VM_PFNMAP = 0x00000400
VM_DENYWRITE = 0x00000800
VM_UFFD_WP = 0x00001000
VM_LOCKED = 0x00002000
VM_IO = 0x00004000
VM_SEQ_READ = 0x00008000
VM_RAND_READ = 0x00010000
VM_DONTCOPY = 0x00020000
VM_DONTEXPAND = 0x00040000
VM_LOCKONFAULT = 0x00080000
VM_ACCOUNT = 0x00100000
VM_NORESERVE = 0x00200000
VM_HUGETLB = 0x00400000
VM_ARCH_1 = 0x01000000
VM_ARCH_2 = 0x02000000
VM_DONTDUMP = 0x04000000
VM_SOFTDIRTY = 0x08000000
VM_MIXEDMAP = 0x10000000
VM_HUGEPAGE = 0x20000000
VM_NOHUGEPAGE = 0x40000000
VM_MERGEABLE = 0x80000000
VM_GROWSUP = VM_NONE  # x86 has no grows-up stacks: every VM_GROWSUP test is false

VM_FLAG_NAMES: dict[str, int] = {
    "VM_READ": VM_READ,
    "VM_WRITE": VM_WRITE,
    "VM_EXEC": VM_EXEC,
    "VM_SHARED": VM_SHARED,
    "VM_MAYREAD": VM_MAYREAD,
    "VM_MAYWRITE": VM_MAYWRITE,
    "VM_MAYEXEC": VM_MAYEXEC,
    "VM_MAYSHARE": VM_MAYSHARE,
    "VM_GROWSDOWN": VM_GROWSDOWN,
    "VM_UFFD_MISSING": VM_UFFD_MISSING,
    "VM_PFNMAP": VM_PFNMAP,
    "VM_DENYWRITE": VM_DENYWRITE,
    "VM_UFFD_WP": VM_UFFD_WP,
    "VM_LOCKED": VM_LOCKED,
    "VM_IO": VM_IO,
    "VM_SEQ_READ": VM_SEQ_READ,
    "VM_RAND_READ": VM_RAND_READ,
    "VM_DONTCOPY": VM_DONTCOPY,
    "VM_DONTEXPAND": VM_DONTEXPAND,
    "VM_LOCKONFAULT": VM_LOCKONFAULT,
    "VM_ACCOUNT": VM_ACCOUNT,
    "VM_NORESERVE": VM_NORESERVE,
    "VM_HUGETLB": VM_HUGETLB,
    "VM_ARCH_1": VM_ARCH_1,
    "VM_ARCH_2": VM_ARCH_2,
    "VM_DONTDUMP": VM_DONTDUMP,
    "VM_SOFTDIRTY": VM_SOFTDIRTY,
    "VM_MIXEDMAP": VM_MIXEDMAP,
    "VM_HUGEPAGE": VM_HUGEPAGE,
    "VM_NOHUGEPAGE": VM_NOHUGEPAGE,
    "VM_MERGEABLE": VM_MERGEABLE,
}

# VM_DATA_DEFAULT_FLAGS and VM_STACK_FLAGS on x86 (kernel-facts §1.5).
VM_DATA_DEFAULT_FLAGS = VM_READ | VM_WRITE | VM_MAYREAD | VM_MAYWRITE | VM_MAYEXEC
VM_STACK_FLAGS = VM_GROWSDOWN | VM_DATA_DEFAULT_FLAGS | VM_ACCOUNT

# --- FAULT_FLAG_* (kernel-facts §1.6) ------------------------------------------
FAULT_FLAG_WRITE = 0x01
FAULT_FLAG_MKWRITE = 0x02
FAULT_FLAG_ALLOW_RETRY = 0x04
FAULT_FLAG_RETRY_NOWAIT = 0x08
FAULT_FLAG_KILLABLE = 0x10
FAULT_FLAG_TRIED = 0x20
FAULT_FLAG_USER = 0x40

FAULT_FLAG_NAMES: dict[str, int] = {
    "FAULT_FLAG_WRITE": FAULT_FLAG_WRITE,
    "FAULT_FLAG_MKWRITE": FAULT_FLAG_MKWRITE,
    "FAULT_FLAG_ALLOW_RETRY": FAULT_FLAG_ALLOW_RETRY,
    "FAULT_FLAG_RETRY_NOWAIT": FAULT_FLAG_RETRY_NOWAIT,
    "FAULT_FLAG_KILLABLE": FAULT_FLAG_KILLABLE,
    "FAULT_FLAG_TRIED": FAULT_FLAG_TRIED,
    "FAULT_FLAG_USER": FAULT_FLAG_USER,
}

# --- VM_FAULT_* (kernel-facts §1.7) --------------------------------------------
VM_FAULT_MINOR = 0
VM_FAULT_OOM = 0x0001
VM_FAULT_SIGBUS = 0x0002
VM_FAULT_MAJOR = 0x0004
VM_FAULT_WRITE = 0x0008
VM_FAULT_HWPOISON = 0x0010
VM_FAULT_HWPOISON_LARGE = 0x0020
VM_FAULT_SIGSEGV = 0x0040
VM_FAULT_NOPAGE = 0x0100
VM_FAULT_LOCKED = 0x0200
VM_FAULT_RETRY = 0x0400
VM_FAULT_FALLBACK = 0x0800
VM_FAULT_HWPOISON_LARGE_MASK = 0xF000
VM_FAULT_ERROR = (
    VM_FAULT_OOM | VM_FAULT_SIGBUS | VM_FAULT_SIGSEGV | VM_FAULT_HWPOISON
    | VM_FAULT_HWPOISON_LARGE | VM_FAULT_FALLBACK
)  # 0x0873

VM_FAULT_NAMES: dict[str, int] = {
    "VM_FAULT_OOM": VM_FAULT_OOM,
    "VM_FAULT_SIGBUS": VM_FAULT_SIGBUS,
    "VM_FAULT_MAJOR": VM_FAULT_MAJOR,
    "VM_FAULT_WRITE": VM_FAULT_WRITE,
    "VM_FAULT_HWPOISON": VM_FAULT_HWPOISON,
    "VM_FAULT_HWPOISON_LARGE": VM_FAULT_HWPOISON_LARGE,
    "VM_FAULT_SIGSEGV": VM_FAULT_SIGSEGV,
    "VM_FAULT_NOPAGE": VM_FAULT_NOPAGE,
    "VM_FAULT_LOCKED": VM_FAULT_LOCKED,
    "VM_FAULT_RETRY": VM_FAULT_RETRY,
    "VM_FAULT_FALLBACK": VM_FAULT_FALLBACK,
}


def vm_fault_str(value: int) -> str:
    """Render a VM_FAULT_* word the same way everywhere ("0", "VM_FAULT_MAJOR|VM_FAULT_RETRY")."""
    if value == 0:
        return "0"
    parts = [name for name, mask in VM_FAULT_NAMES.items() if value & mask]
    rest = value & ~sum(VM_FAULT_NAMES.values())
    if rest:
        parts.append(hex(rest))
    return "|".join(parts)


# --- Signals and si_code (kernel-facts §1.8) ------------------------------------
SIGBUS = 7
SIGKILL = 9
SIGSEGV = 11
SEGV_MAPERR = 1
SEGV_ACCERR = 2
BUS_ADRERR = 2
BUS_MCEERR_AR = 4

SI_CODE_NAMES: dict[tuple[int, int], str] = {
    (SIGSEGV, SEGV_MAPERR): "SEGV_MAPERR",
    (SIGSEGV, SEGV_ACCERR): "SEGV_ACCERR",
    (SIGBUS, BUS_ADRERR): "BUS_ADRERR",
    (SIGBUS, BUS_MCEERR_AR): "BUS_MCEERR_AR",
}

# --- Errno values used by stack growth -------------------------------------------
EPERM = 1
EFAULT = 14
ENOMEM = 12

# --- Address space and misc (kernel-facts §1.10, §1.12) --------------------------
# Per architecture: TASK_SIZE_MAX, sizeof(unsigned long), the vsyscall page.
TASK_SIZE_MAX = {
    "x86_64": (1 << 47) - 4096,  # 0x00007ffffffff000: top canonical user page excluded
    "i386-pae": 0xC0000000,  # VMSPLIT_3G
    "i386": 0xC0000000,
}
SIZEOF_LONG = {"x86_64": 8, "i386-pae": 4, "i386": 4}
# Where the kernel's own mappings (init_mm) start.  On x86-64 this is the canonical upper
# half, not TASK_SIZE_MAX: the last user page 0x7ffffffff000 counts as kernel space for
# fault_in_kernel_space, but no kernel mapping lives there (its top-level slot is user
# memory's).
KERNEL_MAPPINGS_START = {"x86_64": 0xFFFF800000000000, "i386-pae": 0xC0000000, "i386": 0xC0000000}
VSYSCALL_ADDR = 0xFFFFFFFFFF600000  # x86_64 only


def stack_cushion(arch: str) -> int:
    """65536 + 32 * sizeof(unsigned long): the slack below sp a user fault may touch (1.1)."""
    return 65536 + 32 * SIZEOF_LONG[arch]


# 64-bit kernel address-space layout of 4.4 (no KASLR of the layout).
VMALLOC_START_64 = 0xFFFFC90000000000
VMALLOC_END_64 = 0xFFFFE8FFFFFFFFFF
PAGE_OFFSET_64 = 0xFFFF880000000000
START_KERNEL_MAP_64 = 0xFFFFFFFF80000000
# 32-bit: VMALLOC_START is high_memory + 8 MiB (boot-time); pfmodel fixes a
# typical 3G/1G layout with 896 MiB of lowmem.
VMALLOC_START_32 = 0xC0000000 + 0x38000000 + 0x800000  # 0xF8800000
VMALLOC_END_32 = 0xFF7FE000

# Per-cpu exception-table fixup of a faulting kernel instruction is scenario data.
X86_TRAP_PF = 14
TASK_RUNNING = 0


# --- Page protections (kernel-facts §1.1), composed from the x86 bits ---------------
from ..x86.constants import (  # noqa: E402  (kept next to the values it builds)
    _PAGE_ACCESSED,
    _PAGE_DIRTY,
    _PAGE_GLOBAL,
    _PAGE_NX,
    _PAGE_PRESENT,
    _PAGE_PROTNONE,
    _PAGE_RW,
    _PAGE_USER,
)

PAGE_NONE = _PAGE_PROTNONE | _PAGE_ACCESSED                               # 0x120
PAGE_SHARED = _PAGE_PRESENT | _PAGE_RW | _PAGE_USER | _PAGE_ACCESSED | _PAGE_NX
PAGE_SHARED_EXEC = _PAGE_PRESENT | _PAGE_RW | _PAGE_USER | _PAGE_ACCESSED  # 0x027
PAGE_COPY = _PAGE_PRESENT | _PAGE_USER | _PAGE_ACCESSED | _PAGE_NX
PAGE_COPY_EXEC = _PAGE_PRESENT | _PAGE_USER | _PAGE_ACCESSED              # 0x025
PAGE_READONLY = _PAGE_PRESENT | _PAGE_USER | _PAGE_ACCESSED | _PAGE_NX
PAGE_READONLY_EXEC = _PAGE_PRESENT | _PAGE_USER | _PAGE_ACCESSED          # 0x025
PAGE_KERNEL_EXEC = _PAGE_PRESENT | _PAGE_RW | _PAGE_DIRTY | _PAGE_ACCESSED | _PAGE_GLOBAL  # 0x163
PAGE_KERNEL = PAGE_KERNEL_EXEC | _PAGE_NX
PAGE_KERNEL_RO = (PAGE_KERNEL_EXEC & ~_PAGE_RW) | _PAGE_NX
PAGE_KERNEL_RX = PAGE_KERNEL_EXEC & ~_PAGE_RW                             # 0x161

# protection_map[vm_flags & (VM_READ|VM_WRITE|VM_EXEC|VM_SHARED)] (kernel-facts §1.1).
PROTECTION_MAP = (
    PAGE_NONE, PAGE_READONLY, PAGE_COPY, PAGE_COPY,
    PAGE_READONLY_EXEC, PAGE_READONLY_EXEC, PAGE_COPY_EXEC, PAGE_COPY_EXEC,
    PAGE_NONE, PAGE_READONLY, PAGE_SHARED, PAGE_SHARED,
    PAGE_READONLY_EXEC, PAGE_READONLY_EXEC, PAGE_SHARED_EXEC, PAGE_SHARED_EXEC,
)

# --- Swap entry encoding (kernel-facts §1.3; MIGRATION and MEMORY_FAILURE configured) --
SWP_TYPE_BITS = 5
SWP_OFFSET_SHIFT = 9           # 64-bit and 2-level: offset = pte >> 9
MAX_SWAPFILES = 29
SWP_HWPOISON = 29
SWP_MIGRATION_READ = 30
SWP_MIGRATION_WRITE = 31

# --- Segment selectors (kernel-facts §1.9) ------------------------------------------
KERNEL_CS = {"x86_64": 0x10, "i386-pae": 0x60, "i386": 0x60}
USER_CS = {"x86_64": 0x33, "i386-pae": 0x73, "i386": 0x73}
USER32_CS = 0x23               # x86-64 compat user code segment
SEGMENT_RPL_MASK = 3
SEGMENT_TI_MASK = 1 << 2       # the LDT bit of a selector

# preempt_count() layout: hard-IRQ nesting lives above bit 16.
HARDIRQ_OFFSET = 1 << 16
