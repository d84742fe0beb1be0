"""One exception tree for everything mediapurge refuses or cannot do.

Each class's docstring is its default message, so ``raise AccountNotConfigured()`` still says something a
user can act on.
"""

from __future__ import annotations


class MediapurgeError(Exception):
    """mediapurge could not do what was asked."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or "").strip())


class ConfigurationError(MediapurgeError):
    """The settings are incomplete or contradictory."""


class SubmissionRejected(MediapurgeError):
    """The submission was refused as a whole; nothing was written."""

    def __init__(self, problems: list["Problem"], total: int | None = None) -> None:
        self.problems = problems
        self.total = total if total is not None else len(problems)
        shown = "\n".join(f"  {p}" for p in problems)
        more = f"\n  ... and {self.total - len(problems)} more" if self.total > len(problems) else ""
        super().__init__(f"submission refused, {self.total} problem(s), nothing was written:\n{shown}{more}")


class EnqueueFailed(MediapurgeError):
    """The job was saved but its task could not be queued."""


class JobNotFound(MediapurgeError):
    """No such job."""


class JobStateConflict(MediapurgeError):
    """The job is not in a state that allows this (e.g. cancelling a job that already ended)."""


class PayloadTooLarge(MediapurgeError):
    """The submission is larger than the server accepts; nothing was written."""


class Problem:
    """One reason a submission line was refused: where, which field, why."""

    __slots__ = ("line", "field", "reason")

    def __init__(self, line: int, field: str | None, reason: str) -> None:
        self.line = line
        self.field = field
        self.reason = reason

    def __str__(self) -> str:
        where = f"line {self.line}" + (f", field {self.field!r}" if self.field else "")
        return f"{where}: {self.reason}"

    def __repr__(self) -> str:
        return f"Problem({self.line}, {self.field!r}, {self.reason!r})"

    def as_dict(self) -> dict:
        return {"line": self.line, "field": self.field, "reason": self.reason}
