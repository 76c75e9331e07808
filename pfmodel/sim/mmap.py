"""mm/mmap.c (and anon_vma_prepare of mm/rmap.c) of Linux 4.4: find_vma and stack growth
(seed 1.1.5, 1.1.7, 1.1.7.1; kernel-facts §2.2.13, §2.2.14, §4 item 1).

x86 builds the grows-down ``expand_stack`` (CONFIG_STACK_GROWSUP is off).  The seed
prints the grows-up variant; ``KernelSpec.seed_expand_stack`` selects it literally
(``expand_stack_growsup`` / ``expand_upwards``), and since VM_GROWSUP is 0 on x86 it
refuses every growth with -EFAULT.
"""

from __future__ import annotations

from ..x86.constants import PAGE_SHIFT, PAGE_SIZE
from .constants import (
    EFAULT,
    ENOMEM,
    EPERM,
    VM_EXEC,
    VM_GROWSDOWN,
    VM_GROWSUP,
    VM_LOCKED,
    VM_WRITE,
)
from .state import MmStruct, VmAreaStruct, change, current, decide, machine

def _page_mask() -> int:
    return machine().arch.page_mask


def page_align(address: int) -> int:
    """PAGE_ALIGN at the word width (wraps like the C macro)."""
    return (address + PAGE_SIZE - 1) & _page_mask()


def find_vma(mm: MmStruct, addr: int) -> VmAreaStruct | None:
    """Seed 1.1.5 (KF 2.2.13): the first VMA with vm_end > addr (it may start above addr)."""
    for vma in mm.mmap:  # sorted by vm_start; the rbtree walk finds the same one
        if vma.vm_end > addr:
            return vma
    return None


def anon_vma_prepare(vma: VmAreaStruct) -> int:
    """KF 2.2.14 (no seed section; mm/rmap.c): allocate the VMA's anon_vma if it has none."""
    if vma.anon_vma:
        return 0
    if machine().mem.alloc_page("anon_vma") is None:
        return -ENOMEM
    vma.anon_vma = True
    return 0


def security_mmap_addr(addr: int) -> int:
    """KF 2.2.14 (no seed section): cap_mmap_addr: below mmap_min_addr needs CAP_SYS_RAWIO."""
    if addr < machine().config.mmap_min_addr and not current().cap_sys_rawio:
        return -EPERM
    return 0


def may_expand_vm(mm: MmStruct, npages: int) -> bool:
    """KF 2.2.14 (no seed section): total_vm + npages within RLIMIT_AS."""
    limit = current().rlimit_as
    if limit is None:
        return True
    return mm.total_vm + npages <= limit >> PAGE_SHIFT


def security_vm_enough_memory_mm(mm: MmStruct, pages: int) -> int:
    """KF 2.2.14 (no seed section): the overcommit check (the Env's answer)."""
    return 0 if machine().env.overcommit else -ENOMEM


def acct_stack_growth(vma: VmAreaStruct, size: int, grow: int) -> int:
    """KF 2.2.14 (no seed section; v4.4): the limit checks only, no state change."""
    mm = vma.vm_mm
    tsk = current()
    if not may_expand_vm(mm, grow):
        decide("acct_stack_growth", "rlimit_as", note=f"total_vm={mm.total_vm} grow={grow}")
        return -ENOMEM
    # The guard page is not charged.
    actual = size
    if size and vma.vm_flags & (VM_GROWSUP | VM_GROWSDOWN):
        actual -= PAGE_SIZE
    if actual > tsk.rlimit_stack:
        decide("acct_stack_growth", "rlimit_stack", note=f"size={actual:#x} limit={tsk.rlimit_stack:#x}")
        return -ENOMEM
    if vma.vm_flags & VM_LOCKED:
        locked = mm.locked_vm + grow
        limit = tsk.rlimit_memlock >> PAGE_SHIFT
        if locked > limit and not tsk.cap_ipc_lock:
            decide("acct_stack_growth", "rlimit_memlock", note=f"locked={locked} limit={limit}")
            return -ENOMEM
    # is_hugepage_only_range() is always 0 on x86.
    if security_vm_enough_memory_mm(mm, grow):
        decide("acct_stack_growth", "overcommit")
        return -ENOMEM
    decide("acct_stack_growth", "ok")
    return 0


