"""Speed of the SMT engine (a benchmark, not a test).

    python benchmarks/bench_smt.py [--repeat N] [--workers N] [--alone] [--quick]

Prints medians over N runs of:

* the whole property set proved or refuted by the SMT engine on both architectures
  (``check --engine smt`` without per-path conformance), against the 10 s target, and the
  same with one witness of every path replayed on the simulator;
* per property: its share of that run (evaluating it on every path, its solver queries,
  its witness) -- and with ``--alone`` the wall time of checking it by itself, which adds
  the path enumeration every property needs;
* per architecture and scope: feasible paths, solver queries, solver time and the time
  of the enumeration itself;
* the cross-check of ``--engine all`` (the scope-mode path sets and the partition proofs);
* one ``pfmodel find`` query (the stack cushion's exact boundary, both architectures).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pfmodel.explore.find import Query, find  # noqa: E402
from pfmodel.explore.smt import check_smt, cross_check  # noqa: E402
from pfmodel.model.inputs import ARCHES, DEFAULT_SCOPES  # noqa: E402
from pfmodel.properties import load_properties  # noqa: E402

TARGET_S = 10.0


def timed(fn):
    t0 = time.perf_counter()
    value = fn()
    return time.perf_counter() - t0, value


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=3, help="runs per measurement (medians are printed)")
    ap.add_argument("--workers", type=int, default=None, help="worker processes (default: CPUs, max 4)")
    ap.add_argument("--alone", action="store_true", help="also time each property checked by itself")
    ap.add_argument("--quick", action="store_true", help="one run, no conformance run, no cross-check")
    args = ap.parse_args(argv)
    repeat = 1 if args.quick else max(1, args.repeat)

    walls: list[float] = []
    per_prop: dict[str, list[float]] = {}
    verdicts: dict[str, str] = {}
    report = None
    for _ in range(repeat):
        wall, report = timed(lambda: check_smt(conformance=False, workers=args.workers))
        walls.append(wall)
        for r in report.results:
            per_prop.setdefault(r.prop.name, []).append(r.seconds)
            verdicts[r.prop.name] = r.verdict
    assert report is not None
    med = statistics.median(walls)
    print(f"smt: every property ({len(per_prop)}) on both architectures, {report.paths} feasible paths: "
          f"median {med:.2f}s over {repeat} run(s) (target {TARGET_S:.0f}s: {'met' if med <= TARGET_S else 'MISSED'})")
    decided = sum(1 for v in verdicts.values() if v != "unknown")
    print(f"     {decided} proved or refuted; the others need the simulator's run "
          f"({', '.join(k for k, v in verdicts.items() if v == 'unknown') or 'none'})")
    print()
    print(f"{'property':40} {'verdict':9} {'share of the run (median)':>26}")
    for name, secs in per_prop.items():
        print(f"{name:40} {verdicts[name]:9} {statistics.median(secs):25.3f}s")
    print()
    print(f"{'arch/scope':22} {'paths':>6} {'queries':>8} {'solver':>8} {'scope total':>12}")
    for s in report.stats:
        print(f"{s.arch + '/' + s.scope:22} {s.paths:6d} {s.queries:8d} {s.solver_seconds:7.2f}s {s.seconds:11.2f}s")

    if args.alone:
        print()
        print(f"{'property checked alone':40} {'wall (median)':>14}")
        for p in load_properties():
            times = [timed(lambda: check_smt(names=(p.name,), conformance=False, workers=args.workers))[0]
                     for _ in range(repeat)]
            print(f"{p.name:40} {statistics.median(times):13.2f}s")

    if args.quick:
        return 0
    print()
    times = [timed(lambda: check_smt(conformance=True, workers=args.workers))[0] for _ in range(repeat)]
    print(f"smt with one witness of every path replayed on the simulator: median {statistics.median(times):.2f}s")
    t_cross, crosses = timed(lambda: [cross_check(a, s) for a in ARCHES for s in DEFAULT_SCOPES])
    ok = all(c.ok for c in crosses)
    print(f"cross-check (scope-mode path sets equal the exhaustive ones, partition proofs), one process: "
          f"{t_cross:.2f}s, {'all equal and proved' if ok else 'DIFFERENCES'}")
    q = Query(mode="user", trace=("expand_stack → false",), where=("address < sp",), maximize="sp - address")
    times = [timed(lambda: find(q, workers=args.workers))[0] for _ in range(repeat)]
    print(f"find (the stack cushion's exact boundary, both architectures): median {statistics.median(times):.2f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
