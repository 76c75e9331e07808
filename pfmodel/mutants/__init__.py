"""Mutants: named changes to the simulator (and to the model) that bring back a bug.

Built-in mutants live in one module per theme (``retry``, ``locking``, ``access``,
``stack``, ``error_paths``, ``mm_layer``, ``kernel_space``, ``model``); ``BUILTIN`` has
them all by name.  ``resolve("NAME")`` finds a built-in one, ``resolve("file.py")``
loads a mutant file written anywhere (format: docs/mutants.md)::

    from pfmodel.mutants import resolve
    from pfmodel.sim.run import run

    (mutant,) = resolve("access_error_write_rule_dropped")
    with mutant.applied():
        result = run(spec)          # the mutated simulator (and model)
"""

from __future__ import annotations

import difflib
import importlib.util
import inspect
import sys
from pathlib import Path
from typing import Any, Callable

from ..sim.run import KERNEL_FUNCTIONS
from . import access, error_paths, kernel_space, locking, mm_layer, model, retry, stack
from .base import (
    Edit,
    ModelEdit,
    ModelReplace,
    Mutant,
    MutantError,
    Replace,
    _SIM_ORIGINALS,
    _model_original,
    model_patched,
)

THEMES = (retry, locking, access, stack, error_paths, mm_layer, kernel_space, model)


def _builtin() -> dict[str, Mutant]:
    table: dict[str, Mutant] = {}
    for module in THEMES:
        for mutant in module.MUTANTS:
            if mutant.name in table:
                raise RuntimeError(f"two built-in mutants named {mutant.name}")
            table[mutant.name] = Mutant(**{**mutant.__dict__, "theme": module.THEME,
                                           "source": f"pfmodel.mutants.{module.__name__.rsplit('.', 1)[1]}"})
    return table


BUILTIN: dict[str, Mutant] = _builtin()


def original(name: str) -> Callable[..., Any]:
    """The simulator's own function for a kernel name, even while a mutant replaces it
    (a mutant file's replacement can call it to change only part of the behaviour)."""
    if name in _SIM_ORIGINALS:
        return _SIM_ORIGINALS[name]
    return _model_original(name, "(original)")


def resolve(spec: str) -> list[Mutant]:
    """Mutants for ``--mutant``: a built-in name, or a mutant file (``*.py``)."""
    if spec in BUILTIN:
        return [BUILTIN[spec]]
    path = Path(spec)
    if spec.endswith(".py") or path.exists():
        return load_mutant_file(path)
    close = difflib.get_close_matches(spec, list(BUILTIN), n=3)
    raise MutantError(f"unknown mutant {spec!r}", where="--mutant",
                      why="it is neither a built-in mutant nor a *.py mutant file",
                      todo=(f"did you mean {', '.join(close)}? " if close else "")
                      + "`pfmodel mutants --list` lists the built-in ones")


def load_mutant_file(path: str | Path) -> list[Mutant]:
    """Load the mutants a Python file declares (docs/mutants.md).

    The file is either a list ``MUTANTS`` of ``Mutant`` objects, or one mutant given by:
    ``NAME`` (default: the file's stem), ``DESCRIPTION`` (default: the module docstring),
    and its replacements: every top-level function whose name is a kernel function of the
    simulator (``pfmodel.sim.run.KERNEL_FUNCTIONS``) replaces that function, or a dict
    ``REPLACES`` {kernel name: function} if given; optionally ``MODEL`` {model location:
    action} for the model.
    """
    path = Path(path)
    if not path.is_file():
        raise MutantError("no such mutant file", where=str(path), todo="check the path")
    module_name = f"pfmodel_mutant_file_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise MutantError("cannot load the file as Python", where=str(path))
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except SyntaxError as e:
        raise MutantError(f"syntax error: {e.msg} (line {e.lineno})", where=str(path),
                          todo="fix the mutant file") from None
    finally:
        sys.modules.pop(module_name, None)
    found = getattr(module, "MUTANTS", None)
    if found is not None:
        mutants = list(found)
        bad = [m for m in mutants if not isinstance(m, Mutant)]
        if bad or not mutants:
            raise MutantError("MUTANTS must be a non-empty list of pfmodel.mutants.Mutant", where=str(path))
        return [Mutant(**{**m.__dict__, "source": str(path), "theme": m.theme or "file"}) for m in mutants]

    replaces = getattr(module, "REPLACES", None)
    if replaces is None:
        replaces = {name: fn for name, fn in vars(module).items()
                    if inspect.isfunction(fn) and fn.__module__ == module_name and name in KERNEL_FUNCTIONS}
    if not isinstance(replaces, dict) or not all(callable(f) for f in replaces.values()):
        raise MutantError("REPLACES must be a dict {kernel function name: function}", where=str(path))
    unknown = sorted(set(replaces) - set(KERNEL_FUNCTIONS))
    if unknown:
        close = difflib.get_close_matches(unknown[0], list(KERNEL_FUNCTIONS), n=3)
        raise MutantError(f"{unknown[0]!r} is not a kernel function of the simulator", where=str(path),
                          todo=(f"did you mean {', '.join(close)}? " if close else "")
                          + "see pfmodel.sim.run.KERNEL_FUNCTIONS")
    model_actions = getattr(module, "MODEL", {}) or {}
    if not isinstance(model_actions, dict):
        raise MutantError("MODEL must be a dict {model location: action}", where=str(path))
    patches: list[Any] = [Replace(name, replaces[name]) for name in sorted(replaces)]
    patches += [ModelReplace(pc, model_actions[pc]) for pc in sorted(model_actions)]
    if not patches:
        raise MutantError("the file replaces nothing", where=str(path),
                          why="no top-level function is named after a kernel function, and there is "
                              "no REPLACES, MODEL or MUTANTS",
                          todo="name a function after the kernel function it replaces (e.g. access_error)")
    description = getattr(module, "DESCRIPTION", None) or (module.__doc__ or "").strip()
    name = getattr(module, "NAME", None) or path.stem
    summary = description.splitlines()[0] if description else f"mutant file {path.name}"
    mutant = Mutant(name=name, summary=summary, description=description or summary,
                    patches=tuple(patches), origin=getattr(module, "ORIGIN", "outside"),
                    theme="file", source=str(path))
    mutant.model_overrides()  # check the model locations now: a bad file fails before any run
    return [mutant]


def seq_mutants() -> list[Mutant]:
    """The built-in mutants of historical-bugs.md's single-path (SEQ) items."""
    return [m for m in BUILTIN.values() if m.seq]


__all__ = ["Mutant", "Edit", "Replace", "ModelEdit", "ModelReplace", "MutantError", "BUILTIN",
           "THEMES", "resolve", "load_mutant_file", "original", "seq_mutants", "model_patched"]
