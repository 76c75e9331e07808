"""Mutants of the model: a changed action (or helper) of ``pfmodel.model.actions``.

They show that the properties catch a wrong *specification* as well as a wrong
implementation: the exhaustive engine explores the mutated model, the properties are
evaluated on its paths, and conformance runs each path on the (unchanged) simulator.
The model's files are never edited; ``pfmodel.mutants.base.model_patched`` swaps the
action in ``ACTIONS`` for the duration of a run.
"""

from __future__ import annotations

from .base import ModelEdit, Mutant

THEME = "model"

MUTANTS = [
    Mutant(
        name="model_access_error_write_rule_dropped",
        summary="model: access_error lets a write through without VM_WRITE",
        description="The model's reading of seed 1.1.8 forgets that a write needs VM_WRITE.",
        patches=(ModelEdit("access_error_cond", "lambda: o.not_(o.test(vm_flags, VM_WRITE)),",
                           "lambda: o.false,  # mutant"),)),
    Mutant(
        name="model_retry_without_tried",
        summary="model: the retry clears ALLOW_RETRY but does not set TRIED",
        description="The model's 'retry at most once' step forgets FAULT_FLAG_TRIED.",
        patches=(ModelEdit("__do_page_fault:allow_retry",
                           "s.flags = (s.flags & ~FAULT_FLAG_ALLOW_RETRY) | FAULT_FLAG_TRIED",
                           "s.flags = s.flags & ~FAULT_FLAG_ALLOW_RETRY  # mutant"),)),
    Mutant(
        name="model_retry_releases_again",
        summary="model: a VM_FAULT_RETRY result releases mmap_sem in the handler too",
        description="The model forgets the RETRY contract (the callee already released "
                    "mmap_sem) and releases it again.",
        patches=(ModelEdit("__do_page_fault:fault_retry",
                           "        m.goto(s, \"__do_page_fault:allow_retry\")\n",
                           "        _release(m, s)  # mutant\n        m.goto(s, \"__do_page_fault:allow_retry\")\n"),)),
    Mutant(
        name="model_user_mode_without_pf_user",
        summary="model: a user-mode fault does not OR PF_USER into the error code",
        description="Step 8's 'error_code |= PF_USER' is missing from the model, so a user-mode "
                    "bad area is taken for a kernel one.",
        patches=(ModelEdit("__do_page_fault:user_mode", "        s.ec = m.o.bor(s.ec, PF_USER)\n",
                           "        pass  # mutant\n"),)),
    Mutant(
        name="model_kernel_oom_to_oom_killer",
        summary="model: a kernel-mode VM_FAULT_OOM goes to pagefault_out_of_memory",
        description="The model's mm_fault_error OOM branch ignores the mode.",
        patches=(ModelEdit("mm_fault_error:oom_pf_user",
                           "    if m.decide(s, \"oom_pf_user\", m.o.test(s.ec, PF_USER)):\n",
                           "    if m.decide(s, \"oom_pf_user\", m.o.test(s.ec, PF_USER)) or True:  # mutant\n"),)),
    Mutant(
        name="model_smap_ignores_hardware_bit",
        summary="model: the SMAP check ignores the hardware U/S bit",
        description="The model's smap_violation tests only SMAP and AC, so every user-mode "
                    "fault with SMAP on is a violation.",
        patches=(ModelEdit("__do_page_fault:smap_violation",
                           "                  lambda: o.not_(o.test(s.ec, PF_USER)),\n", ""),)),
]
