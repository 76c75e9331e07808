"""The abstract model of the Linux 4.4 x86 page-fault handler (DESIGN.md, issue #3).

Modules:

* ``ops``        the operations layer and its explicit interpretation (``ExplicitOps``);
* ``inputs``     the inputs the handler branches on, their abstract domains, the layout of
                 the model's address space, and the scopes that narrow the domains;
* ``state``      the dynamic state (``State``) and the context of an action (``Machine``);
* ``actions``    the named actions (guard, then update), one per decision of the seed;
* ``concretize`` an abstract path's input bindings -> the simulator's ``MachineSpec``.

How an engine drives the model (the contract a symbolic engine implements too):

1. Build a ``Space`` (``inputs.build_space(arch, scope)``), an ops interpretation, an
   inputs object with ``bool(name)``, ``choice(name)`` and ``word(name)``, and a
   ``Machine(ops, inputs, layout, branch)``.  ``branch(cond)`` turns an ops Bool into the
   Python bool of the branch taken.
2. ``actions.initial_state(m)`` is the state at do_page_fault's entry; repeatedly copy the
   state and run ``actions.ACTIONS[s.pc](m, copy)`` until ``s.pc == state.EXIT``.
3. An action is pure in (state, inputs, branch answers): it only changes the copy it is
   given.  So an engine may abort it at any point -- the explicit explorer does when an
   input is unbound (``NeedInput``); a symbolic engine can when a ``branch`` needs a
   fork -- and re-run it from the same state once it has decided.  Every branch of an
   action goes through ``m.decide`` (recorded, DECISIONS label), ``m.record`` (a
   multi-valued decision whose value the path already fixed) or ``m.split`` (a fork that
   is not recorded in the trace), in a fixed order.
4. Values that are fixed per path stay Python values: locations, FAULT_FLAG_* words,
   VM_FAULT_* results, ``choice`` inputs, errno values.  Addresses, sp, the error code,
   vm_flags and page-table entries are ops words of their real widths.  ``LazyWord`` (bit
   groups bound one at a time) belongs to the explicit interpretation only; a symbolic
   inputs object returns a full bit-vector for ``word(name)``, constrained to the
   domains of its groups (``Space.words[name].groups``).
5. A finished path is its recorded steps (``State.steps()``), its outcome, its final state
   and the input values it bound; ``concretize.concretize(space, bindings)`` turns it
   into a scenario for the simulator.
"""

from .ops import EBool, EWord, ExplicitOps, LazyWord, ModelTypeError

__all__ = ["EBool", "EWord", "ExplicitOps", "LazyWord", "ModelTypeError"]
