"""The input space: domains, the hardware's error-code rules, layouts and scopes."""

from __future__ import annotations

import itertools

import pytest

from pfmodel.model.inputs import ARCHES, DEFAULT_SCOPES, SCOPES, NeedInput, build_space, make_layout
from pfmodel.sim.constants import TASK_SIZE_MAX, VMALLOC_START_32, VMALLOC_START_64
from pfmodel.x86.constants import PF_INSTR, PF_PROT, PF_RSVD, PF_USER, PF_WRITE


def _error_codes(space, user_mode: bool, nx: bool = True, smep: bool = True) -> set[int]:
    """Every error code the (hardware) domain admits for one mode."""
    codes = set()
    for p, w, u, r, i in itertools.product([0, PF_PROT], [0, PF_WRITE], [0, PF_USER], [0, PF_RSVD], [0, PF_INSTR]):
        values = {"user_mode": user_mode, "ec.P": p, "ec.W": w, "ec.U": u, "ec.RSVD": r, "ec.I": i,
                  "cpu.nx": nx, "cpu.smep": smep}
        ok = all(values[g] in space.domain(g, values.__getitem__) for g in ("ec.P", "ec.W", "ec.U", "ec.RSVD", "ec.I"))
        if ok:
            codes.add(p | w | u | r | i)
    return codes


@pytest.mark.parametrize("arch", ARCHES)
def test_hardware_error_codes_follow_the_sdm(arch):
    sp = build_space(arch, "full")
    kernel = _error_codes(sp, False)
    user = _error_codes(sp, True)
    for code in kernel | user:
        assert not (code & PF_RSVD) or code & PF_PROT, hex(code)       # RSVD implies P
        assert not (code & PF_INSTR and code & PF_WRITE), hex(code)    # a fetch is not a write
    assert all(not code & PF_USER for code in kernel)                  # U/S=1 only at CPL 3
    assert all(not (c & PF_INSTR and not c & PF_USER) for c in user)  # implicit accesses are data
    assert len(kernel) == 9 and len(user) == 15
    assert 0x3 in kernel and 0x11 in kernel                            # spurious_fault's two codes


def test_no_fetch_bit_without_nx_or_smep():
    sp = build_space("i386-pae", "full")
    assert not any(c & PF_INSTR for c in _error_codes(sp, True, nx=False, smep=False))
    assert any(c & PF_INSTR for c in _error_codes(sp, True, nx=False, smep=True))


def test_all_error_codes_mode_lifts_the_rules():
    sp = build_space("x86_64", "full", error_codes="all")
    assert len(_error_codes(sp, False)) == 32


@pytest.mark.parametrize("arch", ARCHES)
def test_layout_classes_sit_where_their_names_say(arch):
    lay = make_layout(arch)
    a, t = lay.vmas
    addr = dict(lay.addresses)
    assert a.end < t.start and t.start - a.end > 8 << 20        # wider than RLIMIT_STACK
    assert addr["T_lowest"] == t.start and t.start < addr["T_inside"] < t.end
    assert addr["stack_near"] == t.start - 4096
    assert addr["user_top"] == TASK_SIZE_MAX[arch] - 1 and addr["kernel_start"] == TASK_SIZE_MAX[arch]
    assert addr["vmalloc"] >= (VMALLOC_START_64 if arch == "x86_64" else VMALLOC_START_32)
    assert ("vsyscall" in addr) == (arch == "x86_64")
    assert addr["page0"] < 4096
    assert addr["top"] == lay.mask                                  # the address-space wrap-around


def test_sp_domain_straddles_the_cushion():
    sp = build_space("i386-pae", "full")
    lay = sp.layout
    a = dict(lay.addresses)["stack_near"]
    assert sp.domain("sp", {"address": a}.__getitem__) == [a + 65664, a + 65665]


def test_dependent_domains_ask_for_what_they_depend_on():
    sp = build_space("x86_64", "full")
    with pytest.raises(NeedInput) as e:
        sp.domain("ec.U", {}.__getitem__ if False else _raiser)
    assert e.value.name == "user_mode"


def _raiser(name):
    raise NeedInput(name)


@pytest.mark.parametrize("scope", sorted(SCOPES))
def test_every_scope_builds_and_narrows_within_the_full_domains(scope):
    for arch in ARCHES:
        full = build_space(arch, "full")
        sp = build_space(arch, scope)
        assert set(sp.inputs) == set(full.inputs)


def test_a_scope_cannot_invent_values():
    sp = build_space("x86_64", "full")
    with pytest.raises(ValueError):
        sp.restrict("env.oom", ["exploded"])


def test_default_scopes_exist():
    assert set(DEFAULT_SCOPES) <= set(SCOPES)
