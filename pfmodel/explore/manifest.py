"""The manifest: pinned path/state counts, outcome histograms (and verdicts) of small runs.

Like tlaplus/Examples' manifest and stateright's pinned state counts, the tests compare
these numbers with a fresh exploration, so any change in the explored space (a new
branch, a changed domain, a scope edit) is seen and must be re-pinned on purpose:

    python -m pfmodel.explore.manifest --write tests/manifest/exhaustive.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path
from typing import Any

from ..model.inputs import ARCHES, DEFAULT_SCOPES
from .exhaustive import Explorer


def measure(arch: str, scope: str) -> dict[str, Any]:
    """Counts of one exhaustive exploration, plus a digest of every path's decisions."""
    digest = hashlib.sha256()
    traces: set[tuple] = set()

    def on_path(p: Any) -> None:
        keys = tuple(p.keys())
        traces.add(keys)
        digest.update(repr((keys, str(p.outcome))).encode())

    ex = Explorer(arch, scope).run(on_path=on_path)
    return {
        "paths": ex.paths,
        "states": ex.states,
        "distinct_traces": len(traces),
        "outcomes": dict(sorted(ex.outcomes.items())),
        "digest": digest.hexdigest()[:16],
    }


def current(arches: tuple[str, ...] = ARCHES, scopes: tuple[str, ...] = DEFAULT_SCOPES) -> dict[str, Any]:
    return {arch: {scope: measure(arch, scope) for scope in scopes} for arch in arches}


def save(path: str | Path, data: dict[str, Any]) -> None:
    Path(path).write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")


def load(path: str | Path) -> dict[str, Any]:
    return json.loads(Path(path).read_text())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--write", metavar="FILE", help="write the current counts to FILE")
    args = ap.parse_args(argv)
    data = current()
    if args.write:
        save(args.write, data)
    else:
        print(json.dumps(data, indent=2))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
