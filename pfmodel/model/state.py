"""The model's state variables and the machine context the actions run in.

``State`` holds the dynamic state of one hardware fault (the TLA+ variables): the
location ``pc`` and a return stack, the handler's local error code and FAULT_FLAG_*
word, mmap_sem, the IRQ state, the handle_mm_fault call count and results, the
counters, the VMA start/pgoff after stack growth, the pmd and PTE as the handler
sees them, the outcome, and the path so far (a persistent list of steps).

Inputs (what the handler branches on but never changes) are not in ``State``: they are
read through ``Machine.i`` (see ``inputs.py``) and bound by the engine.

``Machine`` is what an action gets besides the state: the ops interpretation
``o``, the inputs ``i``, the layout, and ``decide``/``record``/``split`` -- the only ways
to take a decision.  An engine re-runs an action from the same state after it binds an
input or forks a branch, so an action must only change the ``State`` it is given
(which the engine copies before each step).
"""

from __future__ import annotations

from typing import Any, Callable

from ..outcome import Outcome
from ..trace import DECISIONS, CHANGE_KEYS
from .inputs import Layout

EXIT = "exit"


class StepRec:
    """One recorded decision of a path: (label, value) plus the changes made at it."""

    __slots__ = ("label", "value", "changes", "pc")

    def __init__(self, label: str, value: str, pc: str) -> None:
        self.label = label
        self.value = value
        self.changes: dict[str, Any] | None = None
        self.pc = pc

    @property
    def key(self) -> tuple[str, str]:
        return (self.label, self.value)

    def __repr__(self) -> str:
        return f"{self.label}={self.value}" + (f" {self.changes}" if self.changes else "")


class State:
    """The dynamic state of one hardware fault.  Copy with ``copy()`` (shallow: every
    field is immutable or replaced, never mutated in place)."""

    # Declared for readers; State uses a plain __dict__ so that copy() is one dict copy.
    pc: str
    stack: tuple[str, ...]
    trace: tuple | None           # persistent list: (previous, StepRec)
    nsteps: int
    pending: dict[str, Any] | None
    last: StepRec | None          # the step recorded by the current action
    outcome: Outcome | None
    ec: Any                       # the handler's local error code (ops word)
    flags: int                    # FAULT_FLAG_* (path-concrete)
    mmap_sem: int                 # 1 while this fault holds mmap_sem for read
    irqs: str                     # "off" / "on"
    call: int                     # handle_mm_fault calls so far
    fault: int                    # the last handle_mm_fault result (VM_FAULT_*)
    major: bool                   # major |= fault & VM_FAULT_MAJOR
    ret: int                      # VM_FAULT word being returned inside the mm layer
    err: int                      # errno returned by stack growth (0 or negative)
    fatal: Any                    # fatal_signal_pending() now (ops Bool)
    vma: str | None               # the VMA find_vma returned
    vm_start: dict[str, Any]      # current vm_start per VMA (ops words; stack growth)
    vm_pgoff: dict[str, Any]
    anon_vma: dict[str, Any]      # anon_vma prepared per VMA (ops Bool)
    grow_addr: Any                # expand_downwards' address argument
    pmd: Any                      # the pmd entry (ops word)
    pte: Any                      # the PTE (ops word)
    entry: Any                    # handle_pte_fault's working copy of the PTE
    pte_written_by: str | None    # the function that last stored the PTE
    pmd_written_by: str | None
    wflags: int                   # do_swap_page's local flags
    signal: str | None            # arguments of the error paths: the signal
    si_code: str | None           # ...and its si_code
    maj_flt: int
    min_flt: int
    grown: int                    # successful stack expansions
    page_anon: bool | None        # the page behind the PTE is anonymous (None: as the VMA)
    memcg: Any                    # task_in_memcg_oom() once changed (None: the input)
    upper: str | None             # page-table levels above the pmd once allocated (None: the input)

    def __init__(self, **fields: Any) -> None:
        self.__dict__.update(fields)

    def copy(self) -> "State":
        new = State.__new__(State)
        new.__dict__ = self.__dict__.copy()
        new.last = None
        return new

    def steps(self) -> list[StepRec]:
        out: list[StepRec] = []
        node = self.trace
        while node is not None:
            out.append(node[1])
            node = node[0]
        out.reverse()
        return out


class Machine:
    """The context of an action: interpretation, inputs, layout, and decisions."""

    def __init__(self, ops: Any, inputs: Any, layout: Layout, branch: Callable[[Any], bool]) -> None:
        self.o = ops
        self.i = inputs
        self.layout = layout
        self.arch = layout.arch
        self.W = layout.width
        self._branch = branch
        self.check_labels = True

    # -- decisions -----------------------------------------------------------------
    def decide(self, s: State, label: str, cond: Any) -> bool:
        """Take the two-way decision ``label`` on ``cond`` and record it on the path."""
        taken = cond if cond is True or cond is False else self._branch(cond)
        self._append(s, label, "true" if taken else "false")
        return taken

    def record(self, s: State, label: str, value: str) -> None:
        """Record a multi-valued decision whose value the path already fixed."""
        if self.check_labels:
            d = DECISIONS.get(label)
            if d is None:
                raise KeyError(f"unknown decision label {label!r}")
            if d.values and value not in d.values:
                raise ValueError(f"decision {label!r} took value {value!r}; allowed: {d.values}")
        self._append(s, label, value)

    def split(self, cond: Any) -> bool:
        """An unrecorded branch (a fork for a symbolic engine, invisible in the trace)."""
        return cond if cond is True or cond is False else self._branch(cond)

    def _append(self, s: State, label: str, value: str) -> None:
        if s.last is not None:
            raise RuntimeError(f"action at {s.pc} recorded two decisions ({s.last.label}, {label})")
        if self.check_labels and label not in DECISIONS:
            raise KeyError(f"unknown decision label {label!r}")
        rec = StepRec(label, value, s.pc)
        if s.pending:
            rec.changes = s.pending
            s.pending = None
        s.trace = (s.trace, rec)
        s.nsteps += 1
        s.last = rec

    def change(self, s: State, **changes: Any) -> None:
        """Record state changes (CHANGE_KEYS) at this action's step (or the next one)."""
        for k in changes:
            if k not in CHANGE_KEYS:
                raise KeyError(f"unknown change key {k!r}")
        if s.last is not None:
            rec = s.last
            rec.changes = {**(rec.changes or {}), **changes}
        else:
            s.pending = {**(s.pending or {}), **changes}

    # -- control -------------------------------------------------------------------
    @staticmethod
    def goto(s: State, pc: str) -> None:
        s.pc = pc

    @staticmethod
    def call(s: State, target: str, ret: str) -> None:
        s.stack = s.stack + (ret,)
        s.pc = target

    @staticmethod
    def ret(s: State) -> None:
        s.pc = s.stack[-1]
        s.stack = s.stack[:-1]

    def finish(self, s: State, outcome: Outcome) -> None:
        s.outcome = outcome
        s.pc = EXIT
