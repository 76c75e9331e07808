"""Minimization: the smallest scenario that still shows a violation.

``minimize(spec, fails)`` shrinks a ``MachineSpec`` while ``fails(spec)`` stays true.
It is delta debugging over the scenario's fields, in passes repeated until none of
them changes anything:

1. **Structure**: drop VMAs, page-table entries, kernel mappings, exception-table
   entries and allocation failures (ddmin over each list), and shorten the per-call
   environment answers (``env.fault``, ``env.userfault``, ``env.hugetlb``).
2. **Defaults**: set every other field (registers, CPU, task, kernel, environment,
   the access, each VMA's kind and callbacks) back to its documented default.  The
   architecture is kept: a counterexample found on i386-pae stays on i386-pae.
3. **Bits**: clear the bits of vm_flags, PTE values, the error code and EFLAGS that do
   not matter (ddmin over the set bits).
4. **Round addresses**: move the whole user-space layout (VMAs, entries, the access,
   sp) by one page-aligned amount that makes the faulting page rounder, then round
   each address on its own (clear low bits, or round up), roundest first.

A candidate is accepted only if it still fails *and* is strictly smaller in the order
``cost()`` defines (fewest list items, then fewest non-default fields, then fewest
set bits, then the fewest set bits in addresses, then the smallest addresses).
Because every accepted step decreases that well-founded order, minimization ends, and
because it stops only when a whole round of passes accepts nothing, the result is a
fixed point: minimizing it again changes nothing.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass
from typing import Any, Callable, Iterator

from .errors import PfmodelError
from .scenario import fingerprint
from .sim.constants import TASK_SIZE_MAX
from .sim.spec import (
    AccessSpec,
    CpuSpec,
    EnvSpec,
    KernelSpec,
    MachineSpec,
    RegsSpec,
    TaskSpec,
    VmaSpec,
)
from .x86.constants import PAGE_SHIFT, PAGE_SIZE

Predicate = Callable[[MachineSpec], bool]

# Per-call answer lists: never emptied (the handler may ask), defaults from EnvSpec.
_ANSWER_LISTS = ("fault", "userfault", "hugetlb")
_PLAIN_LISTS = (("env", "alloc_fail"), ("env", "alloc_fail_once"), ("kernel", "exception_table"),
                ("kernel", "kernel_mappings"))
_SECTIONS = (("access", AccessSpec), ("regs", RegsSpec), ("cpu", CpuSpec), ("task", TaskSpec),
             ("kernel", KernelSpec), ("env", EnvSpec))
_VMA_DEFAULTS = {"kind": "anon", "pgoff": None, "anon_vma": True, "fault_handler": True,
                 "page_mkwrite": False, "name": ""}
_DEFAULT_EFLAGS = RegsSpec().flags  # IF set: a bit that does not matter keeps its default


def _defaults(cls: type) -> dict[str, Any]:
    out = {}
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            out[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
            out[f.name] = f.default_factory()  # type: ignore[misc]
    return out


_SECTION_DEFAULTS = {name: _defaults(cls) for name, cls in _SECTIONS}
# Lists handled by the structure pass; the address is never "defaulted" (it has none).
_NOT_SCALAR = {("access", "address")} | set(_PLAIN_LISTS) | {("env", n) for n in _ANSWER_LISTS}


def _popcount(x: int) -> int:
    return bin(x).count("1")


def _user(spec: MachineSpec, address: int) -> bool:
    return address < TASK_SIZE_MAX[spec.arch]


def _address_fields(spec: MachineSpec) -> list[int]:
    out = [spec.access.address]
    if spec.regs.sp is not None:
        out.append(spec.regs.sp)
    for v in spec.vmas:
        out += [v.start, v.end]
    out += [e.address for e in spec.entries]
    return out


def cost(spec: MachineSpec) -> tuple[int, int, int, int, int]:
    """The order minimization descends: smaller is simpler."""
    items = (len(spec.vmas) + len(spec.entries) + len(spec.kernel.kernel_mappings)
             + len(spec.kernel.exception_table) + len(spec.env.alloc_fail) + len(spec.env.alloc_fail_once)
             + sum(len(getattr(spec.env, n)) for n in _ANSWER_LISTS))
    nondefault = 0
    for name, _cls in _SECTIONS:
        section = getattr(spec, name)
        for key, default in _SECTION_DEFAULTS[name].items():
            if (name, key) not in _NOT_SCALAR and getattr(section, key) != default:
                nondefault += 1
    for name in _ANSWER_LISTS:
        if getattr(spec.env, name) != _SECTION_DEFAULTS["env"][name]:
            nondefault += 1
    for v in spec.vmas:
        nondefault += sum(1 for k, d in _VMA_DEFAULTS.items() if getattr(v, k) != d)
    nondefault += spec.max_faults != 4
    bits = sum(_popcount(v.flags) for v in spec.vmas) + sum(_popcount(e.value) for e in spec.entries)
    bits += sum(_popcount(e.value) for e in spec.kernel.kernel_mappings)
    bits += _popcount(spec.access.error_code or 0) + _popcount(spec.regs.flags ^ _DEFAULT_EFLAGS)
    addresses = _address_fields(spec)
    roughness = sum(_popcount(a) for a in addresses)
    return (items, nondefault, bits, roughness, sum(addresses))


@dataclass
class MinimizeStats:
    tried: int = 0
    accepted: int = 0
    rounds: int = 0
    budget_hit: bool = False
    errors: list[str] = dataclasses.field(default_factory=list)   # candidates the simulator crashed on
    crashed: MachineSpec | None = None


class _Search:
    def __init__(self, fails: Predicate, budget: int) -> None:
        self.fails = fails
        self.budget = budget
        self.cache: dict[str, bool] = {}
        self.stats = MinimizeStats()

    @staticmethod
    def key(spec: MachineSpec) -> str | None:
        """The machine's fingerprint; None for a spec that is not a valid machine."""
        try:
            return fingerprint(spec)
        except (PfmodelError, ValueError, KeyError):
            return None

    def test(self, spec: MachineSpec) -> bool:
        key = self.key(spec)
        if key is None:
            return False
        if key in self.cache:
            return self.cache[key]
        if self.stats.tried >= self.budget:
            self.stats.budget_hit = True
            return False
        self.stats.tried += 1
        try:
            ok = bool(self.fails(spec))
        except PfmodelError:  # an impossible machine (the simulator refuses it)
            ok = False
        except Exception as e:  # noqa: BLE001 - a synthesized candidate the simulator cannot run
            # (kept, not hidden: the first one is reported in the stats)
            ok = False
            if not self.stats.errors:
                self.stats.errors.append(f"{type(e).__name__}: {e} (scenario {key})")
                self.stats.crashed = copy.deepcopy(spec)
        self.cache[key] = ok
        return ok


