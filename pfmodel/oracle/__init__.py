"""The live-kernel oracle: induce page faults on the running kernel, build the Linux 4.4
scenario for each, run the simulator, and compare (docs/oracle.md).

``run_oracle(all_cases())`` measures the whole matrix; ``divergence.TABLE`` lists the
kernel changes since 4.4 that explain a difference.
"""

from __future__ import annotations

from .cases import Case, all_cases, select
from .divergence import TABLE, ExpectedDivergence
from .runner import OracleReport, run_oracle

__all__ = ["Case", "all_cases", "select", "TABLE", "ExpectedDivergence", "OracleReport", "run_oracle"]
