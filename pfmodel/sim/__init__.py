"""The concrete, bit-accurate simulator: Linux 4.4's x86 page-fault handler transcribed
function by function on real page tables (DESIGN.md).

``run(spec)`` builds the machine a ``MachineSpec`` describes, performs the access on the
MMU and runs the handler on every #PF.  ``KERNEL_FUNCTIONS`` lists the transcribed
functions by kernel name; ``patched`` replaces some of them (mutants).
"""

from .run import KERNEL_FUNCTIONS, patched, run

__all__ = ["run", "KERNEL_FUNCTIONS", "patched"]
