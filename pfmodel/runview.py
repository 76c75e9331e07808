"""Properties evaluated on the simulator: a ``RunView`` for one fault of a simulator run.

The property library (``pfmodel.properties``) states its predicates over a view of one
model path: its decisions (``r.took``, ``r.changes``, ``r.calls``), its outcome, its
final state (``r.final.pte``, ``r.final.vma``, ``r.final.pte_written_by``) and its
inputs (``r.word("address")``, ``r.bool("user_mode")``).  ``SimRunView`` gives the same
view of one hardware fault of a *simulator* run, so the same predicates judge the
simulator directly: the random engine (which drives the simulator outside the model's
abstraction) and simulator mutants (whose runs may take paths the model has not got)
need exactly that.

``observe(spec, overrides)`` runs the simulator and records, per fault, what the view
needs beyond ``pfmodel.sim.result.Run``: the inputs as the handler saw them on entry
(registers, CPU, task) and the PTE/pmd after the fault with the function that stored
them.  It does so by wrapping three kernel functions for the run (``do_page_fault``,
``set_pte_at``, ``set_pmd``), around whatever a mutant installed.

A predicate that reads an input the view does not know raises ``NotOnSimulator``:
that property is not evaluated on simulator runs (``sim_evaluate`` says so).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from .model.ops import EBool, EWord, ExplicitOps
from .outcome import Outcome
from .properties import Property, truth
from .sim import fault as _fault
from .sim import pgtable as _pgtable
from .sim.constants import SIGKILL, stack_cushion
from .sim.result import Run
from .sim.run import KERNEL_FUNCTIONS, final_state, run
from .sim.spec import MachineSpec
from .sim.state import machine
from .x86.constants import X86_CR4_SMAP, X86_EFLAGS_AC, X86_EFLAGS_IF

# The functions the model names as the writer of the PTE / the pmd (State.pte_written_by).
PTE_WRITERS = ("do_wp_page", "do_numa_page", "do_swap_page", "do_anonymous_page", "do_fault",
               "handle_pte_fault")
PMD_WRITERS = ("do_huge_pmd_numa_page", "huge_pmd_set_accessed", "do_huge_pmd_wp_page", "__pte_alloc",
               "do_huge_pmd_anonymous_page", "hugetlb_fault")


class NotOnSimulator(Exception):
    """A predicate read an input that a simulator run does not define."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


@dataclass
class FaultObservation:
    """What the view of one fault needs beyond the FaultRecord."""

    inputs: dict[str, Any]
    vma_flags: int | None = None        # flags of the VMA find_vma would return
    pte: int | None = None              # after the fault
    pmd: int | None = None
    pte_written_by: str | None = None
    pmd_written_by: str | None = None


@dataclass
class Observation:
    spec: MachineSpec
    run: Run
    faults: list[FaultObservation] = field(default_factory=list)


# Simulator functions that stand for another CPU's work: a PTE they store is not the
# fault path's (the migrating CPU's remove_migration_pte, while the task waits).
OTHER_CPU = ("migration_entry_wait",)


def _writer(names: tuple[str, ...]) -> str | None:
    """The innermost function on the call stack that the model counts as a writer."""
    frame = sys._getframe(2)
    while frame is not None:
        if frame.f_code.co_name in OTHER_CPU:
            return None
        if frame.f_code.co_name in names:
            return frame.f_code.co_name
        frame = frame.f_back
    return None


def _hex_or_none(text: str | None) -> int | None:
    return None if text is None else int(text, 16)


def _task_context(task: Any) -> str:
    if task.hardirq:
        return "interrupt"
    if task.pagefault_disabled:
        return "pagefault_disabled"
    if task.preempt_count:
        return "atomic"
    return "normal"