def minimize(spec: MachineSpec, fails: Predicate, *, budget: int = 20000) -> tuple[MachineSpec, MinimizeStats]:
    """The smallest spec (in ``cost`` order) reachable from ``spec`` that still ``fails``.

    ``spec`` itself must fail (else ValueError).  ``budget`` bounds the predicate calls;
    ``stats.budget_hit`` says the result may not be a fixed point.
    """
    search = _Search(fails, budget)
    current = copy.deepcopy(spec)
    if not search.test(current):
        raise ValueError("minimize: the starting scenario does not fail the predicate")
    passes = (_structure, _defaults_pass, _bits, _translate, _round_each)
    while True:
        search.stats.rounds += 1
        changed = False
        for make in passes:
            progress = True
            while progress and not search.stats.budget_hit:
                progress = False
                base = cost(current)
                here = search.key(current)
                for candidate in make(current):
                    # (a candidate with the same fingerprint is the same machine spelled
                    # differently, e.g. a default ip made explicit: not a step)
                    if cost(candidate) < base and search.key(candidate) != here and search.test(candidate):
                        current = candidate  # restart the pass from the smaller spec
                        search.stats.accepted += 1
                        changed = progress = True
                        break
        if not changed or search.stats.budget_hit:
            return current, search.stats


# --- passes: each yields candidates derived from the spec it was given ---------------------
# After an accepted candidate the pass restarts from the smaller spec (results are cached
# by fingerprint, so candidates already refused cost nothing).

