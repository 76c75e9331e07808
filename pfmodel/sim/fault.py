"""arch/x86/mm/fault.c of Linux 4.4, function by function (seed 1, 1.1.*; kernel-facts §2.0-2.2).

Every decision the kernel takes is recorded on the fault's trace with ``decide`` at
the moment it is evaluated, in short-circuit order, with the labels of
``pfmodel.trace.DECISIONS``.  Calls into other kernel files go through their modules
(``memory.handle_mm_fault``, ``mmap.expand_stack``) and calls within this file through
the module globals, so a mutant that replaces a function by its kernel name is seen
everywhere.  Where a path ends (a signal, a fixup, an oops, a "handled" return) it
sets the machine's outcome.
"""

from __future__ import annotations

from ..outcome import Outcome
from ..x86.constants import (
    _PAGE_NX,
    _PAGE_PRESENT,
    _PAGE_PSE,
    PAGE_SHIFT,
    PAGE_SIZE,
    PF_INSTR,
    PF_PROT,
    PF_RSVD,
    PF_USER,
    PF_WRITE,
    X86_CR4_SMAP,
    X86_EFLAGS_AC,
    X86_EFLAGS_IF,
    X86_EFLAGS_VM,
    X86_TRAP_PF,
)
from . import memory, mmap, oom, pgtable
from .constants import (
    BUS_ADRERR,
    BUS_MCEERR_AR,
    FAULT_FLAG_ALLOW_RETRY,
    FAULT_FLAG_KILLABLE,
    FAULT_FLAG_TRIED,
    FAULT_FLAG_USER,
    FAULT_FLAG_WRITE,
    KERNEL_CS,
    SEGMENT_RPL_MASK,
    SEGV_ACCERR,
    SEGV_MAPERR,
    SI_CODE_NAMES,
    SIGBUS,
    SIGKILL,
    SIGSEGV,
    TASK_SIZE_MAX,
    VM_EXEC,
    VM_FAULT_ERROR,
    VM_FAULT_HWPOISON,
    VM_FAULT_HWPOISON_LARGE,
    VM_FAULT_MAJOR,
    VM_FAULT_OOM,
    VM_FAULT_RETRY,
    VM_FAULT_SIGBUS,
    VM_FAULT_SIGSEGV,
    VM_GROWSDOWN,
    VM_READ,
    VM_WRITE,
    VMALLOC_END_32,
    VMALLOC_END_64,
    VMALLOC_START_32,
    VMALLOC_START_64,
    VSYSCALL_ADDR,
    stack_cushion,
    vm_fault_str,
)
from .state import (
    KernelExit,
    PtRegs,
    TaskStruct,
    change,
    current,
    decide,
    down_read,
    down_read_trylock,
    machine,
    up_read,
)

SIGNAL_NAMES = {SIGSEGV: "SIGSEGV", SIGBUS: "SIGBUS", SIGKILL: "SIGKILL"}
SHOW_UNHANDLED_SIGNALS = 1


def _is_64() -> bool:
    return machine().arch.word_bits == 64


def _x86_vm_mask() -> int:
    """X86_VM_MASK: EFLAGS.VM with CONFIG_VM86 (32-bit only), else 0."""
    return 0 if _is_64() else X86_EFLAGS_VM


def _handled(via: str) -> None:
    machine().set_outcome(Outcome.handled(via))


# --- Entry (seed 0, 1) ------------------------------------------------------------------

def read_cr2() -> int:
    """Seed 1: the faulting address the CPU latched."""
    return machine().cpu.cr2


def exception_enter() -> int:
    """Seed 1 (context tracking; no effect here)."""
    return 0


def exception_exit(prev_state: int) -> None:
    """Seed 1 (context tracking; no effect here)."""


def do_page_fault(regs: PtRegs, error_code: int) -> None:
    """Seed 1: read CR2 before anything else, then __do_page_fault."""
    address = read_cr2()
    prev_state = exception_enter()
    __do_page_fault(regs, error_code, address)
    exception_exit(prev_state)


# --- Small helpers the seed names ----------------------------------------------------------

def user_mode(regs: PtRegs) -> bool:
    """KF 1.9 (no seed section): 64: CPL != 0; 32: CPL 3 or vm86."""
    if _is_64():
        return (regs.cs & SEGMENT_RPL_MASK) != 0
    return ((regs.cs & SEGMENT_RPL_MASK) | (regs.flags & _x86_vm_mask())) >= 3


def v8086_mode(regs: PtRegs) -> bool:
    """KF 1.9 (no seed section)."""
    return bool(regs.flags & _x86_vm_mask())


def local_irq_enable() -> None:
    """KF 2.5.3 (no seed section)."""
    machine().cpu.irqs_enabled = True


