"""Stack growth: x86's grows-down expand_stack -> expand_downwards -> acct_stack_growth
(KF 2.2.14), the 4.4 guard page (KF 2.4.8), and the seed's literal grows-up variant
(seed 1.1.7, 1.1.7.1; KF 4 item 1)."""

import pytest
from simkit import RW, STACK, STACK_TOP, go, heap, in_order, spec, stack, step, value

from pfmodel.outcome import Outcome
from pfmodel.trace import Trace
from pfmodel.sim import mmap as sim_mmap
from pfmodel.sim.constants import VM_ARCH_1, VM_LOCKED
from pfmodel.sim.spec import EnvSpec, KernelSpec, RegsSpec, TaskSpec, VmaSpec

TOP = STACK_TOP["x86_64"]


def below_stack(pages=4, by=0x1000, **kw):
    """A user write ``by`` bytes below a ``pages``-page stack VMA, sp at its bottom."""
    st = stack("x86_64", pages=pages)
    addr = st.start - by
    return st, spec(addr, "write", vmas=kw.pop("vmas", [st]), regs=RegsSpec(sp=st.start), **kw)


def test_expand_stack_grows_vm_start_and_accounts_stack_vm():
    st, s = below_stack(by=0x800)
    r = go(s)
    f = r.first
    assert in_order(f, ("vm_growsdown", "true"), ("stack_cushion_exceeded", "false"), ("prev_blocks_growth", "false"),
                    ("anon_vma_prepare", "false"), ("security_mmap_addr", "false"), ("address_below_vm_start", "true"),
                    ("pgoff_underflow", "false"), ("acct_stack_growth", "ok"), ("expand_stack", "false"))
    # One page for the access, one more for the guard page.
    assert r.final["vmas"][0]["start"] == hex(st.start - 0x2000)
    assert r.final["stack_vm"] == 4 + 2 and r.final["total_vm"] == 4 + 2


def test_prev_blocks_growth_false_when_the_neighbour_below_is_itself_a_stack():
    st = stack("x86_64", pages=4)
    lower = VmaSpec(st.start - 0x3000, st.start - 0x1000, STACK)
    r = go(spec(st.start - 0x800, "write", vmas=[lower, st], regs=RegsSpec(sp=st.start)))
    f = r.first
    assert value(f, "prev_blocks_growth") == "false"
    # The guard-page check meets the split stack below: allowed without growing further.
    assert in_order(f, ("guard_lowest_page", "true"), ("guard_prev_adjacent", "true"), ("guard_prev_growsdown", "true"))
    assert r.access_completed and r.final["vmas"][1]["start"] == hex(st.start - 0x1000)


def test_anon_vma_prepare_fails_is_expand_stack_failure():
    st, s = below_stack(vmas=[VmaSpec(*stack("x86_64", 4).__dict__.values())])
    s.vmas[0].anon_vma = False
    s.env = EnvSpec(alloc_fail=["anon_vma"])
    r = go(s)
    assert in_order(r.first, ("anon_vma_prepare", "true"), ("expand_stack", "true"))
    assert r.outcome == Outcome.sigsegv("SEGV_MAPERR")


def test_security_mmap_addr_refuses_growth_below_mmap_min_addr():
    st = VmaSpec(0x10000, 0x20000, STACK)
    r = go(spec(0xF000, "write", vmas=[st], regs=RegsSpec(sp=0x10000), kernel=KernelSpec(mmap_min_addr=0x10000)))
    assert in_order(r.first, ("security_mmap_addr", "true"), ("expand_stack", "true"))
    assert r.outcome == Outcome.sigsegv("SEGV_MAPERR")


def test_security_mmap_addr_allows_growth_with_cap_sys_rawio():
    st = VmaSpec(0x10000, 0x20000, STACK)
    r = go(spec(0xF000, "write", vmas=[st], regs=RegsSpec(sp=0x10000), kernel=KernelSpec(mmap_min_addr=0x10000),
                task=TaskSpec(cap_sys_rawio=True)))
    assert value(r.first, "security_mmap_addr") == "false"
    assert r.access_completed


def test_pgoff_underflow_refuses_growth():
    st = stack("x86_64", pages=4)
    st.pgoff = 0
    r = go(spec(st.start - 0x800, "write", vmas=[st], regs=RegsSpec(sp=st.start)))
    assert in_order(r.first, ("address_below_vm_start", "true"), ("pgoff_underflow", "true"), ("expand_stack", "true"))
    assert value(r.first, "acct_stack_growth") is None


