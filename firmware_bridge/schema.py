"""The wire's single source: the protocol version, its constants, its codes, and one definition
string per message from which every layout, size and CRC_EXTRA byte is derived.

docs/protocol.md is the normative text; the values here are the ones it states, and both ends
(the host in firmware_bridge/, the simulated firmware in sim/) use them from here.

A definition string is the message name followed by `field:type` items, in wire order, as
Klipper's msgproto format strings or pymavlink's XML are for theirs:

    u8 u16 u32    unsigned little-endian integers of 1, 2, 4 bytes
    i16           a two's-complement little-endian 16-bit integer
    c8 c12        ASCII text padded with 0x00 to 8 or 12 bytes
    3u16          a settings triple (depth_um, rate_dhz, voltage_mv), three u16
"""

from __future__ import annotations

import re
import struct
import zlib
from dataclasses import dataclass
from enum import IntEnum, IntFlag

from protocols.envelope import HARD_LIMITS
from protocols.quantities import DEPTH, QUANTITIES, RATE, VOLTAGE
from protocols.settings import WireSettings

PROTOCOL_VERSION = 2

# --- timing (milliseconds) -----------------------------------------------------------------
HEARTBEAT_MS = 50  # a host sends a frame at least this often
TELEMETRY_PERIOD_MS = 20  # frame k is due at boot + k * 20 ms (50 Hz)
TELEMETRY_LATE_MAX_MS = 5  # a frame leaves within this of its due time
WATCHDOG_DEFAULT_MS = 250
WATCHDOG_MIN_MS = 100  # two heartbeat periods
WATCHDOG_MAX_MS = 500
HELLO_INTERVAL_MS = 250  # HELLO repeated this often during the handshake
HANDSHAKE_MS = 1500  # no IDENT by then: not a machine
RTO_MIN_MS, RTO_MAX_MS, RTO_INITIAL_MS = 25, 500, 100
RETRIES = 3  # retransmissions after the first transmission: 4 frames in all
STOP_COPIES = 3  # STOP is written this many times back to back
STALE_AFTER_MS = 100  # no machine frame for this long: the link is stale
ONE_WAY_MARGIN_MS = 100  # a host stops an armed machine it cannot hear this long before its
#                          watchdog would (section 12), and never sooner than HEARTBEAT_MS

# --- duplicates ----------------------------------------------------------------------------
RECENT_COMMANDS = 8  # commands remembered against re-execution (section 5)

# --- settings and faults ---------------------------------------------------------------------
# Steps and hard limits in wire units, from protocols/ (0.05 mm, 0.1 Hz, 0.1 V).
STEPS = WireSettings(*(q.to_wire(q.step) for q in QUANTITIES))
HARD_LO, HARD_HI = HARD_LIMITS.to_wire()
NO_SETTINGS = WireSettings(0, 0, 0)  # what IDENT and TELEMETRY carry before any SET
STALL_BELOW_DHZ = 200  # measured rate below 20 Hz while driven ...
STALL_TRIP_MS = 100  # ... continuously for 100 ms, counted from the drive's start
OVERCURRENT_MA = 2500  # current above 2.5 A while driven and turning ...
OVERCURRENT_TRIP_MS = 50  # ... continuously for 50 ms
OVERTEMP_DC = 700  # 70.0 °C, in any state
OVERTEMP_CLEAR_DC = 600  # CLEAR_FAULT refused until below 60.0 °C
DEPTH_TOLERANCE_UM = 100
DEPTH_SETTLE_MS = 1500  # the actuator moves 2 mm/s: any move is done in 1.15 s

# --- sizes ---------------------------------------------------------------------------------
HEADER = 3
CRC_LEN = 4
MAX_BODY = 250  # a receiver accepts bodies up to this (version 2 sends at most 60)
MAX_RUN = MAX_BODY + 2  # longer runs without a 0x00 are discarded
OVERHEAD = HEADER + CRC_LEN + 1 + 1  # header, CRC, COBS code byte, delimiter


class MsgType(IntEnum):
    # host -> machine
    HELLO = 0x01
    ARM = 0x02
    DISARM = 0x03
    SET = 0x04
    WATCHDOG = 0x05
    STOP = 0x06
    CLEAR_FAULT = 0x07
    HEARTBEAT = 0x08
    # machine -> host
    IDENT = 0x81
    ACK = 0x82
    APPLIED = 0x83
    NACK = 0x84
    TELEMETRY = 0x85


HOST_TYPES = frozenset(t for t in MsgType if t < 0x80)
MACHINE_TYPES = frozenset(t for t in MsgType if t >= 0x80)
HOST_COMMANDS = HOST_TYPES - {MsgType.HEARTBEAT}


