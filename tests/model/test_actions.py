"""Hand-picked paths of the model, one per branch of the seed that matters: outcome and the
trace steps that show why.  (Conformance with the simulator is tested in tests/explore.)"""

from __future__ import annotations

import pytest

from pfmodel.explore.exhaustive import run_one
from pfmodel.model.actions import ACTIONS, LABELS
from pfmodel.model.inputs import PMD_KINDS, PTE_PRESENT, make_layout
from pfmodel.outcome import Outcome
from pfmodel.sim.constants import VM_GROWSDOWN, VM_READ, VM_SHARED, VM_WRITE
from pfmodel.trace import DECISIONS
from pfmodel.x86.constants import (
    PF_INSTR, PF_PROT, PF_RSVD, PF_USER, PF_WRITE, _PAGE_ACCESSED, _PAGE_DIRTY, _PAGE_PRESENT, _PAGE_RW,
)

LAY = make_layout("x86_64")
ADDR = dict(LAY.addresses)
RW = VM_READ | VM_WRITE
KPTE_PRESENT = 0x1000 << 12 | 0x161


def path(arch: str = "x86_64", *bases: dict, **choose):
    """run_one with keyword names (``ec__W=PF_WRITE`` is the input ec.W); ``bases`` are
    dicts of the same kind that ``choose`` overrides."""
    merged: dict = {}
    for b in bases:
        merged.update(b)
    merged.update(choose)
    return run_one(arch, {k.replace("__", "."): v for k, v in merged.items()})


def took(p, label: str, value: str) -> bool:
    return (label, value) in p.keys()


def changes(p, key: str) -> list:
    return [st.changes[key] for st in p.steps if st.changes and key in st.changes]


USER_READ = dict(user_mode=True, ec__U=PF_USER, ec__P=0, ec__W=0, cpu__smap=True)
KERNEL = dict(user_mode=False, ec__U=0)


def test_every_action_records_a_known_label():
    for pc, labels in LABELS.items():
        assert pc in ACTIONS
        for label in labels:
            assert label in DECISIONS, (pc, label)


def test_kmmio_claims_the_fault_first():
    p = path(env__kmmio=True)
    assert p.outcome == Outcome.handled("kmmio")
    assert p.keys() == [("kmemcheck_active", "false"), ("kmmio_fault", "true")]


def test_vmalloc_fault_syncs_from_init_mm_without_locks():
    p = path(**KERNEL, address=ADDR["vmalloc"], ec__P=0, ec__W=0, ec__RSVD=0, kpte__present=KPTE_PRESENT)
    assert p.outcome == Outcome.handled("vmalloc_fault")
    assert took(p, "kernel_fast_path", "true") and not changes(p, "mmap_sem")


def test_unmapped_vmalloc_address_oopses_in_kernel_mode():
    p = path(**KERNEL, address=ADDR["vmalloc"], ec__P=0, ec__W=0, ec__RSVD=0, kpte__present=0)
    assert took(p, "vmalloc_fault", "false") and took(p, "spurious_fault", "false")
    assert p.outcome == Outcome.oops("kernel_paging_request")


@pytest.mark.parametrize("rw,expected", [(_PAGE_RW, "handled"), (0, "oops")])
def test_spurious_fault_only_when_the_kernel_mapping_now_allows_the_write(rw, expected):
    p = path(**KERNEL, address=ADDR["kernel_direct"], ec__P=PF_PROT, ec__W=PF_WRITE, ec__RSVD=0, ec__I=0,
             kpte__present=KPTE_PRESENT, kpte__rw=rw)
    assert took(p, "kernel_fast_path", "false")
    assert p.outcome.kind == expected
    if expected == "handled":
        assert p.outcome.via == "spurious_fault"


def test_user_access_to_a_kernel_address_is_a_maperr_reported_as_protection():
    p = path(**USER_READ, address=ADDR["kernel_direct"], ec__RSVD=0, ec__I=0)
    assert p.outcome == Outcome.sigsegv("SEGV_MAPERR")
    assert took(p, "address_ge_task_size", "true")
    assert changes(p, "error_code")[-1] == "|PF_PROT"
    assert not changes(p, "mmap_sem")