def prefetchw(mm) -> None:
    """Seed 1.1: a cache hint; harmless with mm == NULL."""


def perf_sw_event(event: str, nr: int, regs: PtRegs, address: int) -> None:
    """Seed 1.1: count a software perf event."""
    events = machine().perf_events
    events[event] = events.get(event, 0) + nr


def might_sleep() -> None:
    """Seed 1.1: a debug check only."""


def kmemcheck_active(regs: PtRegs) -> bool:
    """KF 2.2.2 (no seed section): is kmemcheck single-stepping a hidden page?"""
    return bool(machine().env.kmemcheck)


def kmemcheck_hide(regs: PtRegs) -> None:
    """KF 2.2.2 (no seed section): hide the tracked pages again; no state modelled."""


def kmmio_fault(regs: PtRegs, addr: int) -> int:
    """KF 2.2.1 (no seed section): -1 when mmiotrace's handler took the fault, else 0."""
    return -1 if machine().env.kmmio else 0


def fault_in_kernel_space(address: int) -> bool:
    """Seed 1.1.1."""
    return address >= TASK_SIZE_MAX[machine().arch.name]


def in_interrupt() -> bool:
    """KF 2.2.19 (no seed section)."""
    return current().hardirq


def pagefault_disabled() -> bool:
    """KF 2.2.12 (no seed section)."""
    return current().pagefault_disabled != 0


def in_atomic() -> bool:
    """KF 2.2.12 (no seed section): preempt_count() != 0."""
    return current().preempt_count_value() != 0


def faulthandler_disabled() -> bool:
    """Seed 1.1.4: pagefault_disabled() || in_atomic()."""
    return pagefault_disabled() or in_atomic()


def __fatal_signal_pending(p: TaskStruct) -> bool:
    """Seed 1.1.11: SIGKILL in the task's pending set."""
    return SIGKILL in p.pending


def signal_pending(p: TaskStruct) -> bool:
    """KF 4 item 4 (no seed section): TIF_SIGPENDING."""
    return p.tif_sigpending


def fatal_signal_pending(p: TaskStruct) -> bool:
    """Seed 1.1.11 (KF 4 item 4): signal_pending(p) && __fatal_signal_pending(p)."""
    return signal_pending(p) and __fatal_signal_pending(p)


# --- __do_page_fault (seed 1.1; KF 2.1) ---------------------------------------------------

