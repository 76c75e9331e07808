"""The end-to-end run: build the machine, perform the access on the MMU, enter
do_page_fault on #PF, re-execute after a handled fault, until the access completes,
a fault ends otherwise, or ``max_faults`` faults happened.

Also the mutant hooks: ``KERNEL_FUNCTIONS`` names every transcribed kernel function
(by kernel name) and ``patched`` swaps functions by those names for a while.
"""

from __future__ import annotations

import inspect
from contextlib import contextmanager
from types import ModuleType
from typing import Any, Callable, Iterator, Mapping

from ..errors import ScenarioError
from ..outcome import HANDLED, Outcome
from ..trace import Trace
from ..x86.constants import _PAGE_PRESENT, _PAGE_PSE
from ..x86.mmu import Access, GeneralProtection, Translation, error_code_possible, translate
from . import fault, machine as machine_mod, memory, mmap, oom, pgtable
from .constants import SIGKILL
from .result import FaultRecord, Run
from .spec import MachineSpec
from .state import KernelExit, Machine, installed

_MODULES: tuple[ModuleType, ...] = (fault, memory, mmap, oom, pgtable)


def _collect() -> dict[str, tuple[ModuleType, str]]:
    """Every function of the kernel modules whose docstring cites the seed or kernel-facts."""
    table: dict[str, tuple[ModuleType, str]] = {}
    for module in _MODULES:
        for name, obj in vars(module).items():
            if not inspect.isfunction(obj) or obj.__module__ != module.__name__:
                continue
            if not (obj.__doc__ or "").startswith(("Seed", "KF")):
                continue
            if name in table:
                raise RuntimeError(f"kernel function {name} defined in two modules")
            table[name] = (module, name)
    return dict(sorted(table.items()))


KERNEL_FUNCTIONS: dict[str, tuple[ModuleType, str]] = _collect()


@contextmanager
def patched(overrides: Mapping[str, Callable[..., Any]]) -> Iterator[None]:
    """Replace kernel functions by kernel name for the duration; restore them after."""
    unknown = sorted(set(overrides) - set(KERNEL_FUNCTIONS))
    if unknown:
        raise KeyError(f"unknown kernel function(s): {', '.join(unknown)} "
                       "(see pfmodel.sim.KERNEL_FUNCTIONS)")
    saved: list[tuple[ModuleType, str, Any]] = []
    try:
        for name in sorted(overrides):
            module, attr = KERNEL_FUNCTIONS[name]
            saved.append((module, attr, getattr(module, attr)))
            setattr(module, attr, overrides[name])
        yield
    finally:
        for module, attr, original in reversed(saved):
            setattr(module, attr, original)


def run(spec: MachineSpec, *, overrides: Mapping[str, Callable[..., Any]] | None = None) -> Run:
    """Run ``spec``'s access to the end.  Raises ScenarioError for an impossible machine."""
    with patched(overrides or {}):
        m = machine_mod.build(spec)
        with installed(m):
            return _run(m, spec)


def _run(m: Machine, spec: MachineSpec) -> Run:
    access = Access(spec.access.kind, spec.access.implicit)
    address = spec.access.address
    faults: list[FaultRecord] = []
    notes: list[str] = []
    completed = bound_hit = False
    given = spec.access.error_code
    while True:
        state = machine_mod.cpu_state(m, spec)
        if given is not None and not faults:
            error_code, hardware = given, False
            possible, why = error_code_possible(given, m.arch, state)
            notes.append(f"fault 1: error code {given:#x} given by the scenario; "
                         + ("the hardware could produce it here" if possible
                            else f"the hardware could not produce it here ({why})"))
        else:
            result = translate(m.mem, m.arch, m.cpu.cr3, address, access, state)
            if isinstance(result, Translation):
                completed = True
                if not faults:
                    notes.append("the access completed without a page fault")
                break
            if isinstance(result, GeneralProtection):
                if not faults:
                    raise ScenarioError(f"the access raises #GP, not #PF: {result.reason}", "",
                                        "pfmodel models page faults; fix the address or the PAE PDPTE",
                                        where="access.address")
                notes.append(f"re-executing the access raised #GP: {result.reason}")
                break
            error_code, hardware, possible = result.error_code, True, True
        if len(faults) >= spec.max_faults:
            bound_hit = True
            notes.append(f"stopped after max_faults={spec.max_faults} faults, each handled, with the "
                         "access still faulting (a livelock, or a bound too small)")
            break
        record = _one_fault(m, address, error_code, hardware, possible)
        faults.append(record)
        if record.outcome.kind != HANDLED:
            break
        if m.instruction_emulated:
            # emulate_vsyscall ran the call itself; the faulting fetch is never retried.
            completed = True
            notes.append(f"fault {len(faults)}: the instruction was emulated, not re-executed")
            break

    if faults:
        outcome = faults[-1].outcome
    else:
        outcome = Outcome.handled("handle_mm_fault", major=False)
    notes.extend(m.notes)
    return Run(arch=m.arch.name, faults=faults, outcome=outcome, access_completed=completed,
               bound_hit=bound_hit, final=final_state(m, address), notes=notes)