@pytest.mark.parametrize("limits,verdict", [
    (dict(task=TaskSpec(rlimit_as=0x4000)), "rlimit_as"),
    (dict(task=TaskSpec(rlimit_stack=0x3000)), "rlimit_stack"),
    (dict(env=EnvSpec(overcommit=False)), "overcommit"),
])
def test_acct_stack_growth_limits_refuse_growth(limits, verdict):
    st, s = below_stack(by=0x800, **limits)
    r = go(s)
    assert in_order(r.first, ("acct_stack_growth", verdict), ("expand_stack", "true"))
    assert r.outcome == Outcome.sigsegv("SEGV_MAPERR")
    assert r.final["vmas"][0]["start"] == hex(st.start)


def test_acct_stack_growth_rlimit_stack_does_not_charge_the_guard_page():
    # 4 pages + 1 new = 5 pages; charged 4 pages = 0x4000: exactly at the limit.
    st, s = below_stack(by=0x800, task=TaskSpec(rlimit_stack=0x4000 + 0x1000))
    r = go(s)
    assert value(r.first, "acct_stack_growth") == "ok"


def test_acct_stack_growth_rlimit_memlock_for_a_locked_stack():
    st = stack("x86_64", pages=4, flags=STACK | VM_LOCKED)
    r = go(spec(st.start - 0x800, "write", vmas=[st], regs=RegsSpec(sp=st.start), task=TaskSpec(rlimit_memlock=0x4000)))
    assert value(r.first, "acct_stack_growth") == "rlimit_memlock"
    r = go(spec(st.start - 0x800, "write", vmas=[st], regs=RegsSpec(sp=st.start),
                task=TaskSpec(rlimit_memlock=0x4000, cap_ipc_lock=True)))
    assert value(r.first, "acct_stack_growth") == "ok"
    assert r.final["locked_vm"] == 4 + 2


def test_guard_page_failure_is_vm_fault_sigsegv_maperr():
    # A fault on the lowest stack page with a non-stack mapping right below: no guard page.
    st = stack("x86_64", pages=4)
    lower = heap(RW, start=st.start - 0x2000, end=st.start)
    r = go(spec(st.start + 0x10, "write", vmas=[lower, st], regs=RegsSpec(sp=st.start + 0x100)))
    f = r.first
    assert in_order(f, ("vm_start_le_address", "true"), ("guard_lowest_page", "true"), ("guard_prev_adjacent", "true"),
                    ("guard_prev_growsdown", "false"), ("check_stack_guard_page", "true"),
                    ("handle_mm_fault", "VM_FAULT_SIGSEGV"), ("vm_fault_oom", "false"), ("vm_fault_sigbus", "false"),
                    ("vm_fault_sigsegv", "true"))
    assert r.outcome == Outcome.sigsegv("SEGV_MAPERR")


def test_guard_page_growth_refused_by_rlimit_is_sigsegv():
    st = stack("x86_64", pages=4)
    r = go(spec(st.start + 0x10, "write", vmas=[st], regs=RegsSpec(sp=st.start + 0x100),
                task=TaskSpec(rlimit_stack=0x3000)))
    assert in_order(r.first, ("guard_lowest_page", "true"), ("acct_stack_growth", "rlimit_stack"),
                    ("check_stack_guard_page", "true"))
    assert r.outcome == Outcome.sigsegv("SEGV_MAPERR")


def test_guard_page_not_lowest_page_is_no_check():
    st = stack("x86_64", pages=4)
    f = go(spec(st.start + 0x1010, "write", vmas=[st], regs=RegsSpec(sp=st.start + 0x1100))).first
    assert value(f, "guard_lowest_page") == "false" and value(f, "check_stack_guard_page") == "false"


@pytest.mark.parametrize("arch", ["x86_64", "i386-pae", "i386"])
def test_seed_expand_stack_grows_up_variant_fails_every_growth_with_efault_on_x86(arch):
    st = stack(arch, pages=4)
    r = go(spec(st.start - 0x800, "write", arch=arch, vmas=[st], regs=RegsSpec(sp=st.start),
                kernel=KernelSpec(seed_expand_stack=True)))
    f = r.first
    assert in_order(f, ("next_blocks_growth", "false"), ("vm_growsup", "false"), ("expand_stack", "true"))
    assert value(f, "prev_blocks_growth") is None
    assert r.outcome == Outcome.sigsegv("SEGV_MAPERR")


