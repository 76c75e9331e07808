"""Project a simulator run and a kernel observation onto the same channels, and compare.

Each channel is a short string on both sides, or None when that side cannot show it
(no tracing, no pagemap for kernel addresses, not a stack case):

``outcome``     handled / sigsegv/SEGV_MAPERR / sigsegv/SEGV_ACCERR / sigbus/BUS_ADRERR /
                fixup (a syscall's uaccess got -EFAULT) / gp/SI_KERNEL (a #GP, not a #PF)
``signal_err``  the error code the signal handler sees (sigcontext.err), or ``none``
``hw_codes``    the hardware error codes of the faults on the target page, in order
                (``u`` user mode, ``k`` kernel mode; tracing only)
``faults``      min_flt/maj_flt counted for the access
``stack``       growth of the stack VMA: ``no growth`` or ``vm_start=page[±Np]``
``page``        the target's PTE afterwards: none / populated / same frame / new frame / present
``mmap_lock``   none / read / write: did the fault path take mmap_lock (tracing only)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..sim.constants import TASK_SIZE_MAX
from ..sim.result import Run
from ..x86.constants import _PAGE_PRESENT, _PAGE_PROTNONE, PAGE_SIZE, PF_PROT, PF_USER
from ..x86.paging import X86_64
from .build import BuildInfo
from .cases import Case
from .probe import SI_KERNEL, SIGBUS, SIGSEGV, Observation

CHANNELS = ("outcome", "signal_err", "hw_codes", "faults", "stack", "page", "mmap_lock")

AGREE = "agree"
EXPECTED = "expected"
DIFFER = "differ"
NA = "n/a"

_SEGV = {1: "SEGV_MAPERR", 2: "SEGV_ACCERR", 3: "SEGV_BNDERR", 4: "SEGV_PKUERR"}
_BUS = {1: "BUS_ADRALN", 2: "BUS_ADRERR", 3: "BUS_OBJERR", 4: "BUS_MCEERR_AR", 5: "BUS_MCEERR_AO"}
_ERRNO = {14: "EFAULT", 5: "EIO", 12: "ENOMEM", 22: "EINVAL"}


def _page(address: int) -> int:
    return address & ~(PAGE_SIZE - 1)


def stack_value(new_start: int | None, old_start: int | None, target: int) -> str:
    """'no growth', or where vm_start ended up relative to the target's page."""
    if new_start is None or old_start is None or new_start >= old_start:
        return "no growth"
    delta = (new_start - _page(target)) // PAGE_SIZE
    if new_start % PAGE_SIZE or abs(delta) > 16:
        return f"vm_start={new_start:#x}"
    if delta == 0:
        return "vm_start=page"
    return f"vm_start=page{delta:+d}p"


def page_value(before_present: bool, before_frame: int | None, after_present: bool,
               after_frame: int | None) -> str:
    if not after_present:
        return "none"
    if not before_present:
        return "populated"
    if before_frame is None or after_frame is None:
        return "present"
    return "same frame" if before_frame == after_frame else "new frame"


# --- the kernel's side -----------------------------------------------------------------------

def observed_channels(case: Case, obs: Observation, info: BuildInfo) -> dict[str, str | None]:
    out: dict[str, str | None] = dict.fromkeys(CHANNELS)
    exec_result = obs.exec_result() if case.access == "exec" else None
    # outcome and the signal's error code
    if not case.user:
        if obs.signal:
            out["outcome"] = f"signal {obs.signal}"
        elif obs.ret < 0:
            out["outcome"] = "fixup" if obs.errno == 14 else f"errno/{_ERRNO.get(obs.errno, obs.errno)}"
        else:
            out["outcome"] = "handled"
        out["signal_err"] = "none"
    elif exec_result in ("returned", "ran") or not obs.signal:
        out["outcome"] = "handled"
        out["signal_err"] = "none"
    elif obs.trapno == 13:
        out["outcome"] = "gp/SI_KERNEL" if obs.si_code == SI_KERNEL else f"gp/{obs.si_code}"
        out["signal_err"] = "none"
    elif obs.signal == SIGSEGV:
        out["outcome"] = f"sigsegv/{_SEGV.get(obs.si_code, obs.si_code)}"
        out["signal_err"] = hex(obs.err)
    elif obs.signal == SIGBUS:
        out["outcome"] = f"sigbus/{_BUS.get(obs.si_code, obs.si_code)}"
        out["signal_err"] = hex(obs.err)
    else:
        out["outcome"] = f"signal {obs.signal}"
    # hardware error codes on the target page (tracing)
    faults = obs.target_faults()
    if faults is not None:
        out["hw_codes"] = ",".join(("k" if e.event.endswith("kernel") else "u") + hex(e.error_code or 0)
                                   for e in faults) or "none"
    out["faults"] = f"{obs.minflt}/{obs.majflt}"
    # stack growth
    if case.stack_like and info.growsdown_end is not None:
        before = next((m.start for m in obs.maps_before if m.end == info.growsdown_end), None)
        after = next((m.start for m in obs.maps_after if m.end == info.growsdown_end), None)
        out["stack"] = stack_value(after, before, obs.target)
    # the target's PTE
    if obs.pm_before is not None and obs.pm_after is not None and obs.target < TASK_SIZE_MAX["x86_64"]:
        out["page"] = page_value(obs.pm_before.present, obs.pm_before.pfn,
                                 obs.pm_after.present, obs.pm_after.pfn)
        if out["page"] == "present" and obs.pm_before.pfn is None:
            out["page"] = "present"
    out["mmap_lock"] = obs.mmap_lock()
    return out


# --- pfmodel's side --------------------------------------------------------------------------