def __do_page_fault(regs: PtRegs, error_code: int, address: int) -> None:
    """Seed 1.1 (KF 2.1 steps 1-24)."""
    m = machine()
    flags = FAULT_FLAG_ALLOW_RETRY | FAULT_FLAG_KILLABLE
    major = 0
    tsk = current()
    mm = tsk.mm

    # Step 1: kmemcheck, and the prefetch of mmap_sem.
    if decide("kmemcheck_active", bool(kmemcheck_active(regs))):
        kmemcheck_hide(regs)
    prefetchw(mm)

    # Step 2: mmiotrace.
    if decide("kmmio_fault", bool(kmmio_fault(regs, address))):
        _handled("kmmio")
        return

    # Step 3: kernel-half addresses never take locks.
    if decide("fault_in_kernel_space", bool(fault_in_kernel_space(address)), note=hex(address)):
        if decide("kernel_fast_path", not error_code & (PF_RSVD | PF_USER | PF_PROT), note=hex(error_code)):
            if decide("vmalloc_fault", vmalloc_fault(address) >= 0):
                _handled("vmalloc_fault")
                return
            if decide("kmemcheck_fault", bool(kmemcheck_fault(regs, address, error_code))):
                _handled("kmemcheck")
                return
        if decide("spurious_fault", bool(spurious_fault(error_code, address))):
            _handled("spurious_fault")
            return
        if decide("kprobes_fault", bool(kprobes_fault(regs))):
            _handled("kprobes")
            return
        bad_area_nosemaphore(regs, error_code, address)
        return

    # Step 4.
    if decide("kprobes_fault", bool(kprobes_fault(regs))):
        _handled("kprobes")
        return

    # Step 5: no return after pgtable_bad; a die notifier's STOP carries on.
    if decide("pf_rsvd", bool(error_code & PF_RSVD)):
        pgtable_bad(regs, error_code, address)

    # Step 6.
    if decide("smap_violation", bool(smap_violation(error_code, regs))):
        bad_area_nosemaphore(regs, error_code, address)
        return

    # Step 7.
    if decide("faulthandler_disabled", bool(faulthandler_disabled() or mm is None)):
        bad_area_nosemaphore(regs, error_code, address)
        return

    # Step 8: user-mode registers make this a user access (a local copy of the code).
    if decide("user_mode", bool(user_mode(regs))):
        local_irq_enable()
        error_code |= PF_USER
        flags |= FAULT_FLAG_USER
        change(irqs="on", error_code="|PF_USER", fault_flags=hex(flags))
    elif decide("regs_if", bool(regs.flags & X86_EFLAGS_IF)):
        local_irq_enable()
        change(irqs="on")

    # Step 9.
    perf_sw_event("PERF_COUNT_SW_PAGE_FAULTS", 1, regs, address)

    # Step 10.
    if decide("pf_write", bool(error_code & PF_WRITE)):
        flags |= FAULT_FLAG_WRITE
        change(fault_flags=hex(flags))

    # Step 11: the trylock avoids deadlocking on a kernel bug that already holds mmap_sem.
    locked = down_read_trylock(mm.mmap_sem)
    if decide("down_read_trylock", bool(locked), **({"mmap_sem": "acquire"} if locked else {})):
        might_sleep()
    else:
        if (error_code & PF_USER) == 0 and not decide("search_exception_tables",
                                                      bool(search_exception_tables(regs.ip)),
                                                      note=hex(regs.ip)):
            bad_area_nosemaphore(regs, error_code, address)
            return
        down_read(mm.mmap_sem)

    while True:  # "retry:" re-enters here with mmap_sem taken by down_read
        # Step 12.
        vma = mmap.find_vma(mm, address)
        if decide("find_vma", "found" if vma is not None else "none") == "none":
            bad_area(regs, error_code, address)
            return
        # Steps 13-16.
        if not decide("vm_start_le_address", vma.vm_start <= address,
                      note=f"vm_start={vma.vm_start:#x} address={address:#x}"):
            if not decide("vm_growsdown", bool(vma.vm_flags & VM_GROWSDOWN)):
                bad_area(regs, error_code, address)
                return
            if error_code & PF_USER:
                arch = m.arch
                limit = (address + stack_cushion(arch.name)) & arch.word_mask
                if decide("stack_cushion_exceeded", limit < regs.sp,
                          note=f"address+{stack_cushion(arch.name)}={limit:#x} sp={regs.sp:#x}"):
                    bad_area(regs, error_code, address)
                    return
            if decide("expand_stack", bool(mmap.expand_stack(vma, address))):
                bad_area(regs, error_code, address)
                return

        # Step 17: good_area.
        if decide("access_error", bool(access_error(error_code, vma)),
                  note=f"error_code={error_code:#x} vm_flags={vma.vm_flags:#x}"):
            bad_area_access_error(regs, error_code, address)
            return

        # Step 18.
        fault = memory.handle_mm_fault(mm, vma, address, flags)
        decide("handle_mm_fault", vm_fault_str(fault), mm_fault_call=hex(flags))
        major |= fault & VM_FAULT_MAJOR

        # Step 19: mmap_sem was already released by whoever returned RETRY.
        if decide("fault_retry", bool(fault & VM_FAULT_RETRY)):
            if decide("allow_retry", bool(flags & FAULT_FLAG_ALLOW_RETRY)):
                flags &= ~FAULT_FLAG_ALLOW_RETRY
                flags |= FAULT_FLAG_TRIED
                change(fault_flags=hex(flags))
                if not decide("fatal_signal_pending", bool(fatal_signal_pending(tsk))):
                    down_read(mm.mmap_sem)
                    continue
            if decide("flags_user", bool(flags & FAULT_FLAG_USER)):
                # Back to user mode, where the pending fatal signal is acted on.
                if fatal_signal_pending(tsk):
                    m.set_outcome(Outcome.fatal_signal())
                else:
                    m.set_outcome(Outcome.handled("handle_mm_fault", major=bool(major)))
                return
            no_context(regs, error_code, address, SIGBUS, BUS_ADRERR)
            return
        break

    # Step 20.
    up_read(mm.mmap_sem)

    # Step 21.
    if decide("fault_error", bool(fault & VM_FAULT_ERROR)):
        mm_fault_error(regs, error_code, address, fault)
        return

    # Step 22: accounting once, after the last pass.
    if decide("major", bool(major), **({"maj_flt": "+1"} if major else {"min_flt": "+1"})):
        tsk.maj_flt += 1
        perf_sw_event("PERF_COUNT_SW_PAGE_FAULTS_MAJ", 1, regs, address)
    else:
        tsk.min_flt += 1
        perf_sw_event("PERF_COUNT_SW_PAGE_FAULTS_MIN", 1, regs, address)

    # Step 23.
    check_v8086_mode(regs, address, tsk)
    m.set_outcome(Outcome.handled("handle_mm_fault", major=bool(major)))


# --- Kernel-half helpers (KF 2.2.4-2.2.7) ------------------------------------------------------

def BUG(what: str) -> None:
    """KF 2.5.4 item 8 (no seed section): the kernel's BUG(): an oops that ends the task."""
    machine().printk(f"kernel BUG: {what}")
    raise KernelExit("bug", what)


