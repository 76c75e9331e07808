"""Fixtures for the live-kernel oracle tests: skip (with the reason) where the probe
cannot run, and share one oracle run per module."""

from __future__ import annotations

import platform

import pytest


def live_skip_reason() -> str | None:
    if platform.system() != "Linux" or platform.machine() != "x86_64":
        return f"the oracle probes a Linux x86-64 kernel (this is {platform.system()} on {platform.machine()})"
    from pfmodel.oracle.probe import ProbeUnavailable, make_prober

    try:
        make_prober("auto")
    except ProbeUnavailable as exc:  # pragma: no cover - only without compiler and ctypes
        return f"no probe: {exc.message}"
    return None


@pytest.fixture(scope="session")
def live():
    """Skip unless the running kernel can be probed; returns the machine facts."""
    reason = live_skip_reason()
    if reason:
        pytest.skip(reason)
    from pfmodel.oracle.machine import detect

    return detect()
