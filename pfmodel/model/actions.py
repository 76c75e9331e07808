"""The named actions of the model: the seed's fault path as a flat list of guarded updates.

Each action runs at one location (``pc``), takes exactly one decision of the seed (or of
a function kernel-facts.md fills in) under its DECISIONS label -- the guard -- and then
updates the state and moves to the next location.  Invariants and properties are kept
apart (``pfmodel/properties.py``, ``properties/``).

The actions are a reading of the seed walkthrough and kernel-facts.md (cited as "1.1.8"
or "KF 2.2.14"), not of the simulator: the two readings are checked against each other
by conformance.  Everything an action computes on goes through the operations layer
(``m.o``): no Python ``if`` on an address, sp, error code, vm_flags or PTE value; every
decision goes through ``m.decide``/``m.record``/``m.split``.  Values that are fixed per
path (the FAULT_FLAG_* word, VM_FAULT_* results, the location) are plain Python.

Locations are named ``function:step``.  ``ACTIONS`` maps each location to its action;
``LABELS`` lists the decision labels an action may record (for the graph and coverage).
"""

from __future__ import annotations

from typing import Any, Callable

from ..outcome import Outcome
from ..sim.constants import (
    EFAULT,
    EPERM,
    ENOMEM,
    FAULT_FLAG_ALLOW_RETRY,
    FAULT_FLAG_KILLABLE,
    FAULT_FLAG_TRIED,
    FAULT_FLAG_USER,
    FAULT_FLAG_WRITE,
    VM_EXEC,
    VM_FAULT_ERROR,
    VM_FAULT_FALLBACK,
    VM_FAULT_HWPOISON,
    VM_FAULT_HWPOISON_LARGE,
    VM_FAULT_MAJOR,
    VM_FAULT_NAMES,
    VM_FAULT_NOPAGE,
    VM_FAULT_OOM,
    VM_FAULT_RETRY,
    VM_FAULT_SIGBUS,
    VM_FAULT_SIGSEGV,
    VM_FAULT_WRITE,
    VM_GROWSDOWN,
    VM_GROWSUP,
    VM_HUGETLB,
    VM_LOCKED,
    VM_READ,
    VM_SHARED,
    VM_UFFD_MISSING,
    VM_WRITE,
    VSYSCALL_ADDR,
    vm_fault_str,
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
    _PAGE_NX,
    _PAGE_PRESENT,
    _PAGE_PROTNONE,
    _PAGE_PSE,
    _PAGE_RW,
    _PAGE_SPECIAL,
    _PAGE_SPLITTING,
    _PAGE_TABLE,
    _PAGE_USER,
)
from .inputs import MMAP_MIN_ADDR, PFN_PAGE, PFN_TABLE, RLIMIT_STACK, soft_dirty
from .state import EXIT, Machine, State

Action = Callable[[Machine, State], None]

ACTIONS: dict[str, Action] = {}
LABELS: dict[str, tuple[str, ...]] = {}
INITIAL = "__do_page_fault:kmemcheck_active"


def action(pc: str, *labels: str) -> Callable[[Action], Action]:
    """Register ``fn`` as the action at location ``pc``, recording ``labels``."""
    def deco(fn: Action) -> Action:
        if pc in ACTIONS:
            raise ValueError(f"two actions at {pc}")
        ACTIONS[pc] = fn
        LABELS[pc] = labels
        fn.pc = pc  # type: ignore[attr-defined]
        return fn
    return deco


def vm_fault(name: str) -> int:
    """'MAJOR|RETRY' -> VM_FAULT_MAJOR | VM_FAULT_RETRY (the EnvSpec vocabulary)."""
    if name == "0":
        return 0
    value = 0
    for part in name.split("|"):
        value |= VM_FAULT_NAMES["VM_FAULT_" + part]
    return value


# -- small readers ------------------------------------------------------------------

def _addr(m: Machine) -> Any:
    return m.i.word("address")


def _vm_flags(m: Machine, s: State) -> Any:
    return m.i.word(m.layout.vma(s.vma).flags)


def _page_mask(m: Machine) -> int:
    return ((1 << m.W) - 1) & ~(PAGE_SIZE - 1)


def _user_mode(m: Machine) -> Any:
    return m.i.bool("user_mode")


def _prev(m: Machine, name: str) -> Any:
    """vm_prev of VMA ``name`` in the layout (VMAs are sorted), or None."""
    vmas = m.layout.vmas
    for k, v in enumerate(vmas):
        if v.name == name:
            return vmas[k - 1] if k else None
    raise KeyError(name)


def _next(m: Machine, name: str) -> Any:
    """vm_next of VMA ``name`` in the layout, or None."""
    vmas = m.layout.vmas
    for k, v in enumerate(vmas):
        if v.name == name:
            return vmas[k + 1] if k + 1 < len(vmas) else None
    raise KeyError(name)


def _vma_kind(m: Machine, s: State) -> str:
    """What backs the VMA find_vma returned: T's kind is an input; A is anonymous."""
    return m.i.choice("T.kind") if s.vma == "T" else "anon"


def _vma_attr(m: Machine, s: State, attr: str) -> Any:
    """A file VMA's vm_ops facts (``fault_handler``, ``page_mkwrite``): inputs for T; A has
    no vm_ops, so they never matter for it (the defaults of VmaSpec)."""
    if s.vma == "T":
        return m.i.bool(f"T.{attr}")
    return m.o.true if attr == "fault_handler" else m.o.false


def _pmd_none(m: Machine, pmd: Any) -> Any:
    """pmd_none: on PAE only the low 32 bits are tested (KF 1.2)."""
    if m.arch == "i386-pae":
        return m.o.eq(m.o.band(pmd, 0xFFFFFFFF), 0)
    return m.o.eq(pmd, 0)


def _env_fault(m: Machine, s: State, what: str) -> int:
    return vm_fault(m.i.choice(f"env.{what}.{min(s.call, 2)}"))


# ===================================================================================
# __do_page_fault (seed 1.1; KF 2.1)
# ===================================================================================

@action("__do_page_fault:kmemcheck_active", "kmemcheck_active")
def kmemcheck_active(m: Machine, s: State) -> None:
    """1.1 step 1: kmemcheck_hide() when kmemcheck is active; it changes no later decision."""
    m.decide(s, "kmemcheck_active", m.i.bool("env.kmemcheck"))
    m.goto(s, "__do_page_fault:kmmio_fault")


@action("__do_page_fault:kmmio_fault", "kmmio_fault")
def kmmio_fault(m: Machine, s: State) -> None:
    """1.1: mmiotrace may claim the fault (KF 2.2.1)."""
    if m.decide(s, "kmmio_fault", m.i.bool("env.kmmio")):
        m.finish(s, Outcome.handled("kmmio"))
    else:
        m.goto(s, "__do_page_fault:fault_in_kernel_space")


@action("__do_page_fault:fault_in_kernel_space", "fault_in_kernel_space")
def fault_in_kernel_space(m: Machine, s: State) -> None:
    """1.1.1: address >= TASK_SIZE_MAX."""
    if m.decide(s, "fault_in_kernel_space", m.o.uge(_addr(m), m.layout.task_size_max)):
        m.goto(s, "kernel_space:fast_path")
    else:
        m.goto(s, "__do_page_fault:kprobes_fault")


# --- the kernel-address branch (1.1; KF 2.1 step 3) ----------------------------------

@action("kernel_space:fast_path", "kernel_fast_path")
def kernel_fast_path(m: Machine, s: State) -> None:
    """Not-present, supervisor, no reserved bit: a vmalloc/kmemcheck candidate."""
    o = m.o
    if m.decide(s, "kernel_fast_path", o.eq(o.band(s.ec, PF_RSVD | PF_USER | PF_PROT), 0)):
        m.goto(s, "kernel_space:vmalloc_fault")
    else:
        m.goto(s, "kernel_space:spurious_fault")


@action("kernel_space:vmalloc_fault", "vmalloc_fault")
def vmalloc_fault(m: Machine, s: State) -> None:
    """1.1.2 / KF 2.2.4: inside [VMALLOC_START, VMALLOC_END) and init_mm maps it -> synced."""
    o = m.o
    a = _addr(m)
    lo, hi = m.layout.vmalloc
    ok = o.and_(o.uge(a, lo), lambda: o.ult(a, hi),
                lambda: o.test(m.i.word("kpte"), _PAGE_PRESENT))
    if m.decide(s, "vmalloc_fault", ok):
        m.finish(s, Outcome.handled("vmalloc_fault"))
    else:
        m.goto(s, "kernel_space:kmemcheck_fault")


@action("kernel_space:kmemcheck_fault", "kmemcheck_fault")
def kmemcheck_fault(m: Machine, s: State) -> None:
    """KF 2.2.5: only kernel-mode code (regs->cs == __KERNEL_CS) on a hidden page."""
    o = m.o
    claimed = o.and_(o.not_(_user_mode(m)), lambda: m.i.bool("env.kmemcheck"))
    if m.decide(s, "kmemcheck_fault", claimed):
        m.finish(s, Outcome.handled("kmemcheck"))
    else:
        m.goto(s, "kernel_space:spurious_fault")


@action("kernel_space:spurious_fault", "spurious_fault")
def spurious_fault(m: Machine, s: State) -> None:
    """KF 2.2.6: only error code 0x03 (a write) or 0x11 (a fetch), on a present kernel
    mapping that allows the access now (a stale TLB entry after raising permissions)."""
    o = m.o
    ec = s.ec
    kpte = lambda: m.i.word("kpte")  # noqa: E731
    # The first conjunct is implied by the second; it only keeps the explicit engine
    # from binding PF_INSTR when the cheap bits already rule the fault out.
    prot_only = lambda: o.eq(o.band(ec, PF_PROT | PF_USER | PF_RSVD), PF_PROT)  # noqa: E731
    write_case = o.and_(prot_only, lambda: o.eq(ec, PF_WRITE | PF_PROT),
                        lambda: o.test(kpte(), _PAGE_PRESENT), lambda: o.test(kpte(), _PAGE_RW))
    spurious = o.or_(write_case,
                     lambda: o.and_(prot_only, lambda: o.eq(ec, PF_INSTR | PF_PROT),
                                    lambda: o.test(kpte(), _PAGE_PRESENT),
                                    lambda: o.not_(o.test(kpte(), _PAGE_NX))))
    if m.decide(s, "spurious_fault", spurious):
        m.finish(s, Outcome.handled("spurious_fault"))
    else:
        m.goto(s, "kernel_space:kprobes_fault")