def vmalloc_fault(address: int) -> int:
    """Seed 1.1.2 (KF 2.2.4): sync the top-level entry from init_mm; 0 handled, -1 not."""
    if _is_64():
        return _vmalloc_fault_64(address)
    return _vmalloc_fault_32(address)


def _vmalloc_fault_64(address: int) -> int:
    if not VMALLOC_START_64 <= address < VMALLOC_END_64:
        return -1
    m = machine()
    rd = pgtable.read_entry
    pgd = pgtable.pgd_offset(current().active_mm, address)
    pgd_ref = pgtable.pgd_offset_k(address)
    if pgtable.pgd_none(rd(pgd_ref)):
        return -1
    if pgtable.pgd_none(rd(pgd)):
        pgtable.set_pgd(pgd, rd(pgd_ref))
    elif rd(pgd) & m.arch.pte_pfn_mask != rd(pgd_ref) & m.arch.pte_pfn_mask:
        BUG("vmalloc_fault: the task's pgd points to another pud page than init_mm's")
    pud = pgtable.pud_offset(pgd, address)
    pud_ref = pgtable.pud_offset(pgd_ref, address)
    if pgtable.pud_none(rd(pud_ref)):
        return -1
    if pgtable.pud_none(rd(pud)) or pgtable.pud_page_vaddr(rd(pud)) != pgtable.pud_page_vaddr(rd(pud_ref)):
        BUG("vmalloc_fault: pud mismatch")
    pmd = pgtable.pmd_offset(pud, address)
    pmd_ref = pgtable.pmd_offset(pud_ref, address)
    if pgtable.pmd_none(rd(pmd_ref)):
        return -1
    if pgtable.pmd_none(rd(pmd)) or pgtable.pmd_pfn(rd(pmd)) != pgtable.pmd_pfn(rd(pmd_ref)):
        BUG("vmalloc_fault: pmd mismatch")
    # 4.4 walks through a large pmd as if it were a pte table (historical-bugs 7.1).
    pte_ref = pgtable.pte_offset_kernel(pmd_ref, address)
    if not pgtable.pte_present(rd(pte_ref)):
        return -1
    pte = pgtable.pte_offset_kernel(pmd, address)
    if not pgtable.pte_present(rd(pte)) or pgtable.pte_pfn(rd(pte)) != pgtable.pte_pfn(rd(pte_ref)):
        BUG("vmalloc_fault: pte mismatch")
    return 0


def vmalloc_sync_one(pgd_base: int, address: int) -> int | None:
    """KF 2.2.4 (no seed section): copy init_mm's pmd into the loaded table (32-bit)."""
    rd = pgtable.read_entry
    index = pgtable.pgd_index(address)
    eb = machine().arch.entry_bytes
    pgd = pgd_base + index * eb
    pgd_k = machine().init_mm.pgd + index * eb
    if not pgtable.pgd_present(rd(pgd_k)):
        return None
    pud = pgtable.pud_offset(pgd, address)
    pud_k = pgtable.pud_offset(pgd_k, address)
    if not pgtable.pud_present(rd(pud_k)):
        return None
    pmd = pgtable.pmd_offset(pud, address)
    pmd_k = pgtable.pmd_offset(pud_k, address)
    if not pgtable.pmd_present(rd(pmd_k)):
        return None
    if not pgtable.pmd_present(rd(pmd)):
        pgtable.set_pmd(pmd, rd(pmd_k))
    elif pgtable.pmd_pfn(rd(pmd)) != pgtable.pmd_pfn(rd(pmd_k)):
        BUG("vmalloc_sync_one: pmd mismatch")
    return pmd_k


def _vmalloc_fault_32(address: int) -> int:
    if not VMALLOC_START_32 <= address < VMALLOC_END_32:
        return -1
    pmd_k = vmalloc_sync_one(machine().cpu.cr3, address)
    if pmd_k is None:
        return -1
    pte_k = pgtable.pte_offset_kernel(pmd_k, address)
    if not pgtable.pte_present(pgtable.read_entry(pte_k)):
        return -1
    return 0


def kmemcheck_fault(regs: PtRegs, address: int, error_code: int) -> bool:
    """Seed 1.1.3 (KF 2.2.5): kmemcheck claims kernel-mode faults on its hidden pages."""
    if regs.flags & _x86_vm_mask():
        return False
    if regs.cs != KERNEL_CS[machine().arch.name]:
        return False
    return bool(machine().env.kmemcheck)


def spurious_fault_check(error_code: int, entry: int) -> int:
    """KF 2.2.6 (no seed section): would this entry now allow the access?"""
    if error_code & PF_WRITE and not pgtable.pte_write(entry):
        return 0
    if error_code & PF_INSTR and entry & _PAGE_NX:
        return 0
    return 1


