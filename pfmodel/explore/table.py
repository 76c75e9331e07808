"""Eager mode: outcome tables over chosen dimensions (``pfmodel table``).

Where the lazy explorer binds an input only when a guard reads it, a table fixes the
full product of the chosen dimensions (error code x vm_flags x PTE state, say): every
cell is one assignment of those inputs.  The other inputs are either fixed (``--set``,
else their defaults: one path per cell) or explored lazily within a scope
(``--explore-rest``: every path of the cell, and the cell lists its outcomes).  Every
cell is also run on the simulator; a disagreement marks the cell and fails the command.

A dimension is a named list of (label, assignment of inputs): ``error_code``, ``mode``,
``vm_flags``, ``kind``, ``pte``, ``pmd``, ``address``, or the name of any single input
(``env.oom``, ``cpu.smap``, ...), which then ranges over its whole domain.
"""

from __future__ import annotations

import csv
import io
import itertools
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from ..errors import UsageError
from ..model.inputs import PMD_KINDS, RWX_NAMES, NeedInput, Space, build_space, pte_kind_values, soft_dirty
from ..scenario import outcome_text
from ..x86.constants import (
    PF_INSTR, PF_PROT, PF_RSVD, PF_USER, PF_WRITE, _PAGE_ACCESSED, _PAGE_DIRTY, _PAGE_RW, _PAGE_SPECIAL,
)
from .conformance import check_path
from .exhaustive import Explorer


@dataclass
class Dim:
    name: str
    doc: str
    values: list[tuple[str, dict[str, Any]]]


def _ec_label(code: int) -> str:
    names = [n for n, b in (("P", PF_PROT), ("W", PF_WRITE), ("U", PF_USER), ("RSVD", PF_RSVD), ("I", PF_INSTR))
             if code & b]
    return "|".join(names) if names else "0"


def dimensions(space: Space) -> dict[str, Dim]:
    arch = space.arch
    sd = soft_dirty(arch)
    table = PMD_KINDS["table"]
    dims: dict[str, Dim] = {}
    codes = []
    for bits in itertools.product([0, PF_PROT], [0, PF_WRITE], [0, PF_USER], [0, PF_RSVD], [0, PF_INSTR]):
        code = sum(bits)
        codes.append((code, {"ec.P": bits[0], "ec.W": bits[1], "ec.U": bits[2], "ec.RSVD": bits[3], "ec.I": bits[4]}))
    dims["error_code"] = Dim("error_code", "the hardware error code (P, W, U, RSVD, I bits)",
                             [(f"{c:#x} {_ec_label(c)}", a) for c, a in sorted(codes, key=lambda x: x[0])])
    dims["mode"] = Dim("mode", "the CPU mode at the fault", [("user", {"user_mode": True}), ("kernel", {"user_mode": False})])
    dims["vm_flags"] = Dim("vm_flags", "T's VM_READ/VM_WRITE/VM_EXEC",
                           [(RWX_NAMES[v], {"T.flags.rwx": v}) for v in sorted(RWX_NAMES)])
    dims["kind"] = Dim("kind", "what backs T", [(k, {"T.kind": k}) for k in ("anon", "file", "hugetlb")])

    kinds = pte_kind_values(arch)

    def present(rw: int, a: int, d: int, special: int = 0) -> dict[str, Any]:
        return {"pmd.kind": table, "pte.kind": kinds["present"], "pte.rw": rw, "pte.accessed": a, "pte.dirty": d,
                "pte.special": special}
    ptes = [
        ("none", {"pmd.kind": table, "pte.kind": 0}),
        ("ro", present(0, _PAGE_ACCESSED, 0)),
        ("ro_old", present(0, 0, 0)),
        ("rw_clean", present(_PAGE_RW, _PAGE_ACCESSED, 0)),
        ("rw_dirty", present(_PAGE_RW, _PAGE_ACCESSED, _PAGE_DIRTY | sd)),
        ("zero_page", present(0, _PAGE_ACCESSED, 0, _PAGE_SPECIAL)),
        ("swap", {"pmd.kind": table, "pte.kind": kinds["swap"]}),
        ("migration", {"pmd.kind": table, "pte.kind": kinds["migration"]}),
        ("hwpoison", {"pmd.kind": table, "pte.kind": kinds["hwpoison"]}),
    ]
    if arch == "x86_64":
        ptes.append(("numa_hint", {"pmd.kind": table, "kernel.numa_balancing": True, "pte.kind": kinds["protnone"]}))
    dims["pte"] = Dim("pte", "the PTE of the faulting address", ptes)
    pmds = [("none", {"pmd.kind": PMD_KINDS["none"]}), ("table", {"pmd.kind": table}),
            ("huge_ro", {"pmd.kind": PMD_KINDS["huge"], "pmd.rw": 0}),
            ("huge_rw", {"pmd.kind": PMD_KINDS["huge"], "pmd.rw": _PAGE_RW}),
            ("splitting", {"pmd.kind": PMD_KINDS["splitting"]})]
    if arch == "x86_64":
        pmds.append(("numa_hint", {"pmd.kind": PMD_KINDS["protnone"], "kernel.numa_balancing": True}))
    dims["pmd"] = Dim("pmd", "the pmd of the faulting address", pmds)
    dims["address"] = Dim("address", "the faulting address, by boundary class",
                          [(name, {"address": v}) for name, v in space.layout.addresses])
    return dims


