"""The expected-divergence table: where Linux 4.4 (what pfmodel models) and the running
kernel are known to differ, and the kernel change that explains each difference.

A difference between pfmodel's prediction and the kernel's observation on one channel
is *expected* only when a row below covers that channel and its condition holds for
the case (and, where the row pins them, the two values are exactly the ones it names).
Any other difference is a failure of the oracle run.  Rows are checked in order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from .cases import VSYSCALL, Case, writable
from .machine import Machine
from .probe import Observation

PAGE = 4096
STACK_CUSHION_64 = 65536 + 32 * 8          # 4.4's slack below sp (seed 1.1, KF 1.12)
STACK_GUARD_GAP = 256 * PAGE               # stack_guard_gap default since 4.12
WORD = (1 << 64) - 1


@dataclass(frozen=True)
class Context:
    """Everything a row's condition may look at for one case."""

    case: Case
    obs: Observation
    machine: Machine
    predicted: dict[str, str | None]
    observed: dict[str, str | None]


@dataclass(frozen=True)
class ExpectedDivergence:
    key: str
    cases: str                 # which cases, in words
    channels: tuple[str, ...]  # the channels it explains
    predicted: str             # what pfmodel (Linux 4.4) predicts
    kernel: str                # what the running kernel does
    change: str                # the kernel change that explains it
    since: str                 # the first release with that change
    when: Callable[[Context], bool]
    values: dict[str, tuple[str, str]] = field(default_factory=dict)  # pinned (predicted, observed)

    def explains(self, ctx: Context, channel: str) -> bool:
        if channel not in self.channels:
            return False
        if channel in self.values:
            want_p, want_o = self.values[channel]
            if ctx.predicted.get(channel) != want_p or ctx.observed.get(channel) != want_o:
                return False
        return bool(self.when(ctx))

    def to_json(self) -> dict[str, object]:
        return {"key": self.key, "cases": self.cases, "channels": list(self.channels),
                "predicted": self.predicted, "kernel": self.kernel, "change": self.change,
                "since": self.since,
                "values": {k: list(v) for k, v in sorted(self.values.items())}}


# --- conditions ------------------------------------------------------------------------------

def _below_vma(ctx: Context) -> bool:
    """The access is below the stack VMA (the fault has to grow it)."""
    return ctx.case.stack_like and ctx.obs.vma_before(ctx.obs.target) is None


def _cushion_exceeded(ctx: Context) -> bool:
    """4.4's user-mode check: address + 65536 + 32*sizeof(long) < sp (unsigned, wrapping)."""
    return (ctx.case.user and _below_vma(ctx)
            and (ctx.obs.target + STACK_CUSHION_64) & WORD < ctx.obs.rsp)


def _neighbour_within_gap(ctx: Context) -> bool:
    """An accessible VMA ends less than stack_guard_gap below the page the stack grows to."""
    page = ctx.obs.target & ~(PAGE - 1)
    for m in ctx.obs.maps_before:
        if m.end <= page and page - m.end < STACK_GUARD_GAP and m.perms[:3] != "---":
            return True
    return False


def _stack_one_page_lower(ctx: Context) -> bool:
    """4.4 left vm_start one page lower than the kernel did (the extra guard page)."""
    p, o = ctx.predicted.get("stack"), ctx.observed.get("stack")
    if p == "vm_start=page-1p" and o == "vm_start=page":
        return True
    # The lowest page of the VMA itself: 4.4 grows it by the guard page, the kernel not at all.
    lowest = ctx.obs.vma_before(ctx.obs.target)
    if p == "vm_start=page-1p" and o == "no growth" and lowest is not None \
            and lowest.start == ctx.obs.target & ~(PAGE - 1):
        return True
    # 4.4 grew to the page and then failed to add the guard page below it (RLIMIT_STACK
    # charged without the guard page): both end in SEGV_MAPERR, but 4.4 kept the growth.
    both_maperr = ctx.predicted.get("outcome") == ctx.observed.get("outcome") == "sigsegv/SEGV_MAPERR"
    return p == "vm_start=page" and o == "no growth" and both_maperr


def _stack_rlimit_guard_page(ctx: Context) -> bool:
    return ctx.case.stack_like and _stack_one_page_lower(ctx)


