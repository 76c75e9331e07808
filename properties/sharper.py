"""Sharper properties, added because a mutant survived the others (see docs/mutants.md).

Each states a rule of the 4.4 handler that the broader properties leave implicit; each
holds on the real simulator and on every path of the model.
"""

from pfmodel.properties import prop
from pfmodel.x86.constants import PF_INSTR, PF_PROT, PF_WRITE


@prop(name="faults_disabled_never_sleep", expected="holds",
      statement="With page faults disabled (pagefault_disable), in atomic or interrupt context, "
                "or without an mm, the handler never takes mmap_sem and never calls "
                "handle_mm_fault, whatever it decides on the way.",
      rationale="Seed 1.1.4 (historical-bugs T5): faulthandler_disabled() is pagefault_disabled() "
                "|| in_atomic(); such a fault must not sleep, so it goes to bad_area_nosemaphore "
                "(a fixup, or an oops).  Stated on the task's context rather than on the "
                "faulthandler_disabled decision, so a handler that mis-decides is caught.  Killed "
                "the mutant faulthandler_disabled_atomic_only.",
      when=lambda r: r.took("fault_in_kernel_space", "false") and r.took("kprobes_fault", "false"))
def _disabled_no_sleep(r):
    o = r.o
    disabled = o.or_(r.choice("task.context") != "normal", lambda: o.not_(r.bool("task.has_mm")))
    return o.implies(disabled, not r.changes("mmap_sem") and not r.calls)


@prop(name="spurious_only_for_raised_permissions", expected="holds",
      statement="A fault is taken as spurious only if it is a write to a read-only entry or an "
                "instruction fetch from an NX entry (error code exactly PF_WRITE|PF_PROT or "
                "PF_INSTR|PF_PROT).",
      rationale="KF 2.2.6 (historical-bugs T10): only a stale TLB entry left after permissions "
                "were raised can be spurious; any other kernel-address fault, and every user "
                "access to a kernel address, must go on to bad_area_nosemaphore.  Killed the "
                "mutant spurious_fault_any_error_code.",
      when=lambda r: r.took("spurious_fault", "true"))
def _spurious_codes(r):
    o = r.o
    ec = r.word("error_code")
    return o.or_(o.eq(ec, PF_WRITE | PF_PROT), lambda: o.eq(ec, PF_INSTR | PF_PROT))