def dimension(space: Space, name: str) -> Dim:
    dims = dimensions(space)
    if name in dims:
        return dims[name]
    if name in space.inputs:
        inp = space.full[name]
        if callable(inp.domain):
            raise UsageError(f"input {name!r} has a domain that depends on other inputs",
                             todo="use it with --set, or a named dimension: " + ", ".join(dims))
        return Dim(name, inp.doc, [(inp.show(v), {name: v}) for v in inp.domain])
    raise UsageError(f"unknown dimension {name!r}",
                     todo="use one of: " + ", ".join(dims) + ", or an input name (see --list)")


def parse_setting(space: Space, text: str) -> dict[str, Any]:
    """``pte=none`` (a dimension value) or ``env.oom=killed`` / ``cpu.smap=false`` (an input)."""
    if "=" not in text:
        raise UsageError(f"--set {text!r} is not NAME=VALUE", todo="for example --set pte=none or --set cpu.smap=false")
    name, value = (t.strip() for t in text.split("=", 1))
    dims = dimensions(space)
    if name in dims:
        for label, assignment in dims[name].values:
            if label == value or label.split(" ")[-1] == value or label.split(" ")[0] == value:
                return dict(assignment)
        raise UsageError(f"--set {name}: unknown value {value!r}",
                         todo="use one of: " + ", ".join(label for label, _ in dims[name].values))
    if name not in space.inputs:
        raise UsageError(f"--set: unknown dimension or input {name!r}", todo="see pfmodel table --list")
    inp = space.full[name]
    candidates = inp.domain if not callable(inp.domain) else None
    parsed: Any
    low = value.lower()
    if low in ("true", "false"):
        parsed = low == "true"
    else:
        try:
            parsed = int(value, 0)
        except ValueError:
            parsed = value
    if candidates is not None and parsed not in candidates:
        labels = {inp.show(v): v for v in candidates}
        if value in labels:
            parsed = labels[value]
        else:
            raise UsageError(f"--set {name}: {value!r} is not in its domain",
                             todo="use one of: " + ", ".join(inp.show(v) for v in candidates))
    return {name: parsed}


@dataclass
class Cell:
    row: str
    col: str
    assignment: dict[str, Any]
    possible: bool = True
    outcomes: Counter = field(default_factory=Counter)
    paths: int = 0
    disagreements: list[str] = field(default_factory=list)

    def text(self) -> str:
        if not self.possible:
            return "—"
        parts = []
        for o, n in sorted(self.outcomes.items(), key=lambda kv: (-kv[1], kv[0])):
            parts.append(o if len(self.outcomes) == 1 or self.paths == 1 else f"{o} ×{n}")
        text = " / ".join(parts)
        return ("≠ " + text) if self.disagreements else text


