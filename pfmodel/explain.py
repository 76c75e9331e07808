"""Tell a run step by step for a person (``pfmodel explain``).

``explain_lines(scenario, run)`` returns plain text lines: the machine in a few lines,
then each hardware fault with its steps grouped by kernel function (seed section,
question from ``DECISIONS``, answer, the operand values behind it, lock and flag
changes), what the fault ended in, the outcome against the expectation, and the lesson.
No terminal codes, so it can be tested, piped and diffed.
"""

from __future__ import annotations

import textwrap
from typing import Any, Iterable

from .outcome import Outcome
from .scenario import (
    KERNEL_TEXT_IP,
    Scenario,
    bits_text,
    check_expectations,
    error_code_text,
    fingerprint,
    outcome_text,
)
from .sim.constants import FAULT_FLAG_NAMES, TASK_SIZE_MAX
from .trace import DECISIONS, Step

WIDTH = 100          # wrap prose here
QUESTION_MAX = 60    # longer questions wrap inside their column

# Checks that only an unusual environment or configuration can answer "yes" (debug hooks,
# CPU quirks, allocation failures, THP, hugetlb, userfaultfd, memcg).  When they answer
# "no" they are the handler's routine, and the narration leaves them out unless asked.
ROUTINE_WHEN_NO = frozenset({
    "kmemcheck_active", "kmmio_fault", "kmemcheck_fault", "kprobes_fault", "is_prefetch",
    "is_errata100", "is_errata93", "is_f00f_bug", "vsyscall_emulated", "v8086_mode",
    "is_vm_hugetlb_page", "pud_alloc", "pmd_alloc", "pmd_none_thp", "pmd_trans_huge",
    "pte_alloc", "pmd_trans_huge_after_alloc", "anon_alloc", "cow_alloc", "wp_copy_alloc",
    "userfaultfd_missing", "memcg_oom_cleanup", "anon_vm_shared",
})

# What each outcome means for the task, in a few words (DESIGN.md's outcome contract).
OUTCOME_MEANING = {
    "handled": "the fault is resolved; the CPU re-executes the instruction",
    "sigsegv": "SIGSEGV is forced on the task",
    "sigbus": "SIGBUS is forced on the task",
    "fixup": "the exception-table fixup runs: the uaccess returns -EFAULT",
    "oops": "the kernel oopses",
    "oom": "pagefault_out_of_memory ran; the task goes back to user mode and faults again unless it was killed",
    "fatal_signal": "the handler returns at once; the pending fatal signal kills the task",
}

_CHANGE_WORDS = {
    "mmap_sem": {"acquire": "mmap_sem taken (read)", "release": "mmap_sem released"},
    "irqs": {"on": "interrupts enabled", "off": "interrupts disabled"},
    "oom_killer": {"invoked": "OOM killer invoked"},
}


def answer_text(value: str) -> str:
    return {"true": "yes", "false": "no"}.get(value, value)


def change_text(key: str, value: Any) -> str:
    words = _CHANGE_WORDS.get(key, {})
    if str(value) in words:
        return words[str(value)]
    if key == "error_code":
        try:
            return f"error code now {value} ({bits_text(int(str(value), 0), 'bits:pf')})"
        except ValueError:
            return f"error code now {value}"
    if key == "fault_flags":
        return f"fault flags now {value}{_flag_names(value)}"
    if key == "mm_fault_call":
        return f"handle_mm_fault called with flags {value}{_flag_names(value)}"
    if key == "stack_grown":
        return f"stack VMA now starts at {value}"
    if key == "signal":
        return f"{value} forced"
    if key in ("maj_flt", "min_flt"):
        return f"{key} {value}"
    return f"{key}: {value}"


def _flag_names(value: Any) -> str:
    try:
        number = int(str(value), 0)
    except ValueError:
        return ""
    names = [n.removeprefix("FAULT_FLAG_") for n, m in FAULT_FLAG_NAMES.items() if number & m]
    return f" ({'|'.join(names)})" if names else ""


def outcome_line(outcome: Outcome) -> str:
    return f"{outcome_text(outcome)}: {OUTCOME_MEANING.get(outcome.kind, '')}".rstrip(": ")


