"""Counterexample files: save, load, replay (and minimize, from ``pfmodel.minimize``).

A counterexample file (``pfmodel-counterexample/1``, JSON) holds everything needed to
see a violation again and to check that it still happens:

* ``scenario``: the machine and the access (a complete ``pfmodel-scenario/1`` object);
* ``violates``: the property it violates (name, statement, expected verdict, and the
  fault that breaks it), or the conformance step where the model and the simulator part
  (the model's decisions and outcome, and its input bindings so the model path can be
  re-derived);
* ``mutant``: the mutant it was found on, if any (replay applies it again), and what
  the unmutated simulator does with the same scenario;
* ``outcome``, ``faults``, ``trace``: what the simulator does: the expected outcome, the
  number of hardware faults, and every fault's decisions (``"label → value"``);
* ``pfmodel``, ``kernel``: the versions it was made with; ``explanation``: a few
  sentences for people.

The file name is ``<what it violates>-<fingerprint>.json``; the fingerprint hashes the
scenario's machine, the violation and the mutant, so the same violation always gives the
same file, byte for byte.  ``replay`` re-runs the scenario and compares every recorded
field; plain scenario files are replayed against their ``expect``.
"""

from __future__ import annotations

import difflib
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from . import KERNEL_VERSION, __version__
from .errors import PfmodelError, ScenarioError
from .minimize import MinimizeStats, cost, minimize
from .outcome import Outcome
from .properties import Property, load_properties
from .runview import Observation, observe, sim_evaluate
from .scenario import (
    FORMAT as SCENARIO_FORMAT,
    FORMAT_PREFIX as SCENARIO_PREFIX,
    Scenario,
    check_expectations,
    error_code_text,
    fingerprint as scenario_fingerprint,
    loads_scenario,
    outcome_text,
    parse_scenario,
    run_scenario,
    scenario_from_spec,
)
from .sim.result import Run
from .strategies import realism_problem
from .sim.spec import MachineSpec

FORMAT = "pfmodel-counterexample/1"
FORMAT_PREFIX = "pfmodel-counterexample/"
ARROW = " → "


class CounterexampleError(PfmodelError):
    """A counterexample file is malformed."""


def trace_lines(run: Run) -> list[list[str]]:
    """Every fault's decisions as ``"label → value"`` strings."""
    return [[f"{label}{ARROW}{value}" for label, value in f.trace.keys()] for f in run.faults]


# ---------------------------------------------------------------------------------
# What is violated
# ---------------------------------------------------------------------------------

@dataclass
class Violation:
    """A property violated at one fault, or the step where model and simulator part.

    ``model`` ({"arch", "scope", "bindings"}) names the model path the violation was found
    on; replay re-derives it (under the mutant, for a mutant of the model).  A property
    violated by a mutated *model* is judged on that path; one violated by the simulator is
    judged on the simulator's run.  A conformance violation's ``reference`` is ``model``
    (the model's decisions, re-derived from ``model``) or ``simulator``: for a mutant of
    the simulator, the minimized witness compares the mutant with the unmutated simulator,
    which takes the model's decisions on every model path.
    """

    kind: str                                   # "property" or "conformance"
    property_name: str = ""
    statement: str = ""
    expected: str = ""                          # the property's expected verdict
    fault: int = 1                              # 1-based
    step: int = 0                               # conformance: 1-based step where they part
    model_trace: list[str] = field(default_factory=list)
    model_outcome: dict[str, Any] | None = None
    model: dict[str, Any] | None = None         # {"arch", "scope", "bindings"}: re-derive the path
    reference: str = "model"                    # conformance: "model" or "simulator"

    @property
    def label(self) -> str:
        return self.property_name if self.kind == "property" else "conformance"

    def to_json(self) -> dict[str, Any]:
        if self.kind == "property":
            out: dict[str, Any] = {"property": self.property_name, "statement": self.statement,
                                   "expected_verdict": self.expected, "fault": self.fault}
            if self.model is not None:
                out["model"] = self.model
            return out
        c: dict[str, Any] = {"reference": self.reference, "fault": self.fault, "step": self.step,
                             "reference_trace": list(self.model_trace),
                             "reference_outcome": self.model_outcome}
        if self.model is not None:
            c["model"] = self.model
        return {"conformance": c}

    @classmethod
    def from_json(cls, data: Any, where: str) -> "Violation":
        if not isinstance(data, dict):
            raise CounterexampleError("'violates' must be an object", where=where)
        if "property" in data:
            return cls("property", property_name=str(data["property"]), statement=str(data.get("statement", "")),
                       expected=str(data.get("expected_verdict", "")), fault=int(data.get("fault", 1)),
                       model=data.get("model"))
        if "conformance" in data and isinstance(data["conformance"], dict):
            c = data["conformance"]
            reference = str(c.get("reference", "model"))
            if reference not in ("model", "simulator"):
                raise CounterexampleError(f"conformance reference {reference!r} is not 'model' or 'simulator'",
                                          where=where)
            return cls("conformance", fault=int(c.get("fault", 1)), step=int(c.get("step", 0)),
                       model_trace=[str(x) for x in c.get("reference_trace", [])],
                       model_outcome=c.get("reference_outcome"), model=c.get("model"), reference=reference)
        raise CounterexampleError("'violates' names neither a property nor a conformance step", where=where,
                                  todo='write {"property": NAME, ...} or {"conformance": {...}}')