def _final_counter(run: Run, name: str) -> int:
    value = run.final.get(name)
    if isinstance(value, int):
        return value
    return 0


def signal_error_code(run: Run, case: Case) -> str:
    """The error code 4.4 reports with a fault signal (thread.error_code): the simulator's
    record when it keeps one, else the last fault's code with PF_USER (step 8 of 1.1) and,
    for SIGSEGV at or above TASK_SIZE, PF_PROT (KF 2.2.17 step 5)."""
    thread = run.final.get("thread")
    if isinstance(thread, dict) and thread.get("error_code") is not None:
        value = thread["error_code"]
        return hex(int(value, 16) if isinstance(value, str) else int(value))
    last = run.faults[-1]
    code = last.error_code | PF_USER
    if run.outcome.kind == "sigsegv" and last.address >= TASK_SIZE_MAX["x86_64"]:
        code |= PF_PROT
    return hex(code)


def predicted_channels(case: Case, run: Run, info: BuildInfo, observed: dict[str, str | None],
                       target: int) -> dict[str, str | None]:
    out: dict[str, str | None] = dict.fromkeys(CHANNELS)
    outcome = run.outcome
    if run.bound_hit:
        out["outcome"] = "bound"
    elif outcome.kind in ("sigsegv", "sigbus"):
        out["outcome"] = f"{outcome.kind}/{outcome.si_code}"
    elif outcome.kind == "oops":
        out["outcome"] = f"oops/{outcome.reason}"
    else:
        out["outcome"] = outcome.kind
    out["signal_err"] = signal_error_code(run, case) if outcome.kind in ("sigsegv", "sigbus") \
        and case.user and run.faults else "none"
    if observed.get("hw_codes") is not None:
        out["hw_codes"] = ",".join(("u" if case.user else "k") + hex(f.error_code)
                                   for f in run.faults if f.hardware
                                   and _page(f.address) == _page(target)) or "none"
    out["faults"] = f"{_final_counter(run, 'min_flt')}/{_final_counter(run, 'maj_flt')}"
    if observed.get("stack") is not None and info.growsdown_end is not None:
        after = _vma_start(run.final.get("vmas") or [], info.growsdown_end)
        out["stack"] = stack_value(after, info.growsdown_start, target)
    if observed.get("page") is not None and info.pte_before is not None:
        pte = _final_pte(run)                    # None: no page table maps it, so no PTE
        pte = 0 if pte is None else pte
        out["page"] = page_value(_pte_present(info.pte_before), _pfn(info.pte_before),
                                 _pte_present(pte), _pfn(pte))
        if observed["page"] == "present" and out["page"] in ("same frame", "new frame"):
            out["page"] = "present"              # the kernel side could not see frames
    if observed.get("mmap_lock") is not None:
        took = any(step.changes.get("mmap_sem") in ("acquire", "down_read", "down_write")
                   for f in run.faults for step in f.trace.steps)
        out["mmap_lock"] = "read" if took else "none"
    return out


def gp_prediction(observed: dict[str, str | None]) -> dict[str, str | None]:
    """The channels for an access pfmodel's MMU answers with #GP: no page fault at all."""
    out: dict[str, str | None] = dict.fromkeys(CHANNELS)
    out.update(outcome="gp/SI_KERNEL", signal_err="none", faults="0/0")
    for name in ("hw_codes", "mmap_lock"):
        if observed.get(name) is not None:
            out[name] = "none"
    return out


def _pte_present(pte: int) -> bool:
    """pte_present as pagemap reports it: P, or a PROT_NONE entry (KF 1.2)."""
    return bool(pte & (_PAGE_PRESENT | _PAGE_PROTNONE))


def _pfn(pte: int) -> int | None:
    return (pte & X86_64.pte_pfn_mask) >> 12 if _pte_present(pte) else None


def _final_pte(run: Run) -> int | None:
    pte = run.final.get("pte")
    if isinstance(pte, dict):
        pte = pte.get("value")
    if isinstance(pte, str):
        return int(pte, 16)
    if isinstance(pte, int):
        return pte
    return None


def _vma_start(vmas: list[Any], end: int) -> int | None:
    for vma in vmas:
        start, vend = vma.get("start"), vma.get("end")
        start = int(start, 16) if isinstance(start, str) else start
        vend = int(vend, 16) if isinstance(vend, str) else vend
        if vend == end:
            return start
    return None


# --- per-case result -------------------------------------------------------------------------

@dataclass
class ChannelResult:
    channel: str
    predicted: str | None
    observed: str | None
    verdict: str                    # agree, expected, differ, n/a
    divergence: str | None = None   # the key of the expected-divergence row that explains it

    def to_json(self) -> dict[str, Any]:
        return {"channel": self.channel, "predicted": self.predicted, "observed": self.observed,
                "verdict": self.verdict, "divergence": self.divergence}


@dataclass
class CaseResult:
    case: Case
    status: str                      # agree, expected, differ, skipped, error
    reason: str = ""
    channels: list[ChannelResult] = field(default_factory=list)
    scenario: dict[str, Any] | None = None
    prediction: dict[str, Any] | None = None
    observation: dict[str, Any] | None = None

    @property
    def divergences(self) -> list[str]:
        return sorted({c.divergence for c in self.channels if c.divergence})

    def channel(self, name: str) -> ChannelResult | None:
        return next((c for c in self.channels if c.channel == name), None)

    def to_json(self, full: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {"case": self.case.name, "status": self.status}
        if self.reason:
            out["reason"] = self.reason
        out["channels"] = {c.channel: c.to_json() for c in self.channels}
        if self.divergences:
            out["divergences"] = self.divergences
        if full:
            out["scenario"] = self.scenario
            out["prediction"] = self.prediction
            out["observation"] = self.observation
        return out
