"""What a command to the machine can come to, and the errors a caller sees.

A link in this process (firmware_bridge.link.Machine) and one in the machine service
(firmware_bridge.client.MachineClient) answer a command with the same `Result`, so that both
raise the same errors through `raise_for` and a caller cannot tell them apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from protocols.errors import SmpError
from protocols.settings import MachineSettings


class Op(StrEnum):
    """The commands a controlling client may give (an observer: STOP only)."""

    SET = "set"
    ARM = "arm"
    DISARM = "disarm"
    CLEAR_FAULT = "clear_fault"
    WATCHDOG = "watchdog"
    STOP = "stop"


class Kind(StrEnum):
    """How a command ended."""

    DONE = "done"  # answered as asked (for SET: `applied` is the read-back)
    OUTSIDE = "outside"  # refused by the bridge before sending (the envelope)
    NOT_CONFIRMED = "not-confirmed"  # ARM refused: the settings in force were not confirmed
    REFUSED = "refused"  # the machine answered NACK
    MISMATCH = "mismatch"  # SET applied other values than asked; `applied` says which
    UNKNOWN = "unknown"  # no answer after every try: what it did is not known (STOP sent)
    FAILED = "failed"  # not done: the link is lost or closed, or STOP superseded it
    NOT_ALLOWED = "not-allowed"  # an observer may only STOP


@dataclass(frozen=True)
class Result:
    op: Op
    kind: Kind
    message: str = ""
    applied: MachineSettings | None = None  # SET: what the machine reported it applied
    code: int | None = None  # REFUSED: the NACK's error code

    @property
    def ok(self) -> bool:
        return self.kind is Kind.DONE


class LinkError(SmpError):
    """The machine could not be reached or did not answer as it must."""


class OutcomeUnknown(LinkError):
    """No answer to a command after every try: what it did to the machine is not known.

    For a SET the settings in force are UNKNOWN until the machine reports them; the link has
    sent STOP."""


class CommandRefused(SmpError):
    """The machine answered a command with a refusal (NACK); `code` is its error code."""

    def __init__(self, message: str, code: int | None = None):
        super().__init__(message)
        self.code = code


class SettingsMismatch(LinkError):
    """The machine applied other settings than asked; `applied` is its read-back."""

    def __init__(self, message: str, requested: MachineSettings | None,
                 applied: MachineSettings):
        super().__init__(message)
        self.requested, self.applied = requested, applied


class OutsideEnvelope(SmpError):
    """Settings outside the adopted envelope: refused by the bridge, never sent."""


class NotConfirmed(SmpError):
    """Arming refused: the settings in force have not been confirmed since they were lost."""


class NotAllowed(SmpError):
    """The client is an observer, or another client controls the machine."""


def raise_for(result: Result, requested: MachineSettings | None = None) -> Result:
    """The result, or the error it stands for."""
    kind, message = result.kind, result.message
    if kind is Kind.DONE:
        return result
    if kind is Kind.OUTSIDE:
        raise OutsideEnvelope(message)
    if kind is Kind.NOT_CONFIRMED:
        raise NotConfirmed(message)
    if kind is Kind.REFUSED:
        raise CommandRefused(message, result.code)
    if kind is Kind.MISMATCH:
        assert result.applied is not None
        raise SettingsMismatch(message, requested, result.applied)
    if kind is Kind.UNKNOWN:
        raise OutcomeUnknown(message)
    if kind is Kind.NOT_ALLOWED:
        raise NotAllowed(message)
    raise LinkError(message)