class State(IntEnum):
    DISARMED = 0
    ARMED = 1
    RUNNING = 2
    FAULTED = 3


class Fault(IntFlag):
    NONE = 0
    STOP = 0x0001  # the host sent STOP
    LINK_LOST = 0x0002  # the watchdog expired while armed or running
    STALL = 0x0004
    OVERCURRENT = 0x0008
    OVERTEMP = 0x0010
    DEPTH = 0x0020  # the measured depth stayed off its setpoint (actuator stopped short)


KNOWN_FAULTS = Fault(sum(Fault))  # every bit defined above
UNKNOWN_FAULTS = 0xFFFF & ~int(KNOWN_FAULTS)  # `faults` is a u16; `~KNOWN_FAULTS` is Fault(0)


class ErrorCode(IntEnum):
    """Why a command was refused (NACK)."""

    UNSUPPORTED = 1  # reserved: a version-2 machine never sends it
    MALFORMED = 2  # payload length wrong for the type, or seq 0
    OUT_OF_RANGE = 3  # a value outside the machine's compiled limits
    OFF_STEP = 4  # a value not on the setting's step
    NOT_READY = 5  # no session: no HELLO of this version answered since boot
    LATCHED = 6  # a fault is latched: CLEAR_FAULT first
    NO_SETTINGS = 7  # ARM before any SET was applied since boot
    PEDAL_DOWN = 8  # ARM while the pedal is held
    FAULT_PERSISTS = 9  # CLEAR_FAULT while the cause is still there
    WOULD_LENGTHEN = 10  # WATCHDOG longer than the timeout in force


class Field(IntEnum):
    NONE = 0
    DEPTH = 1
    RATE = 2
    VOLTAGE = 3
    WATCHDOG = 4
    PROTOCOL = 5  # NOT_READY after a HELLO of another protocol version


SETTING_FIELDS = (Field.DEPTH, Field.RATE, Field.VOLTAGE)  # SET is checked in this order


class Capability(IntFlag):
    NONE = 0
    PEDAL = 0x0001  # a foot pedal input
    DEPTH_SENSOR = 0x0002  # actual depth is measured, not just the setpoint
    CURRENT_SENSOR = 0x0004
    TEMPERATURE_SENSOR = 0x0008
    SIMULATOR = 0x0010  # this machine is a simulator, not a device that can hurt anyone


RESERVED_CAPABILITIES = 0xFFFF & ~sum(Capability)  # `capabilities` is a u16


class Flag(IntFlag):
    """TELEMETRY `flags`; bits 4 to 7 are reserved and zero."""

    PEDAL = 0x01  # pedal down
    MOTOR = 0x02  # the needle is driven
    LINK = 0x04  # the watchdog has not expired (0 before any host frame)
    SESSION = 0x08  # a HELLO of this protocol version was answered since boot


RESERVED_FLAGS = 0xFF & ~sum(Flag)  # 0xF0: `flags` is a u8


# --- units ---------------------------------------------------------------------------------
# The wire carries integers; a physical value is the integer divided by its scale. Depth, rate
# and voltage are measured in the settings' own wire units (protocols/quantities.py), so those
# scales are taken from there. codec.Measured reads TELEMETRY with them and codec.Readings
# writes it; what holds the wire's integers without the codec (a recorded frame, a SET's
# values in the simulator's motor) divides by them by name, never by a literal.
UM_PER_MM = DEPTH.wire_scale  # depth_um
DHZ_PER_HZ = RATE.wire_scale  # rate_dhz
MV_PER_V = VOLTAGE.wire_scale  # voltage_mv
MA_PER_A = 1000  # current_ma
DC_PER_C = 10  # temperature_dc, signed


# --- definitions ---------------------------------------------------------------------------
DEFINITIONS: dict[MsgType, str] = {
    MsgType.HELLO: "HELLO protocol:u8",
    MsgType.ARM: "ARM",
    MsgType.DISARM: "DISARM",
    MsgType.SET: "SET depth_um:u16 rate_dhz:u16 voltage_mv:u16",
    MsgType.WATCHDOG: "WATCHDOG timeout_ms:u16",
    MsgType.STOP: "STOP",
    MsgType.CLEAR_FAULT: "CLEAR_FAULT",
    MsgType.HEARTBEAT: "HEARTBEAT",
    MsgType.IDENT: ("IDENT protocol:u8 fw_major:u8 fw_minor:u8 fw_patch:u8 model:c8 serial:c12 "
                    "boot_id:u32 capabilities:u16 lo:3u16 hi:3u16 watchdog_ms:u16 state:u8 "
                    "faults:u16 applied:3u16"),
    MsgType.ACK: "ACK command:u8",
    MsgType.APPLIED: "APPLIED depth_um:u16 rate_dhz:u16 voltage_mv:u16",
    MsgType.NACK: "NACK command:u8 code:u8 field:u8",
    MsgType.TELEMETRY: ("TELEMETRY state:u8 flags:u8 faults:u16 rate_dhz:u16 voltage_mv:u16 "
                        "current_ma:u16 depth_um:u16 temperature_dc:i16 uptime_ms:u32 "
                        "set_depth_um:u16 set_rate_dhz:u16 set_voltage_mv:u16 runs:u8 "
                        "needle_ms:u32"),
}
# HELLO and IDENT keep these CRC_EXTRA strings in every protocol version, so that a host can
# always read the version of a machine that speaks another one (section 6).
FROZEN_CRC_STRINGS: dict[MsgType, str] = {MsgType.HELLO: "HELLO protocol:u8",
                                          MsgType.IDENT: "IDENT protocol:u8"}