def test_reserved_bit_at_a_user_address_oopses_even_from_user_mode():
    p = path("x86_64", USER_READ, ec__P=PF_PROT, ec__RSVD=PF_RSVD, address=ADDR["T_inside"])
    assert p.outcome == Outcome.oops("bad_pagetable")
    assert p.keys()[-2:] == [("pf_rsvd", "true"), ("die_notifier_stop", "false")]


def test_a_die_notifier_stop_lets_pgtable_bad_fall_through():
    p = path("x86_64", USER_READ, ec__P=PF_PROT, ec__RSVD=PF_RSVD, address=ADDR["T_inside"], env__die_notifier="stop")
    steps = p.keys()
    k = steps.index(("die_notifier_stop", "true"))
    assert steps[k + 1][0] == "smap_violation"


def test_smap_violation_goes_to_no_context_without_mmap_sem():
    p = path(**KERNEL, ec__P=0, ec__W=0, ec__RSVD=0, ec__I=0, address=ADDR["T_inside"], cpu__smap=True,
             regs__AC=False, extable=True)
    assert took(p, "smap_violation", "true")
    assert p.outcome == Outcome.fixup() and not changes(p, "mmap_sem")


def test_implicit_supervisor_access_from_user_mode_is_a_smap_violation():
    p = path(user_mode=True, ec__U=0, ec__P=0, ec__W=0, ec__RSVD=0, address=ADDR["T_inside"], cpu__smap=True)
    assert took(p, "smap_violation", "true") and took(p, "bad_area_pf_user", "false")
    assert p.outcome.kind == "oops"   # no exception-table entry for a user ip


@pytest.mark.parametrize("context", ["pagefault_disabled", "atomic", "interrupt"])
def test_faults_with_page_faults_disabled_take_no_lock(context):
    p = path(**KERNEL, ec__P=0, ec__W=0, ec__RSVD=0, address=ADDR["T_inside"], cpu__smap=False,
             task__context=context, extable=True)
    assert took(p, "faulthandler_disabled", "true")
    assert p.outcome == Outcome.fixup()
    assert took(p, "in_interrupt", "true" if context == "interrupt" else "false")


def test_copy_to_user_into_a_read_only_vma_is_fixed_up_not_signalled():
    p = path(**KERNEL, ec__P=PF_PROT, ec__W=PF_WRITE, ec__RSVD=0, address=ADDR["T_inside"], cpu__smap=True,
             regs__AC=True, extable=True, T__flags__rwx=VM_READ)
    assert took(p, "access_error", "true")
    assert p.outcome == Outcome.fixup()
    assert changes(p, "mmap_sem") == ["acquire", "release"]


def test_user_write_to_a_read_only_vma_is_accerr():
    p = path("x86_64", USER_READ, ec__W=PF_WRITE, address=ADDR["T_inside"], T__flags__rwx=VM_READ)
    assert p.outcome == Outcome.sigsegv("SEGV_ACCERR")


def test_fetch_from_a_readable_non_exec_vma_passes_access_error_in_4_4():
    p = path(**USER_READ, ec__I=PF_INSTR, address=ADDR["T_inside"], T__flags__rwx=VM_READ)
    assert took(p, "access_error", "false")
    assert p.outcome == Outcome.handled("handle_mm_fault")


def test_write_only_vma_allows_a_read_fault():
    p = path(**USER_READ, address=ADDR["T_inside"], T__flags__rwx=VM_WRITE)
    assert took(p, "access_error", "false")


def test_contended_mmap_sem_without_extable_is_a_kernel_bug():
    p = path(**KERNEL, ec__P=0, ec__W=0, ec__RSVD=0, address=ADDR["T_inside"], cpu__smap=False,
             env__mmap_sem="contended", extable=False)
    assert took(p, "search_exception_tables", "false")
    assert p.outcome == Outcome.oops("kernel_paging_request") and not changes(p, "mmap_sem")


