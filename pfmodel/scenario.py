"""The scenario file format (``pfmodel-scenario/1``): load, validate, save, fingerprint.

A scenario file is JSON that describes one machine and one access, with a default for
every field but the faulting address, plus scenario-only fields (``name``,
``description``, ``teaches``, ``expect``).  ``parse_scenario`` turns it into a
``Scenario`` whose ``spec`` is the simulator's fully resolved ``MachineSpec``;
``Scenario.to_json`` writes the canonical form back (hex strings, named bits, defaults
omitted), so parse -> to_json -> parse gives the same ``MachineSpec``.

The field tables below are the one home of the format: the parser, the JSON Schema
(``pfmodel/data/scenario.schema.json``) and the field reference in
``docs/scenario-format.md`` are all derived from them (tests check the committed
schema and page against ``build_schema()`` and ``fields_markdown()``).

Every problem with a file is a ``ScenarioError`` naming the field path
(``vmas[1].flags``), what was wrong and what to do.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from .errors import ScenarioError
from .outcome import _FIELDS as _OUTCOME_FIELDS
from .outcome import KINDS as OUTCOME_KINDS
from .sim.constants import (
    TASK_SIZE_MAX,
    VM_DATA_DEFAULT_FLAGS,
    VM_FLAG_NAMES,
    VM_STACK_FLAGS,
)
from .sim.env import ALLOC_PURPOSES
from .sim.machine import KERNEL_TEXT_IP
from .sim.spec import (
    FAULT_RESULTS,
    AccessSpec,
    CpuSpec,
    EntrySpec,
    EnvSpec,
    KernelSpec,
    MachineSpec,
    RegsSpec,
    TaskSpec,
    VmaSpec,
)
from .trace import DECISIONS
from .x86.constants import (
    _PAGE_PRESENT,
    _PAGE_PROTNONE,
    _PAGE_PSE,
    EFLAGS_BIT_NAMES,
    PAGE_SHIFT,
    PAGE_SIZE,
    PF_BIT_NAMES,
    PTE_BIT_NAMES,
)
from .x86.paging import ARCHES, Arch

FORMAT = "pfmodel-scenario/1"
FORMAT_PREFIX = "pfmodel-scenario/"

# KERNEL_TEXT_IP (the simulator's): a kernel-text address with no exception-table entry,
# the default ip of a kernel-mode access; ``"ip": "extable"`` uses it and adds it to the table.

# EFLAGS bit 1 is reserved and always reads as 1; pfmodel keeps it set.
EFLAGS_FIXED = 0x2

LEVELS = ("pgd", "pud", "pmd", "pte")  # top-down: the order entries are written in

# Composite vm_flags names accepted on input (never written: output uses single bits).
VM_FLAG_ALIASES = {
    "VM_NONE": 0,
    "VM_DATA_DEFAULT_FLAGS": VM_DATA_DEFAULT_FLAGS,
    "VM_STACK_FLAGS": VM_STACK_FLAGS,
}

_SIZE_UNITS = {"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30}


# ---------------------------------------------------------------------------------------
# Field tables: the one description of the format
# ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class FieldDef:
    """One JSON field: its key, value type, documentation and (for enums) choices.

    ``kind`` is one of: ``address``, ``uint`` (written as hex), ``count`` (a small
    integer), ``size`` (bytes, ``"8MiB"`` accepted), ``bool``, ``str``, ``enum``,
    ``bits:pte``/``bits:vm``/``bits:pf``/``bits:eflags`` (named bits), ``ip``,
    ``results`` (a list of vm_ops results), ``strings``, ``extable``, ``entries``.
    """

    key: str
    kind: str
    doc: str
    unit: str = ""
    choices: tuple[str, ...] = ()
    nullable: bool = False
    required: bool = False


_B = FieldDef  # short alias for the tables

ACCESS_FIELDS = (
    _B("address", "address", "The faulting linear address (CR2).", "address", required=True),
    _B("kind", "enum", "What the instruction did: a data read, a data write or an instruction fetch.",
       choices=("read", "write", "fetch")),
    _B("mode", "enum", "The CPU mode of the access: user (CPL 3) or kernel (CPL 0).",
       choices=("user", "kernel")),
    _B("implicit", "bool", "An implicit supervisor access made at CPL 3 (the CPU reading the GDT, IDT "
       "or TSS for a user instruction): hardware reports U/S=0 although user_mode(regs) is true. "
       "User mode only; read or write only."),
    _B("error_code", "bits:pf", "Give the first fault's error code directly instead of letting the MMU "
       "form it (for faults the walk cannot produce, such as a stale TLB). Re-executions still use "
       "the MMU.", nullable=True),
)

REGS_FIELDS = (
    _B("ip", "ip", "The faulting instruction pointer. `\"extable\"` means a kernel-text address that "
       "has an exception-table entry. Default: kernel mode, a kernel-text address with no entry "
       "(KERNEL_TEXT_IP); user mode, chosen by the simulator.", "address", nullable=True),
    _B("sp", "address", "The stack pointer, read by the stack-cushion check. Default: chosen by the "
       "simulator (the top of the highest VM_GROWSDOWN VMA).", "address", nullable=True),
    _B("flags", "bits:eflags", "EFLAGS of the interrupted context: IF (interrupts on), AC (uaccess "
       "window open: SMAP does not apply), TF, VM. Bit 1 is always set."),
    _B("vm86", "bool", "The interrupted context ran in vm86 mode (32-bit only)."),
)

CPU_FIELDS = (
    _B("smap", "bool", "CR4.SMAP: supervisor data accesses to user pages fault unless AC is set."),
    _B("smep", "bool", "CR4.SMEP: supervisor instruction fetches from user pages fault."),
    _B("nx", "bool", "EFER.NXE: bit 63 of PAE and 4-level entries is execute-disable."),
    _B("wp", "bool", "CR0.WP: supervisor writes obey read-only entries (Linux always sets it)."),
)

TASK_FIELDS = (
    _B("has_mm", "bool", "The task has a user address space (false: a kernel thread)."),
    _B("pagefault_disabled", "count", "current->pagefault_disabled (pagefault_disable() nesting)."),
    _B("preempt_count", "count", "preempt_count(): nonzero means atomic context."),
    _B("in_interrupt", "bool", "The fault is taken in interrupt context (no_context's fixup check)."),
    _B("fatal_signal_pending", "bool", "SIGKILL is queued and TIF_SIGPENDING set before the fault."),
    _B("memcg_oom", "bool", "task_in_memcg_oom() is true at handle_mm_fault's end."),
    _B("rlimit_stack", "size", "RLIMIT_STACK.", "bytes"),
    _B("rlimit_as", "size", "RLIMIT_AS; null is RLIM_INFINITY.", "bytes", nullable=True),
    _B("rlimit_memlock", "size", "RLIMIT_MEMLOCK.", "bytes"),
    _B("cap_sys_rawio", "bool", "The task has CAP_SYS_RAWIO (may map below mmap_min_addr)."),
    _B("cap_ipc_lock", "bool", "The task has CAP_IPC_LOCK (ignores RLIMIT_MEMLOCK)."),
)

KERNEL_FIELDS = (
    _B("mmap_min_addr", "uint", "vm.mmap_min_addr.", "bytes"),
    _B("thp", "enum", "Transparent huge pages (sysfs `enabled`).", choices=("always", "madvise", "never")),
    _B("numa_balancing", "bool", "CONFIG_NUMA_BALANCING with balancing on (x86_64 only)."),
    _B("exception_table", "extable", "Kernel instruction addresses that have an exception-table "
       "fixup. `\"ip\"` stands for regs.ip.", "address"),
    _B("kernel_mappings", "entries", "Entries of init_mm's page tables (the kernel's reference "
       "tables), for vmalloc and spurious faults; same fields as `ptes`."),
    _B("kernel_synced", "bool", "The task's top-level table already has init_mm's kernel entries "
       "(false: a vmalloc fault has to copy them)."),
    _B("seed_expand_stack", "bool", "Model the seed's grows-up expand_stack literally (seed 1.1.7) "
       "instead of x86's grows-down one (KF 2.2.14)."),
)

VMA_FIELDS = (
    _B("start", "address", "vm_start, page aligned.", "address", required=True),
    _B("end", "address", "vm_end (exclusive), page aligned, above start, at most TASK_SIZE_MAX.",
       "address", required=True),
    _B("flags", "bits:vm", "vm_flags, as names (`VM_READ|VM_MAYREAD`) or a number.", required=True),
    _B("kind", "enum", "anon: no vm_ops; file: vm_ops with ->fault; hugetlb: a hugetlbfs mapping.",
       choices=("anon", "file", "hugetlb")),
    _B("pgoff", "count", "vm_pgoff in pages. Default: start >> 12 (the anonymous convention).",
       "pages", nullable=True),
    _B("anon_vma", "bool", "An anon_vma is already attached (else anon_vma_prepare allocates one)."),
    _B("fault_handler", "bool", "File VMAs: vm_ops->fault exists."),
    _B("page_mkwrite", "bool", "File VMAs: vm_ops->page_mkwrite exists."),
    _B("name", "str", "A label for people (\"[stack]\", \"libc.so\")."),
)

ENTRY_FIELDS = (
    _B("address", "address", "An address the entry maps; aligned down to the level's span.",
       "address", required=True),
    _B("value", "bits:pte", "The entry's bits: names from PTE_BIT_NAMES (`PRESENT|RW|USER|NX`) "
       "and/or numbers; combined with `pfn`.", required=True),
    _B("pfn", "uint", "Page frame number, shifted into bits 12 and up of the value.", "pfn"),
    _B("level", "enum", "The page-table level that holds the entry. Folded levels (pud on 32-bit, "
       "pmd on i386) are not accepted: give the entry at pgd.", choices=("pte", "pmd", "pud", "pgd")),
)

_RESULTS_DOC = "one of " + ", ".join(f"`{r}`" for r in FAULT_RESULTS)

ENV_FIELDS = (
    _B("mmap_sem", "enum", "down_read_trylock(mmap_sem): free, or contended (the trylock fails).",
       choices=("free", "contended")),
    _B("kmemcheck", "bool", "kmemcheck is active and claims the fault."),
    _B("kmmio", "bool", "mmiotrace (kmmio_fault) claims the fault."),
    _B("kprobes", "bool", "A running kprobe's fault handler claims the fault (kernel mode)."),
    _B("alloc_fail", "strings", "Allocation purposes that always fail: page-table pages (pud, pmd, pte), "
       "a new anonymous page, an anon_vma, a COW copy, a huge page.", choices=ALLOC_PURPOSES),
    _B("alloc_fail_once", "strings", "Allocation purposes whose first request fails.", choices=ALLOC_PURPOSES),
    _B("fault", "results", f"What vm_ops->fault returns, call by call; the last repeats ({_RESULTS_DOC})."),
    _B("page_lock", "enum", "lock_page_or_retry's trylock: free, or contended.", choices=("free", "contended")),
    _B("fatal_signal_in_wait", "bool", "SIGKILL arrives during the retry pass's killable page-lock wait "
       "(lock_page_or_retry without ALLOW_RETRY, KF 2.4.11)."),
    _B("die_notifier", "enum", "What a die notifier answers to an oops: continue (the oops kills), "
       "or stop (NOTIFY_STOP).", choices=("continue", "stop")),
    _B("oom", "enum", "pagefault_out_of_memory: a memcg OOM handled it, the oom_lock is busy, the "
       "OOM killer ran, or it is disabled.", choices=("memcg", "lock_busy", "killed", "disabled")),
    _B("swap_cache", "enum", "do_swap_page's swap-cache lookup.",
       choices=("hit", "readahead", "readahead_failed", "hwpoison")),
    _B("reuse", "bool", "do_wp_page / do_swap_page: we are the only user of the page."),
    _B("userfault", "results", "What handle_userfault returns, call by call; the last repeats."),
    _B("hugetlb", "results", "What hugetlb_fault returns, call by call; the last repeats."),
    _B("page_mkwrite", "enum", "What ->page_mkwrite returns.", choices=FAULT_RESULTS),
    _B("overcommit", "bool", "security_vm_enough_memory_mm succeeds (stack growth)."),
    _B("is_prefetch", "bool", "The faulting instruction is a prefetch (AMD quirk)."),
    _B("errata", "bool", "A K8 erratum (93/100) or the Pentium F00F bug applies."),
    _B("vsyscall", "enum", "vsyscall= boot option: emulate, or none.", choices=("emulate", "none")),
    _B("pte_race", "bool", "Another CPU changes the pte before the page-table lock is taken."),
)

TOP_FIELDS = (
    _B("format", "str", f"The format and its version: `\"{FORMAT}\"`."),
    _B("name", "str", "A short title. Default: the file name without `.json`."),
    _B("description", "str", "What the scenario sets up, for people."),
    _B("teaches", "str", "The lesson, shown by `pfmodel explain`."),
    _B("strict", "bool", "Also reject page-table entries at user addresses no VMA covers."),
    _B("arch", "enum", "Paging mode and word size.", choices=tuple(ARCHES)),
    _B("max_faults", "count", "Bound on hardware faults for one access (re-executions included)."),
)

EXPECT_FIELDS = (
    _B("outcome", "outcome", "A partial outcome object: every field given must match "
       "(`{\"kind\": \"sigsegv\"}` or `{\"kind\": \"sigsegv\", \"si_code\": \"SEGV_ACCERR\"}`)."),
    _B("faults", "count", "How many hardware faults the access takes."),
    _B("trace_contains", "steps", "Decisions some fault's trace must contain: `\"label → value\"` "
       "(`->` also works), or a bare label for any value. Labels come from pfmodel.trace.DECISIONS."),
    _B("final", "final", "A partial object matched against the run's final state (as `pfmodel run --json` "
       "prints it); `{\"set\": BITS, \"clear\": BITS}` tests bits of a number."),
)

# Section name -> (JSON key, spec dataclass, field table)
SECTIONS: dict[str, tuple[type, tuple[FieldDef, ...]]] = {
    "access": (AccessSpec, ACCESS_FIELDS),
    "regs": (RegsSpec, REGS_FIELDS),
    "cpu": (CpuSpec, CPU_FIELDS),
    "task": (TaskSpec, TASK_FIELDS),
    "kernel": (KernelSpec, KERNEL_FIELDS),
    "env": (EnvSpec, ENV_FIELDS),
}

TOP_KEYS = ("format", "name", "description", "teaches", "strict", "arch", "access", "regs", "cpu",
            "task", "kernel", "vmas", "ptes", "env", "max_faults", "expect")
_ACCEPTED_TOP = set(TOP_KEYS) | {"entries"}  # "entries" is an alias of "ptes"

_BIT_TABLES: dict[str, tuple[dict[str, int], dict[str, int]]] = {
    # kind -> (names written on output, extra names accepted on input)
    "bits:pte": (PTE_BIT_NAMES, {}),
    "bits:vm": (VM_FLAG_NAMES, VM_FLAG_ALIASES),
    "bits:pf": (PF_BIT_NAMES, {}),
    "bits:eflags": (EFLAGS_BIT_NAMES, {}),
}


def _default_of(cls: type, attr: str) -> Any:
    for f in dataclasses.fields(cls):
        if f.name == attr:
            if f.default is not dataclasses.MISSING:
                return f.default
            if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
                return f.default_factory()  # type: ignore[misc]
            return dataclasses.MISSING
    raise KeyError(attr)


# ---------------------------------------------------------------------------------------
# The Scenario object
# ---------------------------------------------------------------------------------------

@dataclass
class Expect:
    """What a run of the scenario must show.  Empty: nothing is checked."""

    outcome: dict[str, Any] | None = None
    trace_contains: list[str] = field(default_factory=list)
    faults: int | None = None
    final: dict[str, Any] = field(default_factory=dict)

    def is_empty(self) -> bool:
        return self.outcome is None and not self.trace_contains and self.faults is None and not self.final

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.outcome is not None:
            out["outcome"] = dict(self.outcome)
        if self.faults is not None:
            out["faults"] = self.faults
        if self.trace_contains:
            out["trace_contains"] = list(self.trace_contains)
        if self.final:
            out["final"] = copy.deepcopy(self.final)
        return out


@dataclass
class Scenario:
    """One parsed scenario: the resolved machine (``spec``) and the scenario-only fields."""

    spec: MachineSpec
    name: str = ""
    description: str = ""
    teaches: str = ""
    expect: Expect = field(default_factory=Expect)
    strict: bool = False
    source: str = ""  # where it was read from, for messages; never saved

    def to_spec(self) -> MachineSpec:
        """A copy of the machine, safe for the caller to change."""
        return copy.deepcopy(self.spec)

    def to_json(self) -> dict[str, Any]:
        """The canonical JSON object: hex strings, named bits, defaults omitted, sets sorted."""
        out: dict[str, Any] = {"format": FORMAT}
        for key in ("name", "description", "teaches"):
            if getattr(self, key):
                out[key] = getattr(self, key)
        if self.strict:
            out["strict"] = True
        out.update(_machine_to_json(self.spec))
        if not self.expect.is_empty():
            out["expect"] = self.expect.to_json()
        return {k: out[k] for k in TOP_KEYS if k in out}


# ---------------------------------------------------------------------------------------
# Parsing helpers: each takes the value and its field path, returns a plain value
# ---------------------------------------------------------------------------------------

class _Parser:
    """Holds the source name and the architecture while one document is parsed."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.arch: Arch = ARCHES["x86_64"]

    # -- errors ----------------------------------------------------------------------------
    def error(self, path: str, what: str, why: str = "", todo: str = "") -> ScenarioError:
        where = f"{self.source}: {path}" if self.source and path else (self.source or path)
        return ScenarioError(what, why, todo, where=where)

    # -- shapes ------------------------------------------------------------------------------
    def obj(self, value: Any, path: str, allowed: Iterable[str], required: Iterable[str] = ()) -> dict:
        if not isinstance(value, dict):
            raise self.error(path, f"expected an object, got {_type_name(value)}",
                             todo=f"write {path} as {{...}} with fields: {', '.join(allowed)}")
        allowed = list(allowed)
        for key in value:
            if key not in allowed:
                close = difflib.get_close_matches(key, allowed, n=1)
                hint = f"did you mean {close[0]!r}? " if close else ""
                raise self.error(_join(path, key), f"unknown field {key!r}",
                                 todo=f"{hint}fields here: {', '.join(allowed)}")
        for key in required:
            if key not in value:
                raise self.error(_join(path, key), "missing required field",
                                 todo=f"add {key!r} to {path or 'the top level'}")
        return value

    def array(self, value: Any, path: str, what: str) -> list:
        if not isinstance(value, list):
            raise self.error(path, f"expected a list of {what}, got {_type_name(value)}",
                             todo=f"write {path} as [...]")
        return value

    # -- scalars -----------------------------------------------------------------------------
    def boolean(self, value: Any, path: str) -> bool:
        if not isinstance(value, bool):
            raise self.error(path, f"expected true or false, got {_show(value)}",
                             todo="write true or false, without quotes")
        return value

    def string(self, value: Any, path: str) -> str:
        if not isinstance(value, str):
            raise self.error(path, f"expected a string, got {_type_name(value)}",
                             todo="put the text in double quotes")
        return value

    def enum(self, value: Any, path: str, choices: tuple[str, ...]) -> str:
        if isinstance(value, int) and not isinstance(value, bool) and str(value) in choices:
            value = str(value)  # "0" as a vm_ops result may be written as the number 0
        if not isinstance(value, str) or value not in choices:
            close = difflib.get_close_matches(str(value), choices, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise self.error(path, f"{_show(value)} is not one of the allowed values",
                             todo=f"{hint}use one of: {', '.join(choices)}")
        return value

    def uint(self, value: Any, path: str, what: str = "a number") -> int:
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise self.error(path, f"expected {what} (an integer or a string like \"0x1000\"), "
                                   f"got {_type_name(value)}",
                             todo="write a decimal integer, or hex in a string (\"0x601000\")")
        if isinstance(value, str):
            number = _int_or_none(value.strip())
            if number is None:
                raise self.error(path, f"{value!r} is not a number",
                                 todo="write a decimal integer, or hex with 0x (\"0x601000\")")
            value = number
        if value < 0:
            raise self.error(path, f"{value} is negative", todo="use a value >= 0")
        return value

    def size(self, value: Any, path: str) -> int:
        if isinstance(value, str):
            m = re.fullmatch(r"\s*(\d+)\s*(KiB|MiB|GiB)\s*", value)
            if m:
                return int(m.group(1)) * _SIZE_UNITS[m.group(2)]
        try:
            return self.uint(value, path, "a size in bytes")
        except ScenarioError:
            raise self.error(path, f"{_show(value)} is not a size",
                             todo="write bytes as an integer, hex (\"0x10000\") or with a unit "
                                  "(\"64KiB\", \"8MiB\", \"1GiB\")") from None

    def address(self, value: Any, path: str) -> int:
        number = self.uint(value, path, "an address")
        arch = self.arch
        if number > arch.word_mask:
            raise self.error(path, f"address {number:#x} does not fit in {arch.word_bits} bits",
                             why=f"arch is {arch.name}",
                             todo=f"use an address up to {arch.word_mask:#x}, or set \"arch\"")
        if not arch.is_canonical(number):
            raise self.error(path, f"address {number:#x} is not canonical",
                             why="on x86_64 bits 63..47 must all be equal; a non-canonical access "
                                 "raises #GP, never #PF",
                             todo="use an address below 0x0000800000000000 or at or above "
                                  "0xffff800000000000")
        return number

    def bits(self, value: Any, path: str, kind: str) -> int:
        names, aliases = _BIT_TABLES[kind]
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise self.error(path, f"expected named bits or a number, got {_type_name(value)}",
                             todo=f"write names joined by '|' (\"{'|'.join(list(names)[:2])}\"), "
                                  "or a number")
        if isinstance(value, int):
            if value < 0:
                raise self.error(path, f"{value} is negative", todo="use a value >= 0")
            return value
        tokens = [t.strip() for t in value.split("|")]
        if not value.strip() or any(not t for t in tokens):
            raise self.error(path, f"{value!r} is not a list of bit names",
                             todo="separate names with '|', for example \"" + "|".join(list(names)[:2]) + "\"")
        result = 0
        for token in tokens:
            number = _int_or_none(token)
            if number is not None:
                if number < 0:
                    raise self.error(path, f"{token} is negative", todo="use a value >= 0")
                result |= number
            elif token in names:
                result |= names[token]
            elif token in aliases:
                result |= aliases[token]
            else:
                known = list(names) + list(aliases)
                close = difflib.get_close_matches(token.upper(), known, n=1)
                hint = f"did you mean {close[0]!r}? " if close else ""
                raise self.error(path, f"unknown bit name {token!r}",
                                 todo=f"{hint}known names: {', '.join(known)}")
        return result


def _join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def _type_name(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean",
            int: "a number", float: "a number", type(None): "null"}.get(type(value), type(value).__name__)


def _show(value: Any) -> str:
    return json.dumps(value) if isinstance(value, (str, int, float, bool, type(None))) else _type_name(value)


def _int_or_none(text: str) -> int | None:
    if not re.fullmatch(r"(0[xX][0-9a-fA-F_]+|0[bB][01_]+|0[oO][0-7_]+|[0-9][0-9_]*)", text):
        return None
    try:
        return int(text, 0)
    except ValueError:
        return int(text, 10) if text.isdigit() else None  # "0755"-style decimals


# ---------------------------------------------------------------------------------------
# parse_scenario
# ---------------------------------------------------------------------------------------

def parse_scenario(data: Any, source: str = "") -> Scenario:
    """Validate a scenario document (a decoded JSON object) and resolve it into a Scenario.

    ``source`` names the document in error messages (a path, or "<stdin>").
    Raises ``ScenarioError`` naming the field, what was wrong and what to do.
    """
    p = _Parser(source)
    top = p.obj(data, "", sorted(_ACCEPTED_TOP, key=_top_order), required=("access",))

    fmt = top.get("format", FORMAT)
    if fmt != FORMAT:
        if isinstance(fmt, str) and fmt.startswith(FORMAT_PREFIX):
            raise p.error("format", f"format {fmt!r} is not one this pfmodel reads",
                          why=f"this pfmodel reads {FORMAT!r}",
                          todo="upgrade pfmodel, or rewrite the file in the format above")
        raise p.error("format", f"{_show(fmt)} is not a pfmodel scenario format",
                      todo=f"write \"format\": \"{FORMAT}\"")

    arch_name = p.enum(top.get("arch", "x86_64"), "arch", tuple(ARCHES))
    p.arch = ARCHES[arch_name]

    scn_meta = {}
    for key in ("name", "description", "teaches"):
        scn_meta[key] = p.string(top[key], key) if key in top else ""
    strict = p.boolean(top["strict"], "strict") if "strict" in top else False

    access = _parse_section(p, top, "access")
    regs = _parse_section(p, top, "regs")
    cpu = _parse_section(p, top, "cpu")
    task = _parse_section(p, top, "task")
    kernel = _parse_section(p, top, "kernel")
    env = _parse_section(p, top, "env")

    vmas = [_parse_vma(p, v, f"vmas[{i}]") for i, v in enumerate(p.array(top.get("vmas", []), "vmas", "VMAs"))]

    if "ptes" in top and "entries" in top:
        raise p.error("entries", "both \"ptes\" and \"entries\" are given",
                      why="\"entries\" is another name for \"ptes\"", todo="merge them into \"ptes\"")
    ekey = "entries" if "entries" in top else "ptes"
    entries = _parse_entries(p, top.get(ekey, []), ekey)

    max_faults = p.uint(top["max_faults"], "max_faults") if "max_faults" in top else _default_of(MachineSpec, "max_faults")
    if max_faults < 1:
        raise p.error("max_faults", "max_faults must be at least 1",
                      todo="give the number of hardware faults one access may take (default 4)")

    spec = MachineSpec(access=access, arch=arch_name, regs=regs, cpu=cpu, task=task, kernel=kernel,
                       vmas=vmas, entries=entries, env=env, max_faults=max_faults)
    _resolve(p, spec, top)
    _check_machine(p, spec, strict, ekey)

    expect = _parse_expect(p, top.get("expect", {}), "expect")
    return Scenario(spec=spec, expect=expect, strict=strict, source=source, **scn_meta)


def _top_order(key: str) -> int:
    return TOP_KEYS.index(key) if key in TOP_KEYS else len(TOP_KEYS)


def _parse_value(p: _Parser, fd: FieldDef, value: Any, path: str) -> Any:
    if value is None:
        if fd.nullable:
            return None
        raise p.error(path, "null is not allowed here", todo=f"give a value, or leave {fd.key!r} out "
                                                              "for the default")
    kind = fd.kind
    if kind == "address":
        return p.address(value, path)
    if kind == "uint":
        return p.uint(value, path)
    if kind == "count":
        return p.uint(value, path, "a count")
    if kind == "size":
        return p.size(value, path)
    if kind == "bool":
        return p.boolean(value, path)
    if kind == "str":
        return p.string(value, path)
    if kind == "enum":
        return p.enum(value, path, fd.choices)
    if kind.startswith("bits:"):
        return p.bits(value, path, kind)
    if kind == "ip":
        if value == "extable":
            return "extable"
        return p.address(value, path)
    if kind == "results":
        items = p.array(value, path, "vm_ops results")
        if not items:
            raise p.error(path, "the list is empty", todo=f"give at least one result ({_RESULTS_DOC})")
        return [p.enum(v, _join(path, i), FAULT_RESULTS) for i, v in enumerate(items)]
    if kind == "strings":
        items = p.array(value, path, "strings")
        if fd.choices:
            return sorted({p.enum(v, _join(path, i), fd.choices) for i, v in enumerate(items)})
        return sorted({p.string(v, _join(path, i)) for i, v in enumerate(items)})
    if kind == "extable":
        items = p.array(value, path, "addresses")
        return [v if v == "ip" else p.address(v, _join(path, i)) for i, v in enumerate(items)]
    if kind == "entries":
        return _parse_entries(p, value, path)
    raise AssertionError(f"unknown field kind {kind}")


def _parse_section(p: _Parser, top: dict, name: str) -> Any:
    cls, fields = SECTIONS[name]
    raw = top.get(name, {})
    required = [f.key for f in fields if f.required]
    p.obj(raw, name, [f.key for f in fields], required)
    values = {fd.key: _parse_value(p, fd, raw[fd.key], _join(name, fd.key)) for fd in fields if fd.key in raw}
    return cls(**values)


def _parse_vma(p: _Parser, raw: Any, path: str) -> VmaSpec:
    p.obj(raw, path, [f.key for f in VMA_FIELDS], [f.key for f in VMA_FIELDS if f.required])
    values = {fd.key: _parse_value(p, fd, raw[fd.key], _join(path, fd.key)) for fd in VMA_FIELDS if fd.key in raw}
    vma = VmaSpec(**values)
    for key in ("start", "end"):
        if getattr(vma, key) % PAGE_SIZE:
            raise p.error(_join(path, key), f"{getattr(vma, key):#x} is not page aligned",
                          why="VMAs cover whole 4 KiB pages",
                          todo=f"use {getattr(vma, key) & ~(PAGE_SIZE - 1):#x} or "
                               f"{(getattr(vma, key) + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1):#x}")
    if vma.end <= vma.start:
        raise p.error(_join(path, "end"), f"end {vma.end:#x} is not above start {vma.start:#x}",
                      todo="a VMA is [start, end) with start < end")
    limit = TASK_SIZE_MAX[p.arch.name]
    if vma.end > limit:
        raise p.error(_join(path, "end"), f"end {vma.end:#x} is above TASK_SIZE_MAX ({limit:#x})",
                      why="VMAs live in the user half of the address space",
                      todo="kernel memory goes in kernel.kernel_mappings")
    return vma


def _level_shift(arch: Arch, level: str) -> int:
    return {"pte": PAGE_SHIFT, "pmd": arch.pmd_shift, "pud": arch.pud_shift, "pgd": arch.pgdir_shift}[level]


def _folded(arch: Arch, level: str) -> bool:
    return (level == "pud" and arch.pud_folded) or (level == "pmd" and arch.pmd_folded)


def _parse_entries(p: _Parser, value: Any, path: str) -> list[EntrySpec]:
    items = p.array(value, path, "page-table entries")
    out: list[EntrySpec] = []
    seen: dict[tuple[str, int], str] = {}
    for i, raw in enumerate(items):
        epath = _join(path, i)
        p.obj(raw, epath, [f.key for f in ENTRY_FIELDS], [f.key for f in ENTRY_FIELDS if f.required])
        level = p.enum(raw.get("level", "pte"), _join(epath, "level"), LEVELS)
        if _folded(p.arch, level):
            raise p.error(_join(epath, "level"), f"the {level} level is folded on {p.arch.name}",
                          why="a folded level has no table of its own: its entry is the one above",
                          todo="give the entry at level \"pgd\"")
        address = p.address(raw["address"], _join(epath, "address"))
        value_ = p.bits(raw["value"], _join(epath, "value"), "bits:pte")
        if "pfn" in raw:
            pfn = p.uint(raw["pfn"], _join(epath, "pfn"))
            frame = pfn << PAGE_SHIFT
            if frame & ~p.arch.pte_pfn_mask:
                raise p.error(_join(epath, "pfn"), f"pfn {pfn:#x} does not fit the physical-address field",
                              why=f"{p.arch.name} entries hold physical addresses below 2^{p.arch.phys_mask_shift}",
                              todo=f"use a pfn below {1 << (p.arch.phys_mask_shift - PAGE_SHIFT):#x}")
            if value_ & frame:
                raise p.error(_join(epath, "pfn"), "pfn overlaps bits already set in value",
                              todo="give the frame either in value or in pfn, not both")
            value_ |= frame
        if value_ > p.arch.entry_mask:
            raise p.error(_join(epath, "value"), f"{value_:#x} does not fit a {8 * p.arch.entry_bytes}-bit entry",
                          why=f"{p.arch.name} page-table entries are {8 * p.arch.entry_bytes} bits"
                              + (" (no NX bit on 2-level paging)" if not p.arch.has_nx else ""),
                          todo="drop the high bits")
        aligned = address & ~((1 << _level_shift(p.arch, level)) - 1) & p.arch.word_mask
        key = (level, aligned)
        if key in seen:
            raise p.error(epath, f"a second {level} entry for the slot at {aligned:#x}",
                          why=f"{seen[key]} already sets it", todo="keep one of them")
        seen[key] = epath
        out.append(EntrySpec(address=aligned, value=value_, level=level))
    out.sort(key=lambda e: (LEVELS.index(e.level), e.address))
    return out


def _resolve(p: _Parser, spec: MachineSpec, top: dict) -> None:
    """Fill the conveniences: a kernel access's default ip, "extable", "ip" in the table."""
    regs, kernel, access = spec.regs, spec.kernel, spec.access
    text_ip = KERNEL_TEXT_IP[spec.arch]
    if regs.ip == "extable":
        if access.mode != "kernel":
            raise p.error("regs.ip", "\"extable\" applies to kernel-mode accesses",
                          why="the exception table lists kernel instructions; user faults never "
                              "consult it",
                          todo="set access.mode to \"kernel\", or give a user ip as a number")
        regs.ip = text_ip
        kernel.exception_table = list(kernel.exception_table) + [text_ip]
    if regs.ip is None and access.mode == "kernel":
        regs.ip = text_ip
    table: set[int] = set()
    for i, ip in enumerate(kernel.exception_table):
        if ip == "ip":
            if regs.ip is None:
                raise p.error(f"kernel.exception_table[{i}]", "\"ip\" names regs.ip, which is not set",
                              why="a user-mode access has no default ip",
                              todo="give regs.ip, or list the address itself")
            ip = regs.ip
        table.add(ip)
    kernel.exception_table = sorted(table)
    regs.flags |= EFLAGS_FIXED


def _check_machine(p: _Parser, spec: MachineSpec, strict: bool, ekey: str) -> None:
    """Cross-field checks (after every field is parsed)."""
    arch = p.arch
    access = spec.access
    if access.implicit and access.mode != "user":
        raise p.error("access.implicit", "an implicit access is modelled at CPL 3 only",
                      why="a kernel-mode access is already a supervisor access",
                      todo="set access.mode to \"user\", or drop \"implicit\"")
    if access.implicit and access.kind == "fetch":
        raise p.error("access.implicit", "an implicit supervisor access is a data access",
                      todo="use kind \"read\" or \"write\"")
    if spec.regs.vm86 and (arch.word_bits == 64 or access.mode != "user"):
        raise p.error("regs.vm86", "vm86 mode exists only in user mode on 32-bit kernels",
                      todo="set arch to \"i386\" or \"i386-pae\" and mode to \"user\", or drop vm86")
    if access.error_code is not None and access.error_code >= 1 << 16:
        raise p.error("access.error_code", f"{access.error_code:#x} does not fit in 16 bits",
                      why="the page-fault error code defines bits 0..15 only",
                      todo="drop the high bits")
    limit = TASK_SIZE_MAX[arch.name]
    for i, e in enumerate(spec.entries):
        if e.address >= limit:
            raise p.error(f"{ekey}[{i}].address", f"{e.address:#x} is in the kernel half",
                          why=f"{ekey} are the task's user page tables (below TASK_SIZE_MAX {limit:#x})",
                          todo="put kernel mappings in kernel.kernel_mappings")
    for i, e in enumerate(spec.kernel.kernel_mappings):
        if e.address < limit:
            raise p.error(f"kernel.kernel_mappings[{i}].address", f"{e.address:#x} is in the user half",
                          why="init_mm's tables hold the kernel's own mappings",
                          todo=f"give a kernel address (>= {limit:#x}); user pages go in \"ptes\"")
    if spec.kernel.numa_balancing and arch.word_bits != 64:
        raise p.error("kernel.numa_balancing", "NUMA balancing is x86_64 only in Linux 4.4",
                      todo="drop numa_balancing, or set arch to \"x86_64\"")
    if not spec.task.has_mm and spec.vmas:
        raise p.error("task.has_mm", "a task without an mm has no VMAs",
                      why="a kernel thread (mm == NULL) has no user address space",
                      todo="drop the VMAs, or set has_mm to true")
    ordered = sorted(range(len(spec.vmas)), key=lambda i: spec.vmas[i].start)
    for a, b in zip(ordered, ordered[1:]):
        va, vb = spec.vmas[a], spec.vmas[b]
        if vb.start < va.end:
            raise p.error(f"vmas[{b}]", f"[{vb.start:#x}, {vb.end:#x}) overlaps vmas[{a}] "
                                        f"[{va.start:#x}, {va.end:#x})",
                          why="VMAs of one mm never overlap",
                          todo=f"start vmas[{b}] at or above {va.end:#x}, or merge the two")
    spec.vmas = [spec.vmas[i] for i in ordered]
    if strict:
        for i, e in enumerate(spec.entries):
            if e.level == "pte" and not any(v.start <= e.address < v.end for v in spec.vmas):
                raise p.error(f"{ekey}[{i}]", f"no VMA covers the pte at {e.address:#x}",
                              why="\"strict\" is set: user ptes must lie inside a VMA "
                                  "(the kernel zaps them on munmap)",
                              todo="add a VMA around it, remove the entry, or drop \"strict\"")


def _parse_expect(p: _Parser, raw: Any, path: str) -> Expect:
    p.obj(raw, path, [f.key for f in EXPECT_FIELDS])
    expect = Expect()
    if "outcome" in raw:
        expect.outcome = _parse_outcome(p, raw["outcome"], _join(path, "outcome"))
    if "trace_contains" in raw:
        items = p.array(raw["trace_contains"], _join(path, "trace_contains"), "\"label → value\" strings")
        expect.trace_contains = [_parse_step(p, s, _join(path, f"trace_contains[{i}]")) for i, s in enumerate(items)]
    if "faults" in raw:
        expect.faults = p.uint(raw["faults"], _join(path, "faults"), "a count")
        if expect.faults < 1:
            raise p.error(_join(path, "faults"), "an access that was simulated takes at least one fault",
                          todo="use 1 or more")
    if "final" in raw:
        if not isinstance(raw["final"], dict):
            raise p.error(_join(path, "final"), f"expected an object, got {_type_name(raw['final'])}",
                          todo="give the parts of the final state to check, as {\"key\": value}")
        expect.final = copy.deepcopy(raw["final"])
    return expect


def _parse_outcome(p: _Parser, raw: Any, path: str) -> dict[str, Any]:
    if isinstance(raw, str):  # "fixup" is short for {"kind": "fixup"}
        raw = {"kind": raw}
    p.obj(raw, path, ["kind", "via", "major", "si_code", "reason"], ["kind"])
    kind = p.enum(raw["kind"], _join(path, "kind"), OUTCOME_KINDS)
    allowed = _OUTCOME_FIELDS[kind]
    out: dict[str, Any] = {"kind": kind}
    for key, value in raw.items():
        if key == "kind":
            continue
        if key not in allowed:
            raise p.error(_join(path, key), f"outcome {kind!r} has no field {key!r}",
                          todo=f"fields of {kind!r}: {', '.join(allowed) or 'none'}")
        choices = allowed[key]
        out[key] = p.boolean(value, _join(path, key)) if choices is None else p.enum(value, _join(path, key), choices)
    return out


_ARROW = re.compile(r"\s*(?:→|->)\s*")


def _parse_step(p: _Parser, raw: Any, path: str) -> str:
    text = p.string(raw, path)
    parts = _ARROW.split(text.strip(), maxsplit=1)
    label = parts[0]
    if label not in DECISIONS:
        close = difflib.get_close_matches(label, DECISIONS, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise p.error(path, f"unknown decision label {label!r}",
                      todo=f"{hint}labels are listed in pfmodel.trace.DECISIONS")
    if len(parts) == 1:
        return label
    value = parts[1]
    allowed = DECISIONS[label].values
    if allowed and value not in allowed:
        raise p.error(path, f"decision {label!r} never takes the value {value!r}",
                      todo=f"use one of: {', '.join(allowed)}")
    return f"{label} → {value}"


def step_key(text: str) -> tuple[str, str | None]:
    """("label", "value") from a canonical trace_contains string; value None for a bare label."""
    parts = _ARROW.split(text, maxsplit=1)
    return (parts[0], parts[1] if len(parts) == 2 else None)


# ---------------------------------------------------------------------------------------
# Canonical output
# ---------------------------------------------------------------------------------------

def _hex(value: int) -> str:
    return f"{value:#x}"


def bits_text(value: int, kind: str, *, level: str = "pte") -> str:
    """Named bits for ``value`` ("PF_PROT|PF_WRITE"), with any unnamed rest as hex; "0" if none."""
    names, _aliases = _BIT_TABLES[kind]
    table = dict(names)
    if kind == "bits:pte":
        table = _pte_names(value, level)
    parts: list[str] = []
    rest = value
    for name, mask in table.items():
        if mask and value & mask == mask and rest & mask:
            parts.append(name)
            rest &= ~mask
    if rest:
        parts.append(_hex(rest))
    return "|".join(parts) if parts else "0"


def error_code_text(error_code: int) -> str:
    """"0x3 (PF_PROT|PF_WRITE)"; "0x0 (no bits)" for a supervisor read of a not-present page."""
    names = bits_text(error_code, "bits:pf") if error_code else "no bits"
    return f"{error_code:#x} ({names})"


def _pte_names(value: int, level: str) -> dict[str, int]:
    """One name per bit, chosen by context: PSE (pmd/pud) or PAT (pte) for bit 7, GLOBAL
    (present) or PROTNONE (not present) for bit 8, PAT_LARGE only in a large entry."""
    skip = {"SPLITTING"} if level == "pte" else set()
    skip.add("PAT" if level != "pte" else "PSE")
    skip.add("PROTNONE" if value & _PAGE_PRESENT else "GLOBAL")
    if not (level in ("pmd", "pud") and value & _PAGE_PSE):
        skip.add("PAT_LARGE")
    return {n: m for n, m in PTE_BIT_NAMES.items() if n not in skip}


def _frame_mask(arch: Arch, entry: EntrySpec) -> int:
    """The bits written as ``pfn``: the physical-frame field of the entry at its level."""
    mask = arch.pte_pfn_mask
    if entry.level in ("pmd", "pud") and entry.value & _PAGE_PSE:
        mask &= ~((1 << _level_shift(arch, entry.level)) - 1)
    return mask


def _entry_to_json(arch: Arch, e: EntrySpec) -> dict[str, Any]:
    aligned = e.address & ~((1 << _level_shift(arch, e.level)) - 1) & arch.word_mask
    out: dict[str, Any] = {"address": _hex(aligned)}
    if e.level != "pte":
        out["level"] = e.level
    if e.value and not e.value & (_PAGE_PRESENT | _PAGE_PROTNONE):
        # A swap, migration or hwpoison entry (KF 1.3): its bits are not flags and a frame.
        out["value"] = _hex(e.value)
        return out
    mask = _frame_mask(arch, e)
    if e.value & mask:
        out["pfn"] = _hex((e.value & mask) >> PAGE_SHIFT)
    out["value"] = bits_text(e.value & ~mask, "bits:pte", level=e.level)
    return out


def _size_text(value: int) -> Any:
    for unit in ("GiB", "MiB", "KiB"):
        if value and value % _SIZE_UNITS[unit] == 0:
            return f"{value // _SIZE_UNITS[unit]}{unit}"
    return value


def _value_to_json(fd: FieldDef, value: Any, arch: Arch) -> Any:
    if value is None:
        return None
    kind = fd.kind
    if kind in ("address", "uint", "ip"):
        return _hex(value)
    if kind == "size":
        return _size_text(value)
    if kind.startswith("bits:"):
        return bits_text(value, kind)
    if kind == "entries":
        return [_entry_to_json(arch, e) for e in value]
    if kind == "results":
        return list(value)
    if kind == "strings":
        return sorted(set(value))
    return value


def _section_to_json(name: str, obj: Any, arch: Arch, spec: MachineSpec) -> dict[str, Any]:
    cls, fields = SECTIONS[name]
    out: dict[str, Any] = {}
    for fd in fields:
        value = getattr(obj, fd.key)
        if fd.key == "address" and name == "access":
            out[fd.key] = _hex(value)
            continue
        if name == "regs" and fd.key == "ip" and spec.access.mode == "kernel" and value == KERNEL_TEXT_IP[arch.name]:
            continue  # the default ip of a kernel access
        if name == "regs" and fd.key == "flags":
            if value == _default_of(cls, "flags") | EFLAGS_FIXED:
                continue
            out[fd.key] = bits_text(value & ~EFLAGS_FIXED, fd.kind)
            continue
        if name == "kernel" and fd.key == "exception_table":
            if value:
                out[fd.key] = ["ip" if ip == spec.regs.ip else _hex(ip) for ip in sorted(set(value))]
            continue
        if value == _default_of(cls, fd.key):
            continue
        out[fd.key] = _value_to_json(fd, value, arch)
    return out


def _machine_to_json(spec: MachineSpec) -> dict[str, Any]:
    arch = ARCHES[spec.arch]
    out: dict[str, Any] = {}
    if spec.arch != "x86_64":
        out["arch"] = spec.arch
    for name in ("access", "regs", "cpu", "task", "kernel"):
        section = _section_to_json(name, getattr(spec, name), arch, spec)
        if section:
            out[name] = section
    if spec.vmas:
        vmas = []
        for v in sorted(spec.vmas, key=lambda v: v.start):
            item: dict[str, Any] = {}
            for fd in VMA_FIELDS:
                value = getattr(v, fd.key)
                if fd.required or value != _default_of(VmaSpec, fd.key):
                    item[fd.key] = _value_to_json(fd, value, arch)
            vmas.append(item)
        out["vmas"] = vmas
    if spec.entries:
        entries = sorted(spec.entries, key=lambda e: (LEVELS.index(e.level), e.address))
        out["ptes"] = [_entry_to_json(arch, e) for e in entries]
    env = _section_to_json("env", spec.env, arch, spec)
    if env:
        out["env"] = env
    if spec.max_faults != _default_of(MachineSpec, "max_faults"):
        out["max_faults"] = spec.max_faults
    return out


# ---------------------------------------------------------------------------------------
# Files, fingerprints, specs
# ---------------------------------------------------------------------------------------

def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(key)
        out[key] = value
    return out


class _DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def loads_scenario(text: str, source: str = "") -> Scenario:
    """Parse scenario JSON text.  Malformed JSON is a ScenarioError with line and column."""
    try:
        data = json.loads(text, object_pairs_hook=_reject_duplicates)
    except json.JSONDecodeError as e:
        where = f"{source}:{e.lineno}:{e.colno}" if source else f"line {e.lineno}, column {e.colno}"
        raise ScenarioError(f"malformed JSON: {e.msg}", todo="fix the JSON syntax at that place",
                            where=where) from None
    except _DuplicateKey as e:
        raise ScenarioError(f"the key {e.key!r} appears twice in one object",
                            why="JSON readers keep only one of them, silently",
                            todo="keep one", where=source) from None
    return parse_scenario(data, source=source)


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate one scenario file.  ``name`` defaults to the file name's stem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScenarioError("no such file", todo="check the path", where=str(path)) from None
    except IsADirectoryError:
        raise ScenarioError("is a directory, not a scenario file",
                            todo="give a .json file, or use `pfmodel run DIR` for every file in it",
                            where=str(path)) from None
    except (OSError, UnicodeDecodeError) as e:
        raise ScenarioError(f"cannot read the file: {e}", where=str(path)) from None
    scn = loads_scenario(text, source=str(path))
    if not scn.name:
        scn.name = path.stem
    return scn


def dumps_scenario(scn: Scenario) -> str:
    """The canonical text of a scenario: 2-space indent, short objects on one line, newline at end."""
    return _format_json(scn.to_json(), 0) + "\n"


def save_scenario(scn: Scenario, path: str | Path) -> None:
    """Write the canonical form; the same scenario always gives the same bytes."""
    Path(path).write_text(dumps_scenario(scn), encoding="utf-8")


_LINE = 96


def _format_json(value: Any, indent: int) -> str:
    """Deterministic JSON: a container goes on one line when it fits, else one item a line."""
    flat = json.dumps(value, ensure_ascii=False, separators=(", ", ": "))
    if not isinstance(value, (dict, list)) or len(flat) + indent <= _LINE or not value:
        return flat
    pad = " " * (indent + 2)
    if isinstance(value, dict):
        items = [f"{pad}{json.dumps(k, ensure_ascii=False)}: {_format_json(v, indent + 2)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + " " * indent + "}"
    items = [pad + _format_json(v, indent + 2) for v in value]
    return "[\n" + ",\n".join(items) + "\n" + " " * indent + "]"


def fingerprint(scn: Scenario | MachineSpec) -> str:
    """A stable 16-hex-digit hash of the machine content (ignores name, description, expect).

    A bare MachineSpec is first put through the file format, so two specs that save to
    the same file (entries in another order, unaligned entry addresses) hash the same.
    """
    spec = scn.spec if isinstance(scn, Scenario) else scenario_from_spec(scn).spec
    text = json.dumps(_machine_to_json(spec), sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(f"{FORMAT}\n{text}".encode()).hexdigest()[:16]


def _resolved_copy(spec: MachineSpec) -> MachineSpec:
    spec = copy.deepcopy(spec)
    if spec.regs.ip is None and spec.access.mode == "kernel":
        spec.regs.ip = KERNEL_TEXT_IP[spec.arch]
    spec.regs.flags |= EFLAGS_FIXED
    return spec


def scenario_from_spec(spec: MachineSpec, name: str = "", *, description: str = "", teaches: str = "",
                       expect: Expect | dict | None = None) -> Scenario:
    """Wrap a MachineSpec built by an engine into a Scenario that can be saved and loaded back.

    The spec is validated by a round trip through the file format, so what is returned
    is exactly what ``load_scenario`` will read from the saved file.  A kernel access
    with no ip gets KERNEL_TEXT_IP, as in a file.
    """
    draft = Scenario(spec=_resolved_copy(spec), name=name, description=description, teaches=teaches)
    data = draft.to_json()
    if expect is not None:
        exp = expect.to_json() if isinstance(expect, Expect) else dict(expect)
        if exp:
            data["expect"] = exp
    return parse_scenario(data, source=f"<spec {name}>" if name else "<spec>")


# ---------------------------------------------------------------------------------------
# Running and checking expectations
# ---------------------------------------------------------------------------------------

def outcome_text(outcome: Any) -> str:
    """Short spelling of an Outcome or a partial outcome object: "sigsegv SEGV_ACCERR",
    "handled via vmalloc_fault, major", "oops: null_pointer_dereference"."""
    if outcome is None:
        return "-"
    partial = isinstance(outcome, dict)
    data = dict(outcome) if partial else outcome.to_json()
    kind = data.pop("kind")
    parts = []
    if "via" in data:
        parts.append(f"via {data['via']}")
    if data.get("major") is True:
        parts.append("major")
    elif data.get("major") is False and partial:
        parts.append("minor")
    for key in ("si_code", "reason"):
        if key in data:
            parts.append(str(data[key]))
    if kind == "oops" and parts:
        return f"oops: {', '.join(parts)}"
    return f"{kind} {', '.join(parts)}".strip()


def run_scenario(scn: Scenario, *, overrides: dict | None = None):  # -> pfmodel.sim.result.Run
    """Run the scenario's machine on the simulator (``overrides``: mutant kernel functions by
    name, as ``pfmodel.sim.run.run`` takes them)."""
    from .sim.run import run  # imported here: loading and saving scenarios never runs anything

    try:
        return run(scn.to_spec(), overrides=overrides)
    except ScenarioError as e:
        # The simulator refused the machine: say which file, and name entries by what they
        # map (the parser sorted them, so the simulator's indexes are not the file's).
        e.where = f"{scn.source}: {_file_path(scn, e.where)}" if scn.source else _file_path(scn, e.where)
        e.args = (e.message,)
        raise


def _file_path(scn: Scenario, where: str) -> str:
    m = re.match(r"(entries|kernel\.kernel_mappings|vmas)\[(\d+)\](.*)", where or "")
    if not m:
        return where
    kind, index, rest = m.group(1), int(m.group(2)), m.group(3)
    if kind == "vmas" and index < len(scn.spec.vmas):
        v = scn.spec.vmas[index]
        return f"vmas (the VMA [{v.start:#x}, {v.end:#x})){rest}"
    table = scn.spec.entries if kind == "entries" else scn.spec.kernel.kernel_mappings
    if index < len(table):
        e = table[index]
        name = "ptes" if kind == "entries" else kind
        return f"{name} (the {e.level} entry for {e.address:#x}){rest}"
    return where


def check_expectations(scn: Scenario, run: Any) -> list[str]:
    """What in ``run`` differs from ``scn.expect``: one sentence per mismatch; [] when all match."""
    problems: list[str] = []
    exp = scn.expect
    if exp.outcome is not None and not run.outcome.matches(exp.outcome):
        problems.append(f"outcome is {outcome_text(run.outcome)}, expected {outcome_text(exp.outcome)}")
    if exp.faults is not None and len(run.faults) != exp.faults:
        problems.append(f"the access took {len(run.faults)} fault(s), expected {exp.faults}")
    if exp.trace_contains:
        taken = {s.key for f in run.faults for s in f.trace}
        labels = {label for label, _ in taken}
        for text in exp.trace_contains:
            label, value = step_key(text)
            if value is None:
                if label not in labels:
                    problems.append(f"no fault's trace has a {label!r} step")
            elif (label, value) not in taken:
                seen = sorted(v for lab, v in taken if lab == label)
                got = f" (it went {', '.join(seen)})" if seen else " (that step was not reached)"
                problems.append(f"no fault's trace has {text!r}{got}")
    if exp.final:
        problems.extend(_match_final(exp.final, run.final, "final"))
    return problems


_FINAL_NAMES: dict[str, int] = {**PTE_BIT_NAMES, **VM_FLAG_NAMES, **VM_FLAG_ALIASES, **PF_BIT_NAMES,
                                 **EFLAGS_BIT_NAMES}


def _final_number(value: Any) -> int | None:
    """An int from a number, a numeric string or named bits; None if it is none of these."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if not isinstance(value, str) or not value.strip():
        return None
    total = 0
    for token in (t.strip() for t in value.split("|")):
        number = _int_or_none(token)
        if number is None:
            number = _FINAL_NAMES.get(token)
        if number is None:
            return None
        total |= number
    return total


def _match_final(expected: Any, actual: Any, path: str) -> list[str]:
    """Partial match of the run's final state (see docs/scenario-format.md, Expectations).

    Objects match key by key (keys not given are not checked), lists element by element,
    numbers numerically (hex strings and named bits count as numbers), and
    ``{"set": BITS, "clear": BITS}`` tests bits of a number.
    """
    if isinstance(expected, dict) and set(expected) <= {"set", "clear"} and expected:
        number = _final_number(actual)
        if number is None:
            return [f"{path} is {json.dumps(actual)}, not a number whose bits can be tested"]
        out = []
        want_set = _final_number(expected.get("set", 0)) or 0
        want_clear = _final_number(expected.get("clear", 0)) or 0
        if number & want_set != want_set:
            out.append(f"{path} is {number:#x}: {bits_text(want_set & ~number, 'bits:pte')} not set")
        if number & want_clear:
            out.append(f"{path} is {number:#x}: {bits_text(number & want_clear, 'bits:pte')} not clear")
        return out
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f"{path} is {_show(actual)}, expected an object"]
        out: list[str] = []
        for key, value in expected.items():
            if key not in actual:
                out.append(f"{path}.{key} is missing from the run's final state")
            else:
                out.extend(_match_final(value, actual[key], f"{path}.{key}"))
        return out
    if isinstance(expected, list):
        if not isinstance(actual, list) or len(actual) != len(expected):
            return [f"{path} is {json.dumps(actual)}, expected {len(expected)} item(s)"]
        return [p for i, (e, a) in enumerate(zip(expected, actual)) for p in _match_final(e, a, f"{path}[{i}]")]
    want, got = _final_number(expected), _final_number(actual)
    if want is not None and got is not None and not isinstance(expected, bool):
        return [] if want == got else [f"{path} is {json.dumps(actual)}, expected {json.dumps(expected)}"]
    if expected != actual:
        return [f"{path} is {json.dumps(actual)}, expected {json.dumps(expected)}"]
    return []


# ---------------------------------------------------------------------------------------
# JSON Schema and documentation, derived from the tables
# ---------------------------------------------------------------------------------------

_NUMBER_RE = r"0[xX][0-9a-fA-F_]+|[0-9][0-9_]*"


def _bits_pattern(kind: str) -> str:
    names, aliases = _BIT_TABLES[kind]
    token = "(?:" + "|".join(sorted(list(names) + list(aliases), key=lambda n: (-len(n), n))) + "|" + _NUMBER_RE + ")"
    return rf"^\s*{token}(\s*\|\s*{token})*\s*$"


def _default_json(cls: type, fd: FieldDef, arch: Arch) -> Any:
    if cls is None:
        return None
    if cls is EntrySpec and fd.key == "pfn":
        return _hex(0)  # not an EntrySpec field: it is folded into value
    default = _default_of(cls, fd.key)
    if default is dataclasses.MISSING:
        return None
    if fd.kind == "bits:eflags":
        return bits_text(default & ~EFLAGS_FIXED, fd.kind)
    if fd.kind == "extable":
        return []
    return _value_to_json(fd, default, arch)


def _schema_for(fd: FieldDef, cls: type | None) -> dict[str, Any]:
    uint = {"type": "integer", "minimum": 0}
    numstr = {"type": "string", "pattern": rf"^\s*(?:{_NUMBER_RE})\s*$"}
    kind = fd.kind
    if kind in ("address", "uint", "count"):
        s: dict[str, Any] = {"anyOf": [uint, numstr]}
    elif kind == "size":
        s = {"anyOf": [uint, {"type": "string", "pattern": rf"^\s*(?:{_NUMBER_RE}|[0-9]+\s*(?:KiB|MiB|GiB))\s*$"}]}
    elif kind == "bool":
        s = {"type": "boolean"}
    elif kind == "str":
        s = {"type": "string"}
    elif kind == "enum":
        s = {"enum": list(fd.choices)}
    elif kind.startswith("bits:"):
        s = {"anyOf": [uint, {"type": "string", "pattern": _bits_pattern(kind)}]}
    elif kind == "ip":
        s = {"anyOf": [uint, numstr, {"const": "extable"}]}
    elif kind == "results":
        s = {"type": "array", "minItems": 1, "items": {"enum": list(FAULT_RESULTS)}}
    elif kind == "strings":
        s = {"type": "array", "items": {"enum": list(fd.choices)} if fd.choices else {"type": "string"}}
    elif kind == "extable":
        s = {"type": "array", "items": {"anyOf": [uint, numstr, {"const": "ip"}]}}
    elif kind == "entries":
        s = {"type": "array", "items": {"$ref": "#/$defs/entry"}}
    elif kind == "outcome":
        s = {"anyOf": [{"enum": list(OUTCOME_KINDS)}, {"$ref": "#/$defs/outcome"}]}
    elif kind == "steps":
        s = {"type": "array", "items": {"type": "string"}}
    elif kind == "final":
        s = {"type": "object"}
    else:
        raise AssertionError(kind)
    if fd.nullable:
        s = {"anyOf": [s, {"type": "null"}]}
    out: dict[str, Any] = {"description": fd.doc}
    if fd.unit:
        out["description"] += f" Unit: {fd.unit}."
    out.update(s)
    default = _default_json(cls, fd, ARCHES["x86_64"])
    if cls is not None and not fd.required and fd.kind not in ("ip",) and fd.key != "sp":
        out["default"] = default
    return out


def _object_schema(fields: Iterable[FieldDef], cls: type | None, description: str = "") -> dict[str, Any]:
    fields = list(fields)
    s: dict[str, Any] = {"type": "object"}
    if description:
        s["description"] = description
    s["properties"] = {fd.key: _schema_for(fd, cls) for fd in fields}
    s["additionalProperties"] = False
    required = [fd.key for fd in fields if fd.required]
    if required:
        s["required"] = required
    return s


def build_schema() -> dict[str, Any]:
    """The JSON Schema of the format (draft 2020-12), derived from the field tables."""
    props: dict[str, Any] = {}
    for fd in TOP_FIELDS:
        props[fd.key] = _schema_for(fd, MachineSpec if fd.key in ("arch", "max_faults") else None)
    props["format"] = {"description": TOP_FIELDS[0].doc, "const": FORMAT}
    for name, (cls, fields) in SECTIONS.items():
        props[name] = _object_schema(fields, cls, f"The {name} section (MachineSpec.{name}).")
    props["vmas"] = {"type": "array", "description": "The task's VMAs; they must not overlap.",
                     "items": _object_schema(VMA_FIELDS, VmaSpec)}
    props["ptes"] = {"type": "array", "description": "Page-table entries of the task's tables.",
                     "items": {"$ref": "#/$defs/entry"}}
    props["entries"] = {"type": "array", "description": "Another name for `ptes`.",
                        "items": {"$ref": "#/$defs/entry"}}
    props["expect"] = _object_schema(EXPECT_FIELDS, None, "What a run must show.")
    outcome_kinds = []  # one object schema per kind: its own fields and their choices
    for kind, extra in _OUTCOME_FIELDS.items():
        kprops: dict[str, Any] = {"kind": {"const": kind}}
        for key, choices in extra.items():
            kprops[key] = {"type": "boolean"} if choices is None else {"enum": list(choices)}
        outcome_kinds.append({"type": "object", "properties": kprops, "required": ["kind"],
                              "additionalProperties": False})
    ordered = {k: props[k] for k in TOP_KEYS + ("entries",)}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://pfmodel.invalid/scenario.schema.json",
        "title": f"pfmodel scenario ({FORMAT})",
        "description": "One machine and one access for the pfmodel simulator; see docs/scenario-format.md.",
        "type": "object",
        "properties": ordered,
        "required": ["access"],
        "additionalProperties": False,
        "not": {"required": ["ptes", "entries"]},
        "$defs": {
            "entry": _object_schema(ENTRY_FIELDS, EntrySpec),
            "outcome": {"oneOf": outcome_kinds},
        },
    }


def schema_text() -> str:
    return json.dumps(build_schema(), indent=2, ensure_ascii=False) + "\n"


def load_schema() -> dict[str, Any]:
    """The committed schema shipped as package data."""
    from importlib.resources import files

    return json.loads(files("pfmodel").joinpath("data/scenario.schema.json").read_text(encoding="utf-8"))


def _md_default(cls: type | None, fd: FieldDef) -> str:
    if fd.required:
        return "required"
    if fd.key == "ip":
        return "see text"
    if fd.key == "sp" or fd.key == "pgoff":
        return "see text"
    if cls is None:
        return {"format": f"`\"{FORMAT}\"`", "name": "file name", "strict": "`false`"}.get(fd.key, "`\"\"`")
    default = _default_json(cls, fd, ARCHES["x86_64"])
    return "`" + json.dumps(default, ensure_ascii=False) + "`"


def _md_type(fd: FieldDef) -> str:
    kind = fd.kind
    text = {
        "address": "address", "uint": "number", "count": "integer", "size": "size", "bool": "boolean",
        "str": "string", "bits:pte": "PTE bits", "bits:vm": "vm_flags", "bits:pf": "error-code bits",
        "bits:eflags": "EFLAGS bits", "ip": "address or `\"extable\"`", "results": "list of results",
        "strings": "list of strings", "extable": "list of addresses or `\"ip\"`", "entries": "list of entries",
        "outcome": "outcome", "steps": "list of strings", "final": "object",
    }.get(kind)
    if kind == "enum":
        text = " / ".join(f"`{c}`" for c in fd.choices)
    if kind == "strings" and fd.choices:
        text = "list of " + " / ".join(f"`{c}`" for c in fd.choices)
    if fd.nullable:
        text += " or `null`"
    return text


def fields_markdown() -> str:
    """The field-reference tables of docs/scenario-format.md (between its GENERATED markers)."""
    def table(fields: Iterable[FieldDef], cls: type | None) -> list[str]:
        rows = ["| field | type | default | unit | meaning |", "|---|---|---|---|---|"]
        for fd in fields:
            doc = fd.doc.replace("|", "\\|")
            rows.append(f"| `{fd.key}` | {_md_type(fd)} | {_md_default(cls, fd)} | {fd.unit or ''} | {doc} |")
        return rows

    lines: list[str] = []
    top_cls = {"arch": MachineSpec, "max_faults": MachineSpec}
    lines += ["### Top level", ""]
    rows = table(TOP_FIELDS, None)
    for i, fd in enumerate(TOP_FIELDS):
        if fd.key in top_cls:
            rows[i + 2] = table([fd], top_cls[fd.key])[2]
    lines += rows + [""]
    for name, (cls, fields) in SECTIONS.items():
        lines += [f"### `{name}`", ""] + table(fields, cls) + [""]
    lines += ["### `vmas[]`", ""] + table(VMA_FIELDS, VmaSpec) + [""]
    lines += ["### `ptes[]` (also `entries[]`, `kernel.kernel_mappings[]`)", ""] + table(ENTRY_FIELDS, EntrySpec) + [""]
    lines += ["### `expect`", ""] + table(EXPECT_FIELDS, None) + [""]
    lines += ["### Bit names", ""]
    for kind, title in (("bits:pte", "PTE bits (`value`)"), ("bits:vm", "vm_flags (`flags`)"),
                        ("bits:pf", "error code (`error_code`)"), ("bits:eflags", "EFLAGS (`regs.flags`)")):
        names, aliases = _BIT_TABLES[kind]
        named = ", ".join(f"`{n}`={m:#x}" for n, m in names.items())
        line = f"* {title}: {named}"
        if aliases:
            line += "; also accepted on input: " + ", ".join(f"`{n}`={m:#x}" for n, m in aliases.items())
        lines.append(line)
    return "\n".join(lines) + "\n"


def all_spec_fields() -> dict[str, list[str]]:
    """Every MachineSpec field, by section: what the field tables must cover (a test checks)."""
    return {name: [f.name for f in dataclasses.fields(cls)] for name, (cls, _fields) in SECTIONS.items()} | {
        "vmas": [f.name for f in dataclasses.fields(VmaSpec)],
        "entries": [f.name for f in dataclasses.fields(EntrySpec)],
        "machine": [f.name for f in dataclasses.fields(MachineSpec)],
    }


__all__ = [
    "FORMAT", "KERNEL_TEXT_IP", "Scenario", "Expect", "FieldDef", "parse_scenario", "load_scenario",
    "loads_scenario", "save_scenario", "dumps_scenario", "fingerprint", "scenario_from_spec",
    "run_scenario", "check_expectations", "build_schema", "schema_text", "load_schema",
    "fields_markdown", "bits_text", "step_key", "outcome_text", "error_code_text",
]


if __name__ == "__main__":  # python -m pfmodel.scenario > pfmodel/data/scenario.schema.json
    import sys

    sys.stdout.write(schema_text())
