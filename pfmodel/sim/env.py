"""The environment: the one place nondeterminism enters the simulator (DESIGN.md).

Built from an ``EnvSpec``.  Each method answers one question the handler asks of the
world outside the handler (another task holding mmap_sem, what a filesystem's
->fault returned, whether the OOM killer ran, ...).  Per-call answer lists are
consumed in order; the last answer repeats.
"""

from __future__ import annotations

from ..errors import ScenarioError
from .constants import VM_FAULT_NAMES
from .spec import FAULT_RESULTS, EnvSpec

ALLOC_PURPOSES = ("pud", "pmd", "pte", "anon_page", "anon_vma", "cow_page", "huge_page")

_CHOICES = {
    "mmap_sem": ("free", "contended"),
    "page_lock": ("free", "contended"),
    "die_notifier": ("continue", "stop"),
    "oom": ("memcg", "lock_busy", "killed", "disabled"),
    "swap_cache": ("hit", "readahead", "readahead_failed", "hwpoison"),
    "vsyscall": ("emulate", "none"),
}


def parse_fault_result(text: str, where: str) -> int:
    """"MAJOR|RETRY" -> VM_FAULT_MAJOR|VM_FAULT_RETRY; "0" -> 0."""
    if text not in FAULT_RESULTS:
        raise ScenarioError(f"unknown fault result {text!r}",
                            "each answer names the VM_FAULT_* bits a callback returns",
                            f"use one of: {', '.join(FAULT_RESULTS)}", where=where)
    if text == "0":
        return 0
    return sum(VM_FAULT_NAMES["VM_FAULT_" + part] for part in text.split("|"))


class _Sequence:
    """Answers for one per-call question: consumed in order, the last one repeats."""

    def __init__(self, values: list[int], where: str) -> None:
        if not values:
            raise ScenarioError("an empty answer list", "the handler may ask this question",
                                "give at least one answer", where=where)
        self.values = values
        self.calls = 0

    def next(self) -> int:
        value = self.values[min(self.calls, len(self.values) - 1)]
        self.calls += 1
        return value


class Env:
    def __init__(self, spec: EnvSpec) -> None:
        for name, choices in _CHOICES.items():
            value = getattr(spec, name)
            if value not in choices:
                raise ScenarioError(f"{name} is {value!r}", "", f"use one of: {', '.join(choices)}",
                                    where=f"env.{name}")
        for name in ("alloc_fail", "alloc_fail_once"):
            for i, purpose in enumerate(getattr(spec, name)):
                if purpose not in ALLOC_PURPOSES:
                    raise ScenarioError(f"unknown allocation purpose {purpose!r}", "",
                                        f"use one of: {', '.join(ALLOC_PURPOSES)}", where=f"env.{name}[{i}]")
        self.spec = spec
        self.fault = _Sequence([parse_fault_result(v, f"env.fault[{i}]") for i, v in enumerate(spec.fault)],
                               "env.fault")
        self.userfault = _Sequence([parse_fault_result(v, f"env.userfault[{i}]")
                                    for i, v in enumerate(spec.userfault)], "env.userfault")
        self.hugetlb = _Sequence([parse_fault_result(v, f"env.hugetlb[{i}]")
                                  for i, v in enumerate(spec.hugetlb)], "env.hugetlb")
        self.page_mkwrite = parse_fault_result(spec.page_mkwrite, "env.page_mkwrite")
        self.pte_race_pending = spec.pte_race

    # -- locks ------------------------------------------------------------------------
    def mmap_sem_contended(self) -> bool:
        """Does down_read_trylock find a writer (another task) holding mmap_sem?"""
        return self.spec.mmap_sem == "contended"

    def page_lock_contended(self) -> bool:
        return self.spec.page_lock == "contended"

    def fatal_signal_in_wait(self) -> bool:
        """Does a fatal signal arrive while the task sleeps in a killable page-lock wait?"""
        return self.spec.fatal_signal_in_wait

    # -- callbacks ----------------------------------------------------------------------
    def vma_fault(self) -> int:
        return self.fault.next()

    def handle_userfault(self) -> int:
        return self.userfault.next()

    def hugetlb_fault(self) -> int:
        return self.hugetlb.next()

    # -- races --------------------------------------------------------------------------
    def take_pte_race(self) -> bool:
        """Another CPU changed the pte between the lockless read and the ptl: the first
        re-check of the run sees it (once; the re-executed access then faults normally)."""
        if self.pte_race_pending:
            self.pte_race_pending = False
            return True
        return False

    # -- plain answers ----------------------------------------------------------------------
    def __getattr__(self, name: str):
        # kmemcheck, kmmio, kprobes, die_notifier, oom, swap_cache, reuse, overcommit,
        # is_prefetch, errata, vsyscall: read straight from the spec.
        spec = self.__dict__.get("spec")
        if spec is None or not hasattr(spec, name):
            raise AttributeError(name)
        return getattr(spec, name)