def _kprobes_claims(m: Machine) -> Any:
    """KF 2.2.7: kprobes only handle kernel-mode faults."""
    o = m.o
    return o.and_(o.not_(_user_mode(m)), lambda: m.i.bool("env.kprobes"))


@action("kernel_space:kprobes_fault", "kprobes_fault")
def kernel_kprobes_fault(m: Machine, s: State) -> None:
    if m.decide(s, "kprobes_fault", _kprobes_claims(m)):
        m.finish(s, Outcome.handled("kprobes"))
    else:
        # No mmap_sem here: a prefetch fixup could otherwise deadlock (1.1).
        bad_area_nosemaphore(m, s, "SEGV_MAPERR")


# --- the user-address part of __do_page_fault -----------------------------------------

@action("__do_page_fault:kprobes_fault", "kprobes_fault")
def user_kprobes_fault(m: Machine, s: State) -> None:
    if m.decide(s, "kprobes_fault", _kprobes_claims(m)):
        m.finish(s, Outcome.handled("kprobes"))
    else:
        m.goto(s, "__do_page_fault:pf_rsvd")


@action("__do_page_fault:pf_rsvd", "pf_rsvd")
def pf_rsvd(m: Machine, s: State) -> None:
    """1.1: PF_RSVD at a user address: corrupted page tables, pgtable_bad (1.1.3)."""
    if m.decide(s, "pf_rsvd", m.o.test(s.ec, PF_RSVD)):
        m.goto(s, "pgtable_bad:die")
    else:
        m.goto(s, "__do_page_fault:smap_violation")


@action("pgtable_bad:die", "die_notifier_stop")
def pgtable_bad_die(m: Machine, s: State) -> None:
    """1.1.3 / KF 2.2.8: oops "Bad pagetable"; only a die notifier's STOP returns, and then
    __do_page_fault carries on (there is no return after pgtable_bad)."""
    if m.decide(s, "die_notifier_stop", m.i.choice("env.die_notifier") == "stop"):
        m.goto(s, "__do_page_fault:smap_violation")
    else:
        m.finish(s, Outcome.oops("bad_pagetable"))


@action("__do_page_fault:smap_violation", "smap_violation")
def smap_violation(m: Machine, s: State) -> None:
    """KF 2.2.11: SMAP on, hardware PF_USER clear, and not (kernel mode with AC set).
    Runs before PF_USER is ORed in, so an implicit supervisor access at CPL 3 counts."""
    o = m.o
    viol = o.and_(m.i.bool("cpu.smap"),
                  lambda: o.not_(o.test(s.ec, PF_USER)),
                  lambda: o.not_(o.and_(o.not_(_user_mode(m)), lambda: m.i.bool("regs.AC"))))
    if m.decide(s, "smap_violation", viol):
        bad_area_nosemaphore(m, s, "SEGV_MAPERR")
    else:
        m.goto(s, "__do_page_fault:faulthandler_disabled")


@action("__do_page_fault:faulthandler_disabled", "faulthandler_disabled")
def faulthandler_disabled(m: Machine, s: State) -> None:
    """1.1.4: pagefault_disabled() || in_atomic(), or no mm: do not take the fault."""
    o = m.o
    disabled = o.or_(m.i.choice("task.context") != "normal", lambda: o.not_(m.i.bool("task.has_mm")))
    if m.decide(s, "faulthandler_disabled", disabled):
        bad_area_nosemaphore(m, s, "SEGV_MAPERR")
    else:
        m.goto(s, "__do_page_fault:user_mode")


@action("__do_page_fault:user_mode", "user_mode")
def user_mode(m: Machine, s: State) -> None:
    """1.1: user-mode registers count as a user access: IRQs on, PF_USER, FAULT_FLAG_USER."""
    if m.decide(s, "user_mode", _user_mode(m)):
        s.irqs = "on"
        s.ec = m.o.bor(s.ec, PF_USER)
        s.flags |= FAULT_FLAG_USER
        m.change(s, irqs="on", fault_flags=hex(s.flags), error_code="|PF_USER")
        m.goto(s, "__do_page_fault:pf_write")
    else:
        m.goto(s, "__do_page_fault:regs_if")


@action("__do_page_fault:regs_if", "regs_if")
def regs_if(m: Machine, s: State) -> None:
    """1.1: a kernel-mode fault enables IRQs only if the interrupted context had them on."""
    if m.decide(s, "regs_if", m.i.bool("regs.IF")):
        s.irqs = "on"
        m.change(s, irqs="on")
    m.goto(s, "__do_page_fault:pf_write")


@action("__do_page_fault:pf_write", "pf_write")
def pf_write(m: Machine, s: State) -> None:
    if m.decide(s, "pf_write", m.o.test(s.ec, PF_WRITE)):
        s.flags |= FAULT_FLAG_WRITE
        m.change(s, fault_flags=hex(s.flags))
    m.goto(s, "__do_page_fault:down_read_trylock")


def _acquire(m: Machine, s: State) -> None:
    s.mmap_sem += 1
    m.change(s, mmap_sem="acquire")


def _release(m: Machine, s: State) -> None:
    s.mmap_sem -= 1
    m.change(s, mmap_sem="release")


@action("__do_page_fault:down_read_trylock", "down_read_trylock")
def down_read_trylock(m: Machine, s: State) -> None:
    """1.1: trylock mmap_sem; on contention a kernel fault without an exception-table entry
    must not sleep on it (it may already hold it): bad_area_nosemaphore."""
    if m.decide(s, "down_read_trylock", m.i.choice("env.mmap_sem") == "free"):
        _acquire(m, s)
        m.goto(s, "__do_page_fault:find_vma")
    elif m.split(m.o.eq(m.o.band(s.ec, PF_USER), 0)):
        m.goto(s, "__do_page_fault:search_exception_tables")
    else:
        _acquire(m, s)  # down_read: blocks until the writer is gone
        m.goto(s, "__do_page_fault:find_vma")


@action("__do_page_fault:search_exception_tables", "search_exception_tables")
def search_exception_tables(m: Machine, s: State) -> None:
    if m.decide(s, "search_exception_tables", m.i.bool("extable")):
        _acquire(m, s)
        m.goto(s, "__do_page_fault:find_vma")
    else:
        bad_area_nosemaphore(m, s, "SEGV_MAPERR")


@action("__do_page_fault:find_vma", "find_vma")
def find_vma(m: Machine, s: State) -> None:
    """1.1.5 / KF 2.2.13: the first VMA with vm_end > address (VMAs sorted by address)."""
    a = _addr(m)
    found = None
    for v in m.layout.vmas:
        if m.split(m.o.ult(a, v.end)):
            found = v.name
            break
    m.record(s, "find_vma", "found" if found else "none")
    if found is None:
        bad_area(m, s, "SEGV_MAPERR")
    else:
        s.vma = found
        m.goto(s, "__do_page_fault:vm_start_le_address")


@action("__do_page_fault:vm_start_le_address", "vm_start_le_address")
def vm_start_le_address(m: Machine, s: State) -> None:
    if m.decide(s, "vm_start_le_address", m.o.ule(s.vm_start[s.vma], _addr(m))):
        m.goto(s, "__do_page_fault:access_error")
    else:
        m.goto(s, "__do_page_fault:vm_growsdown")


@action("__do_page_fault:vm_growsdown", "vm_growsdown")
def vm_growsdown(m: Machine, s: State) -> None:
    """1.1: below a VMA: only a VM_GROWSDOWN VMA may grow; user faults are checked against sp."""
    if not m.decide(s, "vm_growsdown", m.o.test(_vm_flags(m, s), VM_GROWSDOWN)):
        bad_area(m, s, "SEGV_MAPERR")
    elif m.split(m.o.test(s.ec, PF_USER)):
        m.goto(s, "__do_page_fault:stack_cushion")
    else:
        m.goto(s, "expand_stack:prev")


@action("__do_page_fault:stack_cushion", "stack_cushion_exceeded")
def stack_cushion(m: Machine, s: State) -> None:
    """1.1: "enter $65535, $31" may touch 65536 + 32 * sizeof(long) below sp; further is a
    bug.  Unsigned, wrapping arithmetic (KF 2.1 step 15)."""
    o = m.o
    exceeded = o.ult(o.add(_addr(m), m.layout.cushion), m.i.word("sp"))
    if m.decide(s, "stack_cushion_exceeded", exceeded):
        bad_area(m, s, "SEGV_MAPERR")
    else:
        m.goto(s, "expand_stack:prev")


# --- stack growth: x86 builds the grows-down variant (KF 2.2.14, KF 4.1) ----------------

@action("expand_stack:prev", "prev_blocks_growth")
def expand_stack_prev(m: Machine, s: State) -> None:
    """KF 2.2.14: a non-GROWSDOWN vm_prev ending exactly at the new start blocks growth."""
    o = m.o
    if m.split(m.i.bool("kernel.seed_expand_stack")):
        seed_expand_stack_next(m, s)
        return
    new_start = o.band(_addr(m), _page_mask(m))
    prev = _prev(m, s.vma)
    if prev is None:
        blocks: Any = False
    else:
        blocks = o.and_(o.eq(new_start, prev.end),
                        lambda: o.not_(o.test(m.i.word(prev.flags), VM_GROWSDOWN)))
    if m.decide(s, "prev_blocks_growth", blocks):
        s.err = -ENOMEM
        m.goto(s, "expand_stack:result")
    else:
        s.grow_addr = new_start
        m.call(s, "expand_downwards:anon_vma_prepare", "expand_stack:result")


