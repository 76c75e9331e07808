"""What a mutant is, and how one is applied.

A mutant is a named change to the simulator (and, separately, to the model) that brings
back a real or plausible bug.  The change is made of patches:

* ``Edit``: a textual edit of one transcribed kernel function, named by its kernel name
  (``pfmodel.sim.run.KERNEL_FUNCTIONS``): ``old`` must occur exactly once in the
  function's source and becomes ``new``.  The edited source is compiled in the
  function's own module, so everything else it calls is the simulator's.  An edit that
  no longer matches (the simulator changed) is a loud ``MutantError``, never a silent
  no-op.
* ``Replace``: a whole replacement function for a kernel name (what a mutant file
  written outside the project gives).
* ``ModelEdit`` / ``ModelReplace``: the same for an action of the model, named by its
  location (``"__do_page_fault:access_error"``) in ``pfmodel.model.actions.ACTIONS``.

``Mutant.applied()`` installs every patch for the duration of a ``with`` block and
restores the originals afterwards (the simulator through ``pfmodel.sim.run.patched``).
"""

from __future__ import annotations

import ast
import inspect
import linecache
import textwrap
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Mapping, Union

from ..errors import PfmodelError
from ..sim.run import KERNEL_FUNCTIONS, patched


class MutantError(PfmodelError):
    """A mutant cannot be built or loaded (an edit that no longer matches, a bad file)."""


# The simulator's and the model's functions as they were when pfmodel was imported:
# edits are always made to these, never to a function some mutant installed.
_SIM_ORIGINALS: dict[str, Callable[..., Any]] = {
    name: getattr(module, attr) for name, (module, attr) in KERNEL_FUNCTIONS.items()}
_MODEL_ORIGINALS: dict[str, Callable[..., Any]] | None = None


def _model_module() -> Any:
    from ..model import actions

    return actions


def _model_originals() -> dict[str, Callable[..., Any]]:
    """Every model action by location, and every plain function of the actions module."""
    global _MODEL_ORIGINALS
    if _MODEL_ORIGINALS is None:
        module = _model_module()
        table = {name: fn for name, fn in vars(module).items()
                 if inspect.isfunction(fn) and fn.__module__ == module.__name__}
        table.update(module.ACTIONS)
        _MODEL_ORIGINALS = table
    return _MODEL_ORIGINALS


def _model_original(target: str, mutant: str) -> Callable[..., Any]:
    originals = _model_originals()
    if target not in originals:
        raise MutantError(f"mutant {mutant}: the model has no action at {target!r} (nor a function of "
                          "that name in pfmodel.model.actions)",
                          todo="see pfmodel.model.actions.ACTIONS for the locations")
    return originals[target]


@dataclass(frozen=True)
class Edit:
    """Replace ``old`` (which must occur exactly once) by ``new`` in kernel function ``function``."""

    function: str
    old: str
    new: str


@dataclass(frozen=True)
class Replace:
    """Use ``replacement`` for kernel function ``function``."""

    function: str
    replacement: Callable[..., Any]


@dataclass(frozen=True)
class ModelEdit:
    """Replace ``old`` by ``new`` in the model action at location ``pc`` (``"fn:step"``), or in
    the helper function of that name in ``pfmodel.model.actions``."""

    pc: str
    old: str
    new: str


@dataclass(frozen=True)
class ModelReplace:
    """Use ``replacement`` (``fn(m, s)``) as the model action at location ``pc``."""

    pc: str
    replacement: Callable[..., Any]


Patch = Union[Edit, Replace, ModelEdit, ModelReplace]