# --- the machine -----------------------------------------------------------------------

def machine_lines(scn: Scenario) -> list[str]:
    """A few lines that say what was set up (only what differs from the defaults)."""
    spec = scn.spec
    data = scn.to_json()
    acc = spec.access
    lines = [f"Machine ({spec.arch})"]
    what = f"{acc.mode} {acc.kind} at {acc.address:#x}"
    if acc.implicit:
        what += " (an implicit supervisor access at CPL 3)"
    if acc.address >= TASK_SIZE_MAX[spec.arch]:
        what += ", a kernel-half address"
    lines.append(_kv("access", what))
    if acc.error_code is not None:
        lines.append(_kv("", f"error code given: {error_code_text(acc.error_code)}"))
    regs = []
    if spec.regs.ip is not None:
        where = "in the exception table" if spec.regs.ip in spec.kernel.exception_table else "no exception-table entry"
        if spec.regs.ip == KERNEL_TEXT_IP[spec.arch] and acc.mode == "kernel":
            where = "kernel text, " + where
        regs.append(f"ip {spec.regs.ip:#x} ({where})")
    if spec.regs.sp is not None:
        regs.append(f"sp {spec.regs.sp:#x}")
    regs.append(f"EFLAGS {bits_text(spec.regs.flags & ~0x2, 'bits:eflags')}")
    lines.append(_kv("regs", ", ".join(regs)))
    for section in ("cpu", "task", "kernel", "env"):
        fields = {k: v for k, v in data.get(section, {}).items() if k not in ("exception_table", "kernel_mappings")}
        if fields:
            lines.append(_kv(section, ", ".join(f"{k} {_short(v)}" for k, v in fields.items())))
    for v in data.get("vmas", []):
        extras = [f"{k} {_short(val)}" for k, val in v.items() if k not in ("start", "end", "flags")]
        lines.append(_kv("vma", f"{v['start']}-{v['end']}  {v['flags']}" + (f"  ({', '.join(extras)})" if extras else "")))
    for e in data.get("ptes", []):
        lines.append(_kv(e.get("level", "pte"), _entry(e)))
    for e in data.get("kernel", {}).get("kernel_mappings", []):
        lines.append(_kv("init_mm " + e.get("level", "pte"), _entry(e)))
    if not data.get("vmas") and spec.task.has_mm:
        lines.append(_kv("vma", "none"))
    return lines


def _entry(e: dict) -> str:
    pfn = f"  pfn {e['pfn']}" if "pfn" in e else ""
    value = e["value"]
    if value.startswith("0x") and "pfn" not in e:
        value += "  (not present: a swap, migration or hwpoison entry)"
    return f"{e['address']}{pfn}  {value}"


