"""`pfmodel graph` (the state graph and coverage) and `pfmodel table` (eager outcome tables)."""

from __future__ import annotations

import csv
import io
import json

import networkx as nx
import pytest
from click.testing import CliRunner

from pfmodel.cli import cli
from pfmodel.explore.graph import ENTRY, build_graph
from pfmodel.explore.table import build_table
from pfmodel.model.actions import ACTIONS
from pfmodel.trace import DECISIONS


def invoke(*args):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.fixture(scope="module")
def graph():
    return build_graph(["i386-pae"], ["handler", "stack"])


def test_graph_nodes_are_locations_and_outcome_sinks(graph):
    g, cov = graph
    kinds = nx.get_node_attributes(g, "kind")
    assert kinds[ENTRY] == "entry"
    sinks = [n for n, k in kinds.items() if k == "outcome"]
    assert any("sigsegv" in s for s in sinks) and any("fixup" in s for s in sinks)
    for n, k in kinds.items():
        if k == "location":
            assert n in ACTIONS
        if k == "outcome":
            assert g.out_degree(n) == 0
    assert g.in_degree(ENTRY) == 0


def test_graph_path_weights_add_up(graph):
    """Every path leaves the entry once and reaches exactly one outcome sink."""
    g, _ = graph
    out_of_entry = sum(d["paths"] for _, _, d in g.out_edges(ENTRY, data=True))
    into_sinks = sum(d["paths"] for n, k in g.nodes(data="kind") if k == "outcome"
                     for _, _, d in g.in_edges(n, data=True))
    assert out_of_entry == into_sinks > 1000
    for a, b, d in g.edges(data=True):
        if a != ENTRY:
            assert d["decision"] in DECISIONS


def test_coverage_splits_unreached_values_into_by_design_and_vacuous(graph):
    _, cov = graph
    assert cov.counts[("fault_in_kernel_space", "true")] > 0
    labels = {label for label, _, _ in cov.by_design}
    assert "vm_fault_sigsegv" in labels              # BUG() is unreachable by design
    # handler+stack alone never reach the swap path: a vacuity warning, not a silent gap
    assert ("swap_entry_kind", "swap") in cov.vacuous


def test_graph_command_exports_every_format(tmp_path):
    for fmt in ("dot", "graphml", "json"):
        out = tmp_path / f"g.{fmt}"
        r = invoke("graph", "--format", fmt, "--out", str(out), "--arch", "x86_64", "--scope", "hooks")
        assert r.exit_code in (0, 1), r.output
        assert "wrote" in r.output and out.stat().st_size > 1000
    doc = json.loads((tmp_path / "g.json").read_text())
    assert doc["directed"] and doc["coverage"]["reached"]
    g = nx.read_graphml(tmp_path / "g.graphml")
    assert g.number_of_nodes() > 20
    assert (tmp_path / "g.dot").read_text().startswith("digraph pfmodel {")


def test_graph_default_scopes_leave_no_vacuous_decision():
    r = invoke("graph", "--format", "json", "--out", "/dev/null")
    assert r.exit_code == 0, r.output
    assert "0 never reached" in r.output


def test_table_error_code_by_vm_flags_for_a_none_pte_in_user_mode():
    tb = build_table("x86_64", "error_code", "vm_flags", ["pte=none", "mode=user", "cpu.smap=false"])
    cell = {(c.row.split()[1], c.col): c for row in tb.cells for c in row}
    assert cell[("W|U", "R")].text() == "sigsegv SEGV_ACCERR"           # write to a read-only VMA
    assert cell[("W|U", "RW")].text() == "handled via handle_mm_fault"
    assert cell[("U", "W")].text() == "handled via handle_mm_fault"     # a write-only VMA allows reads
    assert cell[("U", "NONE")].text() == "sigsegv SEGV_ACCERR"          # PROT_NONE
    assert cell[("P|U|RSVD", "RW")].text() == "oops: bad_pagetable"
    assert not cell[("W|I", "RW")].possible                              # a fetch is not a write
    assert not tb.disagreements


def test_table_explore_rest_lists_every_outcome_of_a_cell():
    tb = build_table("i386-pae", "mode", "kind", ["error_code=0x4", "vm_flags=RW", "pte=none"], explore_rest="mm")
    user_file = [c for row in tb.cells for c in row if c.row == "user" and c.col == "file"][0]
    assert user_file.paths > 10 and len(user_file.outcomes) > 3
    assert not tb.disagreements


@pytest.mark.parametrize("fmt", ["text", "markdown", "csv", "json"])
def test_table_command_formats(fmt):
    r = invoke("table", "--rows", "pte", "--cols", "mode", "--set", "error_code=0x7", "--set", "vm_flags=RW",
               "--arch", "i386-pae", "--format", fmt)
    assert r.exit_code == 0, r.output
    if fmt == "json":
        doc = json.loads(r.output)
        assert doc["rows"] == "pte" and doc["columns"] == ["user", "kernel"]
    elif fmt == "csv":
        rows = list(csv.reader(io.StringIO(r.output)))
        assert rows[0][1:] == ["user", "kernel"] and len(rows) == 10
    elif fmt == "markdown":
        assert r.output.startswith("| pte \\ mode | user | kernel |")
    assert "hwpoison" in r.output


def test_table_bad_dimension_is_exit_2():
    r = CliRunner().invoke(cli, ["table", "--rows", "colour"])
    assert r.exit_code == 2 and "unknown dimension" in r.output
    r = CliRunner().invoke(cli, ["table", "--set", "pte=purple"])
    assert r.exit_code == 2 and "unknown value" in r.output


def test_error_code_by_vm_flags_by_pte_conforms_everywhere():
    """The full eager product of the three dimensions of issue #3, every cell run on the simulator."""
    from pfmodel.explore.table import build_tables

    tables = build_tables("i386-pae", "error_code", "vm_flags", "pte", ["mode=user", "cpu.smap=false"])
    assert [t.page.split("=")[1] for t in tables][:3] == ["none", "ro", "ro_old"]
    cells = [c for t in tables for row in t.cells for c in row if c.possible]
    assert len(cells) > 700 and not any(c.disagreements for c in cells)
    by = {(t.page, c.row.split()[1], c.col): c.text() for t in tables for row in t.cells for c in row}
    assert by[("pte=hwpoison", "U", "RW")] == "sigbus BUS_MCEERR_AR"
    assert by[("pte=ro", "P|W|U", "RW")] == "handled via handle_mm_fault"   # COW
    assert by[("pte=ro", "P|W|U", "R")] == "sigsegv SEGV_ACCERR"


def test_table_pages_option():
    r = invoke("table", "--rows", "mode", "--cols", "kind", "--pages", "pte", "--set", "error_code=0x4",
               "--arch", "i386-pae", "--format", "json")
    assert r.exit_code == 0, r.output
    docs = json.loads(r.output)
    assert len(docs) == 9 and docs[0]["page"] == "pte=none"
