"""The host side of the machine link: wire codec, link core, transports, the machine service
and its client, port discovery.

Imports protocols/ only; never textual or sqlalchemy. docs/protocol.md is the wire spec.
"""

from firmware_bridge.codec import PROTOCOL_VERSION, Fault, State
from firmware_bridge.commands import (
    CommandRefused,
    LinkError,
    NotAllowed,
    NotConfirmed,
    OutcomeUnknown,
    OutsideEnvelope,
    SettingsMismatch,
)
from firmware_bridge.events import LinkState
from firmware_bridge.link import Machine
from firmware_bridge.transport import TransportError, register_scheme

__all__ = [
    "PROTOCOL_VERSION", "CommandRefused", "Fault", "LinkError", "LinkState", "Machine",
    "NotAllowed", "NotConfirmed", "OutcomeUnknown", "OutsideEnvelope", "SettingsMismatch",
    "State", "TransportError", "register_scheme",
]
