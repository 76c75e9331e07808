"""The probe helper: compile it once, run one case per process, parse its JSON line.

The helper (``pfmodel/data/oracle/pfprobe.c``) is compiled with the system C compiler
on first use and cached under ``$XDG_CACHE_HOME/pfmodel`` (or ``~/.cache/pfmodel``),
keyed by a hash of the source, the flags and the compiler.  Each case runs in a fresh
process that is killed after a timeout (kernel-oracle.md §4, §10).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from ..errors import PfmodelError
from ..sim.constants import KERNEL_MAPPINGS_START
from ..x86.constants import PAGE_SIZE

CFLAGS = ("-O1", "-mno-red-zone", "-Wall", "-Wextra", "-std=gnu11")
TIMEOUT_SECONDS = 10.0

# /proc/self/pagemap bits (Documentation/admin-guide/mm/pagemap.rst).
PM_PRESENT = 1 << 63
PM_SWAP = 1 << 62
PM_FILE_OR_SHARED_ANON = 1 << 61
PM_GUARD_REGION = 1 << 58
PM_UFFD_WP = 1 << 57
PM_MMAP_EXCLUSIVE = 1 << 56
PM_SOFT_DIRTY = 1 << 55
PM_PFN_MASK = (1 << 55) - 1

KERNEL_HALF = KERNEL_MAPPINGS_START["x86_64"]   # lowest canonical kernel address (4-level paging)

SIGBUS = 7
SIGSEGV = 11
SI_KERNEL = 0x80


class ProbeUnavailable(PfmodelError):
    """The probe cannot run here (not Linux x86-64, or no C compiler)."""


class ProbeError(PfmodelError):
    """The helper ran but did not produce a usable observation."""


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "pfmodel"


def probe_source() -> bytes:
    return resources.files("pfmodel").joinpath("data/oracle/pfprobe.c").read_bytes()


def find_compiler() -> str | None:
    for name in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def helper_path(compiler: str, source: bytes) -> Path:
    key = hashlib.sha256(source + b"\0" + " ".join(CFLAGS).encode() + b"\0" + compiler.encode())
    return cache_dir() / f"pfprobe-{key.hexdigest()[:16]}"


def build_helper() -> Path:
    """The compiled helper, building it on first use (atomic rename: concurrent runs are safe)."""
    compiler = find_compiler()
    if compiler is None:
        raise ProbeUnavailable(
            "no C compiler found for the probe helper",
            "the oracle compiles pfmodel/data/oracle/pfprobe.c on first use",
            "install gcc (or set CC to a C compiler)",
        )
    source = probe_source()
    target = helper_path(compiler, source)
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="pfprobe-build-") as tmp:
        src = Path(tmp) / "pfprobe.c"
        src.write_bytes(source)
        out = Path(tmp) / "pfprobe"
        proc = subprocess.run([compiler, *CFLAGS, "-o", str(out), str(src)],
                              capture_output=True, text=True, timeout=120)
        if proc.returncode != 0:
            raise ProbeUnavailable("the probe helper did not compile", proc.stderr.strip()[-2000:],
                                   "check the C compiler and its headers")
        staging = target.with_name(f"{target.name}.{os.getpid()}.tmp")
        shutil.copyfile(out, staging)
        os.chmod(staging, 0o755)
        os.replace(staging, target)
    return target


# --- observations ----------------------------------------------------------------

@dataclass(frozen=True)
class PagemapEntry:
    raw: int

    @property
    def present(self) -> bool:
        return bool(self.raw & PM_PRESENT)

    @property
    def swapped(self) -> bool:
        return bool(self.raw & PM_SWAP)

    @property
    def file_or_shared(self) -> bool:
        return bool(self.raw & PM_FILE_OR_SHARED_ANON)

    @property
    def exclusive(self) -> bool:
        return bool(self.raw & PM_MMAP_EXCLUSIVE)

    @property
    def soft_dirty(self) -> bool:
        return bool(self.raw & PM_SOFT_DIRTY)

    @property
    def guard(self) -> bool:
        return bool(self.raw & PM_GUARD_REGION)

    @property
    def pfn(self) -> int | None:
        """The frame number, or None when hidden (needs CAP_SYS_ADMIN) or not present."""
        if not self.present:
            return None
        return (self.raw & PM_PFN_MASK) or None

    def describe(self) -> str:
        if self.swapped:
            return "swap"
        if not self.present:
            return "guard" if self.guard else "none"
        share = "x" if self.exclusive else "s"
        return f"present/{share}" + (f" pfn={self.pfn:#x}" if self.pfn else "")


@dataclass(frozen=True)
class MapEntry:
    start: int
    end: int
    perms: str
    name: str

    def contains(self, address: int) -> bool:
        return self.start <= address < self.end


@dataclass(frozen=True)
class TraceEvent:
    """One tracepoint record from the measured window of one probe process."""

    event: str               # page_fault_user, page_fault_kernel, mmap_lock_start_locking, ...
    address: int | None = None
    error_code: int | None = None
    write: bool | None = None  # mmap_lock events: taken for write


@dataclass
class Observation:
    """What the running kernel did for one case."""

    raw: dict[str, Any]
    target: int
    anchor: int
    rsp: int
    signal: int
    si_code: int
    si_addr: int
    err: int
    trapno: int
    ret: int
    errno: int
    minflt: int
    majflt: int
    pm_before: PagemapEntry | None
    pm_after: PagemapEntry | None
    maps_before: list[MapEntry]
    maps_after: list[MapEntry]
    trace: list[TraceEvent] | None = None      # None: tracing was not available
    notes: list[str] = field(default_factory=list)

    @property
    def faulted(self) -> bool:
        return self.signal != 0

    def vma_before(self, address: int) -> MapEntry | None:
        return next((m for m in self.maps_before if m.contains(address)), None)

    def vma_after(self, address: int) -> MapEntry | None:
        return next((m for m in self.maps_after if m.contains(address)), None)

    def exec_result(self) -> str:
        """For fetches: 'returned' (the call came back), 'ran' (the fetch at the target
        worked; the zero sled faulted further on) or 'fault' (the fetch itself faulted)."""
        if not self.faulted:
            return "returned"
        if self.trapno == 14 and (self.si_addr & ~(PAGE_SIZE - 1)) != (self.target & ~(PAGE_SIZE - 1)):
            return "ran"
        return "fault"

    def target_faults(self) -> list[TraceEvent] | None:
        """The page-fault events on the target's page, in order (None without tracing).

        The tracepoint prints kernel addresses as symbols; for a kernel-address target
        the events whose address did not parse are taken to be on it (the window makes
        no other kernel-address access)."""
        if self.trace is None:
            return None
        page = self.target & ~(PAGE_SIZE - 1)
        kernel_target = self.target >= KERNEL_HALF
        return [e for e in self.trace
                if e.event.startswith("page_fault_")
                and (e.address & ~(PAGE_SIZE - 1) == page if e.address is not None else kernel_target)]

    def mmap_lock(self) -> str | None:
        """'write', 'read' or 'none': whether the window touched mmap_lock (None without tracing)."""
        if self.trace is None:
            return None
        modes = [e.write for e in self.trace if e.event == "mmap_lock_start_locking"]
        if any(modes):
            return "write"
        return "read" if modes else "none"


def _hex(value: Any, name: str) -> int:
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value, 16)
        except ValueError:
            pass
    raise ProbeError(f"probe output field {name!r} is {value!r}, not a hex number")


def _maps(items: Any, name: str) -> list[MapEntry]:
    if not isinstance(items, list):
        raise ProbeError(f"probe output field {name!r} is not a list")
    out = []
    for item in items:
        if not isinstance(item, list) or len(item) != 4:
            raise ProbeError(f"probe output field {name!r} has a malformed entry {item!r}")
        out.append(MapEntry(_hex(item[0], name), _hex(item[1], name), str(item[2]), str(item[3])))
    return out


def parse_output(text: str) -> Observation:
    """Parse the helper's one JSON line (the last non-empty line of its stdout)."""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        raise ProbeError("the probe printed nothing")
    try:
        data = json.loads(lines[-1])
    except json.JSONDecodeError as exc:
        raise ProbeError(f"the probe printed something that is not JSON: {lines[-1][:200]!r}",
                         str(exc)) from None
    if not isinstance(data, dict):
        raise ProbeError("the probe's JSON line is not an object")
    if "setup_error" in data:
        raise ProbeError(f"the probe could not set the case up: {data['setup_error']}")
    if data.get("v") != 1:
        raise ProbeError(f"unknown probe output version {data.get('v')!r}")
    try:
        pm_b, pm_a = data["pm_before"], data["pm_after"]
        return Observation(
            raw=data,
            target=_hex(data["target"], "target"),
            anchor=_hex(data["anchor"], "anchor"),
            rsp=_hex(data["rsp"], "rsp"),
            signal=int(data["signal"]),
            si_code=int(data["si_code"]),
            si_addr=_hex(data["si_addr"], "si_addr"),
            err=_hex(data["err"], "err"),
            trapno=int(data["trapno"]),
            ret=int(data["ret"]),
            errno=int(data["errno"]),
            minflt=int(data["minflt"]),
            majflt=int(data["majflt"]),
            pm_before=None if pm_b is None else PagemapEntry(_hex(pm_b, "pm_before")),
            pm_after=None if pm_a is None else PagemapEntry(_hex(pm_a, "pm_after")),
            maps_before=_maps(data["maps_before"], "maps_before"),
            maps_after=_maps(data["maps_after"], "maps_after"),
        )
    except KeyError as exc:
        raise ProbeError(f"the probe output lacks field {exc.args[0]!r}") from None


