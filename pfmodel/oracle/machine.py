"""What the running machine is: kernel, CPU features and the settings that change outcomes.

Everything here is read, never written: the oracle records these facts with every run
(kernel-oracle.md §2, §9) and uses them to build scenarios and to skip cases whose
feature is missing.
"""

from __future__ import annotations

import os
import platform
import resource
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

VSYSCALL_MODES = ("xonly", "emulate", "none")


def _read(path: str, default: str = "") -> str:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return default


def _bracketed(text: str) -> str:
    """The selected word of a sysfs choice list: 'always [madvise] never' -> 'madvise'."""
    if "[" in text and "]" in text:
        return text[text.index("[") + 1:text.index("]")]
    return text


def cpu_flags(cpuinfo: str) -> set[str]:
    """The feature flags of the first CPU in a /proc/cpuinfo text."""
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def vsyscall_mode(maps_text: str) -> str:
    """The vsyscall mode as /proc/self/maps shows it: '--xp' xonly, 'r-xp' emulate, absent none."""
    for line in maps_text.splitlines():
        if line.rstrip().endswith("[vsyscall]"):
            perms = line.split()[1]
            return "emulate" if perms.startswith("r") else "xonly"
    return "none"


def swap_devices(swaps_text: str) -> list[str]:
    return [line.split()[0] for line in swaps_text.splitlines()[1:] if line.strip()]


def fs_type(path: str, mountinfo: str) -> str:
    """The filesystem type of the mount holding ``path`` (longest mount-point prefix)."""
    real = os.path.realpath(path)
    best, best_type = "", "unknown"
    for line in mountinfo.splitlines():
        left, _, right = line.partition(" - ")
        fields = left.split()
        if len(fields) < 5 or not right:
            continue
        mnt = fields[4].replace("\\040", " ")
        if (real == mnt or real.startswith(mnt.rstrip("/") + "/")) and len(mnt) >= len(best):
            best, best_type = mnt, right.split()[0]
    return best_type


def has_capability(status_text: str, bit: int) -> bool:
    """Whether /proc/self/status's effective capability set (CapEff) holds ``bit``."""
    for line in status_text.splitlines():
        if line.startswith("CapEff:"):
            return bool(int(line.split()[1], 16) >> bit & 1)
    return False


CAP_SYS_ADMIN = 21


def kernel_text_address() -> int | None:
    """The address of the kernel's ``_text`` symbol, when /proc/kallsyms shows it (root)."""
    try:
        with open("/proc/kallsyms") as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 3 and parts[2] == "_text":
                    value = int(parts[0], 16)
                    return value or None
    except OSError:
        return None
    return None


@dataclass
class Machine:
    system: str
    kernel_release: str
    kernel_version: str
    arch: str
    euid: int
    cap_sys_admin: bool                  # pagemap shows frame numbers only with it
    cpu_flags: dict[str, bool]           # nx, smep, smap, pku, ospke, la57
    thp: str                             # transparent_hugepage/enabled
    swap: list[str]                      # active swap devices
    rlimit_stack: int | None             # soft RLIMIT_STACK (None: unlimited)
    vsyscall: str                        # xonly, emulate, none
    mmap_min_addr: int
    overcommit_memory: int | None
    pti: bool                            # kernel page-table isolation in use
    kernel_text: int | None              # _text, for user-mode accesses to kernel text
    tmpdir: str
    tmpdir_fs: str
    notes: list[str] = field(default_factory=list)

    @property
    def is_linux_x86_64(self) -> bool:
        return self.system == "Linux" and self.arch == "x86_64"

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        if self.kernel_text is not None:
            data["kernel_text"] = hex(self.kernel_text)
        return data


def detect(tmpdir: str | None = None) -> Machine:
    """Read the machine's facts (nothing is changed)."""
    import tempfile

    tmp = tmpdir or tempfile.gettempdir()
    uname = platform.uname()
    flags = cpu_flags(_read("/proc/cpuinfo"))
    soft, _hard = resource.getrlimit(resource.RLIMIT_STACK)
    overcommit = _read("/proc/sys/vm/overcommit_memory")
    meltdown = _read("/sys/devices/system/cpu/vulnerabilities/meltdown")
    machine = Machine(
        system=uname.system,
        kernel_release=uname.release,
        kernel_version=uname.version,
        arch=uname.machine,
        euid=os.geteuid() if hasattr(os, "geteuid") else -1,
        cap_sys_admin=has_capability(_read("/proc/self/status"), CAP_SYS_ADMIN),
        cpu_flags={name: name in flags for name in ("nx", "smep", "smap", "pku", "ospke", "la57")},
        thp=_bracketed(_read("/sys/kernel/mm/transparent_hugepage/enabled", "unavailable")),
        swap=swap_devices(_read("/proc/swaps")),
        rlimit_stack=None if soft == resource.RLIM_INFINITY else soft,
        vsyscall=vsyscall_mode(_read("/proc/self/maps")),
        mmap_min_addr=int(_read("/proc/sys/vm/mmap_min_addr", "4096") or 4096),
        overcommit_memory=int(overcommit) if overcommit.isdigit() else None,
        pti="PTI" in meltdown,
        kernel_text=kernel_text_address(),
        tmpdir=tmp,
        tmpdir_fs=fs_type(tmp, _read("/proc/self/mountinfo")),
    )
    if machine.cpu_flags["la57"]:
        machine.notes.append("5-level paging hardware: the canonical boundary may sit above 47 bits")
    return machine
