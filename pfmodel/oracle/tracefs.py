"""A private tracefs instance for the root-only channels (kernel-oracle.md §3, §10).

As root the oracle enables the ``exceptions:page_fault_user``/``page_fault_kernel``
tracepoints (the raw hardware error code of every fault) and the ``mmap_lock``
tracepoints (whether a fault touched mmap_lock, for read or write) in an instance of
its own.  The instance traces the driver's pid with ``event-fork`` on, so every probe
it starts (and the probe's own forks) is followed without a per-probe
``set_event_pid`` write (which costs an RCU grace period); each probe brackets the
measured access with ``trace_marker`` lines and the driver keeps that pid's events
between the two markers, read from ``trace_pipe`` as they are consumed.

Nothing is left behind: the instance is removed, and tracefs is unmounted (and its
temporary mount point removed) if this module mounted it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import re
import secrets
import tempfile
from pathlib import Path

from .probe import TraceEvent

EVENTS = (
    "exceptions/page_fault_user",
    "exceptions/page_fault_kernel",
    "mmap_lock/mmap_lock_start_locking",
    "mmap_lock/mmap_lock_acquire_returned",
    "mmap_lock/mmap_lock_released",
)

_LINE = re.compile(r"^\s*(?P<comm>.*?)-(?P<pid>\d+)\s+\[\d+\]\s+(?:\S+\s+)?[\d.]+:\s+"
                   r"(?P<event>\w+):\s?(?P<body>.*)$")
_FIELD = re.compile(r"(\w+)=(\S*)")


def _int(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        return int(text, 16) if text.lower().startswith("0x") else int(text)
    except ValueError:
        return None     # a symbol (%ps of a kernel address): not a user address


def parse_trace(text: str, pid: int) -> list[TraceEvent]:
    """The events of process ``pid`` between its 'pfprobe begin'/'pfprobe end' markers."""
    events: list[TraceEvent] = []
    inside = False
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        m = _LINE.match(line)
        if not m:
            continue
        event, body = m.group("event"), m.group("body")
        if event == "tracing_mark_write":
            words = body.split()
            if len(words) >= 3 and words[0] == "pfprobe" and words[2] == str(pid):
                inside = words[1] == "begin"
            continue
        if not inside or int(m.group("pid")) != pid:
            continue
        fields = dict(_FIELD.findall(body))
        write = fields.get("write")
        events.append(TraceEvent(
            event=event,
            address=_int(fields.get("address")),
            error_code=_int(fields.get("error_code")),
            write=None if write is None else write in ("true", "1"),
        ))
    return events


MOUNT_PREFIX = "pfmodel-tracefs-"


def _find_tracefs(mounts_text: str) -> str | None:
    """The system's tracefs mount point.  Another oracle run's temporary mount is not
    used: that run unmounts it when it ends, whatever we are doing."""
    for line in mounts_text.splitlines():
        fields = line.split()
        if len(fields) >= 3 and fields[2] == "tracefs":
            point = fields[1].replace("\\040", " ")
            if not os.path.basename(point).startswith(MOUNT_PREFIX):
                return point
    return None


class TracefsUnavailable(Exception):
    """Why the tracing channels cannot be used here (a note, not an error)."""


class Tracer:
    """Context manager: a private tracefs instance with the fault and lock events on."""

    def __init__(self) -> None:
        self.root: Path | None = None
        self.instance: Path | None = None
        self._mounted_at: Path | None = None
        self._pipe: int | None = None

    def __enter__(self) -> "Tracer":
        if os.geteuid() != 0:
            raise TracefsUnavailable("tracing needs root (tracefs)")
        try:
            mounts = Path("/proc/mounts").read_text()
        except OSError as exc:
            raise TracefsUnavailable(f"cannot read /proc/mounts: {exc}") from None
        root = _find_tracefs(mounts)
        try:
            if root is None:
                root = self._mount()
            self.root = Path(root)
            for event in EVENTS:
                if not (self.root / "events" / event / "enable").exists():
                    raise TracefsUnavailable(f"tracepoint {event} is not available")
            self.instance = self.root / "instances" / f"pfmodel-{os.getpid()}-{secrets.token_hex(4)}"
            self.instance.mkdir()
            self._write("buffer_size_kb", "1024")
            self._write("options/event-fork", "1")           # follow the probes we start
            self._write("set_event_pid", str(os.getpid()))
            self._pipe = os.open(self.instance / "trace_pipe", os.O_RDONLY | os.O_NONBLOCK)
            for event in EVENTS:
                self._write(f"events/{event}/enable", "1")
        except TracefsUnavailable:
            self._cleanup()
            raise
        except OSError as exc:
            self._cleanup()
            raise TracefsUnavailable(f"tracefs setup failed: {exc}") from None
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._cleanup()

    # --- per case ---------------------------------------------------------------------
    def collect(self, pid: int) -> list[TraceEvent]:
        """The events of one finished probe (consumed from trace_pipe)."""
        assert self._pipe is not None
        chunks = []
        while True:
            try:
                data = os.read(self._pipe, 1 << 16)
            except BlockingIOError:
                break
            if not data:
                break
            chunks.append(data)
        return parse_trace(b"".join(chunks).decode(errors="replace"), pid)

    # --- internals ---------------------------------------------------------------------
    def _write(self, name: str, value: str) -> None:
        assert self.instance is not None
        with open(self.instance / name, "w") as f:
            f.write(value)

    def _mount(self) -> str:
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        point = Path(tempfile.mkdtemp(prefix=MOUNT_PREFIX))
        if libc.mount(b"nodev", str(point).encode(), b"tracefs", 0, None) != 0:
            err = ctypes.get_errno()
            point.rmdir()
            raise TracefsUnavailable(f"mounting tracefs failed: {os.strerror(err)}")
        self._mounted_at = point
        return str(point)

    def _cleanup(self) -> None:
        if self._pipe is not None:
            os.close(self._pipe)
            self._pipe = None
        if self.instance is not None:
            try:
                for event in EVENTS:
                    self._write(f"events/{event}/enable", "0")
            except OSError:
                pass
            try:
                self.instance.rmdir()
            except OSError:
                pass
            self.instance = None
        if self._mounted_at is not None:
            libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
            libc.umount2(str(self._mounted_at).encode(), 0)
            try:
                self._mounted_at.rmdir()
            except OSError:
                pass
            self._mounted_at = None
