"""Properties: named statements about every run of the handler, loaded from property files.

A property file is a Python file that declares properties with ``@prop``::

    from pfmodel.properties import prop

    @prop(name="kernel_address_lockless", expected="holds",
          statement="A fault at a kernel-space address never takes mmap_sem ...",
          rationale="1.1: the kernel-address branch may run in any context ...",
          when=lambda r: r.took("fault_in_kernel_space", "true"))
    def _(r):
        return not r.changes("mmap_sem") and not r.calls

Each property has a name, a statement in words, the kernel rationale, the predicate,
and the expected verdict: ``holds`` (true of the real kernel), or ``violated`` (a belief
that is false of the kernel, kept because its counterexample is the lesson).  ``when``
is the premise: the paths the property is about (a property whose premise no path
meets is reported as vacuous).  ``on="simulator"`` evaluates the predicate on the
simulator's run of the path's concrete scenario (``r.sim``) as well.

Predicates are evaluated on a ``RunView`` of one path.  Structural facts (the outcome,
the decisions taken, the state changes) are plain Python; facts about input data
(addresses, sp, error code, vm_flags, PTE bits) are computed with the operations layer
``r.o`` on ``r.word(...)``, so the same predicate can be evaluated by a symbolic engine.
A predicate returns a Python bool or an ops Bool.  If it reads an input the path never
bound, the exhaustive engine evaluates it for every value of that input's domain.

The library shipped with pfmodel lives in the top-level ``properties/`` folder (installed
as the package ``pfmodel.library``); ``load_properties`` reads it and any folder a user
names.
"""

from __future__ import annotations

import importlib.resources
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from .errors import PropertyError
from .model.inputs import NeedInput, Space
from .model.ops import EBool, EWord, ExplicitOps, LazyWord
from .outcome import Outcome

HOLDS = "holds"
VIOLATED = "violated"
UNKNOWN = "unknown"
EXPECTED = (HOLDS, VIOLATED)


@dataclass(frozen=True)
class Property:
    name: str
    statement: str
    rationale: str
    expected: str
    predicate: Callable[["RunView"], Any]
    when: Callable[["RunView"], Any] | None = None
    on: str = "model"                   # "model", or "simulator" (needs the simulator's run)
    source: str = ""
    tags: tuple[str, ...] = ()

    @property
    def needs_simulator(self) -> bool:
        return self.on == "simulator"


_COLLECTING: list[Property] | None = None


def prop(*, name: str, statement: str, rationale: str, expected: str = HOLDS,
         when: Callable[["RunView"], Any] | None = None, on: str = "model",
         tags: Iterable[str] = ()) -> Callable[[Callable[["RunView"], Any]], Property]:
    """Declare a property whose predicate is the decorated function."""
    def deco(fn: Callable[["RunView"], Any]) -> Property:
        p = Property(name=name, statement=" ".join(statement.split()), rationale=" ".join(rationale.split()),
                     expected=expected, predicate=fn, when=when, on=on, tags=tuple(tags))
        _validate(p, "")
        if _COLLECTING is not None:
            _COLLECTING.append(p)
        return p
    return deco


def _validate(p: Property, where: str) -> None:
    if not p.name or not p.name.replace("_", "").isalnum():
        raise PropertyError(f"property name {p.name!r} is not an identifier", where=where,
                            todo="use lower_case_with_underscores")
    if p.expected not in EXPECTED:
        raise PropertyError(f"property {p.name}: expected verdict {p.expected!r} is not one of "
                            f"{', '.join(EXPECTED)}", where=where)
    if p.on not in ("model", "simulator"):
        raise PropertyError(f"property {p.name}: on={p.on!r} must be 'model' or 'simulator'", where=where)
    if not p.statement or not p.rationale:
        raise PropertyError(f"property {p.name}: a statement and a kernel rationale are required", where=where)


# ---------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------

def _run_file(text: str, source: str) -> list[Property]:
    global _COLLECTING
    outer = _COLLECTING
    _COLLECTING = []
    try:
        namespace: dict[str, Any] = {"__name__": f"pfmodel_property_file_{Path(source).stem}", "__file__": source}
        try:
            exec(compile(text, source, "exec"), namespace)  # noqa: S102 - property files are code by design
        except PropertyError:
            raise
        except SyntaxError as e:
            raise PropertyError(f"syntax error: {e.msg} (line {e.lineno})", where=source,
                                todo="fix the property file") from None
        found = list(_COLLECTING)
        for value in namespace.values():
            if isinstance(value, Property) and value not in found:
                found.append(value)
        return [Property(**{**p.__dict__, "source": source}) for p in found]
    finally:
        _COLLECTING = outer


def _library_files() -> list[tuple[str, str]]:
    root = importlib.resources.files("pfmodel.library")
    out = []
    for entry in sorted(root.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".py") and not entry.name.startswith("_"):
            out.append((f"pfmodel.library/{entry.name}", entry.read_text()))
    return out


def load_properties(folders: Iterable[str | Path] = (), *, builtin: bool = True) -> list[Property]:
    """The built-in library (unless ``builtin`` is false) and every ``*.py`` in ``folders``."""
    files: list[tuple[str, str]] = _library_files() if builtin else []
    for folder in folders:
        path = Path(folder)
        if path.is_file() and path.suffix == ".py":
            files.append((str(path), path.read_text()))
            continue
        if not path.is_dir():
            raise PropertyError("no such folder or property file", where=str(path),
                                todo="give a folder of *.py property files, or one such file")
        found = sorted(p for p in path.glob("*.py") if not p.name.startswith("_"))
        if not found:
            raise PropertyError("the folder has no *.py property files", where=str(path))
        files.extend((str(p), p.read_text()) for p in found)
    props: list[Property] = []
    seen: dict[str, str] = {}
    for source, text in files:
        for p in _run_file(text, source):
            if p.name in seen:
                raise PropertyError(f"property {p.name!r} is defined twice", where=source,
                                    why=f"also in {seen[p.name]}", todo="rename one of them")
            seen[p.name] = source
            props.append(p)
    return props


