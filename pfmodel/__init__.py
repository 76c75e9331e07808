"""pfmodel: a model checker and state-space explorer for the Linux x86 page-fault handler.

The modelled kernel is Linux 4.4 (the seed walkthrough); see DESIGN.md.
"""

from __future__ import annotations

__version__ = "0.1.0"
KERNEL_VERSION = "4.4"

from .errors import PfmodelError, ScenarioError  # noqa: E402
from .outcome import Outcome  # noqa: E402
from .trace import DECISIONS, Step, Trace  # noqa: E402

__all__ = ["__version__", "KERNEL_VERSION", "Outcome", "Trace", "Step", "DECISIONS",
           "PfmodelError", "ScenarioError"]