def _short(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


def _kv(key: str, value: str) -> str:
    return f"  {key:<10} {value}"


# --- the faults --------------------------------------------------------------------------

def _groups(steps: Iterable[Step]) -> list[tuple[str, list[Step]]]:
    """Consecutive steps of one function, as (function, steps)."""
    out: list[tuple[str, list[Step]]] = []
    for step in steps:
        if out and out[-1][0] == step.function:
            out[-1][1].append(step)
        else:
            out.append((step.function, [step]))
    return out


def is_routine(step: Step) -> bool:
    return step.label in ROUTINE_WHEN_NO and step.value == "false" and not step.changes


def step_lines(steps: list[Step], *, show_all: bool = False) -> list[str]:
    """Steps grouped by function: section, question, answer, then why and what changed.

    Long questions wrap inside their column; notes and changes stack in the last column.
    Routine "no" answers (``ROUTINE_WHEN_NO``) are counted, not shown, unless ``show_all``.
    """
    shown = [s for s in steps if show_all or not is_routine(s)]
    hidden = len(steps) - len(shown)
    if not shown:
        return ["    (no decision was recorded)"] if not steps else [f"    ({hidden} routine checks, all no)"]
    swidth = max(len(_section(s)) for s in shown)
    qwidth = min(QUESTION_MAX, max(len(_question(s)) for s in shown))
    awidth = max(len(answer_text(s.value)) for s in shown)
    lines: list[str] = []
    for function, group in _groups(shown):
        lines.append(f"  {function}")
        last_section = None
        for s in group:
            qlines = textwrap.wrap(_question(s), qwidth, subsequent_indent="  ", break_long_words=False) or [""]
            extras = ([s.note] if s.note else []) + [change_text(k, v) for k, v in s.changes.items()]
            for i in range(max(len(qlines), len(extras))):
                section = _section(s) if i == 0 and _section(s) != last_section else ""
                left = qlines[i] if i < len(qlines) else ""
                answer = answer_text(s.value) if i == 0 else ""
                right = extras[i] if i < len(extras) else ""
                lines.append(f"    {section:<{swidth}}  {left:<{qwidth}}  {answer:<{awidth}}   {right}".rstrip())
            last_section = _section(s)
    if hidden:
        lines.append(f"    ({hidden} routine checks answered no and are not shown: debug hooks, CPU quirks, "
                     "allocation failures, THP; --all shows them)")
    return lines


def _section(step: Step) -> str:
    return step.section or "-"


def _question(step: Step) -> str:
    d = DECISIONS.get(step.label)
    return d.question if d else step.label


def fault_lines(run: Any, *, show_all: bool = False) -> list[str]:
    lines: list[str] = []
    total = len(run.faults)
    for i, fault in enumerate(run.faults, 1):
        source = "formed by the MMU" if fault.hardware else "given by the scenario"
        if not fault.hardware_possible:
            source += "; real hardware never forms this code here"
        head = f"Fault {i} of {total}: address {fault.address:#x}, error code {error_code_text(fault.error_code)}, {source}"
        lines += ["", head, ""]
        lines += step_lines(list(fault.trace), show_all=show_all)
        if total > 1:
            lines.append(f"  => {outcome_line(fault.outcome)}")
    return lines


# --- the whole explanation ---------------------------------------------------------------

def explain_lines(scn: Scenario, run: Any, *, show_all: bool = False) -> list[str]:
    """The run told for a person, as plain text lines.  ``show_all``: every step, routine ones too."""
    lines: list[str] = [scn.name or "(unnamed scenario)"]
    origin = f"{scn.source}, " if scn.source else ""
    lines.append(f"  {origin}fingerprint {fingerprint(scn)}")
    if scn.description:
        lines += [""] + _wrap(scn.description, "  ")
    lines += [""] + machine_lines(scn)
    lines.append("")
    lines.append("Sections: 1.1.8 is the seed walkthrough's numbering, KF 2.2.14 kernel-facts.md's.")
    lines += fault_lines(run, show_all=show_all)
    lines.append("")
    if not run.faults:
        lines.append("The access completed without a page fault.")
    elif run.bound_hit:
        lines.append(f"The access was still faulting after {len(run.faults)} faults "
                     f"(max_faults reached): every fault said 'handled' but none made progress.")
    elif run.outcome.kind == "handled" and run.access_completed:
        lines.append("The access then completed." if len(run.faults) == 1
                     else f"The access completed after {len(run.faults)} faults.")
    lines.append(f"Outcome: {outcome_line(run.outcome)}")
    if not scn.expect.is_empty():
        problems = check_expectations(scn, run)
        wanted = outcome_text(scn.expect.outcome) if scn.expect.outcome else "(no outcome given)"
        lines.append(f"Expected: {wanted}, " + ("as expected" if not problems else "NOT as expected"))
        lines += [f"  - {p}" for p in problems]
    for note in getattr(run, "notes", []) or []:
        lines += _wrap(f"Note: {note}", "", "      ")
    if scn.teaches:
        lines += [""] + _wrap(f"Lesson: {scn.teaches}", "", "        ")
    return lines


def _wrap(text: str, first: str, rest: str | None = None) -> list[str]:
    return textwrap.wrap(text, WIDTH, initial_indent=first, subsequent_indent=first if rest is None else rest,
                         break_long_words=False, break_on_hyphens=False) or [first]


__all__ = ["explain_lines", "machine_lines", "step_lines", "fault_lines", "outcome_line", "outcome_text",
           "answer_text", "ROUTINE_WHEN_NO"]
