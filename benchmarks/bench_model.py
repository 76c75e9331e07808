"""Speed of the model, the exhaustive engine and `pfmodel check` (a benchmark, not a test).

    python benchmarks/bench_model.py [--repeat N] [--quick]

Prints medians over N runs of:

* model exploration: paths per second and states per second (every default scope, both
  architectures, no properties);
* model verdicts: the time to check every model property on every path (no simulator),
  against the 2 s target;
* simulator runs per second (concretize a path and run it on the simulator);
* `pfmodel check` with every property and conformance on both architectures, as a
  subprocess: wall time (target 60 s) and peak memory (target 1 GiB).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pfmodel.explore.check import check  # noqa: E402
from pfmodel.explore.conformance import spec_for  # noqa: E402
from pfmodel.explore.exhaustive import Explorer  # noqa: E402
from pfmodel.model.inputs import ARCHES, DEFAULT_SCOPES  # noqa: E402
from pfmodel.properties import load_properties  # noqa: E402
from pfmodel.sim.run import run as sim_run  # noqa: E402


def median_of(fn, repeat: int) -> tuple[float, object]:
    times, last = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        last = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), last


def explore_all() -> tuple[int, int]:
    paths = states = 0
    for arch in ARCHES:
        for scope in DEFAULT_SCOPES:
            ex = Explorer(arch, scope).run()
            paths += ex.paths
            states += ex.states
    return paths, states


def model_verdicts():
    names = [p.name for p in load_properties() if p.on == "model"]
    return check(names=names, conformance=False)


def sim_sample(n: int) -> int:
    done = 0
    for arch in ARCHES:
        ex = Explorer(arch, "mm")
        for p in ex.paths():
            sim_run(spec_for(ex.space, p))
            done += 1
            if done >= n * (ARCHES.index(arch) + 1):
                break
    return done


def full_check() -> dict:
    with tempfile.TemporaryDirectory() as out:
        cmd = [sys.executable, "-m", "pfmodel", "check", "--json", "--out", out]
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        if proc.returncode not in (0, 1):
            raise SystemExit(f"pfmodel check failed ({proc.returncode}): {proc.stderr[-2000:]}")
        return json.loads(proc.stdout)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="one repetition, skip the full check")
    args = ap.parse_args()
    repeat = 1 if args.quick else args.repeat
    print(f"pfmodel benchmarks on {os.cpu_count()} CPUs, median of {repeat} run(s)")

    t, (paths, states) = median_of(explore_all, repeat)
    print(f"model exploration      {paths} paths, {states} states in {t:.2f}s: "
          f"{paths / t:,.0f} paths/s, {states / t:,.0f} states/s")

    t, report = median_of(model_verdicts, repeat)
    ok = "within" if t <= 2.0 else "OVER"
    print(f"model verdicts         {len(report.results)} properties x {report.paths} paths in {t:.2f}s "
          f"({ok} the 2 s target)")

    n = 1500
    t, done = median_of(lambda: sim_sample(n), repeat)
    print(f"simulator runs         {done} runs in {t:.2f}s: {done / t:,.0f} runs/s (concretize + run)")

    if not args.quick:
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        t, doc = median_of(full_check, max(1, min(repeat, 3)))
        peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        ok = "within" if t <= 60 else "OVER"
        print(f"pfmodel check          {doc['paths']} paths, {doc['simulator_runs']} simulator runs, "
              f"{len(doc['properties'])} properties, conformance on both architectures: {t:.1f}s "
              f"({ok} the 60 s target); exit {doc['exit_status']}")
        mem = max(peak_kib, before) / 1024
        ok = "within" if mem <= 1024 else "OVER"
        print(f"peak memory            {mem:.0f} MiB per process ({ok} the 1 GiB target)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
