"""Properties about what a fault does to memory: PTEs, counters, stack growth, OOM, and
progress (P-PERM, P-PROGRESS, P-OOM, P-GAP of historical-bugs.md §0.2)."""

from pfmodel.outcome import HANDLED, OOM, Outcome
from pfmodel.properties import prop
from pfmodel.sim.constants import VM_GROWSDOWN, VM_WRITE
from pfmodel.x86.constants import PF_USER, PF_WRITE, _PAGE_DIRTY, _PAGE_RW

# The places that store a PTE for the faulting access itself (do_numa_page only restores
# the VMA's protection: a write then faults again and takes the COW path).
WRITE_PATHS = ("handle_pte_fault", "do_anonymous_page", "do_fault", "do_swap_page", "do_wp_page",
               "do_huge_pmd_wp_page_fallback")
HUGE_WRITE_PATHS = ("do_huge_pmd_wp_page", "do_huge_pmd_anonymous_page")


def _handled_by_mm(r):
    return r.outcome.kind == HANDLED and r.outcome.via == "handle_mm_fault"


@prop(name="write_fault_leaves_writable_dirty", expected="holds",
      statement="A write fault that handle_mm_fault resolves by storing a PTE (or a huge pmd) "
                "leaves it writable and dirty.",
      rationale="2.7 / KF 2.4.6-2.4.14: the write paths all end in pte_mkdirty plus "
                "maybe_mkwrite on a VMA that access_error found VM_WRITE (do_anonymous_page, "
                "do_cow_fault/do_shared_fault, do_swap_page's reuse, wp_page_reuse/copy, "
                "do_huge_pmd_wp_page), so the re-executed write succeeds (P-PROGRESS).",
      when=lambda r: _handled_by_mm(r) and (r.final.pte_written_by in WRITE_PATHS
                                           or r.final.pmd_written_by in HUGE_WRITE_PATHS))
def _write_dirty(r):
    o = r.o
    write = o.test(r.word("error_code"), PF_WRITE)
    entry = r.final.pmd if r.final.pmd_written_by in HUGE_WRITE_PATHS else r.final.pte
    return o.implies(write, lambda: o.and_(o.test(entry, _PAGE_RW), o.test(entry, _PAGE_DIRTY)))


@prop(name="fault_accounting", expected="holds",
      statement="A fault that gets through handle_mm_fault without an error increments exactly "
                "one of maj_flt/min_flt, maj_flt iff some call returned VM_FAULT_MAJOR; every "
                "other ending increments neither.",
      rationale="Seed 1.1: 'major |= fault & VM_FAULT_MAJOR' over both passes, then one "
                "increment after up_read and the VM_FAULT_ERROR test; every earlier return "
                "skips the accounting (historical-bugs T13).")
def _accounting(r):
    maj, mn = r.changes("maj_flt"), r.changes("min_flt")
    if not r.took("fault_error", "false"):
        return not maj and not mn
    major = any("MAJOR" in v for v in r.values("handle_mm_fault"))
    return (maj, mn) == ((["+1"], []) if major else ([], ["+1"]))


@prop(name="stack_growth_bounded", expected="holds",
      statement="Only VM_GROWSDOWN VMAs grow; a user-mode fault below a stack grows it only "
                "within 65536 + 32 * sizeof(long) bytes below sp.",
      rationale="Seed 1.1: the VM_GROWSDOWN test and, for PF_USER, the 'enter $65535, $31' "
                "cushion precede expand_stack; check_stack_guard_page only grows a "
                "GROWSDOWN VMA (KF 2.2.14, 2.4.8, historical-bugs T2).",
      when=lambda r: bool(r.changes("stack_grown")))
def _stack_bounded(r):
    o = r.o
    ok = o.test(r.vma_flags, VM_GROWSDOWN)
    if r.took("expand_stack", "false"):
        user = o.test(r.word("error_code"), PF_USER)
        within = o.uge(o.add(r.word("address"), r.layout.cushion), r.word("sp"))
        ok = o.and_(ok, lambda: o.implies(user, lambda: within))
    return ok


@prop(name="no_write_to_readonly_vma", expected="holds",
      statement="A user write to a VMA without VM_WRITE never ends handled by handle_mm_fault.",
      rationale="1.1.8: access_error denies every write without VM_WRITE, before "
                "handle_mm_fault (P-PERM).",
      when=lambda r: r.final.vma is not None and r.took("user_mode", "true"))
def _no_write_ro(r):
    o = r.o
    ro_write = o.and_(o.test(r.word("error_code"), PF_WRITE), lambda: o.not_(o.test(r.vma_flags, VM_WRITE)))
    return o.implies(ro_write, not _handled_by_mm(r))


@prop(name="handled_means_access_allowed", expected="holds",
      statement="handle_mm_fault is only called after access_error allowed the access.",
      rationale="Seed 1.1: good_area runs access_error first, on every pass (the retry "
                "re-runs find_vma and access_error).",
      when=lambda r: bool(r.calls))
def _hmf_after_access(r):
    return r.values("access_error")[: len(r.calls)] == ["false"] * len(r.calls)


@prop(name="kernel_oom_never_invokes_oom_killer", expected="holds",
      statement="A kernel-mode VM_FAULT_OOM never runs the OOM killer: it ends in a fixup or an "
                "oops; only user faults reach pagefault_out_of_memory.",
      rationale="1.1.13: VM_FAULT_OOM without PF_USER goes to no_context (P-OOM, "
                "historical-bugs 8.4).",
      when=lambda r: r.took("vm_fault_oom", "true"))