def _one_fault(m: Machine, address: int, error_code: int, hardware: bool, possible: bool) -> FaultRecord:
    """One #PF: the interrupt gate clears IF, CR2 latches the address, do_page_fault runs."""
    m.trace = Trace()
    m.outcome = None
    m.oops_reason = None
    m.cpu.cr2 = address
    m.cpu.irqs_enabled = False
    try:
        fault.do_page_fault(m.regs, error_code)
    except KernelExit as gone:
        if gone.reason == "bug":
            m.set_outcome(Outcome.oops("bug"))
        elif m.outcome is None or m.outcome.kind != "oops":
            m.set_outcome(Outcome.oops(m.oops_reason or "kernel_paging_request"))
    # A handler that returns without deciding anything re-executes the instruction.
    outcome = m.outcome or Outcome.handled("handle_mm_fault", major=False)
    return FaultRecord(address=address, error_code=error_code, hardware=hardware,
                       hardware_possible=possible, trace=m.trace, outcome=outcome)


def _entries_for(m: Machine, address: int) -> tuple[int | None, int | None]:
    """(pte, pmd) values mapping ``address`` in the loaded page table; None where absent."""
    rd = pgtable.read_entry
    mm = m.current.active_mm
    pgd = pgtable.pgd_offset(mm, address)
    if not pgtable.pgd_present(rd(pgd)):
        return None, None
    pud = pgtable.pud_offset(pgd, address)
    if not pgtable.pud_present(rd(pud)) or pgtable.pud_large(rd(pud)):
        return None, None
    pmd_ptr = pgtable.pmd_offset(pud, address)
    pmd = rd(pmd_ptr)
    if not pmd & _PAGE_PRESENT or pmd & _PAGE_PSE:
        return None, pmd
    return rd(pgtable.pte_offset_kernel(pmd_ptr, address)), pmd


def final_state(m: Machine, address: int) -> dict[str, Any]:
    """The state properties and replay look at, JSON-ready."""
    task = m.current
    mm = task.active_mm
    pte, pmd = _entries_for(m, address)
    return {
        "pte": None if pte is None else hex(pte),
        "pmd": None if pmd is None else hex(pmd),
        "vmas": [v.to_json() for v in mm.mmap],
        "mmap_sem": mm.mmap_sem.readers,
        "maj_flt": task.maj_flt,
        "min_flt": task.min_flt,
        "nr_ptes": mm.nr_ptes,
        "nr_pmds": mm.nr_pmds,
        "total_vm": mm.total_vm,
        "stack_vm": mm.stack_vm,
        "locked_vm": mm.locked_vm,
        "rss": dict(mm.rss),
        "signals": list(task.forced_signals),
        "fatal_signal_pending": bool(task.tif_sigpending and SIGKILL in task.pending),
        "thread": {"cr2": hex(task.thread.cr2), "error_code": hex(task.thread.error_code),
                   "trap_nr": task.thread.trap_nr},
        "irqs_enabled": m.cpu.irqs_enabled,
        "ip": hex(m.regs.ip),
        "ptl_held": m.ptl_held,
        "screen_bitmap": task.screen_bitmap,
        "page_table_lock": mm.page_table_lock,
        "vm_events": dict(sorted(m.vm_events.items())),
        "log": list(m.log),
    }