@dataclass(frozen=True)
class Mutant:
    """One named change that re-introduces a bug.

    ``origin``: ``"historical-bugs 1.4"`` for an item of historical-bugs.md (``seq`` is
    then that item's number), ``"seeded"`` for a plausible bug made up on purpose.
    ``equivalent``: if not empty, why no observation of a fault can tell this mutant
    from the original (it is then documented, not expected to be killed).
    """

    name: str
    summary: str
    description: str
    patches: tuple[Patch, ...]
    origin: str = "seeded"
    seq: str = ""
    theme: str = ""
    equivalent: str = ""
    source: str = ""

    @property
    def target(self) -> str:
        """``simulator``, ``model`` or ``both``: what the mutant changes."""
        sim = any(isinstance(p, (Edit, Replace)) for p in self.patches)
        model = any(isinstance(p, (ModelEdit, ModelReplace)) for p in self.patches)
        return "both" if sim and model else ("model" if model else "simulator")

    @property
    def functions(self) -> list[str]:
        """The kernel functions and model locations it changes."""
        out: list[str] = []
        for p in self.patches:
            name = p.function if isinstance(p, (Edit, Replace)) else f"model:{p.pc}"
            if name not in out:
                out.append(name)
        return out

    def diff_lines(self) -> list[str]:
        """The change, for people: one block per patch."""
        lines: list[str] = []
        for p in self.patches:
            if isinstance(p, (Edit, ModelEdit)):
                where = p.function if isinstance(p, Edit) else f"model action {p.pc}"
                lines.append(f"in {where}:")
                lines.extend("  - " + line for line in textwrap.dedent(p.old).strip("\n").splitlines())
                lines.extend("  + " + line for line in textwrap.dedent(p.new).strip("\n").splitlines() or [""])
            elif isinstance(p, Replace):
                lines.append(f"{p.function}: replaced by {_describe(p.replacement)}")
            else:
                lines.append(f"model action {p.pc}: replaced by {_describe(p.replacement)}")
        return lines

    def sim_overrides(self) -> dict[str, Callable[..., Any]]:
        """Kernel name -> the function to use instead (what ``pfmodel.sim.run`` accepts)."""
        out: dict[str, Callable[..., Any]] = {}
        edits: dict[str, list[Edit]] = {}
        for p in self.patches:
            if isinstance(p, Edit):
                edits.setdefault(p.function, []).append(p)
            elif isinstance(p, Replace):
                _check_kernel_name(p.function, self.name)
                out[p.function] = p.replacement
        for name, group in edits.items():
            _check_kernel_name(name, self.name)
            original = _SIM_ORIGINALS[name]
            out[name] = _compile_edited(original, [(e.old, e.new) for e in group],
                                        f"<mutant {self.name}: {name}>", self.name)
        return out

    def model_overrides(self) -> dict[str, Callable[..., Any]]:
        """Model location (or helper function name) -> the action (helper) to use instead."""
        out: dict[str, Callable[..., Any]] = {}
        edits: dict[str, list[ModelEdit]] = {}
        for p in self.patches:
            if isinstance(p, ModelEdit):
                edits.setdefault(p.pc, []).append(p)
            elif isinstance(p, ModelReplace):
                _model_original(p.pc, self.name)
                out[p.pc] = p.replacement
        for pc, group in edits.items():
            out[pc] = _compile_edited(_model_original(pc, self.name), [(e.old, e.new) for e in group],
                                      f"<mutant {self.name}: model {pc}>", self.name)
        return out

    @contextmanager
    def applied(self) -> Iterator["Mutant"]:
        """Install the mutant (simulator and model) for the duration of the block."""
        sim = self.sim_overrides()
        model = self.model_overrides()
        with patched(sim), model_patched(model):
            yield self


def _describe(fn: Callable[..., Any]) -> str:
    where = getattr(fn, "__module__", "") or "?"
    return f"{getattr(fn, '__qualname__', repr(fn))} from {where}"


def _check_kernel_name(name: str, mutant: str) -> None:
    if name not in KERNEL_FUNCTIONS:
        raise MutantError(f"mutant {mutant}: {name!r} is not a kernel function of the simulator",
                          todo="use a name from pfmodel.sim.run.KERNEL_FUNCTIONS")


def _compile_edited(original: Callable[..., Any], edits: list[tuple[str, str]], filename: str,
                    mutant: str) -> Callable[..., Any]:
    """``original``'s source with each (old, new) applied, compiled in its own module."""
    src = textwrap.dedent(inspect.getsource(original))
    for old, new in edits:
        count = src.count(old)
        if count != 1:
            raise MutantError(
                f"mutant {mutant}: the text to change occurs {count} times in "
                f"{original.__name__}, not once",
                why="the simulator's source no longer matches the mutant (or the text is ambiguous)",
                todo=f"update the mutant's edit; the text was: {old.strip()[:80]!r}")
        src = src.replace(old, new)
    tree = ast.parse(src)
    if len(tree.body) != 1 or not isinstance(tree.body[0], ast.FunctionDef):
        raise MutantError(f"mutant {mutant}: the edited {original.__name__} is not one function definition")
    tree.body[0].decorator_list = []  # model actions are registered by a decorator
    code = compile(tree, filename, "exec", flags=_ANNOTATIONS, dont_inherit=True)
    linecache.cache[filename] = (len(src), None, src.splitlines(True), filename)
    namespace: dict[str, Any] = {}
    exec(code, vars(inspect.getmodule(original)), namespace)  # noqa: S102 - a mutant is code by design
    fn = namespace[original.__name__]
    fn.__doc__ = original.__doc__
    fn.__pfmodel_mutant__ = mutant  # type: ignore[attr-defined]
    return fn


_ANNOTATIONS = __import__("__future__").annotations.compiler_flag


@contextmanager
def model_patched(overrides: Mapping[str, Callable[..., Any]]) -> Iterator[None]:
    """Replace model actions (by location, ``"fn:step"``) and helper functions of
    ``pfmodel.model.actions`` (by name) for the duration; restore them after."""
    if not overrides:
        yield
        return
    module = _model_module()
    for target in overrides:
        _model_original(target, "(model patch)")
    saved: list[tuple[str, Any]] = []
    try:
        for target in sorted(overrides):
            if ":" in target:
                saved.append((target, module.ACTIONS[target]))
                module.ACTIONS[target] = overrides[target]
            else:
                saved.append((target, getattr(module, target)))
                setattr(module, target, overrides[target])
        yield
    finally:
        for target, original in reversed(saved):
            if ":" in target:
                module.ACTIONS[target] = original
            else:
                setattr(module, target, original)