def _entry_inputs(spec: MachineSpec, regs: Any, error_code: int) -> dict[str, Any]:
    m = machine()
    task = m.current
    user = _ORIGINAL_USER_MODE(regs)
    return {
        "address": m.cpu.cr2, "error_code": error_code, "sp": regs.sp, "user_mode": bool(user),
        "regs.IF": bool(regs.flags & X86_EFLAGS_IF), "regs.AC": bool(regs.flags & X86_EFLAGS_AC),
        "extable": regs.ip in m.config.exception_table, "cpu.smap": bool(m.cpu.cr4 & X86_CR4_SMAP),
        "task.has_mm": task.mm is not None, "task.context": _task_context(task),
        "task.fatal_signal": bool(task.tif_sigpending and SIGKILL in task.pending),
        "task.memcg_oom": bool(task.memcg_in_oom),   # as it is now (a fault may have cleaned it up)
        "task.cap_sys_rawio": bool(task.cap_sys_rawio), "task.cap_ipc_lock": bool(task.cap_ipc_lock),
        "kernel.numa_balancing": bool(m.config.numa_balancing),
        "env.mmap_sem": spec.env.mmap_sem, "env.page_lock": spec.env.page_lock,
        "env.oom": spec.env.oom, "env.die_notifier": spec.env.die_notifier,
        "env.swap_cache": spec.env.swap_cache, "env.vsyscall": spec.env.vsyscall,
        "env.kmemcheck": spec.env.kmemcheck, "env.kmmio": spec.env.kmmio, "env.kprobes": spec.env.kprobes,
        "env.is_prefetch": spec.env.is_prefetch, "env.errata": spec.env.errata,
        "env.reuse": spec.env.reuse, "env.overcommit": spec.env.overcommit,
        "env.fatal_signal_in_wait": spec.env.fatal_signal_in_wait, "env.pte_race": spec.env.pte_race,
    }


_ORIGINAL_USER_MODE: Callable[[Any], bool] = _fault.user_mode


def observe(spec: MachineSpec, overrides: Mapping[str, Callable[..., Any]] | None = None) -> Observation:
    """Run ``spec`` on the simulator (with ``overrides``, e.g. a mutant's) and observe each fault."""
    overrides = dict(overrides or {})
    inner_fault = overrides.get("do_page_fault") or _current("do_page_fault")
    inner_pte = overrides.get("set_pte_at") or _current("set_pte_at")
    inner_pmd = overrides.get("set_pmd") or _current("set_pmd")
    faults: list[FaultObservation] = []

    def do_page_fault(regs: Any, error_code: int) -> None:
        m = machine()
        obs = FaultObservation(inputs=_entry_inputs(spec, regs, error_code))
        mm = m.current.mm
        if mm is not None:
            for vma in mm.mmap:
                if vma.vm_end > m.cpu.cr2:
                    obs.vma_flags = vma.vm_flags
                    break
        faults.append(obs)
        try:
            inner_fault(regs, error_code)
        finally:
            after = final_state(m, m.cpu.cr2)
            obs.pte, obs.pmd = _hex_or_none(after["pte"]), _hex_or_none(after["pmd"])

    def set_pte_at(mm: Any, address: int, ptep: int, pte: int) -> None:
        if faults:
            faults[-1].pte_written_by = _writer(PTE_WRITERS) or faults[-1].pte_written_by
        inner_pte(mm, address, ptep, pte)

    def set_pmd(pmdp: int, pmd: int) -> None:
        if faults:
            faults[-1].pmd_written_by = _writer(PMD_WRITERS) or faults[-1].pmd_written_by
        inner_pmd(pmdp, pmd)

    overrides.update(do_page_fault=do_page_fault, set_pte_at=set_pte_at, set_pmd=set_pmd)
    result = run(spec, overrides=overrides)
    return Observation(spec, result, faults)


def _current(name: str) -> Callable[..., Any]:
    module, attr = KERNEL_FUNCTIONS[name]
    return getattr(module, attr)


