"""One family of user errors: what was wrong, why, and what to do.

The command line turns any ``PfmodelError`` into a message on stderr and exit status 2;
internal errors are never caught by a blanket ``except Exception``.
"""

from __future__ import annotations


class PfmodelError(Exception):
    """A problem with the user's input or invocation (exit status 2)."""

    def __init__(self, what: str, why: str = "", todo: str = "", *, where: str = "") -> None:
        self.what = what
        self.why = why
        self.todo = todo
        self.where = where
        super().__init__(self.message)

    @property
    def message(self) -> str:
        head = f"{self.where}: {self.what}" if self.where else self.what
        parts = [head]
        if self.why:
            parts.append(f"  why: {self.why}")
        if self.todo:
            parts.append(f"  fix: {self.todo}")
        return "\n".join(parts)


class ScenarioError(PfmodelError):
    """A scenario file is malformed: names the field (``where``), what was wrong, what to do."""


class PropertyError(PfmodelError):
    """A property file is malformed or names something unknown."""


class UsageError(PfmodelError):
    """The command line was used wrongly."""
