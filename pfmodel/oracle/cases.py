"""The oracle's case matrix: which faults to induce on the running kernel.

A ``Case`` says what the probe builds (mapping, protection, pre-state steps), which
access it makes, and so which 4.4 scenario pfmodel builds for it
(``pfmodel.oracle.build``).  Names are paths ("anon/private/rw/write/untouched") so
that ``--cases PATTERN`` can select them with shell-style wildcards.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, replace

from ..errors import UsageError
from ..sim.constants import KERNEL_MAPPINGS_START

KIB = 1 << 10
MIB = 1 << 20
PAGE = 4096

PROTS = ("none", "r", "w", "rw", "x", "rx", "rwx")
USER_ACCESSES = ("read", "write", "exec")
SYSCALLS = ("sys_read", "sys_write", "sys_pread")
PRE_STATES = ("untouched", "read", "written", "fork", "dontneed", "mprotect")

# Fixed addresses probed from user mode.  Canonical-boundary numbers are for 4-level
# paging (47-bit user space), which is what the scenario's x86_64 geometry models.
NULL = 0
LAST_USER_PAGE = (1 << 47) - PAGE          # TASK_SIZE_MAX: canonical, but not user space
KERNEL_HOLE = KERNEL_MAPPINGS_START["x86_64"]  # lowest canonical kernel address, never mapped
VSYSCALL = 0xFFFFFFFFFF600000
NONCANONICAL = 1 << 47                     # raises #GP, not #PF


def size_label(n: int) -> str:
    """65536 -> '64k', 1048576 -> '1m', 8 -> '8'."""
    if n and n % MIB == 0:
        return f"{n // MIB}m"
    if n and n % KIB == 0:
        return f"{n // KIB}k"
    return str(n)


def writable(prot: str) -> bool:
    return "w" in prot


def readable(prot: str) -> bool:
    """On x86 every present PTE is readable: only PROT_NONE cannot be read."""
    return prot != "none"


@dataclass(frozen=True)
class Case:
    name: str
    group: str                    # anon, file, special, stack, syscall, cow
    map: str                      # anon, file, hole, raw, growsdown, stack
    access: str                   # read, write, exec, sys_read, sys_write, sys_pread
    prot: str = "rw"              # the VMA's protection when the access is made
    share: str = "private"
    mprot: str | None = None      # protection at mmap time (default: prot)
    pre: tuple[str, ...] = ()     # probe steps, in order
    pre_state: str = "untouched"  # what the steps amount to (the scenario's PTE state)
    npages: int = 1
    page: int = 0
    off: int = 0
    fsize: int = PAGE
    addr: int | None = None       # raw targets
    addr_kind: str = ""           # null, last_user_page, kernel_hole, kernel_text, vsyscall, noncanonical
    gdpages: int = 1
    below: int = 8
    gap: int | None = None
    dist: int | None = None
    top: int | None = None
    sp_from: str = "none"         # none, target, vma: the access runs with rsp moved
    sp_off: int = 0
    rlim_stack: int | None = None
    length: int = 1               # syscall byte count
    needs: tuple[str, ...] = ()   # machine features the case needs
    note: str = ""

    @property
    def user(self) -> bool:
        """A user-mode access (the others are kernel-mode accesses inside a syscall)."""
        return self.access in USER_ACCESSES

    @property
    def kind(self) -> str:
        """The access kind the MMU sees: read, write or fetch (syscalls: the kernel's copy)."""
        return {"read": "read", "write": "write", "exec": "fetch",
                "sys_read": "write", "sys_pread": "write", "sys_write": "read"}[self.access]

    @property
    def stack_like(self) -> bool:
        return self.map in ("growsdown", "stack")

    def args(self) -> list[str]:
        """The probe's key=value arguments."""
        out = [f"map={self.map}", f"access={self.access}", f"share={self.share}",
               f"mprot={self.mprot or self.prot}"]
        if self.pre:
            out.append("pre=" + ",".join(self.pre))
        if self.map in ("anon", "file"):
            out += [f"npages={self.npages}", f"page={self.page}"]
        if self.map == "file":
            out.append(f"fsize={self.fsize}")
        if self.off:
            out.append(f"off={self.off}")
        if self.map == "raw":
            out.append(f"addr={self.addr:#x}")
        if self.map == "growsdown":
            out += [f"gdpages={self.gdpages}", f"below={self.below}"]
            if self.gap is not None:
                out.append(f"gap={self.gap}")
        if self.map == "stack":
            out.append(f"top={self.top}" if self.top is not None else f"dist={self.dist}")
        if self.sp_from != "none":
            out += [f"sp_from={self.sp_from}", f"sp_off={self.sp_off}"]
        if self.rlim_stack is not None:
            out.append(f"rlim_stack={self.rlim_stack}")
        if self.access.startswith("sys_"):
            out.append(f"len={self.length}")
        return out


# --- the anonymous-memory product ----------------------------------------------------

def _pre_steps(prot: str, state: str) -> tuple[str | None, tuple[str, ...]] | None:
    """(mmap-time prot, probe steps) that put a page of a ``prot`` mapping in ``state``,
    or None when the state cannot be reached under that protection."""
    if state == "untouched":
        return prot, ()
    if state == "read":
        return (prot, ("read",)) if readable(prot) else None
    if state == "written":
        return (prot, ("write",)) if writable(prot) else None
    # The rest start from a written page; a non-writable protection is set afterwards.
    base = prot if writable(prot) else "rw"
    to_prot = () if base == prot else (f"mprotect:{prot}",)
    if state == "fork":
        return base, ("write", *to_prot, "fork")
    if state == "dontneed":
        return base, ("write", *to_prot, "dontneed")
    if state == "mprotect":
        # written under rw, then through PROT_NONE to the final protection
        steps = ("write", "mprotect:none") + (() if prot == "none" else (f"mprotect:{prot}",))
        return "rw", steps
    raise ValueError(state)


def anon_cases() -> list[Case]:
    cases = []
    for share in ("private", "shared"):
        for prot in PROTS:
            for state in PRE_STATES:
                plan = _pre_steps(prot, state)
                if plan is None:
                    continue
                mprot, steps = plan
                for access in USER_ACCESSES:
                    cases.append(Case(
                        name=f"anon/{share}/{prot}/{access}/{state}", group="anon", map="anon",
                        access=access, prot=prot, share=share, mprot=mprot, pre=steps, pre_state=state,
                        needs=("nx",) if access == "exec" else ()))
    return cases


# --- file mappings -------------------------------------------------------------------

def file_cases() -> list[Case]:
    cases = []
    for share in ("private", "shared"):
        for prot in ("r", "rw"):
            for state in ("untouched", "read", "written"):
                plan = _pre_steps(prot, state)
                if plan is None:
                    continue
                for access in ("read", "write"):
                    cases.append(Case(
                        name=f"file/{share}/{prot}/{access}/{state}", group="file", map="file",
                        access=access, prot=prot, share=share, mprot=plan[0], pre=plan[1],
                        pre_state=state))
        cases.append(Case(name=f"file/{share}/rx/exec/untouched", group="file", map="file",
                          access="exec", prot="rx", share=share, needs=("nx",)))
        # A 4096-byte file in a two-page mapping: page 1 is wholly beyond end of file.
        for access, prot in (("read", "rw"), ("write", "rw"), ("exec", "rx")):
            cases.append(Case(name=f"file/{share}/{prot}/{access}/beyond-eof", group="file", map="file",
                              access=access, prot=prot, share=share, npages=2, page=1, fsize=PAGE,
                              pre_state="beyond_eof", needs=("nx",) if access == "exec" else ()))
        # Bytes past EOF but inside the EOF page are mapped; an empty file has no page at all.
        cases.append(Case(name=f"file/{share}/r/read/eof-page", group="file", map="file", access="read",
                          prot="r", share=share, fsize=100, off=200))
        cases.append(Case(name=f"file/{share}/r/read/empty-file", group="file", map="file", access="read",
                          prot="r", share=share, fsize=0, pre_state="beyond_eof"))
    return cases


# --- special addresses from user mode -----------------------------------------------

def special_cases() -> list[Case]:
    cases = []
    for access in USER_ACCESSES:
        needs = ("nx",) if access == "exec" else ()
        cases.append(Case(name=f"special/hole/{access}", group="special", map="hole", access=access,
                          needs=needs))
        cases.append(Case(name=f"special/null/{access}", group="special", map="raw", access=access,
                          addr=NULL, addr_kind="null", needs=needs))
        cases.append(Case(name=f"special/kernel-hole/{access}", group="special", map="raw", access=access,
                          addr=KERNEL_HOLE, addr_kind="kernel_hole", needs=needs))
        cases.append(Case(name=f"special/kernel-text/{access}", group="special", map="raw", access=access,
                          addr=None, addr_kind="kernel_text", needs=needs + ("kernel_text",)))
    for access in ("read", "write"):
        cases.append(Case(name=f"special/last-user-page/{access}", group="special", map="raw", access=access,
                          addr=LAST_USER_PAGE, addr_kind="last_user_page"))
    for access in ("read", "exec"):
        cases.append(Case(name=f"special/vsyscall/{access}", group="special", map="raw", access=access,
                          addr=VSYSCALL, addr_kind="vsyscall", needs=("vsyscall",)))
    cases.append(Case(name="special/noncanonical/read", group="special", map="raw", access="read",
                      addr=NONCANONICAL, addr_kind="noncanonical"))
    return cases


# --- stack growth ----------------------------------------------------------------------

def stack_cases(rlimit: int | None) -> list[Case]:
    """MAP_GROWSDOWN and main-stack growth.  ``rlimit`` is the machine's RLIMIT_STACK."""
    lim = rlimit if rlimit and rlimit < (1 << 40) else 8 * MIB
    cushion = 65536 + 32 * 8
    cases = []
    gd = dict(group="stack", map="growsdown", prot="rw")
    # The access below the VMA with the real sp (far above, on the main stack).
    for below in (8, 1 * MIB):
        cases.append(Case(name=f"stack/growsdown/write/below-{size_label(below)}/sp-far", access="write",
                          below=below, **gd))
    # The access made with rsp moved next to it, as a push would be.
    for below, sp_from, sp_off, label in (
            (8, "vma", 0, "below-8/sp-vma"),
            (PAGE + 8, "vma", 0, "below-4k+8/sp-vma"),
            (65536, "vma", 0, "below-64k/sp-vma"),
            (cushion + 8, "vma", 0, "below-cushion+8/sp-vma"),
            (1 * MIB, "target", 8, "below-1m/sp-at"),
            (7 * MIB, "target", 8, "below-7m/sp-at"),
            (lim - PAGE, "target", 8, "size-rlimit/sp-at"),
            (lim, "target", 8, "size-rlimit+4k/sp-at"),
            (lim + 1 * MIB, "target", 8, "size-rlimit+1m/sp-at")):
        for access in ("read", "write"):
            cases.append(Case(name=f"stack/growsdown/{access}/{label}", access=access, below=below,
                              sp_from=sp_from, sp_off=sp_off, **gd))
    cases.append(Case(name="stack/growsdown/write/rlimit-4k/sp-at", access="write", below=8,
                      sp_from="target", sp_off=8, rlim_stack=PAGE, **gd))
    cases.append(Case(name="stack/growsdown/write/rlimit-8k/sp-at", access="write", below=8,
                      sp_from="target", sp_off=8, rlim_stack=2 * PAGE, **gd))
    # An accessible neighbour below: the gap left after growth.
    for gap in (0, PAGE, 512 * KIB, MIB - PAGE, MIB):   # MIB - PAGE is labelled 1020k
        cases.append(Case(name=f"stack/growsdown/write/gap-{size_label(gap)}/sp-at", access="write", below=8, gap=gap,
                          sp_from="target", sp_off=8, **gd))
    # The lowest page of the VMA itself (inside it), untouched.
    cases.append(Case(name="stack/growsdown/write/lowest-page", access="write", below=0,
                      sp_from="target", sp_off=8, gdpages=2, **gd))
    # Kernel-mode accesses below the VMA (a syscall writing or reading there).
    cases.append(Case(name="stack/growsdown/sys_read/below-8", access="sys_read", below=8, **gd))
    cases.append(Case(name="stack/growsdown/sys_write/below-1m", access="sys_write", below=1 * MIB, **gd))

    st = dict(group="stack", map="stack", prot="rw")
    for dist in (64 * KIB, 256 * KIB, 1 * MIB, 4 * MIB, 7 * MIB, lim + 1 * MIB):
        cases.append(Case(name=f"stack/main/write/rsp-{size_label(dist)}", access="write", dist=dist, **st))
    for top, label in ((lim - PAGE, "size-rlimit-4k"), (lim, "size-rlimit"), (lim + PAGE, "size-rlimit+4k")):
        cases.append(Case(name=f"stack/main/write/{label}/sp-at", access="write", top=top,
                          sp_from="target", sp_off=8, **st))
    cases.append(Case(name="stack/main/write/rlimit-1m-size-2m/sp-at", access="write", top=2 * MIB,
                      sp_from="target", sp_off=8, rlim_stack=MIB, **st))
    cases.append(Case(name="stack/main/write/rlimit-1m-size-1m/sp-at", access="write", top=MIB,
                      sp_from="target", sp_off=8, rlim_stack=MIB, **st))
    cases.append(Case(name="stack/main/sys_read/rsp-1m", access="sys_read", dist=1 * MIB, **st))
    return cases


# --- kernel-mode faults on user pointers -----------------------------------------------

def syscall_cases() -> list[Case]:
    targets = [
        ("hole", dict(map="hole")),
        ("null", dict(map="raw", addr=NULL, addr_kind="null")),
        ("none/untouched", dict(map="anon", prot="none")),
        ("r/untouched", dict(map="anon", prot="r")),
        ("r/read", dict(map="anon", prot="r", pre=("read",), pre_state="read")),
        ("x/untouched", dict(map="anon", prot="x")),
        ("rw/untouched", dict(map="anon", prot="rw")),
        ("rw/written", dict(map="anon", prot="rw", pre=("write",), pre_state="written")),
        ("rw/fork", dict(map="anon", prot="rw", pre=("write", "fork"), pre_state="fork")),
        ("file/beyond-eof", dict(map="file", prot="rw", npages=2, page=1, fsize=PAGE, pre_state="beyond_eof")),
    ]
    cases = []
    for access in SYSCALLS:
        for label, kw in targets:
            cases.append(Case(name=f"syscall/{access}/{label}", group="syscall", access=access, **kw))
    return cases


def cow_cases() -> list[Case]:
    """Copy-on-write after fork with the child gone: the page is reused, not copied."""
    out = []
    for access in ("read", "write"):
        out.append(Case(name=f"cow/private/rw/{access}/forkexit", group="cow", map="anon", access=access,
                        prot="rw", pre=("write", "forkexit"), pre_state="forkexit"))
    out.append(Case(name="cow/private/rw/write/read-forkexit", group="cow", map="anon", access="write",
                    prot="rw", pre=("read", "forkexit"), pre_state="read"))
    return out


def all_cases(rlimit: int | None = None) -> list[Case]:
    cases = (anon_cases() + file_cases() + special_cases() + stack_cases(rlimit)
             + syscall_cases() + cow_cases())
    names = [c.name for c in cases]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise AssertionError(f"duplicate case names: {dupes}")
    return cases


def select(cases: list[Case], patterns: list[str] | None) -> list[Case]:
    """The cases whose names match any of the shell-style patterns (all when none given).
    A pattern without wildcards matches as a prefix ("stack" selects "stack/...")."""
    if not patterns:
        return list(cases)
    chosen = []
    for case in cases:
        for pattern in patterns:
            pat = pattern if any(ch in pattern for ch in "*?[") else pattern.rstrip("/") + "*"
            if fnmatch.fnmatchcase(case.name, pat):
                chosen.append(case)
                break
    if not chosen:
        raise UsageError(f"no oracle case matches {', '.join(repr(p) for p in patterns)}",
                         "case names look like 'anon/private/rw/write/untouched' or 'stack/main/...'",
                         "run 'pfmodel oracle --list' to see every case name")
    return chosen


def with_address(case: Case, addr: int) -> Case:
    return replace(case, addr=addr)


__all__ = ["Case", "all_cases", "select", "anon_cases", "file_cases", "special_cases", "stack_cases",
           "syscall_cases", "cow_cases"]
