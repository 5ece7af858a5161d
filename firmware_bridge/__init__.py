"""The host side of the machine link: wire codec, transports, link supervisor, port discovery.

Imports protocols/ only; never textual or sqlalchemy. docs/protocol.md is the wire spec.
"""

from firmware_bridge.codec import PROTOCOL_VERSION, Fault, State
from firmware_bridge.events import LinkState
from firmware_bridge.link import (
    CommandRefused,
    LinkError,
    Machine,
    OutsideEnvelope,
    SettingsMismatch,
)
from firmware_bridge.transport import TransportError, register_scheme

__all__ = [
    "PROTOCOL_VERSION", "CommandRefused", "Fault", "LinkError", "LinkState", "Machine",
    "OutsideEnvelope", "SettingsMismatch", "State", "TransportError", "register_scheme",
]