def test_seed_expand_upwards_body_as_on_a_grows_up_arch(monkeypatch):
    """With VM_GROWSUP = VM_ARCH_1 (parisc), the seed's expand_upwards moves vm_end."""
    monkeypatch.setattr(sim_mmap, "VM_GROWSUP", VM_ARCH_1)
    from pfmodel.sim.machine import build
    from pfmodel.sim.state import installed

    st = VmaSpec(0x600000, 0x604000, RW | VM_ARCH_1)
    s = spec(0x604800, "write", vmas=[st], kernel=KernelSpec(seed_expand_stack=True))
    m = build(s)
    with installed(m):
        vma = m.current.mm.mmap[0]
        m.trace = Trace()
        assert sim_mmap.expand_stack(vma, 0x604800) == 0
        assert vma.vm_end == 0x605000 and vma.vm_start == 0x600000
        assert m.trace.keys() == [("next_blocks_growth", "false"), ("vm_growsup", "true"),
                                  ("anon_vma_prepare", "false"), ("upwards_no_wrap", "true"),
                                  ("address_above_vm_end", "true"), ("pgoff_no_overflow", "true"),
                                  ("acct_stack_growth", "ok")]
        assert m.current.mm.stack_vm == 1 and m.current.mm.highest_vm_end == 0x605000
        # Already expanded: nothing to do, error 0.
        m.trace = Trace()
        assert sim_mmap.expand_upwards(vma, 0x604000) == 0
        assert ("address_above_vm_end", "false") in m.trace.keys()
        # Wrapping to 0 at the top of the address space.
        assert sim_mmap.expand_upwards(vma, 0xFFFFFFFFFFFFFFFF) == -12
        # A non-growsup neighbour right above blocks.
        nxt_vma = type(vma)(0x606000, 0x607000, RW, 0x606, 0, None, True, vma.vm_mm)
        vma.vm_mm.mmap.append(nxt_vma)
        m.trace = Trace()
        assert sim_mmap.expand_stack(vma, 0x605000) == -12
        assert m.trace.keys() == [("next_blocks_growth", "true")]


def test_seed_expand_upwards_anon_vma_failure_and_limit(monkeypatch):
    monkeypatch.setattr(sim_mmap, "VM_GROWSUP", VM_ARCH_1)
    from pfmodel.sim.machine import build
    from pfmodel.sim.state import installed

    st = VmaSpec(0x600000, 0x604000, RW | VM_ARCH_1, anon_vma=False)
    s = spec(0x604800, "write", vmas=[st], env=EnvSpec(alloc_fail_once=["anon_vma"]),
             task=TaskSpec(rlimit_stack=0x1000))
    m = build(s)
    with installed(m):
        vma = m.current.mm.mmap[0]
        m.trace = Trace()
        assert sim_mmap.expand_upwards(vma, 0x604800) == -12
        assert m.trace.keys()[-1] == ("anon_vma_prepare", "true")
        m.trace = Trace()
        assert sim_mmap.expand_upwards(vma, 0x604800) == -12
        assert m.trace.keys()[-1] == ("acct_stack_growth", "rlimit_stack")
        vma.vm_pgoff = (1 << 64) - 2
        m.trace = Trace()
        assert sim_mmap.expand_upwards(vma, 0x604800) == -12
        assert ("pgoff_no_overflow", "false") in m.trace.keys()


def test_expand_downwards_already_expanded_is_success_without_growth():
    from pfmodel.sim.machine import build
    from pfmodel.sim.state import installed

    st = stack("x86_64", pages=4)
    m = build(spec(st.start, "write", vmas=[st]))
    with installed(m):
        m.trace = Trace()
        vma = m.current.mm.mmap[0]
        assert sim_mmap.expand_downwards(vma, st.start + 0x10) == 0
        assert m.trace.keys()[-1] == ("address_below_vm_start", "false")
        assert vma.vm_start == st.start


def test_find_vma_returns_the_first_vma_ending_above_the_address():
    from pfmodel.sim.machine import build
    from pfmodel.sim.state import installed

    a, b = heap(RW, start=0x10000, end=0x20000), heap(RW, start=0x40000, end=0x50000)
    m = build(spec(0x10000, vmas=[b, a]))  # given out of order
    with installed(m):
        mm = m.current.mm
        assert sim_mmap.find_vma(mm, 0x1FFFF).vm_start == 0x10000
        assert sim_mmap.find_vma(mm, 0x20000).vm_start == 0x40000  # may start above addr
        assert sim_mmap.find_vma(mm, 0x50000) is None
        assert mm.mmap[0].vm_prev is None and mm.mmap[1].vm_prev is mm.mmap[0]
        assert mm.mmap[0].vm_next is mm.mmap[1] and mm.mmap[1].vm_next is None


def test_kernel_mode_growth_records_stack_grown_and_no_cushion():
    st = stack("x86_64", pages=4)
    r = go(spec(st.start - 0x20000, "write", "kernel", uaccess=True, vmas=[st], regs=RegsSpec(sp=TOP - 8)))
    assert step(r.first, "acct_stack_growth").changes == {"stack_grown": hex(st.start - 0x20000)}
    assert r.final["vmas"][0]["start"] == hex(st.start - 0x21000)

