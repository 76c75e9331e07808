"""The probe without a C compiler: the same cases, in a forked Python child, with ctypes.

A Python-level ``signal.signal(SIGSEGV)`` cannot recover from a fault (the C handler
only sets a flag, the instruction faults again forever), so the fault handler and the
measured window are a few dozen bytes of x86-64 machine code in an executable page
(kernel-oracle.md §4, "pure ctypes with a machine-code handler"):

* the *stub* saves rsp, reads getrusage(RUSAGE_THREAD), optionally moves rsp, makes
  the one access (load, store, call, or a raw syscall on the target), then at the
  *recover* label restores rsp, reads getrusage again and returns to ctypes;
* the *handler* (SA_SIGINFO, on an alternate stack) copies si_signo, si_code, si_addr
  and the context's err, trapno, cr2 and rip into a record page, then points the
  context's rip at *recover* and its rsp at the saved value, and returns through
  glibc's restorer (rt_sigreturn).

Both counter reads happen inside the machine code, so the interpreter cannot add
faults to the window.  The child prints the same JSON line as ``pfprobe.c``.
"""

from __future__ import annotations

import ctypes
import json
import os
import resource
import select
import signal
import struct
import tempfile
import time

PAGE = 4096
PROT = {"none": 0, "r": 1, "w": 2, "rw": 3, "x": 4, "rx": 5, "wx": 6, "rwx": 7}
MAP_SHARED, MAP_PRIVATE, MAP_FIXED, MAP_ANONYMOUS = 0x01, 0x02, 0x10, 0x20
MAP_GROWSDOWN, MAP_NORESERVE, MAP_FIXED_NOREPLACE = 0x100, 0x4000, 0x100000
MADV_DONTNEED, MADV_POPULATE_READ = 4, 22
SA_SIGINFO, SA_ONSTACK, SA_NODEFER = 0x4, 0x08000000, 0x40000000
SYS_READ, SYS_WRITE, SYS_PREAD64, SYS_GETRUSAGE = 0, 1, 17, 98

# Record page layout (offsets).
R_SIGNO, R_CODE, R_ADDR, R_ERR, R_TRAPNO, R_CR2, R_RIP, R_FAULTED = 0, 4, 8, 16, 24, 32, 40, 48
R_SAVED_SP, R_RU0, R_RU1, R_RET = 56, 64, 208, 360
RU_MINFLT, RU_MAJFLT = 64, 72          # offsets inside struct rusage


def _q(value: int) -> bytes:
    return struct.pack("<Q", value & 0xFFFFFFFFFFFFFFFF)


def _d(value: int) -> bytes:
    return struct.pack("<I", value & 0xFFFFFFFF)


def handler_code(record: int, recover: int) -> bytes:
    """The SA_SIGINFO handler: rdi = signo, rsi = siginfo, rdx = ucontext.
    uc_mcontext.gregs start at ucontext+40: RSP is greg 15, RIP 16, ERR 19, TRAPNO 20, CR2 22."""
    return b"".join([
        b"\x48\xb8" + _q(record),                # movabs rax, record
        b"\x8b\x0e", b"\x89\x08",                # si_signo
        b"\x8b\x4e\x08", b"\x89\x48\x04",        # si_code
        b"\x48\x8b\x4e\x10", b"\x48\x89\x48\x08",  # si_addr
        b"\x48\x8b\x8a\xc0\x00\x00\x00", b"\x48\x89\x48\x10",  # gregs[REG_ERR]
        b"\x48\x8b\x8a\xc8\x00\x00\x00", b"\x48\x89\x48\x18",  # gregs[REG_TRAPNO]
        b"\x48\x8b\x8a\xd8\x00\x00\x00", b"\x48\x89\x48\x20",  # gregs[REG_CR2]
        b"\x48\x8b\x8a\xa8\x00\x00\x00", b"\x48\x89\x48\x28",  # gregs[REG_RIP]
        b"\xc7\x40\x30" + _d(1),                 # faulted = 1
        b"\x48\xb9" + _q(recover),               # movabs rcx, recover
        b"\x48\x89\x8a\xa8\x00\x00\x00",         # gregs[REG_RIP] = recover
        b"\x48\x8b\x48\x38",                     # rcx = saved rsp
        b"\x48\x89\x8a\xa0\x00\x00\x00",         # gregs[REG_RSP] = saved rsp
        b"\xc3",                                 # ret (to glibc's restorer)
    ])