def spurious_fault(error_code: int, address: int) -> int:
    """KF 2.2.6 (no seed section): a stale-TLB kernel fault after permissions were raised."""
    if error_code != (PF_WRITE | PF_PROT) and error_code != (PF_INSTR | PF_PROT):
        return 0
    rd = pgtable.read_entry
    pgd = pgtable.pgd_offset_k(address)
    if not pgtable.pgd_present(rd(pgd)):
        return 0
    pud = pgtable.pud_offset(pgd, address)
    if not pgtable.pud_present(rd(pud)):
        return 0
    if pgtable.pud_large(rd(pud)):
        return spurious_fault_check(error_code, rd(pud))
    pmd = pgtable.pmd_offset(pud, address)
    if not pgtable.pmd_present(rd(pmd)):
        return 0
    if pgtable.pmd_large(rd(pmd)):
        return spurious_fault_check(error_code, rd(pmd))
    pte = pgtable.pte_offset_kernel(pmd, address)
    if not pgtable.pte_present(rd(pte)):
        return 0
    ret = spurious_fault_check(error_code, rd(pte))
    if not ret:
        return 0
    # Both the pte and the pmd must allow it (WARN_ONCE if the pmd does not).
    ret = spurious_fault_check(error_code, rd(pmd))
    if not ret:
        machine().printk("WARNING: Found kernel page with wrong pmd permissions")
    return ret


def kprobes_fault(regs: PtRegs) -> int:
    """KF 2.2.7 (no seed section): a running kprobe's fault handler claims a kernel fault."""
    if not user_mode(regs) and machine().env.kprobes:
        return 1
    return 0


# --- pgtable_bad and the oops machinery (seed 1.1.3.*; KF 2.2.8-2.2.10) ------------------------

def pgtable_bad(regs: PtRegs, error_code: int, address: int) -> None:
    """Seed 1.1.3 (KF 2.2.8): reserved bits in a user page table: oops and SIGKILL."""
    m = machine()
    flags = oops_begin()
    tsk = current()
    sig = SIGKILL
    m.printk(f"{tsk.comm}: Corrupted page table at address {address:x}")
    dump_pagetable(address)
    tsk.thread.cr2 = address
    tsk.thread.trap_nr = X86_TRAP_PF
    tsk.thread.error_code = error_code
    if decide("die_notifier_stop", bool(__die("Bad pagetable", regs, error_code))):
        sig = 0
    if sig:
        m.set_outcome(Outcome.oops("bad_pagetable"))
    oops_end(flags, regs, sig)


def dump_pagetable(address: int) -> list[str]:
    """Seed 1.1.3.2 (KF 2.2.9): print the entries mapping ``address`` in the loaded table."""
    m = machine()
    arch = m.arch
    rd = pgtable.read_entry
    parts: list[str] = []
    width = 2 * arch.entry_bytes
    if _is_64():
        ptr = m.cpu.cr3 + arch.pgd_index(address) * 8
        for name, index_of in (("PGD", None), ("PUD", arch.pud_index), ("PMD", arch.pmd_index),
                               ("PTE", arch.pte_index)):
            if index_of is not None:
                table = rd(ptr) & arch.pte_pfn_mask
                if not m.mem.is_page(table >> PAGE_SHIFT):
                    parts.append("BAD")
                    break
                ptr = table + index_of(address) * 8
            value = rd(ptr)
            parts.append(f"{name} {value:x}")
            if not value & _PAGE_PRESENT or (name in ("PUD", "PMD") and value & _PAGE_PSE):
                break
    else:
        pgd = m.cpu.cr3 + arch.pgd_index(address) * arch.entry_bytes
        pmd = pgd
        if arch.levels == 3:
            value = rd(pgd)
            parts.append(f"*pdpt = {value:016x}")
            if not value & _PAGE_PRESENT:
                m.printk(" ".join(parts))
                return parts
            pmd = (value & arch.pte_pfn_mask) + arch.pmd_index(address) * 8
        value = rd(pmd)
        parts.append(f"*pde = {value:0{width}x}")
        if value & _PAGE_PRESENT and not value & _PAGE_PSE:
            pte = (value & arch.pte_pfn_mask) + arch.pte_index(address) * arch.entry_bytes
            parts.append(f"*pte = {rd(pte):0{width}x}")
    m.printk(" ".join(parts))
    return parts


def oops_begin() -> bool:
    """Seed 1.1.3.1 (KF 2.2.10): save and disable IRQs; returns the saved IRQ state."""
    cpu = machine().cpu
    saved = cpu.irqs_enabled
    cpu.irqs_enabled = False
    return saved