def test_contended_mmap_sem_in_user_mode_just_waits():
    p = path(**USER_READ, address=ADDR["T_inside"], env__mmap_sem="contended")
    assert not took(p, "search_exception_tables", "false") and not took(p, "search_exception_tables", "true")
    assert changes(p, "mmap_sem")[0] == "acquire"


@pytest.mark.parametrize("beyond,outcome", [(False, "handled"), (True, "sigsegv")])
def test_user_stack_growth_is_bounded_by_the_cushion(beyond, outcome):
    a = ADDR["stack_near"]
    sp = a + 65792 + (1 if beyond else 0)
    p = path(**USER_READ, address=a, sp=sp, T__flags__growsdown=VM_GROWSDOWN)
    assert took(p, "stack_cushion_exceeded", "true" if beyond else "false")
    assert p.outcome.kind == outcome
    assert bool(changes(p, "stack_grown")) == (not beyond)


def test_kernel_faults_below_the_stack_ignore_sp():
    p = path(**KERNEL, ec__P=0, ec__W=0, ec__RSVD=0, cpu__smap=False, address=ADDR["stack_near"],
             T__flags__growsdown=VM_GROWSDOWN)
    assert not any(label == "stack_cushion_exceeded" for label, _ in p.keys())
    assert took(p, "expand_stack", "false")


def test_stack_growth_stops_at_a_non_stack_neighbour():
    p = path(**KERNEL, ec__P=0, ec__W=0, ec__RSVD=0, cpu__smap=False, address=ADDR["above_A"],
             T__flags__growsdown=VM_GROWSDOWN, A__flags__growsdown=0)
    assert took(p, "prev_blocks_growth", "true") and p.outcome.kind == "oops"


def test_stack_growth_beyond_rlimit_stack_is_refused():
    p = path(**USER_READ, address=ADDR["stack_far"], sp=ADDR["stack_far"] + 65792, T__flags__growsdown=VM_GROWSDOWN)
    assert took(p, "acct_stack_growth", "rlimit_stack")
    assert p.outcome == Outcome.sigsegv("SEGV_MAPERR")


def test_lowest_stack_page_keeps_a_guard_page_below():
    p = path(**USER_READ, address=ADDR["T_lowest"], T__flags__growsdown=VM_GROWSDOWN)
    assert took(p, "guard_lowest_page", "true") and took(p, "check_stack_guard_page", "false")
    assert changes(p, "stack_grown") and p.outcome.kind == "handled"


def test_guard_page_growth_failure_is_sigsegv_through_mm_fault_error():
    p = path(**USER_READ, address=ADDR["T_lowest"], T__flags__growsdown=VM_GROWSDOWN, env__overcommit=False)
    assert took(p, "check_stack_guard_page", "true") and took(p, "handle_mm_fault", "VM_FAULT_SIGSEGV")
    assert took(p, "vm_fault_sigsegv", "true") and p.outcome == Outcome.sigsegv("SEGV_MAPERR")


FILE_NONE = dict(address=ADDR["T_inside"], T__kind="file", pmd__kind=PMD_KINDS["table"], pte__kind=0)


def test_retry_happens_once_with_tried_and_without_allow_retry():
    p = path(**USER_READ, **FILE_NONE, env__fault__1="RETRY", env__fault__2="0")
    calls = changes(p, "mm_fault_call")
    assert calls == ["0x54", "0x70"]           # ALLOW_RETRY|KILLABLE|USER, then TRIED|KILLABLE|USER
    assert changes(p, "mmap_sem") == ["acquire", "release", "acquire", "release"]
    assert p.outcome == Outcome.handled("handle_mm_fault")


