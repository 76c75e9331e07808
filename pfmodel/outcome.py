"""The outcome contract (DESIGN.md "Contracts"): every handler run ends in exactly one.

The one home of outcome kinds and their extra fields; the simulator, the model,
properties and the scenario files all use this class.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

HANDLED = "handled"
SIGSEGV = "sigsegv"
SIGBUS = "sigbus"
FIXUP = "fixup"
OOPS = "oops"
OOM = "oom"
FATAL_SIGNAL = "fatal_signal"

KINDS = (HANDLED, SIGSEGV, SIGBUS, FIXUP, OOPS, OOM, FATAL_SIGNAL)

VIAS = ("handle_mm_fault", "vmalloc_fault", "spurious_fault", "kmmio", "kprobes",
        "kmemcheck", "prefetch", "errata", "vsyscall")
SEGV_CODES = ("SEGV_MAPERR", "SEGV_ACCERR")
BUS_CODES = ("BUS_ADRERR", "BUS_MCEERR_AR")
OOPS_REASONS = ("bad_pagetable", "kernel_paging_request", "null_pointer_dereference", "bug")

# Which extra fields each kind carries, and their allowed values (None: any bool).
_FIELDS: dict[str, dict[str, tuple | None]] = {
    HANDLED: {"via": VIAS, "major": None},
    SIGSEGV: {"si_code": SEGV_CODES},
    SIGBUS: {"si_code": BUS_CODES},
    FIXUP: {},
    OOPS: {"reason": OOPS_REASONS},
    OOM: {},
    FATAL_SIGNAL: {},
}


@dataclass(frozen=True)
class Outcome:
    """One outcome of one handler run.  ``kind`` first; other fields per kind."""

    kind: str
    via: str | None = None
    major: bool | None = None
    si_code: str | None = None
    reason: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in _FIELDS:
            raise ValueError(f"unknown outcome kind {self.kind!r}; expected one of {', '.join(KINDS)}")
        allowed = _FIELDS[self.kind]
        for name in ("via", "major", "si_code", "reason"):
            value = getattr(self, name)
            if name not in allowed:
                if value is not None:
                    raise ValueError(f"outcome {self.kind!r} has no field {name!r}")
                continue
            choices = allowed[name]
            if value is None:
                raise ValueError(f"outcome {self.kind!r} needs field {name!r}")
            if choices is None:
                if not isinstance(value, bool):
                    raise ValueError(f"outcome field {name!r} must be true or false")
            elif value not in choices:
                raise ValueError(f"outcome field {name!r} is {value!r}; expected one of {', '.join(choices)}")

    # Constructors read like the contract table.
    @classmethod
    def handled(cls, via: str = "handle_mm_fault", major: bool = False) -> "Outcome":
        return cls(HANDLED, via=via, major=major)

    @classmethod
    def sigsegv(cls, si_code: str) -> "Outcome":
        return cls(SIGSEGV, si_code=si_code)

    @classmethod
    def sigbus(cls, si_code: str = "BUS_ADRERR") -> "Outcome":
        return cls(SIGBUS, si_code=si_code)

    @classmethod
    def fixup(cls) -> "Outcome":
        return cls(FIXUP)

    @classmethod
    def oops(cls, reason: str) -> "Outcome":
        return cls(OOPS, reason=reason)

    @classmethod
    def oom(cls) -> "Outcome":
        return cls(OOM)

    @classmethod
    def fatal_signal(cls) -> "Outcome":
        return cls(FATAL_SIGNAL)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind}
        for name in _FIELDS[self.kind]:
            out[name] = getattr(self, name)
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Outcome":
        if not isinstance(data, dict) or "kind" not in data:
            raise ValueError("an outcome is an object with a 'kind' field")
        extra = set(data) - {"kind"} - set(_FIELDS.get(data["kind"], {}))
        if extra:
            raise ValueError(f"outcome {data['kind']!r} has no field(s) {', '.join(sorted(extra))}")
        return cls(**data)

    def matches(self, expected: dict[str, Any]) -> bool:
        """True if every field given in ``expected`` (a partial outcome object) equals ours."""
        mine = self.to_json()
        return all(mine.get(k) == v for k, v in expected.items())

    def __str__(self) -> str:
        extras = ", ".join(f"{k}={v}" for k, v in self.to_json().items() if k != "kind")
        return f"{self.kind}({extras})" if extras else self.kind