def access_code(access: str, record: int, scratch: int, fd: int = -1, length: int = 1) -> bytes:
    """The one access on r8 (the target)."""
    if access == "read":
        return b"\x41\x8a\x00"                   # mov al, [r8]
    if access == "write":
        return b"\x41\xc6\x00\x00"               # mov byte [r8], 0
    if access == "exec":
        return (b"\x48\xb8" + _q(scratch)        # movabs rax, scratch (the zero sled's target)
                + b"\x31\xff\x31\xf6"            # xor edi, edi; xor esi, esi
                + b"\x41\xff\xd0")               # call r8
    nr = {"sys_read": SYS_READ, "sys_write": SYS_WRITE, "sys_pread": SYS_PREAD64}[access]
    return (b"\xb8" + _d(nr) + b"\xbf" + _d(fd)  # mov eax, nr; mov edi, fd
            + b"\x4c\x89\xc6"                    # mov rsi, r8
            + b"\xba" + _d(length)               # mov edx, length
            + b"\x49\xc7\xc2" + _d(0)            # mov r10, 0 (pread offset)
            + b"\x0f\x05"                        # syscall
            + b"\x48\xb9" + _q(record + R_RET)   # movabs rcx, &ret
            + b"\x48\x89\x01")                   # mov [rcx], rax


def stub_code(base: int, access: bytes, record: int) -> tuple[bytes, int]:
    """stub(target, new_sp): the measured window.  Returns (code, offset of recover)."""
    head = b"".join([
        b"\x49\x89\xf8", b"\x49\x89\xf1",        # mov r8, rdi; mov r9, rsi
        b"\x48\xb8" + _q(record + R_SAVED_SP), b"\x48\x89\x20",   # saved_sp = rsp
        b"\xb8" + _d(SYS_GETRUSAGE), b"\xbf" + _d(1),             # getrusage(RUSAGE_THREAD,
        b"\x48\xbe" + _q(record + R_RU0), b"\x0f\x05",            #           &ru0)
        b"\x4d\x85\xc9", b"\x74\x03", b"\x4c\x89\xcc",            # if (r9) rsp = r9
    ])
    recover_at = len(head) + len(access)
    tail = b"".join([
        b"\x48\xb8" + _q(record + R_SAVED_SP), b"\x48\x8b\x20",   # rsp = saved_sp
        b"\xb8" + _d(SYS_GETRUSAGE), b"\xbf" + _d(1),
        b"\x48\xbe" + _q(record + R_RU1), b"\x0f\x05",            # getrusage(..., &ru1)
        b"\xc3",
    ])
    return head + access + tail, recover_at


GETSP = b"\x48\x89\xe0\xc3"                      # mov rax, rsp; ret


class _Stack(ctypes.Structure):
    _fields_ = [("ss_sp", ctypes.c_void_p), ("ss_flags", ctypes.c_int), ("ss_size", ctypes.c_size_t)]


class _Sigaction(ctypes.Structure):
    _fields_ = [("sa_sigaction", ctypes.c_void_p), ("sa_mask", ctypes.c_ulong * 16),
                ("sa_flags", ctypes.c_int), ("sa_restorer", ctypes.c_void_p)]


class _Libc:
    def __init__(self) -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.mmap.restype = ctypes.c_void_p
        libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int,
                              ctypes.c_long]
        for name in ("mprotect", "madvise", "munmap"):
            getattr(libc, name).argtypes = [ctypes.c_void_p, ctypes.c_size_t] + (
                [ctypes.c_int] if name != "munmap" else [])
        self.c = libc

    def mmap(self, addr: int | None, length: int, prot: int, flags: int, fd: int = -1) -> int:
        res = self.c.mmap(addr, length, prot, flags, fd, 0)
        if res is None or res == ctypes.c_void_p(-1).value:
            raise OSError(ctypes.get_errno(), f"mmap: {os.strerror(ctypes.get_errno())}")
        return res

    def check(self, rc: int, what: str) -> None:
        if rc != 0:
            raise OSError(ctypes.get_errno(), f"{what}: {os.strerror(ctypes.get_errno())}")