def run_helper(helper: Path, args: list[str], timeout: float = TIMEOUT_SECONDS) -> str:
    """Run the helper once; return its stdout.  A helper that hangs is killed."""
    try:
        proc = subprocess.run([str(helper), *args], capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise ProbeError(f"the probe did not finish within {timeout:g} s and was killed",
                         f"arguments: {' '.join(args)}") from None
    if proc.returncode != 0 and not proc.stdout.strip():
        raise ProbeError(f"the probe exited with status {proc.returncode}",
                         (proc.stderr or "").strip()[-500:] or f"arguments: {' '.join(args)}")
    return proc.stdout


# --- the two probe flavours ----------------------------------------------------------

PROBE_FLAVOURS = ("auto", "c", "ctypes")


class Prober:
    """Runs one case per process: the compiled C helper, or the ctypes fallback."""

    def __init__(self, flavour: str, helper: Path | None = None) -> None:
        self.flavour = flavour
        self.helper = helper

    @property
    def supports_tracing(self) -> bool:
        return self.flavour == "c"

    def run(self, args: list[str], timeout: float = TIMEOUT_SECONDS) -> str:
        if self.flavour == "c":
            assert self.helper is not None
            return run_helper(self.helper, args, timeout)
        from .ctypes_probe import run_ctypes_case

        try:
            return run_ctypes_case(args, timeout)
        except TimeoutError as exc:
            raise ProbeError(str(exc), f"arguments: {' '.join(args)}") from None


def make_prober(flavour: str = "auto") -> Prober:
    """'c' needs a compiler; 'ctypes' needs Linux x86-64; 'auto' prefers C, else ctypes."""
    if flavour not in PROBE_FLAVOURS:
        raise PfmodelError(f"unknown probe flavour {flavour!r}", "",
                           f"use one of: {', '.join(PROBE_FLAVOURS)}")
    if flavour in ("auto", "c"):
        try:
            return Prober("c", build_helper())
        except ProbeUnavailable:
            if flavour == "c":
                raise
    return Prober("ctypes")

