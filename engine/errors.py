"""Typed errors raised by the engine; only cli.py turns them into messages and exit codes."""

from __future__ import annotations


class EvalhouseError(Exception):
    """Base class: anything the CLI reports as ``Error: ...`` with exit status 1."""

    hint: str | None = None


class BadResultFile(EvalhouseError):
    """A file that claims a known shape but breaks its rules.

    >>> str(BadResultFile("/x/a.json", "results[3].score", "is 'high', not a number"))
    "/x/a.json: results[3].score: is 'high', not a number"
    """

    def __init__(self, path: str, field: str, reason: str) -> None:
        self.path, self.field, self.reason = path, field, reason
        self.format: str | None = None  # the adapter that recognised the file, once known
        super().__init__(f"{path}: {field}: {reason}")


class UnknownFormat(EvalhouseError):
    """No adapter recognises the file."""


class WarehouseError(EvalhouseError):
    """The warehouse is missing, unwritable, locked, or of an unknown schema version."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


class ReportError(EvalhouseError):
    """A report that cannot be written as asked (no scores, unknown metric)."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


class StrictModeRejection(EvalhouseError):
    """``ingest --strict`` met a rejected file, so nothing was written."""


class AnalysisError(EvalhouseError):
    """A statistics or comparison request that cannot be answered (bad grouping, no such model...)."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


class ExportError(EvalhouseError):
    """An export that cannot be written as asked (no runs, a model pattern matching nothing, a full disk)."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


class CommitConflict(WarehouseError):
    """Another writer committed to an S3 warehouse first: nothing of this commit is live, and it
    must be redone on the new state (see ``evalhouse.commit.retrying``)."""
