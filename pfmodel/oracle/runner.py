"""Run the oracle: for each case, measure the running kernel, build the 4.4 scenario,
run the simulator, and compare channel by channel.

The comparison is always against a live measurement made now, never against a
stored table.  The only state the run creates outside its own probe processes is a
private tracefs instance (root only), removed when the run ends.
"""

from __future__ import annotations

import dataclasses
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable

from ..errors import PfmodelError, ScenarioError
from . import divergence as div
from .build import build_spec
from .cases import Case
from .compare import AGREE, CHANNELS, DIFFER, EXPECTED, NA, CaseResult, ChannelResult, \
    gp_prediction, observed_channels, predicted_channels
from .machine import Machine, detect
from .probe import Prober, ProbeError, ProbeUnavailable, make_prober, parse_output
from .tracefs import Tracer, TracefsUnavailable

SKIPPED = "skipped"
ERROR = "error"


@dataclass
class OracleReport:
    machine: Machine
    tracing: str                     # "on", or why not
    results: list[CaseResult]
    notes: list[str] = field(default_factory=list)
    used_rows: list[str] = field(default_factory=list)
    probe: str = "c"                 # which probe flavour measured the kernel

    def count(self, status: str) -> int:
        return sum(1 for r in self.results if r.status == status)

    @property
    def failed(self) -> list[CaseResult]:
        return [r for r in self.results if r.status in (DIFFER, ERROR)]

    @property
    def exit_status(self) -> int:
        """0 when every difference is an expected one, 1 when any is not (or a case erred)."""
        return 1 if self.failed else 0

    def to_json(self, full: bool = False) -> dict[str, Any]:
        return {
            "format": "pfmodel-oracle/1",
            "machine": self.machine.to_json(),
            "tracing": self.tracing,
            "probe": self.probe,
            "summary": {s: self.count(s) for s in (AGREE, EXPECTED, DIFFER, SKIPPED, ERROR)},
            "exit_status": self.exit_status,
            "notes": list(self.notes),
            "divergence_table": [row.to_json() for row in div.TABLE],
            "divergences_seen": list(self.used_rows),
            "cases": [r.to_json(full=full) for r in self.results],
        }


def skip_reason(case: Case, machine: Machine) -> str | None:
    """Why ``case`` cannot run on this machine, or None."""
    if not machine.is_linux_x86_64:
        return f"needs Linux on x86-64 (this is {machine.system} on {machine.arch})"
    if "nx" in case.needs and not machine.cpu_flags.get("nx"):
        return "the CPU has no NX: fetches from non-executable pages are not blocked"
    if "kernel_text" in case.needs and machine.kernel_text is None:
        return "the kernel text address is hidden (/proc/kallsyms shows it to root only)"
    if "vsyscall" in case.needs and machine.vsyscall == "none":
        return "the kernel runs with vsyscall=none: there is no vsyscall page"
    if case.map == "raw" and case.addr_kind in ("noncanonical", "last_user_page", "kernel_hole") \
            and machine.cpu_flags.get("la57"):
        return "5-level paging hardware: the 47-bit canonical boundary may not apply"
    return None


def compare_case(case: Case, obs, machine: Machine, simulate: Callable[[Any], Any]) -> CaseResult:
    """Build the scenario for one observed case, run the simulator, compare the channels."""
    from ..scenario import Scenario

    spec, info = build_spec(case, obs, machine, zero_pfn=sim_zero_pfn())
    scenario = Scenario(spec=spec, name=case.name).to_json()
    observed = observed_channels(case, obs, info)
    try:
        run = simulate(spec)
    except ScenarioError as exc:
        if "#GP" not in exc.message:
            raise
        # pfmodel's MMU refuses a non-canonical address: the CPU raises #GP, which Linux
        # turns into SIGSEGV with si_code SI_KERNEL (no page fault at all).
        run = None
        predicted = gp_prediction(observed)
    if run is not None:
        predicted = predicted_channels(case, run, info, observed, obs.target)
    ctx = div.Context(case=case, obs=obs, machine=machine, predicted=predicted, observed=observed)
    channels = []
    for name in CHANNELS:
        p, o = predicted.get(name), observed.get(name)
        if p is None or o is None:
            channels.append(ChannelResult(name, p, o, NA))
        elif p == o:
            channels.append(ChannelResult(name, p, o, AGREE))
        else:
            row = div.explain(ctx, name)
            channels.append(ChannelResult(name, p, o, EXPECTED if row else DIFFER,
                                          row.key if row else None))
    verdicts = {c.verdict for c in channels}
    status = DIFFER if DIFFER in verdicts else EXPECTED if EXPECTED in verdicts else AGREE
    return CaseResult(case=case, status=status, channels=channels, scenario=scenario,
                      prediction=run.to_json() if run is not None else {"general_protection": True},
                      observation=_observation_json(obs))


_ZERO_PFN: list[int] = []


def sim_zero_pfn() -> int:
    """The frame the simulator gives the zero page (is_zero_pfn must recognise our PTEs)."""
    if not _ZERO_PFN:
        from ..sim.machine import build
        from ..sim.spec import AccessSpec, MachineSpec

        _ZERO_PFN.append(build(MachineSpec(access=AccessSpec(address=0x1000))).zero_pfn)
    return _ZERO_PFN[0]