_SCALARS = {"u8": "B", "u16": "H", "u32": "I", "i16": "h"}
_ITEM = re.compile(r"([a-z][a-z0-9_]*):(u8|u16|u32|i16|c\d+|3u16)")


@dataclass(frozen=True)
class FieldSpec:
    name: str
    wire_type: str  # as written in the definition: u16, c8, 3u16, ...
    kind: type  # the Python type of the decoded value: int, str or WireSettings
    fmt: str  # its struct format
    values: int  # how many struct values it takes

    @property
    def bounds(self) -> tuple[int, int]:
        """The least and the greatest value an integer field carries."""
        if self.kind is not int:
            raise TypeError(f"{self.name} is not an integer field")
        bits = 8 * struct.calcsize(self.fmt)
        if self.fmt.islower():  # a signed struct code
            return -(1 << bits - 1), (1 << bits - 1) - 1
        return 0, (1 << bits) - 1


@dataclass(frozen=True)
class Schema:
    type: MsgType
    definition: str
    fields: tuple[FieldSpec, ...]
    struct: struct.Struct
    crc_extra: int

    @property
    def size(self) -> int:
        return self.struct.size

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    @property
    def scalar(self) -> bool:
        """Every field is one integer: decoded values map to fields one to one."""
        return all(f.kind is int for f in self.fields)


class SchemaError(ValueError):
    """A definition string that does not follow the grammar above."""


def crc_extra_of(text: str) -> int:
    """The low byte of CRC-32 of an ASCII definition string."""
    return zlib.crc32(text.encode("ascii")) & 0xFF


def _field(item: str) -> FieldSpec:
    m = _ITEM.fullmatch(item)
    if not m:
        raise SchemaError(f"bad field {item!r}: write name:type with type u8, u16, u32, i16, "
                          "cN or 3u16")
    name, wire_type = m[1], m[2]
    if wire_type in _SCALARS:
        return FieldSpec(name, wire_type, int, _SCALARS[wire_type], 1)
    if wire_type == "3u16":
        return FieldSpec(name, wire_type, WireSettings, "HHH", 3)
    size = int(wire_type[1:])
    if not 1 <= size <= 64:
        raise SchemaError(f"bad field {item!r}: text is 1 to 64 bytes")
    return FieldSpec(name, wire_type, str, f"{size}s", 1)


def parse(mtype: MsgType, definition: str) -> Schema:
    """The schema of one message from its definition string."""
    name, *items = definition.split(" ")
    if name != mtype.name:
        raise SchemaError(f"definition {definition!r} does not start with {mtype.name}")
    fields = tuple(_field(i) for i in items)
    names = [f.name for f in fields]
    if len(set(names)) != len(names):
        raise SchemaError(f"definition {definition!r} repeats a field name")
    layout = struct.Struct("<" + "".join(f.fmt for f in fields))
    extra = crc_extra_of(FROZEN_CRC_STRINGS.get(mtype, definition))
    return Schema(mtype, definition, fields, layout, extra)


SCHEMAS: dict[MsgType, Schema] = {t: parse(t, d) for t, d in DEFINITIONS.items()}
CRC_EXTRA: dict[MsgType, int] = {t: s.crc_extra for t, s in SCHEMAS.items()}
PAYLOAD_SIZE: dict[MsgType, int] = {t: s.size for t, s in SCHEMAS.items()}
MAX_BODY_SENT = HEADER + max(PAYLOAD_SIZE.values()) + CRC_LEN  # 60 in version 2


def one_way_stop_ms(watchdog_ms: int) -> int:
    """How long a host waits for a machine frame before it stops an armed machine (section 12):
    the needle then stops within the watchdog time of a cut in either direction."""
    return max(HEARTBEAT_MS, watchdog_ms - ONE_WAY_MARGIN_MS)
