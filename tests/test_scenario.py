"""The scenario format: parsing, defaults, validation messages, canonical output, schema."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pfmodel.errors import ScenarioError
from pfmodel.scenario import (
    ACCESS_FIELDS,
    CPU_FIELDS,
    ENTRY_FIELDS,
    ENV_FIELDS,
    FORMAT,
    KERNEL_FIELDS,
    KERNEL_TEXT_IP,
    REGS_FIELDS,
    TASK_FIELDS,
    TOP_FIELDS,
    VMA_FIELDS,
    Expect,
    _resolved_copy,
    all_spec_fields,
    bits_text,
    build_schema,
    dumps_scenario,
    fields_markdown,
    fingerprint,
    load_schema,
    load_scenario,
    loads_scenario,
    parse_scenario,
    save_scenario,
    scenario_from_spec,
)
from pfmodel.sim.constants import TASK_SIZE_MAX, VM_MAYREAD, VM_READ, VM_STACK_FLAGS, VM_WRITE
from pfmodel.sim.spec import (
    FAULT_RESULTS,
    AccessSpec,
    EntrySpec,
    EnvSpec,
    KernelSpec,
    MachineSpec,
    RegsSpec,
    TaskSpec,
    VmaSpec,
)
from pfmodel.x86.constants import (
    _PAGE_ACCESSED,
    _PAGE_NX,
    _PAGE_PRESENT,
    _PAGE_RW,
    _PAGE_USER,
    PF_PROT,
    PF_WRITE,
    X86_EFLAGS_AC,
    X86_EFLAGS_IF,
)
from pfmodel.x86.paging import ARCHES

ROOT = Path(__file__).resolve().parents[1]

BRIEF_EXAMPLE = {
    "format": "pfmodel-scenario/1", "name": "copy_to_user into a read-only page",
    "access": {"address": "0x601000", "kind": "write", "mode": "kernel"},
    "vmas": [{"start": "0x600000", "end": "0x602000", "flags": "VM_READ|VM_MAYREAD"}],
    "ptes": [{"address": "0x601000", "value": "PRESENT|USER|ACCESSED"}],
    "kernel": {"exception_table": ["ip"]},
    "expect": {"outcome": {"kind": "fixup"}},
}


def doc(**sections):
    """A minimal valid document with some sections replaced."""
    base = {"format": FORMAT, "access": {"address": "0x601000"}}
    base.update(sections)
    return base


def error_of(data, source="") -> ScenarioError:
    with pytest.raises(ScenarioError) as info:
        parse_scenario(data, source=source)
    return info.value


# --- parsing and defaults -----------------------------------------------------------------

def test_brief_example_resolves_to_the_machine_it_describes():
    scn = parse_scenario(BRIEF_EXAMPLE)
    spec = scn.to_spec()
    assert spec.access == AccessSpec(address=0x601000, kind="write", mode="kernel")
    assert spec.vmas == [VmaSpec(start=0x600000, end=0x602000, flags=VM_READ | VM_MAYREAD)]
    assert spec.entries == [EntrySpec(address=0x601000, value=_PAGE_PRESENT | _PAGE_USER | _PAGE_ACCESSED)]
    # a kernel access gets a kernel-text ip; "ip" in the table names that ip
    assert spec.regs.ip == KERNEL_TEXT_IP["x86_64"]
    assert spec.kernel.exception_table == [KERNEL_TEXT_IP["x86_64"]]
    assert scn.name == "copy_to_user into a read-only page"
    assert scn.expect.outcome == {"kind": "fixup"}


def test_only_the_address_is_required_and_everything_else_takes_the_spec_defaults():
    scn = parse_scenario({"access": {"address": 4096}})
    spec = scn.to_spec()
    assert spec.access == AccessSpec(address=4096)
    assert spec.regs == RegsSpec()        # user mode: ip left to the simulator
    assert spec.task == TaskSpec() and spec.env == EnvSpec() and spec.kernel == KernelSpec()
    assert spec.vmas == [] and spec.entries == [] and spec.max_faults == 4
    assert scn.to_json() == {"format": FORMAT, "access": {"address": "0x1000"}}


def test_missing_address_is_named():
    err = error_of({"access": {"kind": "read"}}, source="f.json")
    assert err.where == "f.json: access.address" and "missing" in err.what


def test_a_kernel_access_without_an_exception_table_entry_has_a_kernel_text_ip_not_in_the_table():
    spec = parse_scenario(doc(access={"address": "0x601000", "mode": "kernel"})).spec
    assert spec.regs.ip == KERNEL_TEXT_IP["x86_64"] and spec.kernel.exception_table == []
    spec32 = parse_scenario(doc(arch="i386", access={"address": "0x601000", "mode": "kernel"})).spec
    assert spec32.regs.ip == KERNEL_TEXT_IP["i386"]


def test_ip_extable_adds_the_ip_to_the_exception_table_and_equals_the_ip_form():
    a = parse_scenario(doc(access={"address": "0x601000", "mode": "kernel"}, regs={"ip": "extable"}))
    b = parse_scenario(doc(access={"address": "0x601000", "mode": "kernel"}, kernel={"exception_table": ["ip"]}))
    assert a.spec == b.spec
    assert a.spec.kernel.exception_table == [a.spec.regs.ip]
    assert fingerprint(a) == fingerprint(b)


@pytest.mark.parametrize("written", [3, "3", "0x3", "PF_WRITE|PF_PROT", "PF_PROT | 0x2", " PF_PROT|PF_WRITE "])
def test_numbers_hex_strings_and_named_bits_are_the_same_value(written):
    spec = parse_scenario(doc(access={"address": "0x601000", "error_code": written})).spec
    assert spec.access.error_code == PF_PROT | PF_WRITE


def test_eflags_names_keep_reserved_bit_1_and_ac_alone_clears_if():
    assert parse_scenario(doc(regs={"flags": "IF|AC"})).spec.regs.flags == X86_EFLAGS_IF | X86_EFLAGS_AC | 2
    assert parse_scenario(doc(regs={"flags": "AC"})).spec.regs.flags == X86_EFLAGS_AC | 2
    assert parse_scenario(doc(regs={"flags": 0})).spec.regs.flags == 2


def test_vm_flag_aliases_and_sizes():
    scn = parse_scenario(doc(vmas=[{"start": "0x7ffffffde000", "end": "0x7ffffffff000", "flags": "VM_STACK_FLAGS"}],
                             task={"rlimit_stack": "64KiB", "rlimit_as": "1GiB", "rlimit_memlock": 4096}))
    assert scn.spec.vmas[0].flags == VM_STACK_FLAGS
    assert (scn.spec.task.rlimit_stack, scn.spec.task.rlimit_as, scn.spec.task.rlimit_memlock) == (65536, 1 << 30, 4096)
    out = scn.to_json()
    assert out["task"] == {"rlimit_stack": "64KiB", "rlimit_as": "1GiB", "rlimit_memlock": "4KiB"}
    # output spells the single bits, so the alias is not needed to read it back
    assert "VM_GROWSDOWN" in out["vmas"][0]["flags"] and "VM_STACK_FLAGS" not in out["vmas"][0]["flags"]


def test_pfn_is_combined_with_the_bits_and_written_back_apart():
    scn = parse_scenario(doc(ptes=[{"address": "0x601000", "pfn": "0x1234", "value": "PRESENT|RW|USER|NX"}]))
    value = scn.spec.entries[0].value
    assert value == 0x1234000 | _PAGE_PRESENT | _PAGE_RW | _PAGE_USER | _PAGE_NX
    assert scn.to_json()["ptes"] == [{"address": "0x601000", "pfn": "0x1234", "value": "PRESENT|RW|USER|NX"}]


def test_swap_entries_are_written_raw_not_split_into_frame_and_flags():
    scn = parse_scenario(doc(ptes=[{"address": "0x601000", "value": 0x42 << 9}]))   # swap type 0, offset 0x42
    assert scn.spec.entries[0].value == 0x8400
    assert scn.to_json()["ptes"] == [{"address": "0x601000", "value": "0x8400"}]
    prot_none = parse_scenario(doc(ptes=[{"address": "0x601000", "value": 0x1234120}]))
    assert prot_none.to_json()["ptes"] == [{"address": "0x601000", "pfn": "0x1234", "value": "ACCESSED|PROTNONE"}]


def test_entry_addresses_align_to_their_level_and_entries_is_an_alias_of_ptes():
    scn = parse_scenario(doc(entries=[{"address": "0x601234", "value": 0x67, "level": "pmd", "pfn": 5},
                                      {"address": "0x601234", "value": "PRESENT"}]))
    assert [(e.level, e.address) for e in scn.spec.entries] == [("pmd", 0x600000), ("pte", 0x601000)]
    assert "ptes" in scn.to_json() and "entries" not in scn.to_json()


def test_named_bits_are_chosen_by_context():
    # bit 7 is PAT in a pte and PSE in a pmd; bit 8 is GLOBAL when present, PROTNONE when not
    assert bits_text(0x80 | 1, "bits:pte", level="pte") == "PRESENT|PAT"
    assert bits_text(0x80 | 1, "bits:pte", level="pmd") == "PRESENT|PSE"
    assert bits_text(0x120, "bits:pte") == "ACCESSED|PROTNONE"
    assert bits_text(0x101, "bits:pte") == "PRESENT|GLOBAL"
    assert bits_text(1 << 50 | 1, "bits:pte") == "PRESENT|0x4000000000000"
    assert bits_text(0, "bits:vm") == "0"


def test_expect_fields_parse_and_outcome_shorthand():
    scn = parse_scenario(doc(expect={"outcome": "fixup", "faults": 1,
                                     "trace_contains": ["access_error -> true", "find_vma"],
                                     "final": {"vma_start": "0x1000"}}))
    assert scn.expect.outcome == {"kind": "fixup"}
    assert scn.expect.trace_contains == ["access_error → true", "find_vma"]
    assert scn.expect.faults == 1 and scn.expect.final == {"vma_start": "0x1000"}


# --- validation errors: the path, what was wrong, what to do -------------------------------

@pytest.mark.parametrize("data, where, what", [
    (doc(bogus=1), "bogus", "unknown field 'bogus'"),
    (doc(access={"address": "0x1000", "knd": "read"}), "access.knd", "unknown field 'knd'"),
    (doc(vmas=[{"start": "0x600000", "end": "0x601000", "flags": "VM_READ"},
               {"start": "0x700000", "end": "0x701000", "flags": "VM_READ|VM_RAED"}]), "vmas[1].flags",
     "unknown bit name 'VM_RAED'"),
    (doc(access={"address": True}), "access.address", "expected an address"),
    (doc(access={"address": "0x1000", "kind": "exec"}), "access.kind", "not one of the allowed values"),
    (doc(cpu={"smap": "yes"}), "cpu.smap", "expected true or false"),
    (doc(vmas={}), "vmas", "expected a list"),
    (doc(access={"address": "0x0000800000000000"}), "access.address", "not canonical"),
    (doc(arch="i386", access={"address": "0x100000000"}), "access.address", "does not fit in 32 bits"),
    (doc(access={"address": "0x1000"}, regs={"sp": -4}), "regs.sp", "negative"),
    (doc(access={"address": "banana"}), "access.address", "not a number"),
    (doc(vmas=[{"start": "0x600010", "end": "0x601000", "flags": 1}]), "vmas[0].start", "not page aligned"),
    (doc(vmas=[{"start": "0x601000", "end": "0x601000", "flags": 1}]), "vmas[0].end", "not above start"),
    (doc(arch="i386", vmas=[{"start": "0xbffff000", "end": "0xc0001000", "flags": 1}]), "vmas[0].end",
     "above TASK_SIZE_MAX"),
    (doc(vmas=[{"start": "0x600000", "end": "0x603000", "flags": 1},
               {"start": "0x602000", "end": "0x604000", "flags": 1}]), "vmas[1]", "overlaps vmas[0]"),
    (doc(vmas=[{"start": "0x600000", "end": "0x603000"}]), "vmas[0].flags", "missing required field"),
    (doc(ptes=[{"address": "0x601000", "value": "PRESENT|WRITE"}]), "ptes[0].value", "unknown bit name 'WRITE'"),
    (doc(ptes=[{"address": "0x601000", "value": 1}, {"address": "0x601fff", "value": 3}]), "ptes[1]",
     "a second pte entry"),
    (doc(arch="i386-pae", ptes=[{"address": "0x601000", "value": 1, "level": "pud"}]), "ptes[0].level", "folded"),
    (doc(arch="i386", ptes=[{"address": "0x601000", "value": "PRESENT|NX"}]), "ptes[0].value",
     "does not fit a 32-bit entry"),
    (doc(ptes=[{"address": "0x601000", "value": 1, "pfn": 1 << 40}]), "ptes[0].pfn", "does not fit"),
    (doc(ptes=[{"address": "0x601000", "value": 0x1001, "pfn": 1}]), "ptes[0].pfn", "overlaps"),
    (doc(regs={"ip": "extable"}), "regs.ip", "kernel-mode accesses"),
    (doc(kernel={"exception_table": ["ip"]}), "kernel.exception_table[0]", "regs.ip, which is not set"),
    (doc(access={"address": "0x1000", "mode": "kernel", "implicit": True}), "access.implicit", "CPL 3"),
    (doc(task={"has_mm": False}, vmas=[{"start": "0x600000", "end": "0x601000", "flags": 1}]), "task.has_mm",
     "no VMAs"),
    (doc(regs={"vm86": True}), "regs.vm86", "32-bit"),
    (doc(arch="i386", access={"address": 1, "mode": "kernel"}, regs={"vm86": True}), "regs.vm86", "user mode"),
    (doc(access={"address": 1, "error_code": "0x10000"}), "access.error_code", "16 bits"),
    (doc(ptes=[{"address": "0xffffc90000001000", "value": 1}]), "ptes[0].address", "kernel half"),
    (doc(entries=[{"address": "0x7ffffffff000", "value": 1}]), "entries[0].address", "kernel half"),
    (doc(kernel={"kernel_mappings": [{"address": "0x601000", "value": 1}]}), "kernel.kernel_mappings[0].address",
     "user half"),
    (doc(format="pfmodel-scenario/2"), "format", "not one this pfmodel reads"),
    (doc(format="something"), "format", "not a pfmodel scenario format"),
    (doc(max_faults=0), "max_faults", "at least 1"),
    (doc(ptes=[], entries=[]), "entries", "both"),
    (doc(env={"fault": []}), "env.fault", "empty"),
    (doc(env={"alloc_fail": ["pte", "anon_pgae"]}), "env.alloc_fail[1]", "not one of the allowed values"),
    (doc(env={"fault": ["RETRY", "SIGKILL"]}), "env.fault[1]", "not one of the allowed values"),
    (doc(task={"rlimit_stack": "8 megs"}), "task.rlimit_stack", "not a size"),
    (doc(regs={"ip": None}, access=None), "access", "expected an object"),
    (doc(expect={"outcome": {"kind": "sigsegv", "reason": "bug"}}), "expect.outcome.reason", "has no field"),
    (doc(expect={"outcome": {"kind": "segfault"}}), "expect.outcome.kind", "not one of the allowed values"),
    (doc(expect={"outcome": {"kind": "sigsegv", "si_code": "SEGV_MAPER"}}), "expect.outcome.si_code",
     "not one of the allowed values"),
    (doc(expect={"trace_contains": ["acess_error → true"]}), "expect.trace_contains[0]", "unknown decision label"),
    (doc(expect={"trace_contains": ["access_error → maybe"]}), "expect.trace_contains[0]", "never takes"),
    (doc(expect={"faults": 0}), "expect.faults", "at least one fault"),
])
def test_invalid_documents_name_the_field_and_say_what_to_do(data, where, what):
    err = error_of(data, source="s.json")
    assert err.where == f"s.json: {where}", err.message
    assert what in err.what, err.message
    assert err.todo or err.why, "every error says what to do or why"


def test_unknown_names_get_a_suggestion():
    err = error_of(doc(vmas=[{"start": "0x600000", "end": "0x601000", "flags": "VM_READ|VM_RAED"}]))
    assert "did you mean 'VM_READ'" in err.todo
    err = error_of(doc(acess={"address": 1}))
    assert "did you mean 'access'" in err.todo


def test_strict_rejects_a_user_pte_outside_every_vma_and_lenient_mode_accepts_it():
    data = doc(vmas=[{"start": "0x600000", "end": "0x601000", "flags": 1}],
               ptes=[{"address": "0x600000", "value": 1}, {"address": "0x605000", "value": 1}])
    assert len(parse_scenario(data).spec.entries) == 2
    err = error_of(dict(data, strict=True))
    assert err.where == "ptes[1]" and "no VMA covers" in err.what
    # a pmd entry is not a VMA's business
    ok = dict(data, strict=True, ptes=[{"address": "0x605000", "value": 0x67, "level": "pmd"}])
    assert parse_scenario(ok).strict


def test_malformed_json_reports_line_and_column(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{\n  "access": {"address": "0x1000",}\n}\n')
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    assert info.value.where == f"{path}:2:34" and "malformed JSON" in info.value.what


def test_duplicate_keys_are_rejected():
    with pytest.raises(ScenarioError, match="appears twice"):
        loads_scenario('{"access": {"address": 1, "address": 2}}')


def test_missing_file_and_directory_are_scenario_errors(tmp_path):
    with pytest.raises(ScenarioError, match="no such file"):
        load_scenario(tmp_path / "nope.json")
    with pytest.raises(ScenarioError, match="directory"):
        load_scenario(tmp_path)


def test_name_defaults_to_the_file_stem(tmp_path):
    path = tmp_path / "my_case.json"
    path.write_text(json.dumps(doc()))
    assert load_scenario(path).name == "my_case"


# --- canonical output, save/load, fingerprints ----------------------------------------------

DIVERSE = [
    BRIEF_EXAMPLE,
    doc(arch="i386-pae", access={"address": "0xbfff0000", "kind": "fetch"},
        regs={"sp": "0xbffff000", "flags": "IF|TF", "vm86": True},
        vmas=[{"start": "0xbffdf000", "end": "0xc0000000", "flags": "VM_STACK_FLAGS", "name": "[stack]"}],
        ptes=[{"address": "0xbfff0000", "value": "PRESENT|USER|NX", "pfn": 77},
              {"address": "0x80000000", "value": 0x67, "level": "pmd", "pfn": 3}],
        task={"pagefault_disabled": 1, "rlimit_as": None, "cap_sys_rawio": True}),
    doc(arch="i386", access={"address": "0x08048000", "kind": "write", "error_code": "PF_WRITE|PF_USER"},
        vmas=[{"start": "0x08048000", "end": "0x08049000", "flags": 0x73, "kind": "file", "pgoff": 0,
               "page_mkwrite": True}],
        env={"fault": ["RETRY", "MAJOR|LOCKED"], "alloc_fail": ["pte", "anon_page"], "oom": "memcg"},
        kernel={"mmap_min_addr": 65536, "thp": "always",
                "kernel_mappings": [{"address": "0xf8800000", "value": "PRESENT|RW|GLOBAL", "pfn": 1}]}),
    doc(access={"address": "0xffffc90000001000", "mode": "kernel"}, regs={"ip": "0xffffffff81234567"},
        kernel={"exception_table": ["ip", "0xffffffff81000010"], "kernel_synced": False,
                "kernel_mappings": [{"address": "0xffffc90000001000", "value": "PRESENT|RW|NX", "pfn": 5}]},
        cpu={"smap": False, "nx": False}, max_faults=2, strict=True, name="n", description="d", teaches="t",
        expect={"outcome": {"kind": "handled", "via": "vmalloc_fault"}, "faults": 1}),
]


@pytest.mark.parametrize("data", DIVERSE)
def test_round_trip_parse_to_json_parse_gives_the_same_machine(data):
    first = parse_scenario(data)
    again = parse_scenario(first.to_json())
    assert again.spec == first.spec
    assert again.to_json() == first.to_json()
    assert (again.name, again.description, again.teaches, again.expect, again.strict) == \
           (first.name, first.description, first.teaches, first.expect, first.strict)


def test_save_is_deterministic_and_independent_of_input_order(tmp_path):
    data = dict(DIVERSE[1], name="named")
    shuffled = copy.deepcopy(data)
    shuffled["ptes"].reverse()
    shuffled = dict(reversed(list(shuffled.items())))
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    save_scenario(parse_scenario(data), a)
    save_scenario(parse_scenario(shuffled), b)
    assert a.read_bytes() == b.read_bytes()
    text = a.read_text()
    assert text.endswith("}\n") and not text.endswith("\n\n")
    assert text.startswith('{\n  "format": "pfmodel-scenario/1",\n')
    assert load_scenario(a).spec == parse_scenario(data).spec
    save_scenario(load_scenario(a), b)
    assert a.read_bytes() == b.read_bytes()


def test_long_objects_are_expanded_with_two_space_indent():
    text = dumps_scenario(parse_scenario(DIVERSE[2]))
    lines = text.splitlines()
    assert all(len(line) <= 100 for line in lines)
    assert all((len(line) - len(line.lstrip(" "))) % 2 == 0 for line in lines)


def test_fingerprint_ignores_people_fields_but_not_the_machine():
    base = parse_scenario(BRIEF_EXAMPLE)
    renamed = parse_scenario(dict(BRIEF_EXAMPLE, name="other", description="x", teaches="y",
                                  expect={"outcome": {"kind": "oops"}}))
    assert fingerprint(base) == fingerprint(renamed)
    rewritten = parse_scenario(dict(BRIEF_EXAMPLE, access={"address": 0x601000, "kind": "write", "mode": "kernel"},
                                    ptes=[{"address": 0x601000, "value": 0x25}]))
    assert fingerprint(base) == fingerprint(rewritten)
    changed = parse_scenario(dict(BRIEF_EXAMPLE, ptes=[{"address": "0x601000", "value": "PRESENT|USER|ACCESSED|RW"}]))
    assert fingerprint(base) != fingerprint(changed)
    assert re.fullmatch(r"[0-9a-f]{16}", fingerprint(base))
    assert fingerprint(base.spec) == fingerprint(base)


def test_fingerprint_of_a_spec_does_not_depend_on_entry_order():
    a, b = EntrySpec(0x601000, 0x25), EntrySpec(0x602000, 0x27)
    k1, k2 = EntrySpec(0xFFFFC90000001000, 0x163), EntrySpec(0xFFFFC90000000000, 0x163)
    one = MachineSpec(AccessSpec(0x601000), entries=[a, b], kernel=KernelSpec(kernel_mappings=[k1, k2]))
    two = MachineSpec(AccessSpec(0x601000), entries=[b, a], kernel=KernelSpec(kernel_mappings=[k2, k1]))
    assert fingerprint(one) == fingerprint(two) == fingerprint(scenario_from_spec(one))


def test_scenario_from_spec_resolves_a_kernel_access_ip_and_validates():
    spec = MachineSpec(access=AccessSpec(address=0x601000, kind="write", mode="kernel"),
                       vmas=[VmaSpec(0x600000, 0x602000, VM_READ | VM_WRITE)])
    scn = scenario_from_spec(spec, "engine case", expect=Expect(outcome={"kind": "handled"}))
    assert scn.spec.regs.ip == KERNEL_TEXT_IP["x86_64"]
    assert scn.expect.outcome == {"kind": "handled"} and scn.name == "engine case"
    assert parse_scenario(scn.to_json()).spec == scn.spec
    bad = MachineSpec(access=AccessSpec(address=1), vmas=[VmaSpec(0x1000, 0x3000, 1), VmaSpec(0x2000, 0x4000, 1)])
    with pytest.raises(ScenarioError, match="overlaps"):
        scenario_from_spec(bad)


# Random machines in canonical order: scenario_from_spec must give back exactly the same spec.
_ARCH = st.sampled_from(sorted(ARCHES))


@st.composite
def machine_specs(draw):
    arch_name = draw(_ARCH)
    arch = ARCHES[arch_name]
    top = TASK_SIZE_MAX[arch_name] >> 12
    user_page = st.integers(1, top - 1)
    if arch.word_bits == 64:
        address = draw(st.one_of(st.integers(0, (1 << 47) - 1), st.integers((1 << 64) - (1 << 47), (1 << 64) - 1)))
    else:
        address = draw(st.integers(0, (1 << 32) - 1))
    mode = draw(st.sampled_from(["user", "kernel"]))
    kind = draw(st.sampled_from(["read", "write", "fetch"]))
    implicit = mode == "user" and kind != "fetch" and draw(st.booleans())
    access = AccessSpec(address, kind, mode, implicit,
                        draw(st.one_of(st.none(), st.integers(0, 0xffff))))
    pages = sorted(draw(st.sets(user_page, max_size=6)))
    vmas = [VmaSpec(a << 12, (a + 1) << 12, draw(st.integers(0, 0xffffffff)),
                    kind=draw(st.sampled_from(["anon", "file", "hugetlb"])),
                    pgoff=draw(st.one_of(st.none(), st.integers(0, 1000))),
                    anon_vma=draw(st.booleans()), name=draw(st.sampled_from(["", "[stack]"])))
            for a in pages]
    levels = ["pgd", "pte"] if arch_name == "i386" else (["pgd", "pmd", "pte"] if arch.pud_folded else
                                                          ["pgd", "pud", "pmd", "pte"])
    entries = []
    for level in levels:
        shift = {"pte": 12, "pmd": arch.pmd_shift, "pud": arch.pud_shift, "pgd": arch.pgdir_shift}[level]
        slots = {a >> shift << shift for a in draw(st.sets(st.integers(0, (top << 12) - 1), max_size=3))}
        for a in sorted(slots):
            entries.append(EntrySpec(a, draw(st.integers(0, arch.entry_mask)), level))
    ip = KERNEL_TEXT_IP[arch_name] if mode == "kernel" else draw(st.one_of(st.none(), st.integers(1, top << 12)))
    regs = RegsSpec(ip=ip, sp=draw(st.one_of(st.none(), st.integers(0, top << 12))),
                    flags=draw(st.integers(0, 0x3fffff)) | 2,
                    vm86=arch.word_bits == 32 and mode == "user" and draw(st.booleans()))
    table = sorted(draw(st.sets(st.integers(KERNEL_TEXT_IP[arch_name], KERNEL_TEXT_IP[arch_name] + 0xffff),
                                max_size=3)))
    kernel = KernelSpec(mmap_min_addr=draw(st.integers(0, 1 << 20)), thp=draw(st.sampled_from(["always", "never"])),
                        exception_table=table, kernel_synced=draw(st.booleans()))
    task = TaskSpec(has_mm=True, pagefault_disabled=draw(st.integers(0, 3)), fatal_signal_pending=draw(st.booleans()),
                    rlimit_stack=draw(st.integers(0, 1 << 40)), rlimit_as=draw(st.one_of(st.none(), st.integers(0, 9))))
    results = st.lists(st.sampled_from(FAULT_RESULTS), min_size=1, max_size=3)
    env = EnvSpec(mmap_sem=draw(st.sampled_from(["free", "contended"])), fault=draw(results),
                  alloc_fail=sorted(draw(st.sets(st.sampled_from(["pte", "pmd", "anon_page"])))),
                  die_notifier=draw(st.sampled_from(["continue", "stop"])), reuse=draw(st.booleans()))
    return MachineSpec(access=access, arch=arch_name, regs=regs, task=task, kernel=kernel, vmas=vmas,
                       entries=entries, env=env, max_faults=draw(st.integers(1, 8)))


@settings(max_examples=150, deadline=None)
@given(machine_specs())
def test_random_specs_survive_the_file_format_unchanged(spec):
    scn = scenario_from_spec(spec)
    assert scn.spec == _resolved_copy(spec)
    assert loads_scenario(dumps_scenario(scn)).spec == spec
    assert fingerprint(spec) == fingerprint(scn)


# --- the schema and the documentation follow the field tables ------------------------------

def test_committed_schema_is_the_generated_one():
    assert load_schema() == build_schema(), "regenerate: python -m pfmodel.scenario > pfmodel/data/scenario.schema.json"
    jsonschema.Draft202012Validator.check_schema(load_schema())


@pytest.mark.parametrize("data", DIVERSE + [{"access": {"address": 1}}])
def test_schema_accepts_what_the_parser_accepts(data):
    jsonschema.validate(data, load_schema())


@pytest.mark.parametrize("data", [
    doc(bogus=1),
    doc(vmas=[{"start": "0x600000", "end": "0x601000", "flags": "VM_READ|VM_RAED"}]),
    doc(access={"address": "0x1000", "kind": "exec"}),
    doc(ptes=[{"address": 1, "value": "PRESENT|WRITE"}]),
    doc(ptes=[], entries=[]),
    {"format": FORMAT},
    doc(expect={"outcome": {"kind": "segfault"}}),
    doc(expect={"outcome": {"kind": "sigsegv", "si_code": "BUS_ADRERR"}}),
    doc(expect={"outcome": {"kind": "fixup", "via": "kmmio"}}),
])
def test_schema_rejects_what_the_parser_rejects(data):
    with pytest.raises(ScenarioError):
        parse_scenario(data)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(data, load_schema())


def test_field_tables_cover_every_machine_spec_field():
    tables = {"access": ACCESS_FIELDS, "regs": REGS_FIELDS, "cpu": CPU_FIELDS, "task": TASK_FIELDS,
              "kernel": KERNEL_FIELDS, "env": ENV_FIELDS, "vmas": VMA_FIELDS, "entries": ENTRY_FIELDS}
    spec_fields = all_spec_fields()
    for section, fields in tables.items():
        keys = {f.key for f in fields}
        missing = set(spec_fields[section]) - keys
        assert not missing, f"{section}: spec fields without a format field: {missing}"
    top = {f.key for f in TOP_FIELDS} | set(tables) | {"ptes"}
    assert set(spec_fields["machine"]) <= top


def test_scenario_format_page_has_the_generated_field_reference():
    page = (ROOT / "docs" / "scenario-format.md").read_text()
    begin, end = "<!-- BEGIN GENERATED FIELDS -->\n", "<!-- END GENERATED FIELDS -->"
    assert begin in page and end in page
    block = page.split(begin, 1)[1].split(end, 1)[0]
    assert block.strip() == fields_markdown().strip(), \
        "regenerate: python -c 'from pfmodel.scenario import fields_markdown; print(fields_markdown())'"



# --- checking a run against expect ------------------------------------------------------------

def _fake_run(outcome, steps=(), final=None, faults=1):
    """A Run-shaped object: check_expectations only reads outcome, faults[].trace and final."""
    from types import SimpleNamespace

    from pfmodel.outcome import Outcome
    from pfmodel.trace import Trace

    t = Trace()
    for label, value in steps:
        t.decide(label, value)
    records = [SimpleNamespace(trace=t)] + [SimpleNamespace(trace=Trace()) for _ in range(faults - 1)]
    return SimpleNamespace(outcome=Outcome.from_json(outcome), faults=records, final=final or {})


def test_expectations_match_partially_and_explain_each_mismatch():
    from pfmodel.scenario import check_expectations

    scn = parse_scenario(doc(expect={"outcome": {"kind": "sigsegv"}, "faults": 1,
                                     "trace_contains": ["access_error → true", "find_vma"]}))
    ok = _fake_run({"kind": "sigsegv", "si_code": "SEGV_ACCERR"}, [("find_vma", "found"), ("access_error", True)])
    assert check_expectations(scn, ok) == []
    bad = _fake_run({"kind": "fixup"}, [("access_error", False)], faults=2)
    problems = check_expectations(scn, bad)
    assert problems == ["outcome is fixup, expected sigsegv",
                        "the access took 2 fault(s), expected 1",
                        "no fault's trace has 'access_error → true' (it went false)",
                        "no fault's trace has a 'find_vma' step"]


def test_final_state_matching_is_numeric_bitwise_and_partial():
    from pfmodel.scenario import check_expectations

    final = {"pte": "0x8000000000106067", "thread": {"error_code": "0x5", "cr2": "0x10"},
             "vmas": [{"start": "0x7ffffffce000", "end": "0x7ffffffff000"}], "signals": []}
    run = _fake_run({"kind": "fixup"}, final=final)

    def problems(expected_final):
        return check_expectations(parse_scenario(doc(expect={"final": expected_final})), run)

    assert problems({"thread": {"error_code": "PF_PROT|PF_USER"}}) == []
    assert problems({"thread": {"error_code": 5}}) == []
    assert problems({"pte": {"set": "PRESENT|RW|USER|DIRTY|NX", "clear": "SPECIAL"}}) == []
    assert problems({"vmas": [{"start": "0x7ffffffce000"}], "signals": []}) == []
    assert problems({"pte": {"set": "SPECIAL", "clear": "NX"}}) == [
        "final.pte is 0x8000000000106067: SPECIAL not set", "final.pte is 0x8000000000106067: NX not clear"]
    assert problems({"thread": {"error_code": "0x7"}}) == ['final.thread.error_code is "0x5", expected "0x7"']
    assert problems({"vmas": []}) == [f'final.vmas is {json.dumps(final["vmas"])}, expected 0 item(s)']
    assert problems({"nr_ptes": 1}) == ["final.nr_ptes is missing from the run's final state"]
    assert problems({"signals": ["SIGSEGV/SEGV_MAPERR"]}) == ['final.signals is [], expected 1 item(s)']