def property_violation(prop: Property, fault: int = 1) -> Violation:
    return Violation("property", property_name=prop.name, statement=prop.statement, expected=prop.expected,
                     fault=fault)


# ---------------------------------------------------------------------------------
# The file
# ---------------------------------------------------------------------------------

@dataclass
class Counterexample:
    scenario: Scenario
    violation: Violation
    outcome: dict[str, Any]
    faults: int
    trace: list[list[str]]
    explanation: str = ""
    name: str = ""
    mutant: dict[str, Any] | None = None        # {"name", "source", "summary", "unmutated": {...}}
    pfmodel: str = __version__
    kernel: str = KERNEL_VERSION
    source: str = ""                            # where it was read from; never saved

    @property
    def fingerprint(self) -> str:
        ident = {"machine": scenario_fingerprint(self.scenario), "violates": self.violation.label,
                 "fault": self.violation.fault, "step": self.violation.step,
                 "mutant": (self.mutant or {}).get("name", "")}
        text = json.dumps(ident, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(f"{FORMAT}\n{text}".encode()).hexdigest()[:16]

    @property
    def filename(self) -> str:
        prefix = f"{self.mutant['name']}--" if self.mutant else ""
        return f"{prefix}{self.violation.label}-{self.fingerprint}.json"

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"format": FORMAT}
        if self.name:
            out["name"] = self.name
        out["explanation"] = self.explanation
        out["violates"] = self.violation.to_json()
        if self.mutant:
            out["mutant"] = self.mutant
        out["pfmodel"] = self.pfmodel
        out["kernel"] = self.kernel
        out["outcome"] = self.outcome
        out["faults"] = self.faults
        out["trace"] = self.trace
        scenario = self.scenario.to_json()
        out["scenario"] = scenario
        return out


def dumps(cx: Counterexample) -> str:
    """The file's text: deterministic (sorted nothing that has an order of its own, no
    timestamps), 2-space indent, one trace step a line."""
    return json.dumps(cx.to_json(), indent=2, ensure_ascii=False) + "\n"