def _kernel_oom(r):
    user = r.o.test(r.word("error_code"), PF_USER)  # the handler's code: PF_USER was ORed in
    kernel_ok = not r.changes("oom_killer") and r.outcome.kind != OOM
    user_mode = r.bool("user_mode")
    return r.o.implies(r.o.not_(user_mode), lambda: r.o.and_(r.o.not_(user), kernel_ok))


def _progress(r):
    """P-PROGRESS on the simulator: no handled fault comes back unchanged (a fault loop).

    Reaching the run's bound is not itself a loop: a bound of two faults stops a run
    whose first fault was left to be taken again (a race) before the second one's
    progress can be seen.  A handled fault repeating an earlier one exactly (address,
    error code, decisions) is."""
    run = r.sim
    if run is None:
        return True
    seen = set()
    for f in run.faults:
        if f.outcome.kind != HANDLED:
            continue
        key = (f.address, f.error_code, tuple(f.trace.keys()), f.outcome)
        if key in seen:
            return False
        seen.add(key)
    return True


# Decisions after which handle_mm_fault deliberately returns without resolving the fault,
# leaving it to be taken again once another CPU or thread has finished: a PTE changed under
# us, a huge pmd being split, a migration entry, a truncated page, a userfaultfd wait
# interrupted by a signal, a RETRY taken back to user mode.  The simulator's environment is
# static, so these repeat there; progress then depends on the rest of the system.
COME_BACK_LATER = (("pte_same", "false"), ("anon_pte_none_recheck", "false"), ("do_fault_pte_same", "false"),
                   ("swap_pte_same", "false"), ("numa_pte_same", "false"), ("pmd_trans_splitting", "true"),
                   ("swap_entry_kind", "migration"), ("handle_userfault", "0"), ("vma_fault", "VM_FAULT_NOPAGE"),
                   ("vma_fault", "VM_FAULT_MAJOR|VM_FAULT_NOPAGE"), ("page_mkwrite", "VM_FAULT_NOPAGE"),
                   ("fault_retry", "true"),
                   # pgtable_bad's die notifier said STOP (a debugger owns the oops): the
                   # handler carries on over the corrupted entry, which faults again.
                   ("die_notifier_stop", "true"))


# Hardware quirks the handler answers by returning to re-execute the access, relying on
# the quirk not recurring (an AMD prefetch, K8 errata 93/100, F00F: KF 2.2.21, 2.2.22,
# historical-bugs T11).  The simulator's environment answers them the same on every
# fault, so a re-executed fault they claim repeats until the bound: a loop of the model,
# not of the kernel.  Progress cannot be judged on such a run.
QUIRKS = ("prefetch", "errata")


def _quirk_loop(r):
    run = getattr(r, "sim", None)
    return run is not None and any(f.outcome.kind == HANDLED and f.outcome.via in QUIRKS for f in run.faults)


@prop(name="handled_makes_progress", expected="holds", on="simulator",
      statement="After handle_mm_fault resolves a fault, re-executing the access on the "
                "simulator's MMU succeeds, or faults differently, within a small bound: no fault "
                "loop (unless the handler deliberately left the fault to be taken again after a "
                "race, a split, a migration or a RETRY).",
      rationale="Seed 1.1 'make sure we exit gracefully rather than endlessly redo the fault' "
                "(P-PROGRESS): a resolved fault must change what the hardware sees.",
      when=lambda r: (_handled_by_mm(r) and not any(r.took(label, value) for label, value in COME_BACK_LATER)
                      and not _quirk_loop(r)))
def _handled_progress(r):
    return _progress(r)


__all__ = ["WRITE_PATHS", "Outcome"]


@prop(name="naive_stack_growth_keeps_a_gap", expected="violated",
      statement="Stack growth never leaves a stack VMA directly on top of a mapping that is not "
                "itself a stack.",
      rationale="False in 4.4: expand_stack refuses to grow onto a non-stack vm_prev, but the "
                "guard page that check_stack_guard_page adds below a newly faulted lowest page "
                "is grown by expand_downwards, which never looks at vm_prev (KF 2.2.14, 2.4.8). "
                "The one-page 'gap' is then only the stack's own unpopulated lowest page "
                "(historical-bugs 2.2, 2.5: Stack Clash).",
      when=lambda r: bool(r.changes("stack_grown")))
def _stack_gap(r):
    o = r.o
    vma = r.final.vma
    prev = None
    for k, v in enumerate(r.layout.vmas):
        if v.name == vma and k:
            prev = r.layout.vmas[k - 1]
    if prev is None:
        return True
    touching = o.eq(r.final.vm_start[vma], prev.end)
    return o.implies(touching, lambda: o.test(r.word(prev.flags), VM_GROWSDOWN))


@prop(name="memcg_oom_cleaned_up", expected="holds",
      statement="A user fault that leaves handle_mm_fault without VM_FAULT_OOM while the task "
                "is in a memcg OOM cleans that state up before returning.",
      rationale="1.1.10: with FAULT_FLAG_USER, task_in_memcg_oom() && !(ret & VM_FAULT_OOM) "
                "runs mem_cgroup_oom_synchronize(false) (P-OOM, historical-bugs 8.2).",
      when=lambda r: r.took("memcg_oom_cleanup"))
def _memcg(r):
    results = r.values("handle_mm_fault")
    cleanups = r.values("memcg_oom_cleanup")
    in_oom = r.bool("task.memcg_oom")
    first_ok = "OOM" not in results[0]
    expected_first = r.o.and_(in_oom, first_ok)
    return r.o.eq(expected_first, cleanups[0] == "true")
