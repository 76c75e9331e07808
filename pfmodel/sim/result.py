"""What one simulator run returns: each hardware fault with its trace and outcome, the
final outcome, and the final state that properties and replay look at."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..outcome import Outcome
from ..trace import Trace


@dataclass
class FaultRecord:
    """One entry into do_page_fault."""

    address: int                 # CR2
    error_code: int              # as the hardware pushed it (or as the scenario gave it)
    hardware: bool               # True: formed by the MMU; False: given by the scenario
    hardware_possible: bool      # could real hardware produce this error code here? (KF §3.8)
    trace: Trace
    outcome: Outcome

    def to_json(self) -> dict[str, Any]:
        return {
            "address": hex(self.address),
            "error_code": hex(self.error_code),
            "error_code_source": "mmu" if self.hardware else "scenario",
            "hardware_possible": self.hardware_possible,
            "outcome": self.outcome.to_json(),
            "trace": self.trace.to_json(),
        }


@dataclass
class Run:
    """The whole run of one access: faults until the access succeeds or a fault ends it."""

    arch: str
    faults: list[FaultRecord]
    outcome: Outcome             # the last fault's outcome (``handled`` if the access completed)
    access_completed: bool       # the final re-execution of the access succeeded on the MMU
    bound_hit: bool              # max_faults reached while every fault said ``handled``
    final: dict[str, Any] = field(default_factory=dict)  # final PTE, counters, VMAs, locks
    notes: list[str] = field(default_factory=list)

    @property
    def first(self) -> FaultRecord | None:
        return self.faults[0] if self.faults else None

    def to_json(self) -> dict[str, Any]:
        return {
            "arch": self.arch,
            "outcome": self.outcome.to_json(),
            "access_completed": self.access_completed,
            "bound_hit": self.bound_hit,
            "faults": [f.to_json() for f in self.faults],
            "final": self.final,
            "notes": list(self.notes),
        }