def test_a_second_retry_in_kernel_mode_goes_to_no_context_with_sigbus():
    p = path(**KERNEL, ec__P=0, ec__W=0, ec__RSVD=0, cpu__smap=False, extable=True, **FILE_NONE,
             env__fault__1="RETRY", env__fault__2="RETRY")
    assert took(p, "allow_retry", "false") and took(p, "flags_user", "false")
    assert p.outcome == Outcome.fixup()


def test_retry_with_a_fatal_signal_pending_returns_to_user_mode():
    p = path(**USER_READ, **FILE_NONE, env__fault__1="RETRY", task__fatal_signal=True)
    assert took(p, "fatal_signal_pending", "true")
    assert p.outcome == Outcome.fatal_signal() and len(changes(p, "mm_fault_call")) == 1


@pytest.mark.parametrize("result,user,outcome", [
    ("OOM", True, Outcome.oom()),
    ("SIGBUS", True, Outcome.sigbus("BUS_ADRERR")),
    ("HWPOISON", True, Outcome.sigbus("BUS_MCEERR_AR")),
    ("SIGSEGV", True, Outcome.sigsegv("SEGV_MAPERR")),
    ("OOM", False, Outcome.oops("kernel_paging_request")),
    ("SIGBUS", False, Outcome.oops("kernel_paging_request")),
])
def test_mm_fault_error_maps_results_to_outcomes(result, user, outcome):
    mode = USER_READ if user else dict(KERNEL, ec__P=0, ec__W=0, ec__RSVD=0, cpu__smap=False)
    p = path(**mode, **FILE_NONE, env__fault__1=result)
    assert took(p, "fault_error", "true")
    assert p.outcome == outcome


def test_major_fault_is_accounted_once():
    p = path(**USER_READ, **FILE_NONE, env__fault__1="MAJOR")
    assert p.outcome == Outcome.handled("handle_mm_fault", major=True)
    assert changes(p, "maj_flt") == ["+1"] and not changes(p, "min_flt")


def test_cow_write_on_a_read_only_pte_reuses_an_exclusive_anonymous_page():
    p = path("x86_64", USER_READ, ec__W=PF_WRITE, ec__P=PF_PROT, address=ADDR["T_inside"], T__kind="anon",
             pmd__kind=PMD_KINDS["table"], pte__kind=PTE_PRESENT, pte__rw=0, env__reuse=True)
    assert took(p, "pte_write", "false") and took(p, "reuse_page", "true")
    assert took(p, "handle_mm_fault", "VM_FAULT_WRITE")
    pte = p.value(p.final.pte)
    assert pte & _PAGE_RW and pte & _PAGE_DIRTY and pte & _PAGE_ACCESSED and pte & _PAGE_PRESENT


def test_shared_anonymous_vma_without_vm_ops_is_sigbus():
    p = path(**USER_READ, address=ADDR["T_inside"], T__kind="anon", T__flags__shared=VM_SHARED | 0x80,
             pmd__kind=PMD_KINDS["table"], pte__kind=0)
    assert took(p, "anon_vm_shared", "true") and p.outcome == Outcome.sigbus("BUS_ADRERR")


def test_read_fault_maps_the_zero_page_read_only():
    p = path(**USER_READ, address=ADDR["T_inside"], T__kind="anon", pmd__kind=PMD_KINDS["table"], pte__kind=0)
    assert took(p, "anon_read_zero_page", "true")
    assert not p.value(p.final.pte) & _PAGE_RW and p.final.pte_written_by == "do_anonymous_page"


def test_splitting_huge_pmd_returns_zero_to_refault():
    p = path(**USER_READ, address=ADDR["T_inside"], T__kind="anon", pmd__kind=PMD_KINDS["splitting"])
    assert took(p, "pmd_trans_splitting", "true") and took(p, "handle_mm_fault", "0")


def test_32_bit_checks_vm86_mode_after_accounting():
    p = path("i386-pae", **USER_READ, address=dict(make_layout("i386-pae").addresses)["T_inside"])
    assert p.keys()[-1] == ("v8086_mode", "false")
    assert ("vsyscall_emulated", "false") not in p.keys()
