"""The trace contract: a run is a list of steps, each a decision taken at a named point.

``DECISIONS`` is the one registry of step labels.  The simulator's trace and the
model's path use exactly these labels and values, so that conformance can compare
them step by step.  A label names a decision point (a branch of the seed or of a
function kernel-facts.md fills in), not a line of code.  ``section`` is the seed's
section number where the seed has one, otherwise "KF x.y.z" for kernel-facts.md.

Values are short strings: "true"/"false" for tests, or the value a multi-way
decision took (``vm_fault_str`` for VM_FAULT words).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable


@dataclass(frozen=True)
class Decision:
    label: str
    function: str
    section: str
    question: str
    values: tuple[str, ...] = ("true", "false")


def _d(label: str, function: str, section: str, question: str, values: Iterable[str] = ("true", "false")) -> Decision:
    return Decision(label, function, section, question, tuple(values))


_DECISION_LIST: list[Decision] = [
    # --- __do_page_fault (seed 1.1), in execution order ------------------------------
    _d("kmemcheck_active", "__do_page_fault", "1.1", "is kmemcheck single-stepping a hidden page?"),
    _d("kmmio_fault", "__do_page_fault", "1.1", "did mmiotrace (kmmio) claim the fault?"),
    _d("fault_in_kernel_space", "fault_in_kernel_space", "1.1.1", "is address >= TASK_SIZE_MAX?"),
    _d("kernel_fast_path", "__do_page_fault", "1.1",
       "is the error code free of PF_RSVD, PF_USER and PF_PROT (vmalloc/kmemcheck candidates)?"),
    _d("vmalloc_fault", "vmalloc_fault", "1.1.2", "did vmalloc_fault sync the entry from init_mm (returned >= 0)?"),
    _d("kmemcheck_fault", "kmemcheck_fault", "1.1.3", "did kmemcheck claim the fault?"),
    _d("spurious_fault", "spurious_fault", "KF 2.2.6", "is this a spurious fault from a stale TLB entry?"),
    _d("kprobes_fault", "kprobes_fault", "KF 2.2.7", "did a running kprobe's fault handler claim it?"),
    _d("pf_rsvd", "__do_page_fault", "1.1", "is PF_RSVD set (corrupted page table)?"),
    _d("smap_violation", "smap_violation", "KF 2.2.11", "is this a SMAP violation (kernel access to user memory with AC clear)?"),
    _d("faulthandler_disabled", "faulthandler_disabled", "1.1.4",
       "are page faults disabled, are we atomic, or is there no mm?"),
    _d("user_mode", "__do_page_fault", "1.1", "was the CPU in user mode (CPL 3 or vm86)?"),
    _d("regs_if", "__do_page_fault", "1.1", "did the interrupted kernel context have IF set?"),
    _d("pf_write", "__do_page_fault", "1.1", "is PF_WRITE set (add FAULT_FLAG_WRITE)?"),
    _d("down_read_trylock", "__do_page_fault", "1.1", "did down_read_trylock(mmap_sem) succeed?"),
    _d("search_exception_tables", "search_exception_tables", "KF 2.2.20",
       "does the kernel faulting ip have an exception-table entry (kernel mode only)?"),
    _d("find_vma", "find_vma", "1.1.5", "is there a VMA with vm_end > address?", ("found", "none")),
    _d("vm_start_le_address", "__do_page_fault", "1.1", "does the VMA contain the address (vm_start <= address)?"),
    _d("vm_growsdown", "__do_page_fault", "1.1", "is the VMA below the address VM_GROWSDOWN?"),
    _d("stack_cushion_exceeded", "__do_page_fault", "1.1",
       "user fault: is address + 65536 + 32*sizeof(long) < sp?"),
    _d("expand_stack", "expand_stack", "1.1.7", "did expand_stack fail?"),
    _d("access_error", "access_error", "1.1.8", "does access_error deny the access?"),
    _d("handle_mm_fault", "handle_mm_fault", "1.1.10", "what did handle_mm_fault return?", ()),
    _d("fault_retry", "__do_page_fault", "1.1", "is VM_FAULT_RETRY set?"),
    _d("allow_retry", "__do_page_fault", "1.1", "is FAULT_FLAG_ALLOW_RETRY still set (first pass)?"),
    _d("fatal_signal_pending", "fatal_signal_pending", "1.1.11", "is a fatal signal (SIGKILL) pending?"),
    _d("flags_user", "__do_page_fault", "1.1", "is FAULT_FLAG_USER set?"),
    _d("fault_error", "__do_page_fault", "1.1", "is any VM_FAULT_ERROR bit set?"),
    _d("major", "__do_page_fault", "1.1", "did any pass return VM_FAULT_MAJOR?"),
    _d("v8086_mode", "check_v8086_mode", "1.1.14", "vm86 mode with a vm86 struct (32-bit only)?"),
    # --- stack growth (seed 1.1.7 is the grows-up variant; x86 builds grows-down, KF 2.2.14)
    _d("prev_blocks_growth", "expand_stack", "KF 2.2.14",
       "does a non-GROWSDOWN VMA end exactly at the new start (address & PAGE_MASK)?"),
    _d("next_blocks_growth", "expand_stack", "1.1.7",
       "seed variant: does a non-GROWSUP VMA start right above the page?"),
    _d("vm_growsup", "expand_upwards", "1.1.7.1", "seed variant: is the VMA VM_GROWSUP?"),
    _d("upwards_no_wrap", "expand_upwards", "1.1.7.1",
       "seed variant: is address < PAGE_ALIGN(address + 4) (the new end does not wrap to 0)?"),
    _d("address_above_vm_end", "expand_upwards", "1.1.7.1",
       "seed variant: is the new end above vm_end (not already expanded)?"),
    _d("pgoff_no_overflow", "expand_upwards", "1.1.7.1",
       "seed variant: is vm_pgoff + (size >> PAGE_SHIFT) >= vm_pgoff (no overflow)?"),
    _d("anon_vma_prepare", "anon_vma_prepare", "KF 2.2.14", "did anon_vma_prepare fail?"),
    _d("security_mmap_addr", "security_mmap_addr", "KF 2.2.14",
       "is the address below mmap_min_addr without CAP_SYS_RAWIO?"),
    _d("address_below_vm_start", "expand_downwards", "KF 2.2.14",
       "is the new start below vm_start (not already expanded)?"),
    _d("pgoff_underflow", "expand_downwards", "KF 2.2.14", "would vm_pgoff underflow (grow > vm_pgoff)?"),
    _d("acct_stack_growth", "acct_stack_growth", "KF 2.2.14",
       "which limit refused the growth?", ("ok", "rlimit_as", "rlimit_stack", "rlimit_memlock", "overcommit")),
    # --- error paths -----------------------------------------------------------------
    _d("bad_area_pf_user", "__bad_area_nosemaphore", "KF 2.2.17", "is PF_USER set in the error code?"),
    _d("is_prefetch", "is_prefetch", "KF 2.2.21", "was the faulting instruction a prefetch (AMD quirk)?"),
    _d("is_errata100", "is_errata100", "KF 2.2.22", "K8 erratum 100 (compat jump above 4 GiB)?"),
    _d("vsyscall_emulated", "emulate_vsyscall", "KF 2.2.17",
       "64-bit: a user fetch from the vsyscall page that emulate_vsyscall handled?"),
    _d("address_ge_task_size", "__bad_area_nosemaphore", "KF 2.2.17",
       "is address >= TASK_SIZE (report PF_PROT to user space)?"),
    _d("is_f00f_bug", "is_f00f_bug", "KF 2.2.22", "Pentium F00F bug (32-bit)?"),
    _d("fixup_exception", "fixup_exception", "KF 2.2.20", "does the kernel ip have an exception-table fixup?"),
    _d("in_interrupt", "no_context", "KF 2.2.19", "is the fault taken in interrupt context?"),
    _d("is_errata93", "is_errata93", "KF 2.2.22", "K8 erratum 93 (corrupted RIP high bits)?"),
    _d("die_notifier_stop", "__die", "KF 2.2.10", "did a die notifier return NOTIFY_STOP?"),
    _d("mm_fault_error_fatal_kernel", "mm_fault_error", "1.1.13",
       "fatal signal pending and not PF_USER?"),
    _d("vm_fault_oom", "mm_fault_error", "1.1.13", "is VM_FAULT_OOM set?"),
    _d("oom_pf_user", "mm_fault_error", "1.1.13", "OOM: is PF_USER set (else no_context)?"),
    _d("vm_fault_sigbus", "mm_fault_error", "1.1.13", "is SIGBUS, HWPOISON or HWPOISON_LARGE set?"),
    _d("vm_fault_sigsegv", "mm_fault_error", "1.1.13", "is VM_FAULT_SIGSEGV set (else BUG)?"),
    _d("sigbus_pf_user", "do_sigbus", "KF 2.2.24", "is PF_USER set (else no_context)?"),
    _d("sigbus_hwpoison", "do_sigbus", "KF 2.2.24", "is HWPOISON or HWPOISON_LARGE set (BUS_MCEERR_AR)?"),
    _d("mem_cgroup_oom_synchronize", "pagefault_out_of_memory", "1.1.13.1",
       "did mem_cgroup_oom_synchronize(true) handle a memcg OOM?"),
    _d("oom_lock_trylock", "pagefault_out_of_memory", "1.1.13.1", "did mutex_trylock(&oom_lock) succeed?"),
    _d("out_of_memory", "out_of_memory", "1.1.13.1", "did out_of_memory run (OOM killer not disabled)?"),
    # --- handle_mm_fault (seed 1.1.10) and __handle_mm_fault (seed 2) -------------------
    _d("memcg_oom_cleanup", "handle_mm_fault", "1.1.10",
       "user fault: task in memcg OOM and no VM_FAULT_OOM (synchronize(false))?"),
    _d("is_vm_hugetlb_page", "__handle_mm_fault", "2", "is the VMA VM_HUGETLB?"),
    _d("hugetlb_fault", "hugetlb_fault", "2.1", "what did hugetlb_fault return?", ()),
    _d("pud_alloc", "pud_alloc", "2.3", "pgd entry none and __pud_alloc failed?"),
    _d("pmd_alloc", "pmd_alloc", "2.4", "pud entry none and __pmd_alloc failed?"),
    _d("pmd_none_thp", "__handle_mm_fault", "2", "is the pmd none and THP enabled for the VMA?"),
    _d("create_huge_pmd", "create_huge_pmd", "KF 2.4.4", "what did create_huge_pmd return?", ()),
    _d("pmd_trans_huge", "__handle_mm_fault", "2", "is the pmd a transparent huge pmd?"),
    _d("pmd_trans_splitting", "__handle_mm_fault", "2", "is the huge pmd being split?"),
    _d("pmd_protnone", "__handle_mm_fault", "2", "is the huge pmd a NUMA hint (protnone)?"),
    _d("dirty_not_pmd_write", "__handle_mm_fault", "2", "write fault on a read-only huge pmd?"),
    _d("wp_huge_pmd", "wp_huge_pmd", "KF 2.4.4", "what did wp_huge_pmd return?", ()),
    _d("pte_alloc", "__pte_alloc", "2.5", "pmd none and __pte_alloc failed?"),
    _d("pmd_trans_huge_after_alloc", "__handle_mm_fault", "2", "did a huge pmd materialise (return 0)?"),
    # --- handle_pte_fault (seed 2.7) -------------------------------------------------------
    _d("pte_present", "handle_pte_fault", "2.7.1", "is the pte present to software (P or PROTNONE)?"),
    _d("pte_none", "handle_pte_fault", "2.7.2", "is the pte entirely zero?"),
    _d("vma_is_anonymous", "handle_pte_fault", "2.7.3", "does the VMA have no vm_ops?"),
    _d("pte_protnone", "handle_pte_fault", "2.7.7", "is the pte a NUMA hint (PROTNONE without P)?"),
    _d("pte_same", "handle_pte_fault", "2.7", "is the pte unchanged under the ptl?"),
    _d("flags_write", "handle_pte_fault", "2.7", "is FAULT_FLAG_WRITE set?"),
    _d("pte_write", "handle_pte_fault", "2.7.9", "is the pte writable (RW)?"),
    _d("ptep_set_access_flags", "ptep_set_access_flags", "2.7", "did the entry change (and was it written)?"),
    # --- do_anonymous_page (2.7.4, KF 2.4.7) and check_stack_guard_page (KF 2.4.8) ---------
    _d("anon_vm_shared", "do_anonymous_page", "2.7.4", "is the anonymous VMA VM_SHARED (SIGBUS)?"),
    _d("check_stack_guard_page", "check_stack_guard_page", "KF 2.4.8", "did the guard-page check fail?"),
    _d("guard_lowest_page", "check_stack_guard_page", "KF 2.4.8",
       "is the fault on the lowest page of a GROWSDOWN VMA?"),
    _d("guard_prev_adjacent", "check_stack_guard_page", "KF 2.4.8", "does vm_prev end right at the page?"),
    _d("guard_prev_growsdown", "check_stack_guard_page", "KF 2.4.8", "is that vm_prev GROWSDOWN?"),
    _d("anon_read_zero_page", "do_anonymous_page", "2.7.4", "read fault: map the zero page?"),
    _d("anon_alloc", "do_anonymous_page", "2.7.4", "did anon_vma_prepare, the page allocation or the charge fail?"),
    _d("anon_pte_none_recheck", "do_anonymous_page", "2.7.4", "is the pte still none under the lock?"),
    _d("userfaultfd_missing", "do_anonymous_page", "2.7.4", "is the VMA VM_UFFD_MISSING?"),
    _d("handle_userfault", "handle_userfault", "KF 2.4.12", "what did handle_userfault return?", ()),
    # --- do_fault (2.7.5, KF 2.4.9) --------------------------------------------------------
    _d("vm_ops_fault", "do_fault", "2.7.5", "does the VMA have a ->fault handler?"),
    _d("do_fault_kind", "do_fault", "2.7.5", "which fault path?", ("read", "cow", "shared")),
    _d("vma_fault", "__do_fault", "KF 2.4.9", "what did vm_ops->fault return?", ()),
    _d("do_fault_pte_same", "do_fault", "KF 2.4.9", "is the pte still as sampled under the lock?"),
    _d("cow_alloc", "do_cow_fault", "KF 2.4.9", "did the COW page allocation or charge fail?"),
    _d("page_mkwrite", "do_page_mkwrite", "KF 2.4.9", "what did ->page_mkwrite return?", ()),
    # --- do_swap_page (2.7.6, KF 2.4.10) ------------------------------------------------------
    _d("swap_entry_kind", "do_swap_page", "2.7.6", "what kind of non-present entry is it?",
       ("swap", "migration", "hwpoison", "bad")),
    _d("swap_cache", "do_swap_page", "2.7.6", "is the page in the swap cache?",
       ("hit", "readahead", "readahead_failed", "hwpoison")),
    _d("lock_page_or_retry", "lock_page_or_retry", "KF 2.4.11", "did lock_page_or_retry lock the page?"),
    _d("swap_pte_same", "do_swap_page", "2.7.6", "is the pte still the swap entry under the lock?"),
    _d("reuse_swap_page", "do_swap_page", "2.7.6", "write fault: can the swap page be reused?"),
    # --- do_numa_page (2.7.8) and do_wp_page (2.7.10, KF 2.4.14) ---------------------------------
    _d("numa_pte_same", "do_numa_page", "2.7.8", "is the pte unchanged under the lock?"),
    _d("vm_normal_page", "do_wp_page", "2.7.10", "is there a normal page behind the pte (not special/zero)?"),
    _d("wp_shared_writable", "do_wp_page", "2.7.10", "is the VMA VM_WRITE|VM_SHARED?"),
    _d("page_anon", "do_wp_page", "2.7.10", "is the old page anonymous (and not KSM)?"),
    _d("reuse_page", "do_wp_page", "2.7.10", "are we the only user of the anonymous page (reuse)?"),
    _d("wp_copy_alloc", "wp_page_copy", "KF 2.4.14", "did the copy's allocation or charge fail?"),
]

DECISIONS: dict[str, Decision] = {d.label: d for d in _DECISION_LIST}
assert len(DECISIONS) == len(_DECISION_LIST), "duplicate decision label"


# The vocabulary of ``Step.changes``: the side effects properties look at.  Both the
# simulator and the model record these, with these keys and values.
CHANGE_KEYS: dict[str, str] = {
    "mmap_sem": "'acquire' (down_read / successful trylock) or 'release' (up_read)",
    "irqs": "'on' (local_irq_enable) or 'off'",
    "fault_flags": "the FAULT_FLAG_* word after the change, as hex",
    "error_code": "the bits ORed into the handler's local error code: '|PF_USER' (step 8) or '|PF_PROT'",
    "mm_fault_call": "handle_mm_fault was called with these FAULT_FLAG_* flags (hex)",
    "maj_flt": "'+1'",
    "min_flt": "'+1'",
    "stack_grown": "the VMA's new vm_start (hex) after a successful expansion",
    "signal": "'SIGSEGV/SEGV_MAPERR' and the like: a signal forced on the task",
    "oom_killer": "'invoked': out_of_memory ran",
}


def bool_value(flag: Any) -> str:
    return "true" if flag else "false"


@dataclass
class Step:
    """One decision: where (function, section), what was asked (label), the answer (value).

    ``changes`` records lock, flag and state changes that happened at this step, for
    example ``{"mmap_sem": "down_read"}`` or ``{"flags": "0x35"}``.  ``note`` is a short
    free-text why for people (values of the operands).
    """

    label: str
    value: str
    function: str
    section: str
    changes: dict[str, Any] = field(default_factory=dict)
    note: str = ""

    @property
    def key(self) -> tuple[str, str]:
        """What conformance compares."""
        return (self.label, self.value)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"function": self.function, "section": self.section,
                               "decision": f"{self.label} → {self.value}",
                               "label": self.label, "value": self.value}
        if self.changes:
            out["changes"] = dict(self.changes)
        if self.note:
            out["note"] = self.note
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Step":
        return cls(label=data["label"], value=data["value"], function=data["function"],
                   section=data["section"], changes=dict(data.get("changes", {})), note=data.get("note", ""))


class Trace:
    """An append-only list of steps.  ``decide`` is how both artefacts record a branch."""

    def __init__(self) -> None:
        self.steps: list[Step] = []

    def decide(self, label: str, value: Any, note: str = "", **changes: Any) -> Any:
        """Record that decision ``label`` went ``value``; returns ``value`` so it can wrap a test.

        Booleans are recorded as "true"/"false"; strings as given.
        """
        unknown = set(changes) - set(CHANGE_KEYS)
        if unknown:
            raise KeyError(f"unknown change key(s) {sorted(unknown)}: see pfmodel.trace.CHANGE_KEYS")
        d = DECISIONS.get(label)
        if d is None:
            raise KeyError(f"unknown decision label {label!r}: add it to pfmodel.trace.DECISIONS")
        text = bool_value(value) if isinstance(value, bool) else str(value)
        if d.values and text not in d.values:
            raise ValueError(f"decision {label!r} took value {text!r}; allowed: {', '.join(d.values)}")
        self.steps.append(Step(label, text, d.function, d.section, dict(changes), note))
        return value

    def change(self, **changes: Any) -> None:
        """Attach state changes to the most recent step (e.g. a lock released after it)."""
        unknown = set(changes) - set(CHANGE_KEYS)
        if unknown:
            raise KeyError(f"unknown change key(s) {sorted(unknown)}: see pfmodel.trace.CHANGE_KEYS")
        if not self.steps:
            raise RuntimeError("change() before any decision: record a decision first")
        self.steps[-1].changes.update(changes)

    def keys(self) -> list[tuple[str, str]]:
        return [s.key for s in self.steps]

    def to_json(self) -> list[dict[str, Any]]:
        return [s.to_json() for s in self.steps]

    def __len__(self) -> int:
        return len(self.steps)

    def __iter__(self):
        return iter(self.steps)