def seed_expand_stack_next(m: Machine, s: State) -> None:
    """Seed 1.1.7 taken literally (the CONFIG_STACK_GROWSUP variant; KF 4.1): a non-GROWSUP
    vm_next starting right above the page blocks growth."""
    o = m.o
    page = o.band(_addr(m), _page_mask(m))
    nxt = _next(m, s.vma)
    if nxt is None:
        blocks: Any = False
    else:
        # !(next->vm_flags & VM_GROWSUP) is always true on x86: VM_GROWSUP is 0.
        blocks = o.eq(nxt.start, o.add(page, PAGE_SIZE))
    if m.decide(s, "next_blocks_growth", blocks):
        s.err = -ENOMEM
        m.goto(s, "expand_stack:result")
    else:
        m.goto(s, "expand_upwards:vm_growsup")


@action("expand_upwards:vm_growsup", "vm_growsup")
def expand_upwards_vm_growsup(m: Machine, s: State) -> None:
    """Seed 1.1.7.1: only a VM_GROWSUP VMA grows up -- and VM_GROWSUP is 0 on x86, so every
    access below a stack fails here (-EFAULT)."""
    if m.decide(s, "vm_growsup", m.o.test(_vm_flags(m, s), VM_GROWSUP)):
        raise AssertionError("VM_GROWSUP is 0 on x86")  # unreachable: the test is on a zero mask
    s.err = -EFAULT
    m.goto(s, "expand_stack:result")


@action("expand_stack:result", "expand_stack")
def expand_stack_result(m: Machine, s: State) -> None:
    if m.decide(s, "expand_stack", s.err != 0):
        bad_area(m, s, "SEGV_MAPERR")
    else:
        m.goto(s, "__do_page_fault:access_error")


def _anon_vma_prepare_fails(m: Machine, s: State) -> Any:
    o = m.o
    return o.and_(o.not_(_anon_prepared(m, s)), lambda: m.i.bool("alloc.anon_vma"))


@action("expand_downwards:anon_vma_prepare", "anon_vma_prepare")
def ed_anon_vma_prepare(m: Machine, s: State) -> None:
    if m.decide(s, "anon_vma_prepare", _anon_vma_prepare_fails(m, s)):
        s.err = -ENOMEM
        m.ret(s)
    else:
        s.anon_vma = {**s.anon_vma, s.vma: m.o.true}
        m.goto(s, "expand_downwards:security_mmap_addr")


@action("expand_downwards:security_mmap_addr", "security_mmap_addr")
def ed_security_mmap_addr(m: Machine, s: State) -> None:
    """cap_mmap_addr: below mmap_min_addr needs CAP_SYS_RAWIO (-EPERM)."""
    o = m.o
    bad = o.and_(o.ult(s.grow_addr, MMAP_MIN_ADDR), lambda: o.not_(m.i.bool("task.cap_sys_rawio")))
    if m.decide(s, "security_mmap_addr", bad):
        s.err = -EPERM
        m.ret(s)
    else:
        m.goto(s, "expand_downwards:address_below_vm_start")


@action("expand_downwards:address_below_vm_start", "address_below_vm_start")
def ed_address_below_vm_start(m: Machine, s: State) -> None:
    if m.decide(s, "address_below_vm_start", m.o.ult(s.grow_addr, s.vm_start[s.vma])):
        m.goto(s, "expand_downwards:pgoff_underflow")
    else:
        s.err = 0  # somebody else already expanded it
        m.ret(s)


@action("expand_downwards:pgoff_underflow", "pgoff_underflow")
def ed_pgoff_underflow(m: Machine, s: State) -> None:
    o = m.o
    grow = o.lshr(o.sub(s.vm_start[s.vma], s.grow_addr), 12)
    if m.decide(s, "pgoff_underflow", o.ugt(grow, _pgoff(m, s))):
        s.err = -ENOMEM
        m.ret(s)
    else:
        m.goto(s, "expand_downwards:acct_stack_growth")


@action("expand_downwards:acct_stack_growth", "acct_stack_growth")
def ed_acct_stack_growth(m: Machine, s: State) -> None:
    """acct_stack_growth: RLIMIT_AS, RLIMIT_STACK (the guard page not charged),
    RLIMIT_MEMLOCK for VM_LOCKED, then the overcommit check; on success move vm_start."""
    o = m.o
    v = m.layout.vma(s.vma)
    flags = _vm_flags(m, s)
    size = o.sub(v.end, s.grow_addr)
    actual = o.ite(o.and_(o.ne(size, 0), lambda: o.test(flags, VM_GROWSDOWN)),
                   lambda: o.sub(size, PAGE_SIZE), size)
    if m.i.choice("task.rlimit_as") == "exhausted":
        verdict = "rlimit_as"
    elif m.i.choice("task.rlimit_stack") != "unlimited" and m.split(o.ugt(actual, RLIMIT_STACK)):
        verdict = "rlimit_stack"
    elif m.split(o.and_(o.test(flags, VM_LOCKED),
                        lambda: m.i.choice("task.rlimit_memlock") == "exhausted",
                        lambda: o.not_(m.i.bool("task.cap_ipc_lock")))):
        verdict = "rlimit_memlock"
    elif not m.split(m.i.bool("env.overcommit")):
        verdict = "overcommit"
    else:
        verdict = "ok"
    m.record(s, "acct_stack_growth", verdict)
    if verdict == "ok":
        grow = o.lshr(o.sub(s.vm_start[s.vma], s.grow_addr), 12)
        s.vm_pgoff = {**s.vm_pgoff, s.vma: o.sub(_pgoff(m, s), grow)}
        s.vm_start = {**s.vm_start, s.vma: s.grow_addr}
        s.grown += 1
        s.err = 0
        m.change(s, stack_grown="vm_start")
    else:
        s.err = -ENOMEM
    m.ret(s)


# --- good_area ------------------------------------------------------------------------

def access_error_cond(m: Machine, ec: Any, vm_flags: Any) -> Any:
    """1.1.8: a write needs VM_WRITE; a read of a present page is denied (PF_PROT); a read
    of a not-present page needs any of VM_READ, VM_EXEC, VM_WRITE."""
    o = m.o
    return o.ite(o.test(ec, PF_WRITE),
                 lambda: o.not_(o.test(vm_flags, VM_WRITE)),
                 lambda: o.ite(o.test(ec, PF_PROT), o.true,
                               lambda: o.not_(o.test(vm_flags, VM_READ | VM_EXEC | VM_WRITE))))


@action("__do_page_fault:access_error", "access_error")
def access_error(m: Machine, s: State) -> None:
    if m.decide(s, "access_error", access_error_cond(m, s.ec, _vm_flags(m, s))):
        bad_area(m, s, "SEGV_ACCERR")  # bad_area_access_error
    else:
        # handle_mm_fault (1.1.10): the memcg OOM hooks are armed for user faults.
        s.call += 1
        s.ret = 0
        m.change(s, mm_fault_call=hex(s.flags))
        m.call(s, "__handle_mm_fault:is_vm_hugetlb_page", "handle_mm_fault:memcg")


@action("handle_mm_fault:memcg", "memcg_oom_cleanup")
def handle_mm_fault_memcg(m: Machine, s: State) -> None:
    """1.1.10: for user faults, clean a memcg OOM state up when the fault did not OOM."""
    if s.flags & FAULT_FLAG_USER:
        o = m.o
        cleanup = o.and_(_memcg_oom(m, s), lambda: not (s.ret & VM_FAULT_OOM))
        if m.decide(s, "memcg_oom_cleanup", cleanup):
            s.memcg = o.false  # mem_cgroup_oom_synchronize(false) clears memcg_in_oom
    m.goto(s, "__do_page_fault:handle_mm_fault")


@action("__do_page_fault:handle_mm_fault", "handle_mm_fault")
def handle_mm_fault_returned(m: Machine, s: State) -> None:
    s.fault = s.ret
    s.major = s.major or bool(s.ret & VM_FAULT_MAJOR)
    m.record(s, "handle_mm_fault", vm_fault_str(s.ret))
    m.goto(s, "__do_page_fault:fault_retry")


@action("__do_page_fault:fault_retry", "fault_retry")
def fault_retry(m: Machine, s: State) -> None:
    """1.1: VM_FAULT_RETRY means mmap_sem was already released by the callee."""
    if m.decide(s, "fault_retry", bool(s.fault & VM_FAULT_RETRY)):
        m.goto(s, "__do_page_fault:allow_retry")
    else:
        _release(m, s)
        m.goto(s, "__do_page_fault:fault_error")


@action("__do_page_fault:allow_retry", "allow_retry")
def allow_retry(m: Machine, s: State) -> None:
    """1.1: retry at most once: clear ALLOW_RETRY, set TRIED."""
    if m.decide(s, "allow_retry", bool(s.flags & FAULT_FLAG_ALLOW_RETRY)):
        s.flags = (s.flags & ~FAULT_FLAG_ALLOW_RETRY) | FAULT_FLAG_TRIED
        m.change(s, fault_flags=hex(s.flags))
        m.goto(s, "__do_page_fault:fatal_signal_pending")
    else:
        m.goto(s, "__do_page_fault:flags_user")


@action("__do_page_fault:fatal_signal_pending", "fatal_signal_pending")
def fatal_signal_pending(m: Machine, s: State) -> None:
    if m.decide(s, "fatal_signal_pending", _fatal(m, s)):
        m.goto(s, "__do_page_fault:flags_user")
    else:
        _acquire(m, s)  # retry: down_read, then find_vma again
        m.goto(s, "__do_page_fault:find_vma")


@action("__do_page_fault:flags_user", "flags_user")
def flags_user(m: Machine, s: State) -> None:
    """1.1: user mode returns to handle the fatal signal; kernel mode goes to no_context."""
    if m.decide(s, "flags_user", bool(s.flags & FAULT_FLAG_USER)):
        # Back to user mode: a pending fatal signal kills the task on the way; without one
        # the instruction simply runs again.
        if m.split(_fatal(m, s)):
            m.finish(s, Outcome.fatal_signal())
        else:
            m.finish(s, Outcome.handled("handle_mm_fault", major=s.major))
    else:
        no_context(m, s, "SIGBUS", "BUS_ADRERR")