def _clone(spec: MachineSpec) -> MachineSpec:
    return copy.deepcopy(spec)


def _ddmin_removals(items: list[Any]) -> Iterator[list[Any]]:
    """Subsets of ``items`` to try, largest removals first (delta debugging's complements)."""
    n = len(items)
    if n == 0:
        return
    yield []
    chunk = n // 2
    while chunk >= 1:
        for start in range(0, n, chunk):
            rest = items[:start] + items[start + chunk:]
            if len(rest) < n:
                yield rest
        chunk //= 2


def _structure(spec: MachineSpec) -> Iterator[MachineSpec]:
    for keep in _ddmin_removals(list(range(len(spec.vmas)))):
        c = _clone(spec)
        c.vmas = [c.vmas[i] for i in keep]
        yield c
    for keep in _ddmin_removals(list(range(len(spec.entries)))):
        c = _clone(spec)
        c.entries = [c.entries[i] for i in keep]
        yield c
    for section, name in _PLAIN_LISTS:
        values = getattr(getattr(spec, section), name)
        for keep in _ddmin_removals(list(range(len(values)))):
            c = _clone(spec)
            setattr(getattr(c, section), name, [values[i] for i in keep])
            yield c
    for name in _ANSWER_LISTS:
        answers = getattr(spec.env, name)
        default = _SECTION_DEFAULTS["env"][name]
        if answers != default:
            c = _clone(spec)
            setattr(c.env, name, list(default))
            yield c
        for k in range(1, len(answers)):
            c = _clone(spec)
            setattr(c.env, name, list(answers[:k]))
            yield c


def _defaults_pass(spec: MachineSpec) -> Iterator[MachineSpec]:
    if spec.max_faults != 4:
        c = _clone(spec)
        c.max_faults = 4
        yield c
    for name, _cls in _SECTIONS:
        for key, default in _SECTION_DEFAULTS[name].items():
            if (name, key) in _NOT_SCALAR or getattr(getattr(spec, name), key) == default:
                continue
            c = _clone(spec)
            setattr(getattr(c, name), key, copy.deepcopy(default))
            yield c
    for i, v in enumerate(spec.vmas):
        for key, default in _VMA_DEFAULTS.items():
            if getattr(v, key) != default:
                c = _clone(spec)
                setattr(c.vmas[i], key, default)
                yield c


def _bit_fields(spec: MachineSpec) -> list[tuple[Callable[[MachineSpec], int], Callable[[MachineSpec, int], None], int]]:
    """(get, set, default) for every bit-set field; bits move towards the default."""
    out = []
    for i in range(len(spec.vmas)):
        out.append((lambda s, i=i: s.vmas[i].flags, lambda s, v, i=i: setattr(s.vmas[i], "flags", v), 0))
    for i in range(len(spec.entries)):
        out.append((lambda s, i=i: s.entries[i].value, lambda s, v, i=i: setattr(s.entries[i], "value", v), 0))
    for i in range(len(spec.kernel.kernel_mappings)):
        out.append((lambda s, i=i: s.kernel.kernel_mappings[i].value,
                    lambda s, v, i=i: setattr(s.kernel.kernel_mappings[i], "value", v), 0))
    if spec.access.error_code is not None:
        out.append((lambda s: s.access.error_code, lambda s, v: setattr(s.access, "error_code", v), 0))
    out.append((lambda s: s.regs.flags, lambda s, v: setattr(s.regs, "flags", v), _DEFAULT_EFLAGS))
    return out