@dataclass
class OutcomeTable:
    arch: str
    rows: Dim
    cols: Dim
    fixed: dict[str, Any]
    scope: str | None
    cells: list[list[Cell]]
    page: str = ""          # the value of the page dimension, when there is one

    @property
    def disagreements(self) -> list[str]:
        return [d for row in self.cells for c in row for d in c.disagreements]

    def to_json(self) -> dict[str, Any]:
        return {"arch": self.arch, "page": self.page or None, "rows": self.rows.name, "cols": self.cols.name,
                "fixed": {k: _jsonable(v) for k, v in sorted(self.fixed.items())},
                "explore_rest": self.scope,
                "columns": [label for label, _ in self.cols.values],
                "table": [{"row": row[0].row, "cells": {c.col: {"possible": c.possible, "paths": c.paths,
                                                                 "outcomes": dict(sorted(c.outcomes.items())),
                                                                 "disagreements": c.disagreements}
                                                         for c in row}} for row in self.cells]}

    def to_markdown(self) -> str:
        head = [f"{self.rows.name} \\ {self.cols.name}"] + [label for label, _ in self.cols.values]
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for row in self.cells:
            lines.append("| " + " | ".join([row[0].row] + [c.text() for c in row]) + " |")
        return "\n".join(lines) + "\n"

    def to_csv(self) -> str:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow([f"{self.rows.name}\\{self.cols.name}"] + [label for label, _ in self.cols.values])
        for row in self.cells:
            w.writerow([row[0].row] + [c.text() for c in row])
        return buf.getvalue()


def _jsonable(v: Any) -> Any:
    return v if isinstance(v, (str, int, float, bool)) or v is None else str(v)


def _possible(space: Space, assignment: dict[str, Any]) -> bool:
    """Is every assigned value in its domain, given the others (and defaults)?"""
    values = dict(assignment)

    def get(name: str) -> Any:
        if name not in values:
            values[name] = space.domain(name, get)[0]
        return values[name]
    try:
        return all(v in space.domain(k, get) for k, v in assignment.items())
    except NeedInput:
        return False


def build_table(arch: str, rows: str, cols: str, settings: list[str] = (), *, explore_rest: str | None = None,
                conformance: bool = True, extra: dict[str, Any] | None = None, page: str = "") -> OutcomeTable:
    """One table: rows x cols, with ``settings`` (``NAME=VALUE`` texts) and ``extra`` (an
    assignment of inputs, e.g. one value of a page dimension) fixed."""
    full = build_space(arch, "full")
    row_dim, col_dim = dimension(full, rows), dimension(full, cols)
    fixed: dict[str, Any] = {}
    for text in settings:
        fixed.update(parse_setting(full, text))
    fixed.update(extra or {})
    cells: list[list[Cell]] = []
    for rlabel, rassign in row_dim.values:
        line = []
        for clabel, cassign in col_dim.values:
            assignment = {**fixed, **rassign, **cassign}
            cell = Cell(rlabel, clabel, assignment)
            space = build_space(arch, explore_rest or "full")
            if not _possible(space, assignment):
                cell.possible = False
                line.append(cell)
                continue
            if explore_rest:
                for name, value in assignment.items():
                    space.restrict(name, lambda get, _v=value: [_v])
                paths = list(Explorer(arch, explore_rest, space=space).paths())
            else:
                paths = [Explorer(arch, "full", space=space).one(assignment)]
            for p in paths:
                cell.paths += 1
                cell.outcomes[outcome_text(p.outcome)] += 1
                if conformance:
                    _, dis = check_path(space, explore_rest or "table", p)
                    if dis is not None:
                        cell.disagreements.append(f"{rlabel} × {clabel}: {dis.describe()}")
            line.append(cell)
        cells.append(line)
    return OutcomeTable(arch, row_dim, col_dim, fixed, explore_rest, cells, page)


def build_tables(arch: str, rows: str, cols: str, pages: str | None = None, settings: list[str] = (), *,
                 explore_rest: str | None = None, conformance: bool = True) -> list[OutcomeTable]:
    """The full product of three dimensions as one table per value of ``pages``
    (error code x vm_flags x PTE state, say); a single table without ``pages``."""
    if pages is None:
        return [build_table(arch, rows, cols, settings, explore_rest=explore_rest, conformance=conformance)]
    page_dim = dimension(build_space(arch, "full"), pages)
    return [build_table(arch, rows, cols, settings, explore_rest=explore_rest, conformance=conformance,
                        extra=assignment, page=f"{pages}={label}")
            for label, assignment in page_dim.values]


__all__ = ["build_table", "build_tables", "OutcomeTable", "dimensions", "dimension", "parse_setting"]
