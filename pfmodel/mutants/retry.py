"""Mutants of the retry logic and of the FAULT_FLAG_* word (seed 1.1 steps 8-19;
historical-bugs 1.2, 1.3, T13)."""

from __future__ import annotations

from .base import Edit, Mutant

THEME = "retry"

# The simulator is a program that must end: a mutant that can retry forever gives up
# after this many passes with BUG(), its trace showing every pass.
LIVELOCK_PASSES = 8

_RETRY_BLOCK = """\
                flags &= ~FAULT_FLAG_ALLOW_RETRY
                flags |= FAULT_FLAG_TRIED
                change(fault_flags=hex(flags))
                if not decide("fatal_signal_pending", bool(fatal_signal_pending(tsk))):
                    down_read(mm.mmap_sem)
                    continue
"""

_COUNT_PASSES = Edit("__do_page_fault", "    major = 0\n", "    major = 0\n    _passes = 1\n")


def _retry_block(new: str) -> Edit:
    return Edit("__do_page_fault", _RETRY_BLOCK, new)


MUTANTS = [
    Mutant(
        name="retry_without_allow_retry_taken_as_success",
        summary="a VM_FAULT_RETRY on the second pass is taken as success: up_read again",
        description=(
            "Before the killable-fault work the handler believed RETRY could only come back "
            "when it had set FAULT_FLAG_ALLOW_RETRY.  But a killable page-lock wait that a "
            "fatal signal interrupts drops mmap_sem and returns RETRY even on the TRIED pass. "
            "This mutant falls through to the normal up_read on that result: mmap_sem is "
            "released a second time."),
        origin="historical-bugs 1.2", seq="1.2",
        patches=(Edit("__do_page_fault",
                      '            if decide("allow_retry", bool(flags & FAULT_FLAG_ALLOW_RETRY)):\n',
                      '            if not decide("allow_retry", bool(flags & FAULT_FLAG_ALLOW_RETRY)):\n'
                      '                break  # mutant: RETRY without ALLOW_RETRY "cannot happen"\n'
                      '            if True:\n'),)),
    Mutant(
        name="retry_without_allow_retry_to_mm_fault_error",
        summary="a VM_FAULT_RETRY on the second pass goes to mm_fault_error",
        description=(
            "The other reading of the same wrong belief (historical-bugs 1.2): an unexpected "
            "RETRY is handed to mm_fault_error as an error code it does not know, which ends "
            "in its BUG()."),
        origin="historical-bugs 1.2", seq="1.2",
        patches=(Edit("__do_page_fault",
                      '            if decide("allow_retry", bool(flags & FAULT_FLAG_ALLOW_RETRY)):\n',
                      '            if not decide("allow_retry", bool(flags & FAULT_FLAG_ALLOW_RETRY)):\n'
                      '                mm_fault_error(regs, error_code, address, fault)  # mutant\n'
                      '                return\n'
                      '            if True:\n'),)),
    Mutant(
        name="retry_keeps_allow_retry",
        summary="the retry does not clear FAULT_FLAG_ALLOW_RETRY: retries are unbounded",
        description=(
            "The 4.4 'retry at most once' block clears ALLOW_RETRY before the goto retry. "
            "Without that, a handler whose ->fault keeps answering RETRY loops for ever (the "
            "starvation the 3.x comment warns about; after 5.7 lifted the limit this is what "
            "the userfaultfd busy-loop of 2025 looked like).  The simulated loop gives up "
            f"after {LIVELOCK_PASSES} passes with BUG()."),
        origin="historical-bugs 1.3", seq="1.3",
        patches=(_COUNT_PASSES, _retry_block(f"""\
                flags |= FAULT_FLAG_TRIED  # mutant: ALLOW_RETRY stays set
                change(fault_flags=hex(flags))
                if not decide("fatal_signal_pending", bool(fatal_signal_pending(tsk))):
                    down_read(mm.mmap_sem)
                    _passes += 1
                    if _passes > {LIVELOCK_PASSES}:
                        BUG("mutant livelock guard: the retry loop did not end")
                    continue
""")),),
    Mutant(
        name="retry_without_tried",
        summary="the retry does not set FAULT_FLAG_TRIED",
        description=(
            "The second handle_mm_fault call must carry FAULT_FLAG_TRIED so the mm layer "
            "knows it is the last chance (fixup_user_fault's lost '!TRIED' test after 5.7 is "
            "the same confusion, historical-bugs 1.3)."),
        origin="historical-bugs 1.3", seq="1.3",
        patches=(_retry_block("""\
                flags &= ~FAULT_FLAG_ALLOW_RETRY  # mutant: TRIED is not set
                change(fault_flags=hex(flags))
                if not decide("fatal_signal_pending", bool(fatal_signal_pending(tsk))):
                    down_read(mm.mmap_sem)
                    continue
"""),)),
    Mutant(
        name="retry_despite_fatal_signal",
        summary="the retry happens even with a fatal signal pending",
        description=(
            "The killable-fault rule: after a RETRY the handler retries only if no fatal "
            "signal is pending, so a task the OOM killer chose can die (historical-bugs 1.2, "
            "1.3 P-KILL).  This mutant retries regardless."),
        origin="historical-bugs 1.3", seq="1.3",
        patches=(_retry_block("""\
                flags &= ~FAULT_FLAG_ALLOW_RETRY
                flags |= FAULT_FLAG_TRIED
                change(fault_flags=hex(flags))
                decide("fatal_signal_pending", bool(fatal_signal_pending(tsk)))
                if True:  # mutant: the pending fatal signal is not looked at
                    down_read(mm.mmap_sem)
                    continue
"""),)),
    Mutant(
        name="fault_flag_user_dropped",
        summary="a user-mode fault does not set FAULT_FLAG_USER",
        description=(
            "Step 8 sets FAULT_FLAG_USER for a user-mode fault.  Without it the memcg OOM "
            "killer is not armed and a second RETRY of a user fault goes to no_context, as "
            "if the kernel had faulted."),
        patches=(Edit("__do_page_fault", "        flags |= FAULT_FLAG_USER\n",
                      "        pass  # mutant: FAULT_FLAG_USER not set\n"),)),
    Mutant(
        name="fault_flag_write_dropped",
        summary="a write fault does not set FAULT_FLAG_WRITE",
        description=(
            "Step 10 turns PF_WRITE into FAULT_FLAG_WRITE.  Without it handle_mm_fault "
            "resolves a write fault like a read (the zero page, no COW, no dirty bit) and the "
            "write faults again."),
        patches=(Edit("__do_page_fault", "        flags |= FAULT_FLAG_WRITE\n",
                      "        pass  # mutant: FAULT_FLAG_WRITE not set\n"),)),
    Mutant(
        name="fault_flag_killable_dropped",
        summary="the fault starts without FAULT_FLAG_KILLABLE",
        description=(
            "The first pass carries ALLOW_RETRY|KILLABLE.  Without KILLABLE the TRIED pass "
            "waits for a page lock uninterruptibly, and a fatal signal no longer ends it "
            "(the livelock killable faults fixed, historical-bugs 1.2)."),
        patches=(Edit("__do_page_fault", "flags = FAULT_FLAG_ALLOW_RETRY | FAULT_FLAG_KILLABLE",
                      "flags = FAULT_FLAG_ALLOW_RETRY  # mutant: not killable"),)),
    Mutant(
        name="fault_flag_allow_retry_dropped",
        summary="the fault starts without FAULT_FLAG_ALLOW_RETRY",
        description=(
            "Without ALLOW_RETRY the first pass may not drop mmap_sem to wait for a locked "
            "page: it waits holding the lock (or, killable, gives up)."),
        patches=(Edit("__do_page_fault", "flags = FAULT_FLAG_ALLOW_RETRY | FAULT_FLAG_KILLABLE",
                      "flags = FAULT_FLAG_KILLABLE  # mutant: no retry allowed"),)),
]