def __die(text: str, regs: PtRegs, err: int) -> int:
    """Seed 1.1.3.3 (KF 2.2.10): print the oops; 1 if a die notifier said NOTIFY_STOP."""
    m = machine()
    m.printk(f"{text}: {err & 0xFFFF:04x} [#1]")
    if m.env.die_notifier == "stop":
        return 1
    m.printk(f"IP: {regs.ip:#x} SP: {regs.sp:#x}")
    return 0


def oops_end(flags: bool, regs: PtRegs, signr: int) -> None:
    """Seed 1.1.3.4 (KF 2.2.10): restore IRQs; with a signal, the task exits (never returns)."""
    m = machine()
    m.cpu.irqs_enabled = flags
    if not signr:
        return
    if in_interrupt():
        m.printk("Kernel panic - not syncing: Fatal exception in interrupt")
    raise KernelExit("oops", f"do_exit({signr})")


def show_fault_oops(regs: PtRegs, error_code: int, address: int) -> None:
    """KF 2.2.23 (no seed section): the oops banner; decides the oops's reason."""
    m = machine()
    if error_code & PF_INSTR:
        pte = _lookup_kernel_pte(address)
        if pte is not None and pte & _PAGE_PRESENT and pte & _PAGE_NX:
            m.printk("kernel tried to execute NX-protected page - exploit attempt? (uid: 0)")
        elif pte is not None and pte & _PAGE_PRESENT and m.cpu.cr4 & (1 << 20):
            m.printk("unable to execute userspace code (SMEP?) (uid: 0)")
    if address < PAGE_SIZE:
        m.oops_reason = "null_pointer_dereference"
        m.printk("BUG: unable to handle kernel NULL pointer dereference")
    else:
        m.oops_reason = "kernel_paging_request"
        m.printk("BUG: unable to handle kernel paging request")
    m.printk(f" at {address:#x}")
    m.printk(f"IP: {regs.ip:#x}")
    dump_pagetable(address)


def _lookup_kernel_pte(address: int) -> int | None:
    rd = pgtable.read_entry
    pgd = pgtable.pgd_offset_k(address)
    if not pgtable.pgd_present(rd(pgd)):
        return None
    pud = pgtable.pud_offset(pgd, address)
    if not pgtable.pud_present(rd(pud)):
        return None
    pmd = pgtable.pmd_offset(pud, address)
    if not pgtable.pmd_present(rd(pmd)):
        return None
    if pgtable.pmd_large(rd(pmd)):
        return rd(pmd)
    return rd(pgtable.pte_offset_kernel(pmd, address))


# --- smap, access_error (KF 2.2.11, seed 1.1.8) ------------------------------------------------

def smap_violation(error_code: int, regs: PtRegs) -> bool:
    """KF 2.2.11 (no seed section): a kernel access to user memory outside stac/clac.
    Looks at the hardware U/S bit: it runs before PF_USER is ORed in."""
    if not machine().cpu.cr4 & X86_CR4_SMAP:
        return False
    if error_code & PF_USER:
        return False
    if not user_mode(regs) and regs.flags & X86_EFLAGS_AC:
        return False
    return True


def access_error(error_code: int, vma) -> int:
    """Seed 1.1.8 (KF 2.2.15): 1 = deny, 0 = allow."""
    if error_code & PF_WRITE:
        # write, present and write, not present
        if not vma.vm_flags & VM_WRITE:
            return 1
        return 0
    # read, present
    if error_code & PF_PROT:
        return 1
    # read, not present
    if not vma.vm_flags & (VM_READ | VM_EXEC | VM_WRITE):
        return 1
    return 0


# --- The bad_area family (seed 1.1.6, 1.1.9; KF 2.2.16-2.2.18) ----------------------------------

def bad_area(regs: PtRegs, error_code: int, address: int) -> None:
    """Seed 1.1.6."""
    __bad_area(regs, error_code, address, SEGV_MAPERR)


def bad_area_access_error(regs: PtRegs, error_code: int, address: int) -> None:
    """Seed 1.1.9 (KF 2.2.16)."""
    __bad_area(regs, error_code, address, SEGV_ACCERR)


def __bad_area(regs: PtRegs, error_code: int, address: int, si_code: int) -> None:
    """KF 2.2.16 (no seed section): drop mmap_sem, then the nosemaphore path."""
    up_read(current().mm.mmap_sem)
    __bad_area_nosemaphore(regs, error_code, address, si_code)


def bad_area_nosemaphore(regs: PtRegs, error_code: int, address: int) -> None:
    """KF 2.2.17 (no seed section)."""
    __bad_area_nosemaphore(regs, error_code, address, SEGV_MAPERR)


