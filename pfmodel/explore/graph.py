"""The state graph of an exploration, and decision coverage.

Nodes are the model's locations (``function:step``) plus one sink per outcome and an
``entry`` node; each edge is an action taken with one decision value
(``label → value``), weighted by the number of paths through it.  Coverage lists, for
every decision of ``pfmodel.trace.DECISIONS``, how many paths took each value, and the
values no path reaches: either unreachable by design (said why), or a vacuity warning
(a branch nobody explores, so no property says anything about it).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterable

import networkx as nx

from ..model.actions import INITIAL
from ..model.inputs import ARCHES, DEFAULT_SCOPES
from ..trace import DECISIONS
from .exhaustive import Explorer

ENTRY = "entry"

# Decision values the model can never take, and why (so they are not vacuity warnings).
UNREACHABLE_BY_DESIGN: dict[tuple[str, str], str] = {
    ("vm_fault_sigsegv", "false"): "mm_fault_error's BUG(): no handle_mm_fault result gets there (outcome_total)",
    ("pmd_trans_huge_after_alloc", "true"): "a huge pmd appearing under us needs a concurrent fault (single-CPU model)",
    ("swap_entry_kind", "bad"): "with CONFIG_MIGRATION and CONFIG_MEMORY_FAILURE every type >= 29 is hwpoison or migration",
    ("guard_prev_growsdown", "false"): "expand_stack refuses to grow next to a non-stack vm_prev, and the layout "
                                       "has no stack starting right at one",
    ("v8086_mode", "true"): "the model's tasks never run in vm86 mode",
    ("next_blocks_growth", "true"): "seed variant: in the layout no VMA starts right above a page below a stack",
    ("vm_growsup", "true"): "seed variant: VM_GROWSUP is 0 on x86, so expand_upwards always refuses",
}
# Whole labels the model never takes.
UNMODELLED_LABELS: dict[str, str] = {
    "upwards_no_wrap": "seed variant: after vm_growsup, which is always false on x86",
    "address_above_vm_end": "seed variant: after vm_growsup, which is always false on x86",
    "pgoff_no_overflow": "seed variant: after vm_growsup, which is always false on x86",
}


@dataclass
class Coverage:
    counts: Counter = field(default_factory=Counter)      # (label, value) -> paths
    by_design: list[tuple[str, str, str]] = field(default_factory=list)
    vacuous: list[tuple[str, str]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "reached": [{"label": label, "value": value, "paths": n}
                        for (label, value), n in sorted(self.counts.items())],
            "unreached_by_design": [{"label": label, "value": value, "why": why} for label, value, why in self.by_design],
            "vacuous": [{"label": label, "value": value} for label, value in self.vacuous],
        }


def build_graph(arches: Iterable[str] = ARCHES, scopes: Iterable[str] = DEFAULT_SCOPES) -> tuple[nx.DiGraph, Coverage]:
    """Explore and fold every path into the location graph; compute decision coverage."""
    g = nx.DiGraph()
    g.add_node(ENTRY, kind="entry")
    edges: Counter = Counter()
    cov = Coverage()
    nodes: dict[str, str] = {}
    for arch in arches:
        for scope in scopes:
            ex = Explorer(arch, scope)
            for p in ex.paths():
                prev = ENTRY
                prev_key: tuple[str, str] | None = None
                for st in p.steps:
                    nodes.setdefault(st.pc, "location")
                    edges[(prev, st.pc, prev_key)] += 1
                    prev, prev_key = st.pc, (st.label, st.value)
                    cov.counts[(st.label, st.value)] += 1
                sink = f"outcome: {p.outcome}"
                nodes.setdefault(sink, "outcome")
                edges[(prev, sink, prev_key)] += 1
    for name, kind in sorted(nodes.items()):
        g.add_node(name, kind=kind, function=name.split(":")[0] if kind == "location" else "")
    for (src, dst, key), n in sorted(edges.items(), key=lambda kv: (kv[0][0], kv[0][1], str(kv[0][2]))):
        label = "" if key is None else f"{key[0]} → {key[1]}"
        if g.has_edge(src, dst):
            data = g.edges[src, dst]
            data["label"] = data["label"] + "\n" + label if label and label not in data["label"] else data["label"]
            data["paths"] += n
        else:
            g.add_edge(src, dst, label=label, paths=n,
                       decision="" if key is None else key[0], value="" if key is None else key[1])
    g.graph["entry_location"] = INITIAL
    _vacuity(cov)
    return g, cov


def _vacuity(cov: Coverage) -> None:
    seen_labels = {label for label, _ in cov.counts}
    for label, d in DECISIONS.items():
        values = d.values or ()
        if not values:
            if label not in seen_labels:
                why = UNMODELLED_LABELS.get(label)
                if why:
                    cov.by_design.append((label, "*", why))
                else:
                    cov.vacuous.append((label, "*"))
            continue
        for v in values:
            if (label, v) in cov.counts:
                continue
            why = UNREACHABLE_BY_DESIGN.get((label, v)) or UNMODELLED_LABELS.get(label)
            if why:
                cov.by_design.append((label, v, why))
            else:
                cov.vacuous.append((label, v))


def to_dot(g: nx.DiGraph) -> str:
    def q(s: str) -> str:
        return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    lines = ["digraph pfmodel {", "  rankdir=TB;", '  node [shape=box, fontname="monospace", fontsize=10];']
    for n, data in g.nodes(data=True):
        shape = {"entry": "circle", "outcome": "doubleoctagon"}.get(data.get("kind"), "box")
        lines.append(f"  {q(n)} [shape={shape}];")
    for a, b, data in g.edges(data=True):
        lines.append(f"  {q(a)} -> {q(b)} [label={q(data['label'] + ' (' + str(data['paths']) + ')')}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def to_json(g: nx.DiGraph, cov: Coverage | None = None) -> str:
    data = nx.node_link_data(g, edges="links") if "edges" in nx.node_link_data.__code__.co_varnames else nx.node_link_data(g)
    if cov is not None:
        data["coverage"] = cov.to_json()
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def to_graphml(g: nx.DiGraph) -> str:
    return "\n".join(nx.generate_graphml(g)) + "\n"


__all__ = ["build_graph", "Coverage", "to_dot", "to_json", "to_graphml", "UNREACHABLE_BY_DESIGN"]