def _observation_json(obs) -> dict[str, Any]:
    """The probe's observation, decoded: pagemap bits, the target's VMA before and after,
    the trace events of the window."""
    data = {k: v for k, v in obs.raw.items() if k not in ("maps_before", "maps_after")}
    for key, entry in (("pagemap_before", obs.pm_before), ("pagemap_after", obs.pm_after)):
        if entry is not None:
            data[key] = {"present": entry.present, "swapped": entry.swapped, "soft_dirty": entry.soft_dirty,
                         "exclusive": entry.exclusive, "file_or_shared_anon": entry.file_or_shared,
                         "pfn": None if entry.pfn is None else hex(entry.pfn)}
    for key, vma in (("vma_before", obs.vma_before(obs.anchor)), ("vma_after", obs.vma_after(obs.target))):
        data[key] = None if vma is None else {"start": hex(vma.start), "end": hex(vma.end),
                                              "perms": vma.perms, "name": vma.name}
    if obs.trace is not None:
        data["trace"] = [{"event": e.event,
                          "address": None if e.address is None else hex(e.address),
                          "error_code": None if e.error_code is None else hex(e.error_code),
                          "write": e.write} for e in obs.trace]
    data["notes"] = list(obs.notes)
    return data


def _default_simulate(spec):
    from ..sim.run import run

    return run(spec)


def run_oracle(cases: list[Case], *, tracing: bool = True, machine: Machine | None = None,
               on_case: Callable[[int, int, Case], None] | None = None,
               simulate: Callable[[Any], Any] | None = None, probe: str = "auto") -> OracleReport:
    """Run ``cases`` on the live kernel and compare each with the simulator's prediction."""
    machine = machine or detect()
    simulate = simulate or _default_simulate
    results: list[CaseResult] = []
    notes: list[str] = []
    runnable = []
    for case in cases:
        reason = skip_reason(case, machine)
        if reason is None and case.addr_kind == "kernel_text":
            case = dataclasses.replace(case, addr=machine.kernel_text)
        if reason:
            results.append(CaseResult(case=case, status=SKIPPED, reason=reason))
        else:
            runnable.append(case)
    if not runnable:
        return OracleReport(machine, "off: no runnable case", _in_order(cases, results), notes, probe="none")
    prober = make_prober(probe)
    if prober.flavour == "ctypes":
        notes.append("no C compiler (or --probe ctypes): the pure-ctypes probe measured the kernel")

    tracer: Tracer | None = None
    tracing_state = "off: disabled (--no-trace)"
    if tracing and not prober.supports_tracing:
        tracing_state = "off: the ctypes probe does not write trace markers"
    elif tracing:
        try:
            tracer = Tracer().__enter__()
            tracing_state = "on"
        except TracefsUnavailable as exc:
            tracing_state = f"off: {exc}"
            notes.append(f"tracepoint channels (hw_codes, mmap_lock) skipped: {exc}")
    if not machine.cap_sys_admin:
        notes.append("no CAP_SYS_ADMIN: pagemap hides frame numbers, so 'page' cannot tell a copy from a reuse")
    try:
        for index, case in enumerate(runnable):
            if on_case:
                on_case(index, len(runnable), case)
            results.append(_one(case, prober, machine, tracer, simulate))
    finally:
        if tracer is not None:
            tracer.__exit__(None, None, None)
    ordered = _in_order(cases, results)
    used = sorted({key for r in ordered for key in r.divergences})
    return OracleReport(machine, tracing_state, ordered, notes, used, probe=prober.flavour)


def _one(case: Case, prober: Prober, machine: Machine, tracer: Tracer | None, simulate) -> CaseResult:
    args = case.args() + [f"tmpdir={machine.tmpdir}"]
    if tracer is not None and tracer.instance is not None:
        args.append(f"tracefs={tracer.instance}")
    try:
        obs = parse_output(prober.run(args))
        if tracer is not None:
            obs.trace = tracer.collect(int(obs.raw["pid"]))
    except ProbeError as exc:
        return CaseResult(case=case, status=ERROR, reason=f"probe: {exc.message}")
    try:
        return compare_case(case, obs, machine, simulate)
    except PfmodelError as exc:
        return CaseResult(case=case, status=ERROR, reason=f"scenario: {exc.message}",
                          observation=_observation_json(obs))
    except Exception as exc:  # the simulator is a separate component: report, do not hide
        where = traceback.extract_tb(exc.__traceback__)[-1]
        return CaseResult(case=case, status=ERROR,
                          reason=f"simulator raised {type(exc).__name__}: {exc} "
                                 f"({where.filename.rsplit('/', 1)[-1]}:{where.lineno})",
                          observation=_observation_json(obs))


def _in_order(cases: list[Case], results: list[CaseResult]) -> list[CaseResult]:
    by_name = {r.case.name: r for r in results}
    return [by_name[c.name] for c in cases if c.name in by_name]


__all__ = ["run_oracle", "OracleReport", "compare_case", "skip_reason", "ProbeUnavailable"]