def __bad_area_nosemaphore(regs: PtRegs, error_code: int, address: int, si_code: int) -> None:
    """KF 2.2.17 (no seed section): SIGSEGV for user accesses, no_context for the kernel."""
    tsk = current()
    if decide("bad_area_pf_user", bool(error_code & PF_USER)):
        # IRQs may still be off (kernel-address and SMAP paths).
        if not machine().cpu.irqs_enabled:
            change(irqs="on")
        local_irq_enable()
        if decide("is_prefetch", bool(is_prefetch(regs, error_code, address))):
            _handled("prefetch")
            return
        if decide("is_errata100", bool(is_errata100(regs, address))):
            _handled("errata")
            return
        if _is_64():
            if decide("vsyscall_emulated", bool(error_code & PF_INSTR
                                                and (address & ~0xFFF) == VSYSCALL_ADDR
                                                and emulate_vsyscall(regs, address))):
                _handled("vsyscall")
                return
        # User space never learns whether a kernel address is mapped.
        if decide("address_ge_task_size", address >= TASK_SIZE_MAX[machine().arch.name]):
            error_code |= PF_PROT
            change(error_code="|PF_PROT")
        if SHOW_UNHANDLED_SIGNALS:
            show_signal_msg(regs, error_code, address, tsk)
        tsk.thread.cr2 = address
        tsk.thread.error_code = error_code
        tsk.thread.trap_nr = X86_TRAP_PF
        force_sig_info_fault(SIGSEGV, si_code, address, tsk, 0)
        return
    if decide("is_f00f_bug", bool(is_f00f_bug(regs, address))):
        _handled("errata")
        return
    no_context(regs, error_code, address, SIGSEGV, si_code)


def show_signal_msg(regs: PtRegs, error_code: int, address: int, tsk: TaskStruct) -> None:
    """KF 2.2.17 (no seed section): the rate-limited "segfault at" line (printing only)."""
    machine().printk(f"{tsk.comm}: segfault at {address:x} ip {regs.ip:x} sp {regs.sp:x} "
                     f"error {error_code:x}")


def force_sig_info_fault(si_signo: int, si_code: int, address: int, tsk: TaskStruct, fault: int) -> None:
    """KF 2.2.18 (no seed section): queue the fault signal; it cannot be blocked or ignored."""
    name = f"{SIGNAL_NAMES[si_signo]}/{SI_CODE_NAMES[(si_signo, si_code)]}"
    tsk.pending.add(si_signo)
    tsk.tif_sigpending = True
    tsk.forced_signals.append(name)
    change(signal=name)
    code = SI_CODE_NAMES[(si_signo, si_code)]
    machine().set_outcome(Outcome.sigsegv(code) if si_signo == SIGSEGV else Outcome.sigbus(code))


def is_prefetch(regs: PtRegs, error_code: int, addr: int) -> int:
    """KF 2.2.21 (no seed section): an AMD prefetch that faulted (the opcode is the Env's)."""
    if error_code & PF_INSTR:
        return 0
    if user_mode(regs) and regs.ip >= TASK_SIZE_MAX[machine().arch.name]:
        return 0
    return 1 if machine().env.is_prefetch else 0


def is_errata93(regs: PtRegs, address: int) -> int:
    """KF 2.2.22 (no seed section): AMD K8 erratum 93 (64-bit): repair RIP's high bits."""
    if not _is_64() or not machine().env.errata:
        return 0
    regs.ip = address | (0xFFFFFFFF << 32)
    return 1


def is_errata100(regs: PtRegs, address: int) -> int:
    """KF 2.2.22 (no seed section): AMD erratum 100 (64-bit compat jump above 4 GiB)."""
    return 1 if _is_64() and machine().env.errata else 0


def is_f00f_bug(regs: PtRegs, address: int) -> int:
    """KF 2.2.22 (no seed section): Pentium F00F (32-bit): becomes an invalid-opcode trap."""
    return 1 if not _is_64() and machine().env.errata else 0


def emulate_vsyscall(regs: PtRegs, address: int) -> bool:
    """KF 2.2.17 (no seed section): false only with vsyscall=none.

    Emulation performs the call and moves ip to the caller's return address, so the
    faulting fetch is not re-executed: the run loop sees ``instruction_emulated``.
    """
    m = machine()
    if m.env.vsyscall != "emulate":
        return False
    m.instruction_emulated = True
    return True


# --- no_context and the exception table (seed 1.1.12; KF 2.2.19, 2.2.20) -----------------------

def search_exception_tables(ip: int) -> bool:
    """KF 2.2.20 (no seed section): does this kernel instruction have a fixup?"""
    return ip in machine().config.exception_table


def fixup_exception(regs: PtRegs) -> int:
    """KF 2.2.20 (no seed section): jump to the fixup (the uaccess returns -EFAULT)."""
    config = machine().config
    if regs.ip in config.exception_table:
        regs.ip = config.fixup_base + 16 * config.exception_table.index(regs.ip)
        return 1
    return 0