@action("__do_page_fault:fault_error", "fault_error")
def fault_error(m: Machine, s: State) -> None:
    if m.decide(s, "fault_error", bool(s.fault & VM_FAULT_ERROR)):
        m.goto(s, "mm_fault_error:fatal_kernel")
    else:
        m.goto(s, "__do_page_fault:major")


@action("__do_page_fault:major", "major")
def major(m: Machine, s: State) -> None:
    """1.1: major/minor accounting once, after the final pass."""
    if m.decide(s, "major", s.major):
        s.maj_flt += 1
        m.change(s, maj_flt="+1")
    else:
        s.min_flt += 1
        m.change(s, min_flt="+1")
    if m.arch == "x86_64":
        m.finish(s, Outcome.handled("handle_mm_fault", major=s.major))
    else:
        m.goto(s, "check_v8086_mode:v8086_mode")


@action("check_v8086_mode:v8086_mode", "v8086_mode")
def v8086_mode(m: Machine, s: State) -> None:
    """1.1.14 (32-bit, CONFIG_VM86): the model's tasks never run in vm86 mode."""
    m.decide(s, "v8086_mode", False)
    m.finish(s, Outcome.handled("handle_mm_fault", major=s.major))


# ===================================================================================
# Error paths: bad_area*, no_context, mm_fault_error, do_sigbus, pagefault_out_of_memory
# ===================================================================================

def bad_area(m: Machine, s: State, si_code: str) -> None:
    """KF 2.2.16: __bad_area releases mmap_sem, then __bad_area_nosemaphore."""
    _release(m, s)
    bad_area_nosemaphore(m, s, si_code)


def bad_area_nosemaphore(m: Machine, s: State, si_code: str) -> None:
    s.signal = "SIGSEGV"
    s.si_code = si_code
    m.goto(s, "__bad_area_nosemaphore:pf_user")


def no_context(m: Machine, s: State, signal: str | None, si_code: str | None) -> None:
    s.signal = signal
    s.si_code = si_code
    m.goto(s, "no_context:fixup_exception")


def _is_prefetch(m: Machine, s: State) -> Any:
    """KF 2.2.21: never for an instruction fetch; otherwise the decoded instruction decides."""
    o = m.o
    return o.and_(o.not_(o.test(s.ec, PF_INSTR)), lambda: m.i.bool("env.is_prefetch"))


@action("__bad_area_nosemaphore:pf_user", "bad_area_pf_user")
def bans_pf_user(m: Machine, s: State) -> None:
    if m.decide(s, "bad_area_pf_user", m.o.test(s.ec, PF_USER)):
        if s.irqs != "on":
            s.irqs = "on"
            m.change(s, irqs="on")
        m.goto(s, "__bad_area_nosemaphore:is_prefetch")
    else:
        m.goto(s, "__bad_area_nosemaphore:is_f00f_bug")


@action("__bad_area_nosemaphore:is_prefetch", "is_prefetch")
def bans_is_prefetch(m: Machine, s: State) -> None:
    if m.decide(s, "is_prefetch", _is_prefetch(m, s)):
        m.finish(s, Outcome.handled("prefetch"))
    else:
        m.goto(s, "__bad_area_nosemaphore:is_errata100")


@action("__bad_area_nosemaphore:is_errata100", "is_errata100")
def bans_is_errata100(m: Machine, s: State) -> None:
    """KF 2.2.22: K8 erratum 100 (64-bit only)."""
    claimed = m.i.bool("env.errata") if m.arch == "x86_64" else False
    if m.decide(s, "is_errata100", claimed):
        m.finish(s, Outcome.handled("errata"))
    elif m.arch == "x86_64":
        m.goto(s, "__bad_area_nosemaphore:vsyscall")
    else:
        m.goto(s, "__bad_area_nosemaphore:address_ge_task_size")


@action("__bad_area_nosemaphore:vsyscall", "vsyscall_emulated")
def bans_vsyscall(m: Machine, s: State) -> None:
    """KF 2.2.17 step 4 (64-bit): a user fetch from the vsyscall page is emulated."""
    o = m.o
    emulated = o.and_(o.test(s.ec, PF_INSTR),
                      lambda: o.eq(o.band(_addr(m), _page_mask(m)), VSYSCALL_ADDR),
                      lambda: m.i.choice("env.vsyscall") == "emulate")
    if m.decide(s, "vsyscall_emulated", emulated):
        m.finish(s, Outcome.handled("vsyscall"))
    else:
        m.goto(s, "__bad_area_nosemaphore:address_ge_task_size")


@action("__bad_area_nosemaphore:address_ge_task_size", "address_ge_task_size")
def bans_address_ge_task_size(m: Machine, s: State) -> None:
    """KF 2.2.17 step 5: user space is always told a kernel-address fault was PF_PROT."""
    if m.decide(s, "address_ge_task_size", m.o.uge(_addr(m), m.layout.task_size_max)):
        s.ec = m.o.bor(s.ec, PF_PROT)
        m.change(s, error_code="|PF_PROT")
    m.change(s, signal=f"SIGSEGV/{s.si_code}")
    m.finish(s, Outcome.sigsegv(s.si_code or "SEGV_MAPERR"))


@action("__bad_area_nosemaphore:is_f00f_bug", "is_f00f_bug")
def bans_is_f00f_bug(m: Machine, s: State) -> None:
    """KF 2.2.22: the Pentium F00F bug (32-bit only)."""
    claimed = m.i.bool("env.errata") if m.arch != "x86_64" else False
    if m.decide(s, "is_f00f_bug", claimed):
        m.finish(s, Outcome.handled("errata"))
    else:
        no_context(m, s, "SIGSEGV", s.si_code)


@action("no_context:fixup_exception", "fixup_exception")
def nc_fixup_exception(m: Machine, s: State) -> None:
    """KF 2.2.19: the exception table redirects a uaccess to its fixup (-EFAULT)."""
    if m.decide(s, "fixup_exception", m.i.bool("extable")):
        m.goto(s, "no_context:in_interrupt")
    else:
        m.goto(s, "no_context:is_prefetch")


@action("no_context:in_interrupt", "in_interrupt")
def nc_in_interrupt(m: Machine, s: State) -> None:
    m.decide(s, "in_interrupt", m.i.choice("task.context") == "interrupt")
    m.finish(s, Outcome.fixup())


@action("no_context:is_prefetch", "is_prefetch")
def nc_is_prefetch(m: Machine, s: State) -> None:
    if m.decide(s, "is_prefetch", _is_prefetch(m, s)):
        m.finish(s, Outcome.handled("prefetch"))
    else:
        m.goto(s, "no_context:is_errata93")


@action("no_context:is_errata93", "is_errata93")
def nc_is_errata93(m: Machine, s: State) -> None:
    claimed = m.i.bool("env.errata") if m.arch == "x86_64" else False
    if m.decide(s, "is_errata93", claimed):
        m.finish(s, Outcome.handled("errata"))
    else:
        m.goto(s, "no_context:die")


@action("no_context:die", "die_notifier_stop")
def nc_die(m: Machine, s: State) -> None:
    """KF 2.2.19 step 4: the oops; "NULL pointer dereference" below PAGE_SIZE (KF 2.2.23).
    A die notifier's STOP makes no_context return, but the oops has happened."""
    o = m.o
    m.decide(s, "die_notifier_stop", m.i.choice("env.die_notifier") == "stop")
    null = m.split(o.ult(_addr(m), PAGE_SIZE))
    m.finish(s, Outcome.oops("null_pointer_dereference" if null else "kernel_paging_request"))


@action("mm_fault_error:fatal_kernel", "mm_fault_error_fatal_kernel")
def mfe_fatal_kernel(m: Machine, s: State) -> None:
    """1.1.13: a kernel fault with a fatal signal pending: fixup or oops, no signal."""
    o = m.o
    if m.decide(s, "mm_fault_error_fatal_kernel",
                o.and_(_fatal(m, s), lambda: o.not_(o.test(s.ec, PF_USER)))):
        no_context(m, s, None, None)
    else:
        m.goto(s, "mm_fault_error:oom")


@action("mm_fault_error:oom", "vm_fault_oom")
def mfe_oom(m: Machine, s: State) -> None:
    if m.decide(s, "vm_fault_oom", bool(s.fault & VM_FAULT_OOM)):
        m.goto(s, "mm_fault_error:oom_pf_user")
    else:
        m.goto(s, "mm_fault_error:sigbus")


@action("mm_fault_error:oom_pf_user", "oom_pf_user")
def mfe_oom_pf_user(m: Machine, s: State) -> None:
    if m.decide(s, "oom_pf_user", m.o.test(s.ec, PF_USER)):
        m.goto(s, "pagefault_out_of_memory:memcg")
    else:
        no_context(m, s, "SIGSEGV", "SEGV_MAPERR")


@action("pagefault_out_of_memory:memcg", "mem_cgroup_oom_synchronize")
def pfoom_memcg(m: Machine, s: State) -> None:
    """1.1.13.1: a memcg OOM recorded by this task is handled by the memcg."""
    o = m.o
    sync = o.or_(_memcg_oom(m, s), lambda: m.i.choice("env.oom") == "memcg")
    if m.decide(s, "mem_cgroup_oom_synchronize", sync):
        m.finish(s, Outcome.oom())
    else:
        m.goto(s, "pagefault_out_of_memory:trylock")


@action("pagefault_out_of_memory:trylock", "oom_lock_trylock")
def pfoom_trylock(m: Machine, s: State) -> None:
    if m.decide(s, "oom_lock_trylock", m.i.choice("env.oom") != "lock_busy"):
        m.goto(s, "pagefault_out_of_memory:out_of_memory")
    else:
        m.finish(s, Outcome.oom())


@action("pagefault_out_of_memory:out_of_memory", "out_of_memory")
def pfoom_out_of_memory(m: Machine, s: State) -> None:
    if m.decide(s, "out_of_memory", m.i.choice("env.oom") != "disabled"):
        m.change(s, oom_killer="invoked")
    m.finish(s, Outcome.oom())


@action("mm_fault_error:sigbus", "vm_fault_sigbus")
def mfe_sigbus(m: Machine, s: State) -> None:
    if m.decide(s, "vm_fault_sigbus",
                bool(s.fault & (VM_FAULT_SIGBUS | VM_FAULT_HWPOISON | VM_FAULT_HWPOISON_LARGE))):
        m.goto(s, "do_sigbus:pf_user")
    else:
        m.goto(s, "mm_fault_error:sigsegv")