def select(props: list[Property], names: Iterable[str]) -> list[Property]:
    names = list(names)
    if not names:
        return props
    by_name = {p.name: p for p in props}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise PropertyError(f"unknown property {unknown[0]!r}",
                            todo="known: " + ", ".join(sorted(by_name)))
    return [by_name[n] for n in names]


# ---------------------------------------------------------------------------------
# The view a predicate sees, and evaluation
# ---------------------------------------------------------------------------------

class RunView:
    """One path as a predicate sees it (and, for simulator properties, the simulator's run)."""

    def __init__(self, path: Any, space: Space, extra: dict[str, Any] | None = None, sim: Any = None) -> None:
        self.path = path
        self.space = space
        self.arch = space.arch
        self.layout = space.layout
        self.extra = extra or {}
        self.sim = sim
        self.o = ExplicitOps()
        self.o.resolve_group = self._raw
        self.outcome: Outcome = path.outcome
        self.steps = path.steps
        self.final = path.final
        self._keys: set[tuple[str, str]] | None = None
        self._labels: set[str] | None = None
        self._changes: dict[str, list[Any]] | None = None
        self._calls: list[int] | None = None

    # -- inputs --------------------------------------------------------------------
    def _raw(self, name: str) -> Any:
        try:
            return self.path.bindings[name]
        except KeyError:
            pass
        try:
            return self.extra[name]
        except KeyError:
            raise NeedInput(name) from None

    def word(self, name: str) -> Any:
        """An input word (``address``, ``sp``, ``error_code``, ``T.flags``, ``pte``, ...)."""
        decl = self.space.words.get(name)
        if decl is not None:
            mask = 0
            for _, gmask in decl.groups:
                mask |= gmask
            return LazyWord(decl, mask & ((1 << decl.width) - 1), decl.fixed)
        return EWord(self._raw(name), self.space.inputs[name].width)

    def bool(self, name: str) -> EBool:
        return self.o.bool_(bool(self._raw(name)))

    def choice(self, name: str) -> Any:
        return self._raw(name)

    # -- structure -----------------------------------------------------------------
    def _index(self) -> None:
        cached = getattr(self.path, "_view_index", None)
        if cached is None:
            keys = {(st.label, st.value) for st in self.steps}
            labels = {st.label for st in self.steps}
            changes: dict[str, list[Any]] = {}
            for st in self.steps:
                if st.changes:
                    for k, v in st.changes.items():
                        changes.setdefault(k, []).append(v)
            cached = (keys, labels, changes)
            try:
                self.path._view_index = cached
            except AttributeError:
                pass
        self._keys, self._labels, self._changes = cached

    def took(self, label: str, value: str | None = None) -> bool:
        """Was decision ``label`` taken (with ``value``, if given) on this path?"""
        if self._keys is None:
            self._index()
        if value is None:
            return label in self._labels  # type: ignore[operator]
        return (label, value) in self._keys  # type: ignore[operator]

    def values(self, label: str) -> list[str]:
        return [st.value for st in self.steps if st.label == label]

    def changes(self, key: str) -> list[Any]:
        """The values of one kind of state change, in order (``r.changes("mmap_sem")``)."""
        if self._keys is None:
            self._index()
        return list(self._changes.get(key, ()))  # type: ignore[union-attr]

    @property
    def calls(self) -> list[int]:
        """The FAULT_FLAG_* word of each handle_mm_fault call."""
        if self._calls is None:
            self._calls = [int(v, 16) for v in self.changes("mm_fault_call")]
        return self._calls

    @property
    def vma_flags(self) -> Any:
        """vm_flags of the VMA find_vma returned (None if there was none)."""
        vma = self.final.vma
        return None if vma is None else self.word(self.layout.vma(vma).flags)


def truth(value: Any) -> bool:
    if value is True or value is False:
        return value
    if isinstance(value, EBool):
        return value.v
    raise PropertyError(f"a predicate returned {value!r}; it must return a bool or an ops Bool")


@dataclass
class Evaluation:
    applies: bool
    holds: bool
    extra: dict[str, Any] = field(default_factory=dict)   # input values a violation needed


def evaluate(prop_: Property, path: Any, space: Space, sim: Any = None) -> Evaluation:
    """Evaluate one property on one path; inputs the path left unbound are enumerated."""
    todo: list[dict[str, Any]] = [{}]
    applies = False
    while todo:
        extra = todo.pop()
        view = RunView(path, space, extra, sim)
        try:
            if prop_.when is not None and not truth(prop_.when(view)):
                continue
            applies = True
            ok = truth(prop_.predicate(view))
        except NeedInput as e:
            name = e.name
            for _ in range(64):
                try:
                    values = space.domain(name, view._raw)
                    break
                except NeedInput as e2:
                    name = e2.name
            todo.extend({**extra, name: v} for v in reversed(values))
            continue
        if not ok:
            return Evaluation(True, False, extra)
    return Evaluation(applies, True)


__all__ = ["Property", "prop", "load_properties", "select", "RunView", "evaluate", "Evaluation",
           "HOLDS", "VIOLATED", "UNKNOWN", "truth"]