def no_context(regs: PtRegs, error_code: int, address: int, signal: int, si_code: int) -> None:
    """Seed 1.1.12 (KF 2.2.19): a kernel-mode fault: fixup, quirk, or oops."""
    m = machine()
    tsk = current()
    if decide("fixup_exception", bool(fixup_exception(regs)), note=hex(regs.ip)):
        if decide("in_interrupt", bool(in_interrupt())):
            m.set_outcome(Outcome.fixup())
            return
        # Only while emulate_vsyscall runs: the uaccess also gets a signal.
        if tsk.sig_on_uaccess_error and signal:
            tsk.thread.trap_nr = X86_TRAP_PF
            tsk.thread.error_code = error_code | PF_USER
            tsk.thread.cr2 = address
            force_sig_info_fault(signal, si_code, address, tsk, 0)
        m.set_outcome(Outcome.fixup())
        return
    if decide("is_prefetch", bool(is_prefetch(regs, error_code, address))):
        _handled("prefetch")
        return
    if decide("is_errata93", bool(is_errata93(regs, address))):
        _handled("errata")
        return
    flags = oops_begin()
    show_fault_oops(regs, error_code, address)
    tsk.thread.cr2 = address
    tsk.thread.trap_nr = X86_TRAP_PF
    tsk.thread.error_code = error_code
    sig = SIGKILL
    if decide("die_notifier_stop", bool(__die("Oops", regs, error_code))):
        sig = 0
    m.printk(f"CR2: {address:016x}")
    # Stopped by a notifier or not, the kernel oopsed: the run ends here.
    m.set_outcome(Outcome.oops(m.oops_reason or "kernel_paging_request"))
    oops_end(flags, regs, sig)


# --- do_sigbus, mm_fault_error (seed 1.1.13; KF 2.2.24, 2.2.25) --------------------------------

def do_sigbus(regs: PtRegs, error_code: int, address: int, fault: int) -> None:
    """KF 2.2.24 (no seed section)."""
    tsk = current()
    code = BUS_ADRERR
    if not decide("sigbus_pf_user", bool(error_code & PF_USER)):
        no_context(regs, error_code, address, SIGBUS, BUS_ADRERR)
        return
    if decide("is_prefetch", bool(is_prefetch(regs, error_code, address))):
        _handled("prefetch")
        return
    tsk.thread.cr2 = address
    tsk.thread.error_code = error_code
    tsk.thread.trap_nr = X86_TRAP_PF
    if decide("sigbus_hwpoison", bool(fault & (VM_FAULT_HWPOISON | VM_FAULT_HWPOISON_LARGE))):
        machine().printk(f"MCE: Killing {tsk.comm} due to hardware memory corruption fault at {address:x}")
        code = BUS_MCEERR_AR
    force_sig_info_fault(SIGBUS, code, address, tsk, fault)


def mm_fault_error(regs: PtRegs, error_code: int, address: int, fault: int) -> None:
    """Seed 1.1.13 (KF 2.2.25): mmap_sem is already released."""
    if decide("mm_fault_error_fatal_kernel", bool(fatal_signal_pending(current()) and not error_code & PF_USER)):
        no_context(regs, error_code, address, 0, 0)
        return
    if decide("vm_fault_oom", bool(fault & VM_FAULT_OOM), note=vm_fault_str(fault)):
        # Kernel mode? Handle exceptions or die.
        if not decide("oom_pf_user", bool(error_code & PF_USER)):
            no_context(regs, error_code, address, SIGSEGV, SEGV_MAPERR)
            return
        # Out of memory: the OOM killer runs, user space re-faults or dies.
        oom.pagefault_out_of_memory()
    else:
        if decide("vm_fault_sigbus", bool(fault & (VM_FAULT_SIGBUS | VM_FAULT_HWPOISON | VM_FAULT_HWPOISON_LARGE))):
            do_sigbus(regs, error_code, address, fault)
        elif decide("vm_fault_sigsegv", bool(fault & VM_FAULT_SIGSEGV)):
            bad_area_nosemaphore(regs, error_code, address)
        else:
            BUG(f"mm_fault_error: unexpected fault code {vm_fault_str(fault)}")


# --- check_v8086_mode (seed 1.1.14; KF 2.2.27) ----------------------------------------------------

def check_v8086_mode(regs: PtRegs, address: int, tsk: TaskStruct) -> None:
    """Seed 1.1.14 (KF 2.2.27): record VGA-window writes of a vm86 task (32-bit only)."""
    if _is_64():
        return  # an empty function on x86-64
    if decide("v8086_mode", bool(v8086_mode(regs) and tsk.vm86)):
        bit = ((address - 0xA0000) & machine().arch.word_mask) >> PAGE_SHIFT
        if bit < 32:
            tsk.screen_bitmap |= 1 << bit
