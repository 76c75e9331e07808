"""access_error lets every instruction fetch through, even from a page that is present.

A mutant file written outside pfmodel.  Every top-level function named after a kernel
function of the simulator (see ``pfmodel.sim.run.KERNEL_FUNCTIONS``) replaces it while
the mutant is checked:

    pfmodel check --mutant examples/mutant_example.py --arch x86_64
    pfmodel mutants --mutant examples/mutant_example.py

The docstring's first line is the mutant's summary; NAME below is its name (default:
the file name).  ``original(NAME)`` gives the simulator's own function, so a
replacement can change only part of the behaviour.

The bug: a fetch that faults on a present page (PF_PROT|PF_INSTR: the page is NX) is a
protection fault that 4.4 refuses with SEGV_ACCERR (historical-bugs T4).  This mutant
hands it to handle_mm_fault, which finds the page present, and the fetch faults again.
"""

from pfmodel.mutants import original
from pfmodel.x86.constants import PF_INSTR

NAME = "fetch_always_allowed"


def access_error(error_code, vma):
    """Any fetch is allowed (the bug); everything else is the real access_error's call."""
    if error_code & PF_INSTR:
        return 0
    return original("access_error")(error_code, vma)