def vm_stat_account(mm: MmStruct, flags: int, file: bool, pages: int) -> None:
    """KF 2.2.14 (no seed section): total_vm and the file/stack counters."""
    mm.total_vm += pages
    if file:
        mm.shared_vm += pages
        if flags & (VM_EXEC | VM_WRITE) == VM_EXEC:
            mm.exec_vm += pages
    elif flags & (VM_GROWSDOWN | VM_GROWSUP):
        mm.stack_vm += pages


def expand_downwards(vma: VmAreaStruct, address: int) -> int:
    """KF 2.2.14 (no seed section; v4.4 order): move vm_start down to ``address``."""
    mm = vma.vm_mm
    if decide("anon_vma_prepare", bool(anon_vma_prepare(vma))):
        return -ENOMEM
    address &= _page_mask()
    error = security_mmap_addr(address)
    if decide("security_mmap_addr", bool(error), note=hex(address)):
        return error
    # vma_lock_anon_vma: serialises against concurrent expanders (one CPU here).
    if decide("address_below_vm_start", address < vma.vm_start):
        size = vma.vm_end - address
        grow = (vma.vm_start - address) >> PAGE_SHIFT
        error = -ENOMEM
        if not decide("pgoff_underflow", grow > vma.vm_pgoff):
            error = acct_stack_growth(vma, size, grow)
            if not error:
                # page_table_lock guards against concurrent expansions under a shared mmap_sem.
                mm.page_table_lock += 1
                if vma.vm_flags & VM_LOCKED:
                    mm.locked_vm += grow
                vm_stat_account(mm, vma.vm_flags, vma.vm_file, grow)
                vma.vm_start = address
                vma.vm_pgoff -= grow
                mm.page_table_lock -= 1
                change(stack_grown=hex(address))
    else:
        error = 0
    return error


def expand_stack(vma: VmAreaStruct, address: int) -> int:
    """Seed 1.1.7 / KF 2.2.14: the x86 (grows-down) expand_stack; the seed's grows-up text
    when KernelSpec.seed_expand_stack is set (CONFIG_STACK_GROWSUP)."""
    if machine().config.seed_expand_stack:
        return expand_stack_growsup(vma, address)
    address &= _page_mask()
    prev = vma.vm_prev
    # A stack may not grow into a non-stack mapping directly below it.
    if decide("prev_blocks_growth", bool(prev is not None and prev.vm_end == address
                                           and not prev.vm_flags & VM_GROWSDOWN)):
        return -ENOMEM
    return expand_downwards(vma, address)


def expand_stack_growsup(vma: VmAreaStruct, address: int) -> int:
    """Seed 1.1.7 (the CONFIG_STACK_GROWSUP expand_stack the seed prints)."""
    address &= _page_mask()
    nxt = vma.vm_next
    if decide("next_blocks_growth", bool(nxt is not None and nxt.vm_start == address + PAGE_SIZE
                                           and not nxt.vm_flags & VM_GROWSUP)):
        return -ENOMEM
    return expand_upwards(vma, address)


def expand_upwards(vma: VmAreaStruct, address: int) -> int:
    """Seed 1.1.7.1 (with the v4.4 accounting, KF 2.2.14): move vm_end up past ``address``."""
    mm = vma.vm_mm
    if not decide("vm_growsup", bool(vma.vm_flags & VM_GROWSUP)):
        return -EFAULT
    if decide("anon_vma_prepare", bool(anon_vma_prepare(vma))):
        return -ENOMEM
    # Guard against wrapping around to address 0.
    new_end = page_align(address + 4)
    if not decide("upwards_no_wrap", address < new_end):
        return -ENOMEM
    address = new_end
    error = 0
    if decide("address_above_vm_end", address > vma.vm_end):
        size = address - vma.vm_start
        grow = (address - vma.vm_end) >> PAGE_SHIFT
        error = -ENOMEM
        if decide("pgoff_no_overflow", (vma.vm_pgoff + (size >> PAGE_SHIFT)) & machine().arch.word_mask
                  >= vma.vm_pgoff):
            error = acct_stack_growth(vma, size, grow)
            if not error:
                mm.page_table_lock += 1
                if vma.vm_flags & VM_LOCKED:
                    mm.locked_vm += grow
                vm_stat_account(mm, vma.vm_flags, vma.vm_file, grow)
                vma.vm_end = address
                if vma.vm_next is None:
                    mm.highest_vm_end = address
                mm.page_table_lock -= 1
                change(stack_grown=hex(vma.vm_start))
    return error