def _bits(spec: MachineSpec) -> Iterator[MachineSpec]:
    for get, put, default in _bit_fields(spec):
        value = get(spec)
        diff = value ^ default
        bits = [1 << b for b in range(diff.bit_length() - 1, -1, -1) if diff >> b & 1]
        for keep in _ddmin_removals(bits):
            c = _clone(spec)
            put(c, default ^ sum(keep))
            yield c


def _rounder(value: int, floor: int, limit: int) -> Iterator[int]:
    """Rounder values than ``value`` in [floor, limit]: the powers of two below it, smallest
    first, then ``value`` with low bits cleared (or rounded up), roundest first."""
    seen = {value}
    for j in range(max(value.bit_length() - 1, 0)):
        candidate = 1 << j
        if floor <= candidate and candidate not in seen:
            seen.add(candidate)
            yield candidate
    for k in range(max(value.bit_length(), 1), 0, -1):
        mask = (1 << k) - 1
        down = value & ~mask
        up = down + (1 << k)
        for candidate in (down, up):
            if candidate not in seen and floor <= candidate <= limit:
                seen.add(candidate)
                yield candidate


def _floor(spec: MachineSpec, value: int) -> int:
    """Rounding keeps user addresses at or above mmap_min_addr (page 0 is special: no
    mapping may live there, and a fault there is reported as a NULL dereference)."""
    floor = spec.kernel.mmap_min_addr
    return 0 if value < floor else floor


def _translate(spec: MachineSpec) -> Iterator[MachineSpec]:
    """Move every user-space address by one page-aligned delta that rounds the faulting page."""
    address = spec.access.address
    if not _user(spec, address):
        return
    limit = TASK_SIZE_MAX[spec.arch]
    page = address >> PAGE_SHIFT
    floor = min(_floor(spec, a) for a in _address_fields(spec) if _user(spec, a))
    for target in _rounder(page, 0, (limit >> PAGE_SHIFT) - 1):
        delta = (target - page) << PAGE_SHIFT
        c = _clone(spec)
        c.access.address = address + delta
        if c.regs.sp is not None and _user(spec, c.regs.sp):
            c.regs.sp += delta
        for v in c.vmas:
            v.start += delta
            v.end += delta
            if v.pgoff is not None:
                v.pgoff = None  # the anonymous default follows the new start
        for e in c.entries:
            if _user(spec, e.address):
                e.address += delta
        if min(a for a in _address_fields(c) if _user(c, a) or a < 0) < floor:
            continue
        yield c


def _round_each(spec: MachineSpec) -> Iterator[MachineSpec]:
    limit = (1 << 64) - 1

    def setter(path: tuple) -> Callable[[MachineSpec, int], None]:
        def put(s: MachineSpec, v: int) -> None:
            obj: Any = s
            for part in path[:-1]:
                obj = obj[part] if isinstance(part, int) else getattr(obj, part)
            setattr(obj, path[-1], v)
        return put

    fields: list[tuple[int, Callable[[MachineSpec, int], None], int]] = [
        (spec.access.address, setter(("access", "address")), 1)]
    if spec.regs.sp is not None:
        fields.append((spec.regs.sp, setter(("regs", "sp")), 1))
    for i, v in enumerate(spec.vmas):
        fields.append((v.start, setter(("vmas", i, "start")), PAGE_SIZE))
        fields.append((v.end, setter(("vmas", i, "end")), PAGE_SIZE))
    for i, e in enumerate(spec.entries):
        fields.append((e.address, setter(("entries", i, "address")), PAGE_SIZE))
    for value, put, granule in fields:
        floor = _floor(spec, value) if _user(spec, value) else 0
        for candidate in _rounder(value, floor, limit):
            if candidate % granule:
                continue
            c = _clone(spec)
            put(c, candidate)
            yield c


__all__ = ["minimize", "cost", "MinimizeStats"]
