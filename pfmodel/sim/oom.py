"""mm/oom_kill.c's pagefault_out_of_memory and the memcg OOM hooks it and handle_mm_fault
use (seed 1.1.13.1; kernel-facts §2.2.26, §2.3).

Who the OOM killer kills, and whether a memcg or the global lock is busy, are the
environment's answers (``EnvSpec.oom``).
"""

from __future__ import annotations

from ..outcome import Outcome
from .state import TaskStruct, change, current, decide, machine


def task_in_memcg_oom(p: TaskStruct) -> bool:
    """KF 2.3 (no seed section): the task recorded a memcg OOM during this fault."""
    return p.memcg_in_oom


def mem_cgroup_oom_enable() -> None:
    """Seed 1.1.10 (KF 2.3): user faults may invoke the memcg OOM killer."""
    current().memcg_may_oom = True


def mem_cgroup_oom_disable() -> None:
    """Seed 1.1.10 (KF 2.3)."""
    current().memcg_may_oom = False


def mem_cgroup_oom_synchronize(handle: bool) -> bool:
    """KF 2.2.26 (no seed section): finish a memcg OOM recorded by this task.

    With ``handle`` false it only cleans up.  With ``handle`` it is true when a memcg OOM
    was pending (the task's own record, or the Env saying the OOM is a memcg one)."""
    tsk = current()
    pending = tsk.memcg_in_oom or (handle and machine().env.oom == "memcg")
    if not pending:
        return False
    tsk.memcg_in_oom = False
    return True


def out_of_memory() -> bool:
    """KF 2.2.26 (no seed section): false only if the OOM killer is disabled."""
    if machine().env.oom == "disabled":
        return False
    return True


def pagefault_out_of_memory() -> None:
    """Seed 1.1.13.1 (KF 2.2.26): a user fault ran out of memory."""
    m = machine()
    m.set_outcome(Outcome.oom())
    if decide("mem_cgroup_oom_synchronize", bool(mem_cgroup_oom_synchronize(True))):
        return
    if not decide("oom_lock_trylock", m.env.oom != "lock_busy"):
        return
    if decide("out_of_memory", bool(out_of_memory())):
        change(oom_killer="invoked")
    else:
        # No user task should run while the OOM killer is disabled (WARN_ON TIF_MEMDIE).
        m.printk("WARNING: pagefault_out_of_memory with the OOM killer disabled")
    # mutex_unlock(&oom_lock)