@action("mm_fault_error:sigsegv", "vm_fault_sigsegv")
def mfe_sigsegv(m: Machine, s: State) -> None:
    if m.decide(s, "vm_fault_sigsegv", bool(s.fault & VM_FAULT_SIGSEGV)):
        bad_area_nosemaphore(m, s, "SEGV_MAPERR")
    else:
        m.finish(s, Outcome.oops("bug"))  # BUG(): only VM_FAULT_FALLBACK could get here


@action("do_sigbus:pf_user", "sigbus_pf_user")
def sigbus_pf_user(m: Machine, s: State) -> None:
    """KF 2.2.24: x86 never sends SIGBUS for a kernel-mode fault."""
    if m.decide(s, "sigbus_pf_user", m.o.test(s.ec, PF_USER)):
        m.goto(s, "do_sigbus:is_prefetch")
    else:
        no_context(m, s, "SIGBUS", "BUS_ADRERR")


@action("do_sigbus:is_prefetch", "is_prefetch")
def sigbus_is_prefetch(m: Machine, s: State) -> None:
    if m.decide(s, "is_prefetch", _is_prefetch(m, s)):
        m.finish(s, Outcome.handled("prefetch"))
    else:
        m.goto(s, "do_sigbus:hwpoison")


@action("do_sigbus:hwpoison", "sigbus_hwpoison")
def sigbus_hwpoison(m: Machine, s: State) -> None:
    code = "BUS_MCEERR_AR" if m.decide(s, "sigbus_hwpoison",
                                       bool(s.fault & (VM_FAULT_HWPOISON | VM_FAULT_HWPOISON_LARGE))) \
        else "BUS_ADRERR"
    m.change(s, signal=f"SIGBUS/{code}")
    m.finish(s, Outcome.sigbus(code))


# ===================================================================================
# __handle_mm_fault (seed 2; KF 2.4.1)
# ===================================================================================

def _return_mm(m: Machine, s: State, value: int) -> None:
    """Return ``value`` from __handle_mm_fault to handle_mm_fault."""
    s.ret = value
    s.pc = "handle_mm_fault:memcg"
    s.stack = s.stack[:-1]


@action("__handle_mm_fault:is_vm_hugetlb_page", "is_vm_hugetlb_page")
def is_vm_hugetlb_page(m: Machine, s: State) -> None:
    if m.decide(s, "is_vm_hugetlb_page", m.o.test(_vm_flags(m, s), VM_HUGETLB)):
        m.goto(s, "hugetlb_fault:result")
    else:
        m.goto(s, "__handle_mm_fault:pud_alloc")


@action("hugetlb_fault:result", "hugetlb_fault")
def hugetlb_fault(m: Machine, s: State) -> None:
    """2.1 / KF 2.4.5, summarised: the environment gives hugetlb_fault's result."""
    r = _env_fault(m, s, "hugetlb")
    m.record(s, "hugetlb_fault", vm_fault_str(r))
    _return_mm(m, s, r)


@action("__handle_mm_fault:pud_alloc", "pud_alloc")
def pud_alloc(m: Machine, s: State) -> None:
    """2.3 / KF 2.4.2: a none pgd entry gets a PUD page (x86-64 only: on PAE the pgd level
    is folded and never none); the allocation may fail."""
    upper = m.i.choice("pt.upper") if s.upper is None else s.upper
    failed = m.o.and_(upper == "pgd_none", lambda: m.i.bool("alloc.pud"))
    if m.decide(s, "pud_alloc", failed):
        _return_mm(m, s, VM_FAULT_OOM)
    else:
        s.upper = "pud_none" if upper == "pgd_none" else upper
        m.goto(s, "__handle_mm_fault:pmd_alloc")


@action("__handle_mm_fault:pmd_alloc", "pmd_alloc")
def pmd_alloc(m: Machine, s: State) -> None:
    """2.4 / KF 2.4.2: a none pud entry gets a PMD page (PAE preallocates them)."""
    failed = m.o.and_(s.upper == "pud_none", lambda: m.i.bool("alloc.pmd"))
    if m.decide(s, "pmd_alloc", failed):
        _return_mm(m, s, VM_FAULT_OOM)
    else:
        s.upper = "present"
        m.goto(s, "__handle_mm_fault:pmd_none_thp")


@action("__handle_mm_fault:pmd_none_thp", "pmd_none_thp")
def pmd_none_thp(m: Machine, s: State) -> None:
    """2: a none pmd in a VMA where transparent huge pages are enabled gets a huge page
    (KF 2.4.4: transparent_hugepage_enabled with sysfs 'always')."""
    o = m.o
    thp = lambda: m.i.choice("kernel.thp") == "always"  # noqa: E731
    if m.decide(s, "pmd_none_thp", o.and_(_pmd_none(m, s.pmd), thp)):
        m.goto(s, "create_huge_pmd:result")
    else:
        m.goto(s, "__handle_mm_fault:pmd_trans_huge")


@action("create_huge_pmd:result", "create_huge_pmd")
def create_huge_pmd(m: Machine, s: State) -> None:
    """KF 2.4.4: an anonymous VMA gets do_huge_pmd_anonymous_page (a file VMA without
    ->pmd_fault falls back).  A read maps the huge zero page, a write a new huge page;
    the deposited PTE page and anon_vma_prepare may fail (OOM), the huge page itself
    (FALLBACK: the 4 KiB path then runs)."""
    o = m.o
    write = bool(s.flags & FAULT_FLAG_WRITE)
    prepared = True  # anon_vma_prepare ran (it does unless the range check falls back first)
    if _vma_kind(m, s) != "anon":
        r = VM_FAULT_FALLBACK
    elif m.split(_huge_range_outside_vma(m, s)):
        r = VM_FAULT_FALLBACK                      # the aligned 2 MiB range leaves the VMA
        prepared = False
    elif m.split(_anon_vma_prepare_fails(m, s)):
        r = VM_FAULT_OOM
    elif not write:
        if m.split(m.i.bool("alloc.pte")):
            r = VM_FAULT_OOM                       # the deposited PTE page
        else:
            r = 0                                  # the huge zero page
            s.pmd = o.word((0x3FE00 << 12) | _PAGE_PRESENT | _PAGE_USER | _PAGE_ACCESSED | _PAGE_PSE, 64)
            s.pmd_written_by = "do_huge_pmd_anonymous_page"
    elif m.split(m.i.bool("alloc.huge_page")):
        r = VM_FAULT_FALLBACK
    elif m.split(m.i.bool("alloc.pte")):
        r = VM_FAULT_OOM
    else:
        r = 0
        pmd = o.word((0x3FC00 << 12) | _PAGE_PRESENT | _PAGE_USER | _PAGE_ACCESSED | _PAGE_DIRTY | _PAGE_PSE, 64)
        s.pmd = o.ite(o.test(_vm_flags(m, s), VM_WRITE), lambda: o.bor(pmd, _PAGE_RW), pmd)
        s.pmd_written_by = "do_huge_pmd_anonymous_page"
    if prepared and r != VM_FAULT_OOM and _vma_kind(m, s) == "anon":
        s.anon_vma = {**s.anon_vma, s.vma: o.true}
    m.record(s, "create_huge_pmd", vm_fault_str(r))
    if r & VM_FAULT_FALLBACK:
        m.goto(s, "__handle_mm_fault:pte_alloc")
    else:
        _return_mm(m, s, r)


def _huge_range_outside_vma(m: Machine, s: State) -> Any:
    """KF 2.4.4: do_huge_pmd_anonymous_page falls back unless the whole PMD-aligned
    range around the address lies inside the VMA (vm_start may have moved by growth)."""
    o = m.o
    size = 1 << (22 if m.arch == "i386" else 21)
    haddr = o.band(_addr(m), ((1 << m.W) - 1) & ~(size - 1))
    end = m.layout.vma(s.vma).end
    return o.or_(o.ult(haddr, s.vm_start[s.vma]), lambda: o.ugt(o.add(haddr, size), end))


@action("__handle_mm_fault:pmd_trans_huge", "pmd_trans_huge")
def pmd_trans_huge(m: Machine, s: State) -> None:
    if m.decide(s, "pmd_trans_huge", m.o.test(s.pmd, _PAGE_PSE)):
        m.goto(s, "__handle_mm_fault:pmd_trans_splitting")
    else:
        m.goto(s, "__handle_mm_fault:pte_alloc")


@action("__handle_mm_fault:pmd_trans_splitting", "pmd_trans_splitting")
def pmd_trans_splitting(m: Machine, s: State) -> None:
    """2: a splitting huge pmd: return 0 and let the access fault again."""
    if m.decide(s, "pmd_trans_splitting", m.o.test(s.pmd, _PAGE_SPLITTING)):
        _return_mm(m, s, 0)
    else:
        m.goto(s, "__handle_mm_fault:pmd_protnone")


@action("__handle_mm_fault:pmd_protnone", "pmd_protnone")
def pmd_protnone(m: Machine, s: State) -> None:
    """2 / KF 2.4.4: a NUMA-hinting huge pmd (NUMA balancing only): do_huge_pmd_numa_page
    restores it and returns 0."""
    o = m.o
    numa = m.i.bool("kernel.numa_balancing") if m.arch == "x86_64" else False
    pn = o.and_(numa, lambda: o.eq(o.band(s.pmd, _PAGE_PROTNONE | _PAGE_PRESENT), _PAGE_PROTNONE))
    if m.decide(s, "pmd_protnone", pn):
        s.pmd = o.bor(o.band(s.pmd, ~_PAGE_PROTNONE), _PAGE_PRESENT | _PAGE_USER | _PAGE_ACCESSED)
        s.pmd_written_by = "do_huge_pmd_numa_page"
        _return_mm(m, s, 0)
    else:
        m.goto(s, "__handle_mm_fault:dirty_not_pmd_write")