def _maps() -> list[list[str]]:
    out = []
    with open("/proc/self/maps") as f:
        for line in f:
            parts = line.split(None, 5)
            lo, hi = parts[0].split("-")
            name = parts[5].strip() if len(parts) > 5 else ""
            out.append([f"0x{int(lo, 16):x}", f"0x{int(hi, 16):x}", parts[1], name.replace('"', "")])
    return out


def _pagemap(fd: int, addr: int) -> str | None:
    try:
        data = os.pread(fd, 8, (addr // PAGE) * 8)
    except OSError:
        return None
    return f"0x{struct.unpack('<Q', data)[0]:x}" if len(data) == 8 else None


def _child(opts: dict[str, str]) -> dict:
    """Runs in the forked child: set the case up, measure, return the JSON object."""
    L = _Libc()
    get = opts.get
    prot = PROT[get("mprot", "rw")]
    shared = get("share", "private") == "shared"
    tmpdir = get("tmpdir", tempfile.gettempdir())
    access = get("access", "read")
    npages, page, off = int(get("npages", "1")), int(get("page", "0")), int(get("off", "0"))

    record = L.mmap(None, PAGE, 3, MAP_PRIVATE | MAP_ANONYMOUS)
    scratch = L.mmap(None, PAGE, 3, MAP_PRIVATE | MAP_ANONYMOUS)
    code = L.mmap(None, 2 * PAGE, 3, MAP_PRIVATE | MAP_ANONYMOUS)
    trap = L.mmap(None, PAGE, 0, MAP_PRIVATE | MAP_ANONYMOUS)       # the warm-up fault
    altstack = L.mmap(None, 16 * PAGE, 3, MAP_PRIVATE | MAP_ANONYMOUS)

    if get("rlim_stack"):
        _soft, hard = resource.getrlimit(resource.RLIMIT_STACK)
        resource.setrlimit(resource.RLIMIT_STACK, (int(get("rlim_stack")), hard))

    # --- the mapping ----------------------------------------------------------------
    mapping = get("map", "anon")
    map_start = map_end = anchor = target = 0
    if mapping in ("anon", "file"):
        base = L.mmap(None, (npages + 2) * PAGE, 0, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE)
        flags = (MAP_SHARED if shared else MAP_PRIVATE) | MAP_FIXED
        fd = -1
        if mapping == "file":
            fd, path = tempfile.mkstemp(prefix="pfprobe-", dir=tmpdir)
            os.unlink(path)
            os.write(fd, b"\0" * int(get("fsize", str(PAGE))))
            os.fdatasync(fd)
        else:
            flags |= MAP_ANONYMOUS
        map_start = L.mmap(base + PAGE, npages * PAGE, prot, flags, fd)
        map_end = map_start + npages * PAGE
        target, anchor = map_start + page * PAGE + off, map_start
    elif mapping == "hole":
        m = L.mmap(None, 3 * PAGE, 3, MAP_PRIVATE | MAP_ANONYMOUS)
        L.check(L.c.munmap(m + PAGE, PAGE), "munmap")
        target, anchor = m + PAGE + off, m
    elif mapping == "raw":
        target = anchor = int(get("addr", "0"), 0)
    elif mapping == "growsdown":
        gdpages, below, gap = int(get("gdpages", "1")), int(get("below", "8")), int(get("gap", "-1"))
        window = 64 << 20
        w = L.mmap(None, window, 0, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE)
        L.check(L.c.munmap(w, window), "munmap")
        map_start = L.mmap(w + window - gdpages * PAGE, gdpages * PAGE, prot,
                           MAP_PRIVATE | MAP_ANONYMOUS | MAP_GROWSDOWN | MAP_FIXED)
        map_end = map_start + gdpages * PAGE
        target, anchor = map_start - below, map_start
        if gap >= 0:
            nb_end = (target & ~(PAGE - 1)) - gap
            L.mmap(nb_end - PAGE, PAGE, 3, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE)
    elif mapping == "stack":
        stack = next(m for m in _maps() if m[3] == "[stack]")
        map_start, map_end = int(stack[0], 16), int(stack[1], 16)
        getsp = _function(L, GETSP, ctypes.c_uint64)
        sp = getsp()
        target = map_end - int(get("top")) if get("top") else sp - int(get("dist", "65536"))
        anchor = map_start
    else:
        raise ValueError(f"bad map {mapping!r}")

    # --- pre-state steps ----------------------------------------------------------------
    keeper_w = None
    keeper = 0
    for step in filter(None, get("pre", "").split(",")):
        pg = target & ~(PAGE - 1)
        if step == "read":
            ctypes.c_char.from_address(target).value
        elif step == "write":
            ctypes.c_char.from_address(target).value = b"\0"
        elif step == "dontneed":
            L.check(L.c.madvise(pg, PAGE, MADV_DONTNEED), "madvise")
        elif step.startswith("mprotect:"):
            L.check(L.c.mprotect(map_start, map_end - map_start, PROT[step[9:]]), "mprotect")
        elif step == "fork":
            r, keeper_w = os.pipe()
            keeper = os.fork()
            if keeper == 0:
                os.close(keeper_w)
                while os.read(r, 1):
                    pass
                os._exit(0)
            os.close(r)
        elif step == "forkexit":
            c = os.fork()
            if c == 0:
                os._exit(0)
            os.waitpid(c, 0)
        else:
            raise ValueError(f"bad pre step {step!r}")

    # --- syscall sources ------------------------------------------------------------------
    length = int(get("len", "1"))
    sys_fd = -1
    if access in ("sys_read", "sys_write"):
        rfd, wfd = os.pipe()
        if access == "sys_read":
            os.write(wfd, b"A" * length)
        sys_fd = rfd if access == "sys_read" else wfd
    elif access == "sys_pread":
        sys_fd, path = tempfile.mkstemp(prefix="pfprobe-src-", dir=tmpdir)
        os.unlink(path)
        os.write(sys_fd, b"A" * 2 * PAGE)

    # --- code, handler, alternate stack ---------------------------------------------------
    body, recover_at = stub_code(code, access_code(access, record, scratch, sys_fd, length), record)
    stub_at = code + 256
    handler = handler_code(record, stub_at + recover_at)
    warm, warm_recover = stub_code(code, access_code("read", record, scratch), record)
    warm_at = code + 1024
    warm_handler_at = code + 1536
    ctypes.memmove(code, handler, len(handler))
    ctypes.memmove(stub_at, body, len(body))
    ctypes.memmove(warm_at, warm, len(warm))
    ctypes.memmove(warm_handler_at, handler_code(record, warm_at + warm_recover),
                   len(handler_code(record, warm_at + warm_recover)))
    L.check(L.c.mprotect(code, 2 * PAGE, PROT["rx"]), "mprotect code")
    ss = _Stack(altstack, 0, 16 * PAGE)
    L.check(L.c.sigaltstack(ctypes.byref(ss), None), "sigaltstack")

    def install(at: int) -> None:
        sa = _Sigaction()
        sa.sa_sigaction = at
        sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER
        for sig in (signal.SIGSEGV, signal.SIGBUS):
            L.check(L.c.sigaction(sig, ctypes.byref(sa), None), "sigaction")

    run = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p)
    warm_fn = run(warm_at)
    stub_fn = run(stub_at)

    # --- warm-up: after a fork every private page is copy-on-write -------------------------
    for region, size in ((record, PAGE), (scratch, PAGE), (altstack, 16 * PAGE)):
        ctypes.memset(region, 0, size)
    install(warm_handler_at)
    warm_fn(scratch, None)
    warm_fn(trap, None)              # one real fault: signal delivery, rseq, the handler path
    install(code)
    pagemap = os.open("/proc/self/pagemap", os.O_RDONLY)
    newsp = 0
    if get("sp_from", "none") == "target":
        newsp = target + int(get("sp_off", "0"))
    elif get("sp_from", "none") == "vma":
        newsp = anchor + int(get("sp_off", "0"))
    maps_before = _maps()
    pm_before = _pagemap(pagemap, target)
    ctypes.memset(record, 0, PAGE)

    stub_fn(target, newsp or None)   # the measured window

    rec = (ctypes.c_char * PAGE).from_address(record).raw
    pm_after = _pagemap(pagemap, target)
    maps_after = _maps()
    u32 = lambda o: struct.unpack_from("<I", rec, o)[0]          # noqa: E731
    u64 = lambda o: struct.unpack_from("<Q", rec, o)[0]          # noqa: E731
    i64 = lambda o: struct.unpack_from("<q", rec, o)[0]          # noqa: E731
    faulted = bool(u32(R_FAULTED))
    ret = i64(R_RET) if access.startswith("sys_") else 0
    soft, _hard = resource.getrlimit(resource.RLIMIT_STACK)
    if keeper_w is not None:
        os.close(keeper_w)
        os.waitpid(keeper, 0)
    rsp = newsp or (u64(R_SAVED_SP) if access in ("read", "write", "exec") else 0)
    return {
        "v": 1, "pid": os.getpid(), "target": hex(target), "anchor": hex(anchor), "rsp": hex(rsp),
        "rlim_stack": soft if soft != resource.RLIM_INFINITY else -1, "faulted": faulted,
        "signal": u32(R_SIGNO) if faulted else 0, "si_code": u32(R_CODE) if faulted else 0,
        "si_addr": hex(u64(R_ADDR)), "err": hex(u64(R_ERR)), "trapno": u64(R_TRAPNO),
        "cr2": hex(u64(R_CR2)), "rip": hex(u64(R_RIP)),
        "ret": -1 if ret < 0 else ret, "errno": -ret if ret < 0 else 0,
        "minflt": u64(R_RU1 + RU_MINFLT) - u64(R_RU0 + RU_MINFLT),
        "majflt": u64(R_RU1 + RU_MAJFLT) - u64(R_RU0 + RU_MAJFLT),
        "pm_before": pm_before, "pm_after": pm_after, "maps_before": maps_before, "maps_after": maps_after,
        "flavour": "ctypes",
    }


def _function(L: _Libc, code: bytes, restype):
    """Place a tiny function in a fresh executable page and return it as a ctypes callable."""
    page = L.mmap(None, PAGE, 3, MAP_PRIVATE | MAP_ANONYMOUS)
    ctypes.memmove(page, code, len(code))
    L.check(L.c.mprotect(page, PAGE, PROT["rx"]), "mprotect")
    return ctypes.CFUNCTYPE(restype)(page)


def parse_args(args: list[str]) -> dict[str, str]:
    opts = {}
    for arg in args:
        key, sep, value = arg.partition("=")
        if not sep:
            raise ValueError(f"probe argument {arg!r} is not key=value")
        opts[key] = value
    return opts


def run_ctypes_case(args: list[str], timeout: float) -> str:
    """Run one case in a forked child; return its JSON line (as the C helper prints it)."""
    opts = parse_args(args)
    if "tracefs" in opts:
        raise ValueError("the ctypes probe does not write trace markers")
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into the caller's code
        os.close(r)
        status = 0
        try:
            line = json.dumps(_child(opts))
        except Exception as exc:  # report setup failures as the C helper does
            line = json.dumps({"v": 1, "setup_error": f"{type(exc).__name__}: {exc}"})
            status = 3
        os.write(w, (line + "\n").encode())
        os._exit(status)
    os.close(w)
    chunks, deadline = [], time.monotonic() + timeout
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([r], [], [], left)[0]:
                os.kill(pid, signal.SIGKILL)
                raise TimeoutError(f"the ctypes probe did not finish within {timeout:g} s")
            data = os.read(r, 65536)
            if not data:
                break
            chunks.append(data)
    finally:
        os.close(r)
        os.waitpid(pid, 0)
    return b"".join(chunks).decode()