class _Unknown:
    """Reading an attribute the simulator view lacks makes the property not evaluable."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        raise NotOnSimulator(f"{type(self).__name__.strip('_').lower()}.{name}")


class _Layout(_Unknown):
    def __init__(self, arch: str) -> None:
        from .sim.constants import TASK_SIZE_MAX

        self.arch = arch
        self.cushion = stack_cushion(arch)
        self.task_size_max = TASK_SIZE_MAX[arch]
        self.width = 64 if arch == "x86_64" else 32
        self.mask = (1 << self.width) - 1


class _Final(_Unknown):
    """The model's ``State`` fields that predicates read, for one simulator fault."""

    def __init__(self, obs: FaultObservation, took_find_vma: bool, width: int) -> None:
        self.vma = hex(obs.vma_flags) if took_find_vma and obs.vma_flags is not None else None
        self.vma_flags = obs.vma_flags
        self.pte = EWord(obs.pte or 0, 64)
        self.pmd = EWord(obs.pmd or 0, 64)
        self.pte_written_by = obs.pte_written_by
        self.pmd_written_by = obs.pmd_written_by


class SimRunView:
    """One hardware fault of a simulator run, as ``pfmodel.properties.RunView`` shows a path."""

    def __init__(self, observation: Observation, index: int) -> None:
        self.observation = observation
        self.index = index
        self.sim = observation.run
        record = observation.run.faults[index]
        self.fault = record
        obs = observation.faults[index]
        self.arch = observation.run.arch
        self.layout = _Layout(self.arch)
        self.o = ExplicitOps()
        self.outcome: Outcome = record.outcome
        self.steps = list(record.trace.steps)
        self._inputs = obs.inputs
        self.final = _Final(obs, self.took("find_vma", "found"), self.layout.width)
        self.extra: dict[str, Any] = {}

    # -- inputs --------------------------------------------------------------------
    def _raw(self, name: str) -> Any:
        try:
            return self._inputs[name]
        except KeyError:
            raise NotOnSimulator(name) from None

    def word(self, name: str) -> Any:
        width = 64 if name in ("pte", "pmd") else self.layout.width
        return EWord(int(self._raw(name)), width)

    def bool(self, name: str) -> EBool:
        return self.o.bool_(bool(self._raw(name)))

    def choice(self, name: str) -> Any:
        return self._raw(name)

    # -- structure (as RunView) ------------------------------------------------------
    def took(self, label: str, value: str | None = None) -> bool:
        return any(st.label == label and (value is None or st.value == value) for st in self.steps)

    def values(self, label: str) -> list[str]:
        return [st.value for st in self.steps if st.label == label]

    def changes(self, key: str) -> list[Any]:
        return [st.changes[key] for st in self.steps if st.changes and key in st.changes]

    @property
    def calls(self) -> list[int]:
        return [int(v, 16) for v in self.changes("mm_fault_call")]

    @property
    def vma_flags(self) -> Any:
        flags = self.final.vma_flags if self.final.vma is not None else None
        return None if flags is None else EWord(flags, self.layout.width)


@dataclass
class SimVerdict:
    """A property judged on one simulator run."""

    applies: bool                 # some fault met the premise
    holds: bool
    fault: int | None = None      # the index of the first violating fault
    not_evaluable: str = ""       # the input the property needs that a simulator run lacks


def sim_evaluate(prop_: Property, observation: Observation) -> SimVerdict:
    """Evaluate ``prop_`` on every fault of the run; violated if some fault violates it."""
    applies = False
    for i in range(len(observation.run.faults)):
        view = SimRunView(observation, i)
        try:
            if prop_.when is not None and not truth(prop_.when(view)):
                continue
            applies = True
            if not truth(prop_.predicate(view)):
                return SimVerdict(True, False, i)
        except NotOnSimulator as e:
            return SimVerdict(applies, True, None, e.name)
    return SimVerdict(applies, True)


def violations(props: list[Property], observation: Observation) -> list[tuple[Property, SimVerdict]]:
    """The properties of ``props`` that ``observation`` violates, in order."""
    out = []
    for p in props:
        verdict = sim_evaluate(p, observation)
        if not verdict.holds:
            out.append((p, verdict))
    return out


__all__ = ["observe", "Observation", "FaultObservation", "SimRunView", "SimVerdict", "sim_evaluate",
           "violations", "NotOnSimulator"]
