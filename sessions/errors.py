"""Errors from the record a person can act on (one line each; the CLI prints them)."""

from protocols.errors import SmpError


class StoreError(SmpError):
    """The database cannot be opened or used: bad URL, unreachable, locked, corrupt, newer."""


class AppendOnlyViolation(SmpError):
    """Something tried to update or delete a timeline event."""


class GateRefused(SmpError):
    """The contraindication gate or the interval rule refused to start the session."""


class RecordError(SmpError):
    """A recorder or query call with input the record cannot accept."""
