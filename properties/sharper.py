"""Sharper properties, added because a mutant survived the others (see docs/mutants.md).

Each states a rule of the 4.4 handler that the broader properties leave implicit; each
holds on the real simulator and on every path of the model.
"""

from pfmodel.properties import prop
from pfmodel.x86.constants import PF_INSTR, PF_PROT, PF_WRITE


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