def _exclusive_anon_mprotect_to_writable(ctx: Context) -> bool:
    c = ctx.case
    return (c.map == "anon" and c.share == "private" and c.pre_state == "mprotect"
            and writable(c.prot) and c.access == "write")


def _vsyscall_xonly(ctx: Context) -> bool:
    return ctx.case.addr_kind == "vsyscall" and ctx.case.addr == VSYSCALL and ctx.machine.vsyscall == "xonly"


# --- the table -------------------------------------------------------------------------------

TABLE: tuple[ExpectedDivergence, ...] = (
    ExpectedDivergence(
        key="stack-cushion-removed",
        cases="user-mode accesses below a GROWSDOWN VMA more than 65536 + 32*sizeof(long) bytes below sp",
        channels=("outcome", "signal_err", "faults", "stack", "page"),
        predicted="SIGSEGV SEGV_MAPERR before expand_stack is tried (seed 1.1: "
                  "address + 65536 + 32*sizeof(long) < sp)",
        kernel="the stack is expanded and the access succeeds",
        change="the sp-distance check was dropped from the x86 fault handler "
               "('x86/mm/fault: Allow stack access below %rsp')",
        since="4.20",
        when=lambda ctx: _cushion_exceeded(ctx) and ctx.predicted.get("outcome") == "sigsegv/SEGV_MAPERR"
        and ctx.observed.get("outcome") == "handled",
    ),
    ExpectedDivergence(
        key="stack-guard-gap",
        cases="stack growth that would end less than stack_guard_gap (256 pages) above an accessible VMA",
        channels=("outcome", "signal_err", "faults", "stack", "page"),
        predicted="growth succeeds: 4.4 only refuses a stack that would touch a non-stack VMA "
                  "(KF 2.2.14 expand_stack)",
        kernel="SIGSEGV SEGV_MAPERR: the growth is refused",
        change="the one-page guard (check_stack_guard_page) was replaced by a gap of "
               "stack_guard_gap pages enforced at expansion ('mm: larger stack guard gap, between vmas')",
        since="4.12",
        when=lambda ctx: ctx.case.stack_like and _neighbour_within_gap(ctx)
        and ctx.predicted.get("outcome") == "handled" and ctx.observed.get("outcome") == "sigsegv/SEGV_MAPERR",
    ),
    ExpectedDivergence(
        key="stack-guard-page-removed",
        cases="faults that grow a GROWSDOWN VMA, or touch its lowest page",
        channels=("stack",),
        predicted="vm_start one page lower than the faulting page: do_anonymous_page's "
                  "check_stack_guard_page grows the VMA by one more page (KF 2.4.8); "
                  "acct_stack_growth does not charge that page to RLIMIT_STACK",
        kernel="vm_start is the faulting page; no guard page; RLIMIT_STACK is checked against the "
               "whole VMA size",
        change="check_stack_guard_page and the guard-page discount in acct_stack_growth were removed "
               "('mm: larger stack guard gap, between vmas')",
        since="4.12",
        when=_stack_rlimit_guard_page,
    ),
    ExpectedDivergence(
        key="stack-expansion-write-lock",
        cases="faults that grow a stack (user or kernel mode)",
        channels=("mmap_lock",),
        predicted="mmap_sem held for read while expand_stack runs (seed 1.1)",
        kernel="mmap_lock taken for write to expand the stack (lock_mm_and_find_vma upgrades)",
        change="stack expansion moved under the mmap write lock "
               "('mm: introduce new lock_mm_and_find_vma() page fault helper', the StackRot fix)",
        since="6.5 (backported to 6.1.37, 6.3.11, 6.4.1)",
        when=_below_vma,
        values={"mmap_lock": ("read", "write")},
    ),
    ExpectedDivergence(
        key="per-vma-lock",
        cases="user-mode faults on an address inside a VMA",
        channels=("mmap_lock",),
        predicted="down_read_trylock(mmap_sem) on every user-address fault (seed 1.1)",
        kernel="the fault is handled or rejected under the VMA's own lock; mmap_lock is not touched",
        change="x86 tries lock_vma_under_rcu() first ('x86/mm: try VMA lock-based page fault handling first')",
        since="6.4",
        when=lambda ctx: ctx.case.user and ctx.obs.vma_before(ctx.obs.target) is not None,
        values={"mmap_lock": ("read", "none")},
    ),
    ExpectedDivergence(
        key="mprotect-restores-write",
        cases="mprotect back to a writable protection of an exclusive, dirty private anonymous page, "
              "then a write",
        channels=("hw_codes", "faults", "mmap_lock"),
        predicted="the PTE stays PAGE_COPY (read-only): the write takes a P|W|U fault that reuses the page "
                  "(do_wp_page) and counts a minor fault",
        kernel="no fault: mprotect already made the PTE writable",
        change="'mm/mprotect: try avoiding write faults for exclusive anonymous pages when changing "
               "protection' (extended to clean pages in 6.2)",
        since="5.19",
        when=_exclusive_anon_mprotect_to_writable,
    ),
    ExpectedDivergence(
        key="cow-reuse-by-refcount",
        cases="a write to a write-protected private anonymous page after fork, when the child has exited",
        channels=("page",),
        predicted="do_wp_page reuses the page: it is anonymous and mapped once (reuse_swap_page, KF 2.4.14)",
        kernel="the page is copied: reuse needs the page's reference count to be 1, and a transient "
               "extra reference (a per-CPU LRU batch, the swap cache) makes the kernel copy",
        change="copy-on-write reuse decided by page_count instead of the map count "
               "('mm: do_wp_page() simplification'; later PageAnonExclusive, 5.19)",
        since="5.9",
        when=lambda ctx: ctx.case.map == "anon" and ctx.case.share == "private"
        and "forkexit" in ctx.case.pre and ctx.case.access == "write",
        values={"page": ("same frame", "new frame")},
    ),
    ExpectedDivergence(
        key="vsyscall-xonly-read",
        cases="user-mode read of the vsyscall page when the running kernel uses vsyscall=xonly",
        channels=("outcome", "signal_err", "hw_codes", "mmap_lock"),
        predicted="vsyscall=emulate (4.4's default): the page is mapped readable for user mode, "
                  "so the read does not fault",
        kernel="the page is not mapped at all: a U (not-present) fault, mmap_lock read for the failed "
               "VMA lookup, then SIGSEGV SEGV_MAPERR with sigcontext err 0x5",
        change="'x86/vsyscall: Add a new vsyscall=xonly mode' and xonly as the default mode",
        since="5.2",
        when=lambda ctx: _vsyscall_xonly(ctx) and ctx.case.access == "read",
        values={"outcome": ("handled", "sigsegv/SEGV_MAPERR"), "signal_err": ("none", "0x5"),
                "hw_codes": ("none", "u0x4"), "mmap_lock": ("none", "read")},
    ),
    ExpectedDivergence(
        key="vsyscall-xonly-exec",
        cases="user-mode call into the vsyscall page when the running kernel uses vsyscall=xonly",
        channels=("hw_codes",),
        predicted="vsyscall=emulate (4.4's default): the fetch hits the present NX page, "
                  "error code P|U|I (0x15), and the call is emulated",
        kernel="the page is not mapped: error code U|I (0x14), and the call is emulated",
        change="'x86/vsyscall: Add a new vsyscall=xonly mode' and xonly as the default mode",
        since="5.2",
        when=lambda ctx: _vsyscall_xonly(ctx) and ctx.case.access == "exec",
        values={"hw_codes": ("u0x15", "u0x14")},
    ),
)

BY_KEY = {row.key: row for row in TABLE}


def explain(ctx: Context, channel: str, table: tuple[ExpectedDivergence, ...] = TABLE
            ) -> ExpectedDivergence | None:
    """The first row that explains a difference on ``channel`` for this case, if any."""
    for row in table:
        if row.explains(ctx, channel):
            return row
    return None


def markdown_table(table: tuple[ExpectedDivergence, ...] = TABLE) -> str:
    """The table as docs/oracle.md shows it (a test keeps the two identical)."""
    def cell(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    lines = ["| key | cases | channels | pfmodel (4.4) predicts | the running kernel does | explained by | since |",
             "|---|---|---|---|---|---|---|"]
    for row in table:
        channels = ", ".join(row.channels)
        if row.values:
            pinned = "; ".join(f"{ch}: {p} → {o}" for ch, (p, o) in sorted(row.values.items()))
            channels += f" (exactly {pinned})"
        lines.append(f"| `{row.key}` | {cell(row.cases)} | {cell(channels)} | {cell(row.predicted)} | "
                     f"{cell(row.kernel)} | {cell(row.change)} | {cell(row.since)} |")
    return "\n".join(lines) + "\n"