@action("__handle_mm_fault:dirty_not_pmd_write", "dirty_not_pmd_write")
def dirty_not_pmd_write(m: Machine, s: State) -> None:
    o = m.o
    write = bool(s.flags & FAULT_FLAG_WRITE)
    if m.decide(s, "dirty_not_pmd_write", o.and_(write, lambda: o.not_(o.test(s.pmd, _PAGE_RW)))):
        m.goto(s, "wp_huge_pmd:result")
    else:
        # huge_pmd_set_accessed: young; stored only when changed and dirty (KF 2.4.4).
        entry = o.bor(s.pmd, _PAGE_ACCESSED)
        if write and m.split(o.ne(entry, s.pmd)):
            s.pmd = entry
            s.pmd_written_by = "huge_pmd_set_accessed"
        _return_mm(m, s, 0)


@action("wp_huge_pmd:result", "wp_huge_pmd")
def wp_huge_pmd(m: Machine, s: State) -> None:
    """KF 2.4.4: do_huge_pmd_wp_page.  A huge page we own is made young, dirty and writable
    (VM_FAULT_WRITE).  Otherwise it is copied: into a new huge page when THP is enabled
    for the VMA and one can be allocated, else into 512 small pages (the 4 KiB fallback,
    which leaves a PTE table whose faulting entry is the writable copy)."""
    o = m.o
    writable = o.test(_vm_flags(m, s), VM_WRITE)
    dirty = _PAGE_ACCESSED | _PAGE_DIRTY | soft_dirty(m.arch)
    if m.split(m.i.bool("env.reuse")):
        pmd = o.bor(s.pmd, dirty)
        s.pmd = o.ite(writable, lambda: o.bor(pmd, _PAGE_RW), pmd)
        s.pmd_written_by = "do_huge_pmd_wp_page"
    elif m.i.choice("kernel.thp") == "always" and not m.split(m.i.bool("alloc.huge_page")):
        pmd = o.bor(o.word((0x3FC00 << 12) | _PAGE_PRESENT | _PAGE_USER | _PAGE_PSE, 64), dirty)
        s.pmd = o.ite(writable, lambda: o.bor(pmd, _PAGE_RW), pmd)
        s.pmd_written_by = "do_huge_pmd_wp_page"
    else:
        s.pmd = o.word((PFN_TABLE << 12) | _PAGE_TABLE, 64)
        s.pmd_written_by = "do_huge_pmd_wp_page_fallback"
        pte = o.bor(o.word((PFN_PAGE << 12) | _PAGE_PRESENT | _PAGE_USER, 64), dirty)
        s.pte = o.ite(writable, lambda: o.bor(pte, _PAGE_RW), pte)
        s.pte_written_by = "do_huge_pmd_wp_page_fallback"
    m.record(s, "wp_huge_pmd", vm_fault_str(VM_FAULT_WRITE))
    _return_mm(m, s, VM_FAULT_WRITE)


@action("__handle_mm_fault:pte_alloc", "pte_alloc")
def pte_alloc(m: Machine, s: State) -> None:
    """2.5: a none pmd gets a PTE page (which may fail: VM_FAULT_OOM)."""
    o = m.o
    none = _pmd_none(m, s.pmd)
    if m.decide(s, "pte_alloc", o.and_(none, lambda: m.i.bool("alloc.pte"))):
        _return_mm(m, s, VM_FAULT_OOM)
        return
    if m.split(none):
        s.pmd = o.word((PFN_TABLE << 12) | _PAGE_TABLE, 64)
        s.pmd_written_by = "__pte_alloc"
        s.pte = o.word(0, 64)
    m.goto(s, "__handle_mm_fault:pmd_trans_huge_after_alloc")


@action("__handle_mm_fault:pmd_trans_huge_after_alloc", "pmd_trans_huge_after_alloc")
def pmd_trans_huge_after_alloc(m: Machine, s: State) -> None:
    if m.decide(s, "pmd_trans_huge_after_alloc", m.o.test(s.pmd, _PAGE_PSE)):
        _return_mm(m, s, 0)
    else:
        m.goto(s, "handle_pte_fault:pte_present")


# ===================================================================================
# handle_pte_fault (seed 2.7; KF 2.4.6)
# ===================================================================================

@action("handle_pte_fault:pte_present", "pte_present")
def pte_present(m: Machine, s: State) -> None:
    """2.7.1: present to software means P or PROTNONE."""
    s.entry = s.pte
    if m.decide(s, "pte_present", m.o.test(s.pte, _PAGE_PRESENT | _PAGE_PROTNONE)):
        m.goto(s, "handle_pte_fault:pte_protnone")
    else:
        m.goto(s, "handle_pte_fault:pte_none")


@action("handle_pte_fault:pte_none", "pte_none")
def pte_none(m: Machine, s: State) -> None:
    if m.decide(s, "pte_none", m.o.eq(s.pte, 0)):
        m.goto(s, "handle_pte_fault:vma_is_anonymous")
    else:
        m.goto(s, "do_swap_page:entry_kind")


@action("handle_pte_fault:vma_is_anonymous", "vma_is_anonymous")
def vma_is_anonymous(m: Machine, s: State) -> None:
    """2.7.3: no vm_ops."""
    if m.decide(s, "vma_is_anonymous", _vma_kind(m, s) == "anon"):
        m.goto(s, "do_anonymous_page:vm_shared")
    else:
        m.goto(s, "do_fault:vm_ops_fault")


@action("handle_pte_fault:pte_protnone", "pte_protnone")
def pte_protnone(m: Machine, s: State) -> None:
    """2.7.7: a NUMA hint (only with NUMA balancing, 64-bit)."""
    o = m.o
    numa = m.i.bool("kernel.numa_balancing") if m.arch == "x86_64" else False
    pn = o.and_(numa, lambda: o.eq(o.band(s.pte, _PAGE_PROTNONE | _PAGE_PRESENT), _PAGE_PROTNONE))
    if m.decide(s, "pte_protnone", pn):
        m.goto(s, "do_numa_page:pte_same")
    else:
        m.goto(s, "handle_pte_fault:pte_same")


@action("handle_pte_fault:pte_same", "pte_same")
def hpf_pte_same(m: Machine, s: State) -> None:
    """2.7: under the ptl, did somebody change the PTE since we read it?"""
    if m.decide(s, "pte_same", m.o.not_(m.i.bool("env.pte_race"))):
        m.goto(s, "handle_pte_fault:flags_write")
    else:
        _return_mm(m, s, 0)


@action("handle_pte_fault:flags_write", "flags_write")
def hpf_flags_write(m: Machine, s: State) -> None:
    if m.decide(s, "flags_write", bool(s.flags & FAULT_FLAG_WRITE)):
        m.goto(s, "handle_pte_fault:pte_write")
    else:
        m.goto(s, "handle_pte_fault:ptep_set_access_flags")


@action("handle_pte_fault:pte_write", "pte_write")
def hpf_pte_write(m: Machine, s: State) -> None:
    o = m.o
    if m.decide(s, "pte_write", o.test(s.entry, _PAGE_RW)):
        s.entry = o.bor(s.entry, _PAGE_DIRTY | soft_dirty(m.arch))  # pte_mkdirty (2.7.11)
        m.goto(s, "handle_pte_fault:ptep_set_access_flags")
    else:
        m.call(s, "do_wp_page:vm_normal_page", "handle_pte_fault")


@action("handle_pte_fault:ptep_set_access_flags", "ptep_set_access_flags")
def hpf_ptep_set_access_flags(m: Machine, s: State) -> None:
    """2.7 / KF 2.4.6: x86 stores the entry only when it changed AND the fault is a write."""
    o = m.o
    entry = o.bor(s.entry, _PAGE_ACCESSED)  # pte_mkyoung (2.7.12)
    if m.decide(s, "ptep_set_access_flags", o.ne(s.pte, entry)):
        if s.flags & FAULT_FLAG_WRITE:
            s.pte = entry
            s.pte_written_by = "handle_pte_fault"
    _return_mm(m, s, 0)


# ===================================================================================
# do_anonymous_page (2.7.4; KF 2.4.7) and check_stack_guard_page (KF 2.4.8)
# ===================================================================================

def _vm_page_prot(m: Machine, s: State, write: bool) -> Any:
    """The PTE bits mk_pte(page, vm_page_prot) gives (KF 1.1's protection_map): present,
    user, accessed; RW only for a shared writable mapping; NX unless VM_EXEC."""
    o = m.o
    flags = _vm_flags(m, s)
    base = o.word((PFN_PAGE << 12) | _PAGE_PRESENT | _PAGE_USER | _PAGE_ACCESSED, 64)
    shared_w = o.eq(o.band(flags, VM_WRITE | VM_SHARED), VM_WRITE | VM_SHARED)
    prot = o.ite(shared_w, lambda: o.bor(base, _PAGE_RW), base)
    prot = o.ite(o.test(flags, VM_EXEC), prot, lambda: o.bor(prot, _PAGE_NX))
    if write:  # maybe_mkwrite(pte_mkdirty(entry))
        prot = o.bor(prot, _PAGE_DIRTY | soft_dirty(m.arch))
        prot = o.ite(o.test(flags, VM_WRITE), lambda: o.bor(prot, _PAGE_RW), prot)
    return prot


@action("do_anonymous_page:vm_shared", "anon_vm_shared")
def anon_vm_shared(m: Machine, s: State) -> None:
    """KF 2.4.7: a shared VMA without vm_ops is abnormal: SIGBUS."""
    if m.decide(s, "anon_vm_shared", m.o.test(_vm_flags(m, s), VM_SHARED)):
        _return_mm(m, s, VM_FAULT_SIGBUS)
    else:
        m.goto(s, "check_stack_guard_page:lowest_page")


@action("check_stack_guard_page:lowest_page", "guard_lowest_page")
def guard_lowest_page(m: Machine, s: State) -> None:
    """KF 2.4.8: a fault on a stack's lowest page grows it by one more page."""
    o = m.o
    page = o.band(_addr(m), _page_mask(m))
    lowest = o.and_(o.test(_vm_flags(m, s), VM_GROWSDOWN), lambda: o.eq(page, s.vm_start[s.vma]))
    if m.decide(s, "guard_lowest_page", lowest):
        m.goto(s, "check_stack_guard_page:prev_adjacent")
    else:
        s.err = 0
        m.goto(s, "do_anonymous_page:check_stack_guard_page")