def save(cx: Counterexample, folder: str | Path) -> Path:
    """Write ``cx`` into ``folder`` under its fingerprint name; returns the path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / cx.filename
    path.write_text(dumps(cx), encoding="utf-8")
    return path


def loads(text: str, source: str = "") -> Counterexample:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise CounterexampleError(f"malformed JSON: {e.msg} (line {e.lineno}, column {e.colno})",
                                  where=source) from None
    return from_json(data, source)


def from_json(data: Any, source: str = "") -> Counterexample:
    if not isinstance(data, dict) or not str(data.get("format", "")).startswith(FORMAT_PREFIX):
        raise CounterexampleError("not a counterexample file", where=source,
                                  todo=f"a counterexample file has \"format\": \"{FORMAT}\"")
    if data["format"] != FORMAT:
        raise CounterexampleError(f"unsupported format {data['format']!r}", where=source,
                                  todo=f"this pfmodel reads {FORMAT}")
    missing = [k for k in ("violates", "outcome", "faults", "trace", "scenario", "kernel") if k not in data]
    if missing:
        raise CounterexampleError(f"missing field(s): {', '.join(missing)}", where=source)
    scenario = parse_scenario(data["scenario"], source=f"{source}: scenario" if source else "scenario")
    trace = data["trace"]
    if not isinstance(trace, list) or not all(isinstance(f, list) for f in trace):
        raise CounterexampleError("'trace' must be a list (one per fault) of lists of steps", where=source)
    return Counterexample(
        scenario=scenario, violation=Violation.from_json(data["violates"], source),
        outcome=data["outcome"], faults=int(data["faults"]), trace=[[str(s) for s in f] for f in trace],
        explanation=str(data.get("explanation", "")), name=str(data.get("name", "")),
        mutant=data.get("mutant"), pfmodel=str(data.get("pfmodel", "")), kernel=str(data["kernel"]),
        source=source)


def load(path: str | Path) -> Counterexample:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise CounterexampleError(f"cannot read the file: {e.strerror or e}", where=str(path)) from None
    return loads(text, str(path))


# ---------------------------------------------------------------------------------
# Mutants (imported lazily: the mutants package sits above this module)
# ---------------------------------------------------------------------------------

def _mutant_record(mutant: Any, unmutated: Run | None) -> dict[str, Any]:
    out: dict[str, Any] = {"name": mutant.name, "summary": mutant.summary, "source": mutant.source}
    if unmutated is not None:
        out["unmutated"] = {"outcome": unmutated.outcome.to_json(), "faults": len(unmutated.faults)}
    return out


def resolve_mutant(record: dict[str, Any], base: Path | None = None) -> Any:
    """The mutant a counterexample file names: built-in by name, or its mutant file."""
    from .mutants import BUILTIN, load_mutant_file

    name = record.get("name", "")
    source = str(record.get("source", ""))
    if source.startswith("pfmodel.mutants") or (not source and name in BUILTIN):
        if name not in BUILTIN:
            raise CounterexampleError(f"the built-in mutant {name!r} no longer exists",
                                      todo="`pfmodel mutants --list` lists them")
        return BUILTIN[name]
    path = Path(source)
    if not path.is_absolute() and base is not None and (base / path).exists():
        path = base / path
    for m in load_mutant_file(path):
        if m.name == name:
            return m
    raise CounterexampleError(f"the mutant file {source} has no mutant named {name!r}")


def _overrides(mutant: Any) -> dict[str, Callable[..., Any]]:
    return {} if mutant is None else mutant.sim_overrides()


# ---------------------------------------------------------------------------------
# Building one
# ---------------------------------------------------------------------------------

def describe_run(spec: MachineSpec, run: Run) -> str:
    """One sentence: the access and how it ended."""
    from .x86.constants import PF_INSTR, PF_WRITE

    a = spec.access
    mode = "kernel-mode" if a.mode == "kernel" else ("implicit supervisor" if a.implicit else "user-mode")
    first = run.faults[0] if run.faults else None
    kind = a.kind
    if first is not None and a.error_code is not None:
        kind = "write" if first.error_code & PF_WRITE else ("fetch" if first.error_code & PF_INSTR else "read")
    code = f" (error code {error_code_text(first.error_code)})" if first is not None else ""
    n = len(run.faults)
    article = "an" if mode.startswith("implicit") else "a"
    return (f"{article} {mode} {kind} at {a.address:#x}{code} ends {outcome_text(run.outcome)}"
            + (f" after {n} faults" if n > 1 else ""))


# Decisions every ordinary fault takes, and the ones whose "false" is worth telling.
_ROUTINE = {"kmemcheck_active", "kmmio_fault", "kprobes_fault", "regs_if", "pf_write", "down_read_trylock",
            "find_vma", "vm_start_le_address", "is_prefetch", "is_errata93", "is_errata100", "is_f00f_bug",
            "die_notifier_stop", "memcg_oom_cleanup", "is_vm_hugetlb_page", "pud_alloc", "pmd_alloc",
            "pmd_none_thp", "pmd_trans_huge", "pte_alloc", "pmd_trans_huge_after_alloc", "in_interrupt",
            "vsyscall_emulated", "anon_pte_none_recheck", "userfaultfd_missing", "fault_retry", "fault_error",
            "major", "v8086_mode", "anon_vm_shared", "guard_lowest_page", "check_stack_guard_page"}
_FALSE_MATTERS = {"access_error", "fixup_exception", "bad_area_pf_user", "user_mode", "fault_in_kernel_space",
                  "vm_growsdown", "stack_cushion_exceeded", "expand_stack", "pte_present", "pte_write",
                  "search_exception_tables", "allow_retry", "fatal_signal_pending", "flags_user"}


def _decisions(steps: list[str], limit: int = 7) -> str:
    def telling(step: str) -> bool:
        label, _, value = step.partition(ARROW)
        if label in _ROUTINE:
            return False
        return value != "false" or label in _FALSE_MATTERS
    return ", ".join([s for s in steps if telling(s)][:limit])


def explain(spec: MachineSpec, run: Run, violation: Violation, prop: Property | None = None,
            mutant: Any = None, unmutated: Run | None = None) -> str:
    """A short explanation, written from the run."""
    parts: list[str] = []
    what = describe_run(spec, run)
    lines = trace_lines(run)
    if violation.kind == "property":
        statement = prop.statement if prop is not None else violation.statement
        k = violation.fault
        parts.append(f"The property says: {statement}")
        fault = f"fault {k} " if len(run.faults) > 1 else ""
        parts.append(f"Here {what}; its {fault}decisions: {_decisions(lines[k - 1])}.")
        if mutant is None and prop is not None and prop.expected == "violated":
            parts.append(f"Why: {prop.rationale}")
        elif mutant is None and prop is not None:
            parts.append(f"The kernel's rule: {prop.rationale}")
    else:
        model = violation.model_trace[violation.step - 1] if 0 < violation.step <= len(violation.model_trace) else "end"
        sim = lines[violation.fault - 1]
        mine = sim[violation.step - 1] if 0 < violation.step <= len(sim) else "end"
        if violation.reference == "simulator":
            parts.append(f"The mutated simulator leaves the model's path: at step {violation.step} of fault "
                         f"{violation.fault} the unmutated simulator (which takes the model's decisions on "
                         f"every model path) decides {model}, the mutant {mine}. Here {what}.")
        else:
            parts.append(f"Model and simulator part at step {violation.step} of fault {violation.fault}: "
                         f"the model decides {model}, the simulator {mine}. Here {what}.")
    if mutant is not None:
        parts.append(f"Found on mutant {mutant.name}: {mutant.summary}.")
        if unmutated is not None:
            parts.append(f"The unmutated simulator: {describe_run(spec, unmutated)}.")
    return " ".join(parts)


def build(spec: MachineSpec, violation: Violation, *, prop: Property | None = None, mutant: Any = None,
          name: str = "", explanation: str = "") -> Counterexample:
    """Run ``spec`` (on the mutant, if given) and record the counterexample."""
    scn = scenario_from_spec(spec, name)
    spec = scn.to_spec()
    result = observe(spec, _overrides(mutant)).run
    unmutated = observe(spec).run if mutant is not None else None
    if not explanation:
        explanation = explain(spec, result, violation, prop, mutant, unmutated)
    return Counterexample(
        scenario=scenario_from_spec(spec), violation=violation, outcome=result.outcome.to_json(),
        faults=len(result.faults), trace=trace_lines(result), explanation=explanation, name=name,
        mutant=_mutant_record(mutant, unmutated) if mutant is not None else None)


# ---------------------------------------------------------------------------------
# Predicates for minimization
# ---------------------------------------------------------------------------------

def property_fails(prop: Property, mutant: Any = None,
                   same_path: list[tuple[str, str]] | None = None) -> Callable[[MachineSpec], bool]:
    """True when the (mutated) simulator violates ``prop`` -- and, for a mutant, the
    unmutated simulator does not (a kill must be the mutant's doing).  With
    ``same_path``, the first fault must also take exactly those decisions."""
    overrides = _overrides(mutant)

    def fails(spec: MachineSpec) -> bool:
        obs = observe(spec, overrides)
        if same_path is not None and (not obs.run.faults or obs.run.faults[0].trace.keys() != same_path):
            return False
        if sim_evaluate(prop, obs).holds:
            return False
        return mutant is None or sim_evaluate(prop, observe(spec)).holds
    return fails


def _hardware_possible(spec: MachineSpec, mutant: Any = None) -> bool:
    """Realism: every error code is one the hardware can produce there, and an error code
    the scenario gives matches its access (kind, mode, implicit supervisor access), so the
    re-executed access is the one that faulted."""
    from .x86.constants import PF_INSTR, PF_USER, PF_WRITE

    a = spec.access
    if a.error_code is not None:
        ec = a.error_code
        kind = "write" if ec & PF_WRITE else ("fetch" if ec & PF_INSTR else "read")
        if a.kind != kind:
            return False
        if ec & PF_USER and a.mode != "user":
            return False
        if a.mode == "user" and kind != "fetch" and bool(a.implicit) != (not ec & PF_USER):
            return False
    return all(f.hardware_possible for f in observe(spec, _overrides(mutant)).run.faults)


def first_violation(prop: Property, spec: MachineSpec, mutant: Any = None) -> int:
    verdict = sim_evaluate(prop, observe(spec, _overrides(mutant)))
    return 1 if verdict.fault is None else verdict.fault + 1


def _first_difference(a: list[tuple[str, str]], b: list[tuple[str, str]]) -> int:
    k = 0
    while k < min(len(a), len(b)) and a[k] == b[k]:
        k += 1
    return k


def _step(keys: list[tuple[str, str]], k: int) -> tuple[str, str] | None:
    return keys[k] if k < len(keys) else None


def differs_fails(mutant: Any, reference: tuple | None, mutated: tuple | None) -> Callable[[MachineSpec], bool]:
    """True when the mutant's first fault parts from the unmutated simulator's with the same
    two decisions (``reference`` the unmutated one, ``mutated`` the mutant's)."""
    overrides = _overrides(mutant)

    def fails(spec: MachineSpec) -> bool:
        plain = observe(spec).run
        mine = observe(spec, overrides).run
        a = plain.faults[0].trace.keys() if plain.faults else []
        b = mine.faults[0].trace.keys() if mine.faults else []
        if a == b:
            return False
        k = _first_difference(a, b)
        return _step(a, k) == reference and _step(b, k) == mutated
    return fails


def minimized_mutant_conformance(spec: MachineSpec, mutant: Any, *, name: str = "", budget: int = 20000,
                                 found: str = "") -> tuple[Counterexample, MinimizeStats | None]:
    """A simulator mutant that left the model's path on ``spec``: minimize the scenario
    while the mutant still parts from the unmutated simulator at the same decisions."""
    spec = scenario_from_spec(spec).to_spec()
    plain = observe(spec).run
    mine = observe(spec, _overrides(mutant)).run
    a = plain.faults[0].trace.keys() if plain.faults else []
    b = mine.faults[0].trace.keys() if mine.faults else []
    k = _first_difference(a, b)
    fails = differs_fails(mutant, _step(a, k), _step(b, k))
    stats = None
    if fails(spec):
        if _hardware_possible(spec):
            inner = fails
            fails = lambda s: _hardware_possible(s) and _hardware_possible(s, mutant) and inner(s)  # noqa: E731
        spec, stats = minimize(spec, fails, budget=budget)
    plain = observe(spec).run
    ref = plain.faults[0].trace.keys() if plain.faults else []
    mine_keys = observe(spec, _overrides(mutant)).run
    mk = mine_keys.faults[0].trace.keys() if mine_keys.faults else []
    violation = Violation("conformance", fault=1, step=_first_difference(ref, mk) + 1,
                          model_trace=[f"{label}{ARROW}{value}" for label, value in ref],
                          model_outcome=plain.faults[0].outcome.to_json() if plain.faults else None,
                          reference="simulator")
    cx = build(spec, violation, mutant=mutant, name=name)
    if found:
        cx.explanation += f" (Found by conformance on {found}.)"
    return cx, stats


def minimization_predicate(prop: Property, start: MachineSpec, *, mutant: Any = None,
                           same_path: list[tuple[str, str]] | None = None) -> Callable[[MachineSpec], bool]:
    """What a candidate must satisfy to replace ``start`` while minimizing: it still
    violates ``prop``, and it is no less real than the start was (never trade realism for
    size: an error code the hardware can produce stays one, and a machine state the
    kernel builds (``strategies.realism_problem``) stays one)."""
    fails = property_fails(prop, mutant, same_path)
    hardware = _hardware_possible(start, mutant)
    realistic = realism_problem(start) is None
    return lambda s: ((not hardware or _hardware_possible(s, mutant))
                      and (not realistic or realism_problem(s) is None) and fails(s))


def minimized_property_counterexample(prop: Property, spec: MachineSpec, *, mutant: Any = None,
                                      name: str = "", explanation: str = "", budget: int = 20000,
                                      same_path: list[tuple[str, str]] | None = None,
                                      ) -> tuple[Counterexample, MinimizeStats | None]:
    """Minimize ``spec`` while it violates ``prop`` (on ``mutant``; keeping the first
    fault's decisions if ``same_path`` is given), then build the file.  If the start does
    not violate the property on the simulator (a property the model judges on inputs the
    simulator cannot see), it is kept as it is."""
    spec = scenario_from_spec(spec).to_spec()
    fails = minimization_predicate(prop, spec, mutant=mutant, same_path=same_path)
    stats = None
    if fails(spec):
        spec, stats = minimize(spec, fails, budget=budget)
    violation = property_violation(prop, first_violation(prop, spec, mutant))
    return build(spec, violation, prop=prop, mutant=mutant, name=name, explanation=explanation), stats


# ---------------------------------------------------------------------------------
# Replay
# ---------------------------------------------------------------------------------

@dataclass
class ReplayResult:
    path: str
    kind: str                                  # "counterexample" or "scenario"
    name: str = ""
    problems: list[str] = field(default_factory=list)
    diff: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _trace_diff(recorded: list[list[str]], now: list[list[str]]) -> list[str]:
    a = [f"fault {i + 1}: {s}" for i, f in enumerate(recorded) for s in f]
    b = [f"fault {i + 1}: {s}" for i, f in enumerate(now) for s in f]
    return list(difflib.unified_diff(a, b, "recorded trace", "trace now", lineterm="", n=2))


def replay_counterexample(cx: Counterexample, props: dict[str, Property] | None = None) -> ReplayResult:
    """Re-run ``cx`` and compare every recorded field."""
    res = ReplayResult(cx.source, "counterexample", cx.name or cx.filename)
    if cx.kernel != KERNEL_VERSION:
        res.problems.append(f"recorded for kernel {cx.kernel}, this pfmodel models {KERNEL_VERSION}")
    if cx.pfmodel != __version__:
        res.notes.append(f"recorded with pfmodel {cx.pfmodel}, replayed with {__version__}")
    base = Path(cx.source).parent if cx.source else None
    mutant = resolve_mutant(cx.mutant, base) if cx.mutant else None
    spec = cx.scenario.to_spec()
    obs = observe(spec, _overrides(mutant))
    run = obs.run
    if run.outcome.to_json() != cx.outcome:
        res.problems.append(f"outcome: recorded {outcome_text(cx.outcome)}, now {outcome_text(run.outcome)}")
    if len(run.faults) != cx.faults:
        res.problems.append(f"faults: recorded {cx.faults}, now {len(run.faults)}")
    now = trace_lines(run)
    if now != cx.trace:
        res.problems.append("trace: the decisions differ from the recorded ones (see the diff)")
        res.diff = _trace_diff(cx.trace, now)
    v = cx.violation
    if v.kind == "property" and v.model:
        _replay_model_property(res, v, mutant, props)
    elif v.kind == "property":
        _replay_property(res, cx, v, obs, mutant, props)
    else:
        _replay_conformance(res, cx, v, now, mutant)
    if cx.mutant and "unmutated" in cx.mutant and mutant is not None:
        plain = observe(spec).run
        want = cx.mutant["unmutated"]
        if plain.outcome.to_json() != want.get("outcome") or len(plain.faults) != want.get("faults"):
            res.problems.append(f"unmutated simulator: recorded {outcome_text(want.get('outcome'))} in "
                                f"{want.get('faults')} fault(s), now {outcome_text(plain.outcome)} in "
                                f"{len(plain.faults)}")
    return res


def _replay_property(res: ReplayResult, cx: Counterexample, v: Violation, obs: Observation, mutant: Any,
                     props: dict[str, Property] | None) -> None:
    props = props if props is not None else {p.name: p for p in load_properties()}
    prop = props.get(v.property_name)
    if prop is None:
        res.problems.append(f"property {v.property_name!r} is not known (give its folder with --properties)")
        return
    verdict = sim_evaluate(prop, obs)
    if verdict.not_evaluable:
        res.problems.append(f"property {prop.name} reads input {verdict.not_evaluable!r}, which a simulator "
                            "run does not define: it cannot be replayed")
    elif verdict.holds:
        res.problems.append(f"property {prop.name} is no longer violated by this scenario")
    elif verdict.fault is not None and verdict.fault + 1 != v.fault:
        res.problems.append(f"property {prop.name} is violated at fault {verdict.fault + 1}, recorded {v.fault}")
    if mutant is not None:
        if not sim_evaluate(prop, observe(cx.scenario.to_spec())).holds:
            res.problems.append(f"property {prop.name} is violated on the unmutated simulator too: "
                                "the mutant is not what breaks it")


def _model_path(model: dict[str, Any], mutant: Any = None) -> Any:
    """The model's path for recorded inputs (under the mutant's model patches, if any)."""
    from .explore.exhaustive import Explorer
    from .mutants import model_patched

    with model_patched(mutant.model_overrides() if mutant is not None else {}):
        explorer = Explorer(model["arch"], model["scope"])
        return explorer.one(dict(model["bindings"])), explorer.space


def _replay_model_property(res: ReplayResult, v: Violation, mutant: Any,
                           props: dict[str, Property] | None) -> None:
    from .properties import evaluate

    props = props if props is not None else {p.name: p for p in load_properties()}
    prop = props.get(v.property_name)
    if prop is None:
        res.problems.append(f"property {v.property_name!r} is not known (give its folder with --properties)")
        return
    try:
        path, space = _model_path(v.model, mutant)
    except (KeyError, ValueError, TypeError) as e:
        res.problems.append(f"cannot re-derive the model's path: {e}")
        return
    if evaluate(prop, path, space).holds:
        res.problems.append(f"property {prop.name} is no longer violated on the model's path")
    if mutant is not None:
        plain, space = _model_path(v.model)
        if not evaluate(prop, plain, space).holds:
            res.problems.append(f"property {prop.name} is violated on the unmutated model's path too")


def _replay_conformance(res: ReplayResult, cx: Counterexample, v: Violation, now: list[list[str]],
                        mutant: Any) -> None:
    fault = now[v.fault - 1] if 0 < v.fault <= len(now) else []
    k = 0
    while k < min(len(fault), len(v.model_trace)) and fault[k] == v.model_trace[k]:
        k += 1
    if fault == v.model_trace:
        res.problems.append(f"the simulator now takes the {v.reference}'s decisions: no conformance violation")
    elif k + 1 != v.step:
        res.problems.append(f"{v.reference} and simulator now part at step {k + 1}, recorded {v.step}")
    if v.reference == "simulator":
        # The reference is the unmutated simulator: it must still take the recorded decisions.
        plain = trace_lines(observe(cx.scenario.to_spec()).run)
        ref = plain[v.fault - 1] if 0 < v.fault <= len(plain) else []
        if ref != v.model_trace:
            res.problems.append("the unmutated simulator no longer takes the recorded reference decisions")
            res.diff += list(difflib.unified_diff(v.model_trace, ref, "recorded reference", "unmutated now",
                                                  lineterm="", n=2))
        return
    if not v.model:
        return
    try:
        path, _space = _model_path(v.model, mutant)
    except (KeyError, ValueError, TypeError) as e:
        res.problems.append(f"cannot re-derive the model's path: {e}")
        return
    keys = [f"{label}{ARROW}{value}" for label, value in path.keys()]
    if keys != v.model_trace:
        res.problems.append("the model's path for the recorded inputs has changed")
        res.diff += list(difflib.unified_diff(v.model_trace, keys, "recorded model path", "model path now",
                                              lineterm="", n=2))
    if v.model_outcome is not None and path.outcome.to_json() != v.model_outcome:
        res.problems.append(f"the model's outcome: recorded {outcome_text(v.model_outcome)}, "
                            f"now {outcome_text(path.outcome)}")
    if mutant is not None and mutant.target != "simulator":
        # Without the mutant, model and simulator agree on this scenario.
        plain, _ = _model_path(v.model)
        plain_keys = [f"{label}{ARROW}{value}" for label, value in plain.keys()]
        sim_now = trace_lines(observe(cx.scenario.to_spec()).run)
        if not sim_now or plain_keys != sim_now[0]:
            res.problems.append("without the mutant, the model and the simulator disagree on this scenario too")


def replay_scenario(scn: Scenario) -> ReplayResult:
    res = ReplayResult(scn.source, "scenario", scn.name)
    run = run_scenario(scn)
    if scn.expect.is_empty():
        res.notes.append("no expectation to check (the scenario has no 'expect')")
    res.problems.extend(check_expectations(scn, run))
    return res


def replay_path(path: str | Path, props: dict[str, Property] | None = None) -> ReplayResult:
    """Replay one file: a counterexample file, or a scenario file with ``expect``."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise CounterexampleError(f"cannot read the file: {e.strerror or e}", where=str(path)) from None
    try:
        fmt = json.loads(text).get("format", "")
    except (json.JSONDecodeError, AttributeError):
        fmt = ""
    if str(fmt).startswith(FORMAT_PREFIX):
        return replay_counterexample(loads(text, str(path)), props)
    if str(fmt).startswith("pfmodel-kill-matrix/"):
        res = ReplayResult(str(path), "skipped", path.stem)
        res.notes.append("a kill matrix (pfmodel mutants' summary), not a scenario: skipped")
        return res
    if str(fmt).startswith(SCENARIO_PREFIX) or not fmt:
        scn = loads_scenario(text, str(path))
        if not scn.name:
            scn.name = path.stem
        return replay_scenario(scn)
    raise CounterexampleError(f"unknown format {fmt!r}", where=str(path),
                              todo=f"replay reads {FORMAT} and {SCENARIO_FORMAT} files")


def collect(paths: Iterable[str | Path]) -> list[Path]:
    """Files as given; folders recursively (``*.json``), sorted."""
    out: list[Path] = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            found = sorted(q for q in p.rglob("*.json") if q.is_file())
            if not found:
                raise CounterexampleError("the folder has no *.json files", where=str(p))
            out.extend(found)
        elif p.is_file():
            out.append(p)
        else:
            raise CounterexampleError("no such file or folder", where=str(p), todo="check the path")
    return out


__all__ = ["Counterexample", "Violation", "FORMAT", "build", "save", "load", "loads", "dumps", "replay_path",
           "replay_counterexample", "replay_scenario", "collect", "minimize", "cost", "property_fails",
           "minimized_property_counterexample", "minimized_mutant_conformance", "property_violation", "trace_lines", "explain", "describe_run",
           "ReplayResult", "CounterexampleError", "resolve_mutant", "Outcome", "ScenarioError"]