@action("check_stack_guard_page:prev_adjacent", "guard_prev_adjacent")
def guard_prev_adjacent(m: Machine, s: State) -> None:
    o = m.o
    page = o.band(_addr(m), _page_mask(m))
    prev = _prev(m, s.vma)
    adjacent = False if prev is None else o.eq(page, prev.end)
    if m.decide(s, "guard_prev_adjacent", adjacent):
        m.goto(s, "check_stack_guard_page:prev_growsdown")
    else:
        s.grow_addr = o.sub(page, PAGE_SIZE)
        m.call(s, "expand_downwards:anon_vma_prepare", "do_anonymous_page:check_stack_guard_page")


@action("check_stack_guard_page:prev_growsdown", "guard_prev_growsdown")
def guard_prev_growsdown(m: Machine, s: State) -> None:
    prev = _prev(m, s.vma)
    if m.decide(s, "guard_prev_growsdown", m.o.test(m.i.word(prev.flags), VM_GROWSDOWN)):
        s.err = 0
    else:
        s.err = -ENOMEM
    m.goto(s, "do_anonymous_page:check_stack_guard_page")


@action("do_anonymous_page:check_stack_guard_page", "check_stack_guard_page")
def anon_check_stack_guard_page(m: Machine, s: State) -> None:
    if m.decide(s, "check_stack_guard_page", s.err < 0):
        _return_mm(m, s, VM_FAULT_SIGSEGV)
    else:
        m.goto(s, "do_anonymous_page:read_zero_page")


@action("do_anonymous_page:read_zero_page", "anon_read_zero_page")
def anon_read_zero_page(m: Machine, s: State) -> None:
    """2.7.4: a read maps the shared zero page read-only (special); a write allocates."""
    o = m.o
    if m.decide(s, "anon_read_zero_page", not (s.flags & FAULT_FLAG_WRITE)):
        zero = o.band(_vm_page_prot(m, s, write=False), ~_PAGE_RW)
        s.entry = o.bor(zero, _PAGE_SPECIAL)
        m.goto(s, "do_anonymous_page:pte_none_recheck")
    else:
        m.goto(s, "do_anonymous_page:alloc")


@action("do_anonymous_page:alloc", "anon_alloc")
def anon_alloc(m: Machine, s: State) -> None:
    o = m.o
    fail = o.or_(_anon_vma_prepare_fails(m, s), lambda: m.i.bool("alloc.anon_page"))
    if m.decide(s, "anon_alloc", fail):
        _return_mm(m, s, VM_FAULT_OOM)
    else:
        s.anon_vma = {**s.anon_vma, s.vma: o.true}
        s.entry = _vm_page_prot(m, s, write=True)
        m.goto(s, "do_anonymous_page:pte_none_recheck")


@action("do_anonymous_page:pte_none_recheck", "anon_pte_none_recheck")
def anon_pte_none_recheck(m: Machine, s: State) -> None:
    if m.decide(s, "anon_pte_none_recheck", m.o.not_(m.i.bool("env.pte_race"))):
        m.goto(s, "do_anonymous_page:userfaultfd_missing")
    else:
        _return_mm(m, s, 0)


@action("do_anonymous_page:userfaultfd_missing", "userfaultfd_missing")
def anon_userfaultfd_missing(m: Machine, s: State) -> None:
    if m.decide(s, "userfaultfd_missing", m.o.test(_vm_flags(m, s), VM_UFFD_MISSING)):
        m.goto(s, "handle_userfault:result")
    else:
        s.pte = s.entry
        s.pte_written_by = "do_anonymous_page"
        _return_mm(m, s, 0)


@action("handle_userfault:result", "handle_userfault")
def handle_userfault(m: Machine, s: State) -> None:
    """KF 2.4.12: userfaultfd; RETRY means mmap_sem was dropped.  Without ALLOW_RETRY (the
    retry pass) handle_userfault cannot wait and returns VM_FAULT_SIGBUS."""
    r = _env_fault(m, s, "userfault") if s.flags & FAULT_FLAG_ALLOW_RETRY else VM_FAULT_SIGBUS
    m.record(s, "handle_userfault", vm_fault_str(r))
    if r & VM_FAULT_RETRY:
        _release(m, s)
    _return_mm(m, s, r)


# ===================================================================================
# do_fault (2.7.5; KF 2.4.9)
# ===================================================================================

@action("do_fault:vm_ops_fault", "vm_ops_fault")
def do_fault_vm_ops_fault(m: Machine, s: State) -> None:
    if m.decide(s, "vm_ops_fault", _vma_attr(m, s, "fault_handler")):
        m.goto(s, "do_fault:kind")
    else:
        _return_mm(m, s, VM_FAULT_SIGBUS)


@action("do_fault:kind", "do_fault_kind")
def do_fault_kind(m: Machine, s: State) -> None:
    if not (s.flags & FAULT_FLAG_WRITE):
        kind = "read"
    elif not m.split(m.o.test(_vm_flags(m, s), VM_SHARED)):
        kind = "cow"
    else:
        kind = "shared"
    m.record(s, "do_fault_kind", kind)
    m.goto(s, "do_cow_fault:alloc" if kind == "cow" else "__do_fault:vma_fault")


@action("do_cow_fault:alloc", "cow_alloc")
def cow_alloc(m: Machine, s: State) -> None:
    o = m.o
    fail = o.or_(_anon_vma_prepare_fails(m, s), lambda: m.i.bool("alloc.cow_page"))
    if m.decide(s, "cow_alloc", fail):
        _return_mm(m, s, VM_FAULT_OOM)
    else:
        s.anon_vma = {**s.anon_vma, s.vma: o.true}
        m.goto(s, "__do_fault:vma_fault")


@action("__do_fault:vma_fault", "vma_fault")
def vma_fault(m: Machine, s: State) -> None:
    """KF 2.4.9: vm_ops->fault (filemap_fault and friends) as the environment answers it."""
    r = _env_fault(m, s, "fault")
    m.record(s, "vma_fault", vm_fault_str(r))
    if r & VM_FAULT_RETRY:
        _release(m, s)
    if r & (VM_FAULT_ERROR | VM_FAULT_NOPAGE | VM_FAULT_RETRY):
        _return_mm(m, s, r)
        return
    s.ret = r
    write = bool(s.flags & FAULT_FLAG_WRITE)
    if write and m.split(m.o.test(_vm_flags(m, s), VM_SHARED)) and m.split(_vma_attr(m, s, "page_mkwrite")):
        m.goto(s, "do_shared_fault:page_mkwrite")
    else:
        m.goto(s, "do_fault:pte_same")


@action("do_shared_fault:page_mkwrite", "page_mkwrite")
def do_shared_fault_page_mkwrite(m: Machine, s: State) -> None:
    """KF 2.4.9: ->page_mkwrite; an error or NOPAGE ends the fault with that result."""
    tmp = vm_fault(m.i.choice("env.page_mkwrite"))
    m.record(s, "page_mkwrite", vm_fault_str(tmp))
    if tmp & (VM_FAULT_ERROR | VM_FAULT_NOPAGE):
        _return_mm(m, s, tmp)
    else:
        m.goto(s, "do_fault:pte_same")


@action("do_fault:pte_same", "do_fault_pte_same")
def do_fault_pte_same(m: Machine, s: State) -> None:
    """do_set_pte under the ptl unless the PTE changed meanwhile; return vm_ops' result."""
    if m.decide(s, "do_fault_pte_same", m.o.not_(m.i.bool("env.pte_race"))):
        s.pte = _vm_page_prot(m, s, write=bool(s.flags & FAULT_FLAG_WRITE))
        s.pte_written_by = "do_fault"
    _return_mm(m, s, s.ret)


# ===================================================================================
# do_swap_page (2.7.6; KF 2.4.10) and lock_page_or_retry (KF 2.4.11)
# ===================================================================================

def _swap_type(m: Machine, pte: Any) -> Any:
    o = m.o
    if m.arch == "x86_64":
        return o.band(o.lshr(pte, 1), 0x1F)
    return o.band(o.lshr(pte, 32), 0x1F)


@action("do_swap_page:entry_kind", "swap_entry_kind")
def swap_entry_kind(m: Machine, s: State) -> None:
    """KF 1.3 / 2.4.10: types 29.. are not swap: hwpoison (29) and migration (30, 31)."""
    o = m.o
    t = _swap_type(m, s.pte)
    if not m.split(o.uge(t, 29)):
        kind = "swap"
    elif m.split(o.eq(t, 29)):
        kind = "hwpoison"
    else:
        kind = "migration"
    m.record(s, "swap_entry_kind", kind)
    s.ret = 0
    if kind == "migration":
        _return_mm(m, s, 0)          # migration_entry_wait, then re-fault
    elif kind == "hwpoison":
        _return_mm(m, s, VM_FAULT_HWPOISON)
    else:
        m.goto(s, "do_swap_page:swap_cache")


@action("do_swap_page:swap_cache", "swap_cache")
def swap_cache(m: Machine, s: State) -> None:
    c = m.i.choice("env.swap_cache")
    m.record(s, "swap_cache", c)
    if c == "readahead_failed":
        m.goto(s, "do_swap_page:readahead_failed")
    elif c == "hwpoison":
        _return_mm(m, s, VM_FAULT_HWPOISON)
    else:
        s.ret = VM_FAULT_MAJOR if c == "readahead" else 0
        m.goto(s, "do_swap_page:lock_page_or_retry")


@action("do_swap_page:readahead_failed", "swap_pte_same")
def swap_readahead_failed(m: Machine, s: State) -> None:
    """KF 2.4.10 step 3: no page; OOM only if the PTE still holds the swap entry (a racing
    fault may have brought it in, then ret stays 0)."""
    if m.decide(s, "swap_pte_same", m.o.not_(m.i.bool("env.pte_race"))):
        _return_mm(m, s, VM_FAULT_OOM)
    else:
        _return_mm(m, s, 0)


@action("do_swap_page:lock_page_or_retry", "lock_page_or_retry")
def swap_lock_page_or_retry(m: Machine, s: State) -> None:
    """KF 2.4.11: with ALLOW_RETRY a contended page drops mmap_sem and waits for it to be
    unlocked; without (the retry pass) the killable lock fails only when a fatal signal
    interrupts it.  ``env.fatal_signal_in_wait`` is that signal: it arrives during the
    retry pass's wait (the first pass's wait for the unlock completes)."""
    o = m.o
    if m.i.choice("env.page_lock") == "free":
        locked: Any = True
    elif s.flags & FAULT_FLAG_ALLOW_RETRY:
        locked = False
    else:
        locked = o.not_(m.i.bool("env.fatal_signal_in_wait"))
    if m.decide(s, "lock_page_or_retry", locked):
        m.goto(s, "do_swap_page:pte_same")
    else:
        if not s.flags & FAULT_FLAG_ALLOW_RETRY:
            s.fatal = o.true  # the killable lock was interrupted by a fatal signal
        _release(m, s)
        _return_mm(m, s, s.ret | VM_FAULT_RETRY)


@action("do_swap_page:pte_same", "swap_pte_same")
def swap_pte_same(m: Machine, s: State) -> None:
    if not m.decide(s, "swap_pte_same", m.o.not_(m.i.bool("env.pte_race"))):
        _return_mm(m, s, s.ret)
        return
    s.pte = _vm_page_prot(m, s, write=False)
    s.pte_written_by = "do_swap_page"
    s.page_anon = True  # a page read back from swap is anonymous
    s.wflags = s.flags
    if s.flags & FAULT_FLAG_WRITE:
        m.goto(s, "do_swap_page:reuse_swap_page")
    else:
        _return_mm(m, s, s.ret)


@action("do_swap_page:reuse_swap_page", "reuse_swap_page")
def swap_reuse(m: Machine, s: State) -> None:
    o = m.o
    if m.decide(s, "reuse_swap_page", m.i.bool("env.reuse")):
        s.pte = o.bor(s.pte, _PAGE_DIRTY | soft_dirty(m.arch))
        s.pte = o.ite(o.test(_vm_flags(m, s), VM_WRITE), lambda: o.bor(s.pte, _PAGE_RW), s.pte)
        s.wflags &= ~FAULT_FLAG_WRITE
        _return_mm(m, s, s.ret | VM_FAULT_WRITE)
    else:
        s.entry = s.pte
        m.call(s, "do_wp_page:vm_normal_page", "do_swap_page")


# ===================================================================================
# do_numa_page (2.7.8; KF 2.4.13) and do_wp_page (2.7.10; KF 2.4.14)
# ===================================================================================

@action("do_numa_page:pte_same", "numa_pte_same")
def numa_pte_same(m: Machine, s: State) -> None:
    """KF 2.4.13: restore the VMA's protection (keeping RW if it had it); always 0."""
    o = m.o
    if m.decide(s, "numa_pte_same", o.not_(m.i.bool("env.pte_race"))):
        was_writable = o.test(s.pte, _PAGE_RW)
        restored = _vm_page_prot(m, s, write=False)
        s.pte = o.ite(was_writable, lambda: o.bor(restored, _PAGE_RW), restored)
        s.pte_written_by = "do_numa_page"
    _return_mm(m, s, 0)


def _wp_return(m: Machine, s: State, value: int) -> None:
    """Return ``value`` from do_wp_page to its caller, which returns it on: handle_pte_fault
    as is; do_swap_page ORed into its own result, keeping only the error bits if there is
    one (KF 2.4.10 step 11)."""
    caller = s.stack[-1]
    s.stack = s.stack[:-1]
    if caller == "do_swap_page":
        value |= s.ret
        if value & VM_FAULT_ERROR:
            value &= VM_FAULT_ERROR
    _return_mm(m, s, value)


def _wp_reuse(m: Machine, s: State) -> None:
    """wp_page_reuse: young, dirty, writable if VM_WRITE; VM_FAULT_WRITE."""
    o = m.o
    entry = o.bor(s.entry, _PAGE_ACCESSED | _PAGE_DIRTY | soft_dirty(m.arch))
    s.pte = o.ite(o.test(_vm_flags(m, s), VM_WRITE), lambda: o.bor(entry, _PAGE_RW), entry)
    s.pte_written_by = "do_wp_page"
    _wp_return(m, s, VM_FAULT_WRITE)


def _shared_writable(m: Machine, s: State) -> Any:
    o = m.o
    return o.eq(o.band(_vm_flags(m, s), VM_WRITE | VM_SHARED), VM_WRITE | VM_SHARED)


@action("do_wp_page:vm_normal_page", "vm_normal_page")
def wp_vm_normal_page(m: Machine, s: State) -> None:
    if m.decide(s, "vm_normal_page", m.o.not_(m.o.test(s.entry, _PAGE_SPECIAL))):
        m.goto(s, "do_wp_page:page_anon")
    else:
        m.goto(s, "do_wp_page:pfn_shared")


@action("do_wp_page:pfn_shared", "wp_shared_writable")
def wp_pfn_shared(m: Machine, s: State) -> None:
    """No struct page: a shared writable PFN mapping is reused, anything else copied."""
    if m.decide(s, "wp_shared_writable", _shared_writable(m, s)):
        _wp_reuse(m, s)
    else:
        m.goto(s, "do_wp_page:copy")


@action("do_wp_page:page_anon", "page_anon")
def wp_page_anon(m: Machine, s: State) -> None:
    anon = s.page_anon if s.page_anon is not None else _vma_kind(m, s) == "anon"
    if m.decide(s, "page_anon", anon):
        m.goto(s, "do_wp_page:reuse")
    else:
        m.goto(s, "do_wp_page:shared")


@action("do_wp_page:reuse", "reuse_page")
def wp_reuse(m: Machine, s: State) -> None:
    if m.decide(s, "reuse_page", m.i.bool("env.reuse")):
        _wp_reuse(m, s)
    else:
        m.goto(s, "do_wp_page:copy")


@action("do_wp_page:shared", "wp_shared_writable")
def wp_shared(m: Machine, s: State) -> None:
    if m.decide(s, "wp_shared_writable", _shared_writable(m, s)):
        if m.split(_vma_attr(m, s, "page_mkwrite")):
            m.goto(s, "wp_page_shared:page_mkwrite")
        else:
            _wp_reuse(m, s)
    else:
        m.goto(s, "do_wp_page:copy")


@action("wp_page_shared:page_mkwrite", "page_mkwrite")
def wp_page_shared_page_mkwrite(m: Machine, s: State) -> None:
    tmp = vm_fault(m.i.choice("env.page_mkwrite"))
    m.record(s, "page_mkwrite", vm_fault_str(tmp))
    if tmp & (VM_FAULT_ERROR | VM_FAULT_NOPAGE):
        _wp_return(m, s, tmp)
    else:
        _wp_reuse(m, s)


@action("do_wp_page:copy", "wp_copy_alloc")
def wp_copy(m: Machine, s: State) -> None:
    """wp_page_copy: a private copy, young, dirty, writable if VM_WRITE."""
    o = m.o
    fail = o.or_(_anon_vma_prepare_fails(m, s), lambda: m.i.bool("alloc.cow_page"))
    if m.decide(s, "wp_copy_alloc", fail):
        _wp_return(m, s, VM_FAULT_OOM)
        return
    s.anon_vma = {**s.anon_vma, s.vma: o.true}
    s.entry = o.band(s.entry, ~_PAGE_SPECIAL)
    _wp_reuse(m, s)


# ===================================================================================

def initial_state(m: Machine) -> State:
    """The state at do_page_fault's entry (IRQs off: #PF is an interrupt gate, KF 2.0).

    Per-VMA facts that start as inputs (T's vm_pgoff and anon_vma, the pending fatal
    signal) are ``None`` until an action changes them; ``_pgoff``/``_anon_prepared``/
    ``_fatal`` read the input while they are.
    """
    o = m.o
    return State(
        pc=INITIAL, stack=(), trace=None, nsteps=0, pending=None, last=None, outcome=None,
        ec=m.i.word("error_code"),
        flags=FAULT_FLAG_ALLOW_RETRY | FAULT_FLAG_KILLABLE,
        mmap_sem=0, irqs="off", call=0, fault=0, major=False, ret=0, err=0,
        fatal=None, vma=None, vm_start={v.name: o.word(v.start, m.W) for v in m.layout.vmas},
        vm_pgoff={v.name: None for v in m.layout.vmas},
        anon_vma={v.name: None for v in m.layout.vmas}, grow_addr=None,
        pmd=m.i.word("pmd"), pte=m.i.word("pte"), entry=None,
        pte_written_by=None, pmd_written_by=None, wflags=0, signal=None, si_code=None,
        maj_flt=0, min_flt=0, grown=0, page_anon=None, memcg=None, upper=None,
    )


def _fatal(m: Machine, s: State) -> Any:
    """fatal_signal_pending(current) now."""
    return m.i.bool("task.fatal_signal") if s.fatal is None else s.fatal


def _memcg_oom(m: Machine, s: State) -> Any:
    """task_in_memcg_oom(current): the input until a cleanup clears it."""
    return m.i.bool("task.memcg_oom") if s.memcg is None else s.memcg


def _anon_prepared(m: Machine, s: State) -> Any:
    v = s.anon_vma[s.vma]
    if v is not None:
        return v
    return m.i.bool("T.anon_vma") if s.vma == "T" else m.o.true


def _pgoff(m: Machine, s: State) -> Any:
    v = s.vm_pgoff[s.vma]
    if v is not None:
        return v
    start = m.layout.vma(s.vma).start
    if s.vma == "T" and m.i.choice("T.pgoff") == "zero":
        return m.o.word(0, m.W)
    return m.o.word(start >> 12, m.W)


def step(m: Machine, s: State) -> None:
    """Run the action at ``s.pc`` on ``s`` (which the caller copied)."""
    ACTIONS[s.pc](m, s)


__all__ = ["ACTIONS", "LABELS", "INITIAL", "EXIT", "action", "step", "initial_state", "vm_fault",
           "access_error_cond"]
