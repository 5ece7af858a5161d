"""The wire codec: COBS framing, CRC-32 with a per-type extra byte, and every message.

docs/protocol.md is the normative description; this module is one implementation of it.

A frame on the wire is ``COBS(body) + b"\\x00"``; the body is

    offset 0  seq   u8   sender's command sequence number (0 = not a command)
    offset 1  ack   u8   sequence number being answered (0 = none)
    offset 2  type  u8   message type
    offset 3  payload    fixed little-endian integers, layout per type
    last 4    crc   u32  zlib.crc32(body[:-4] + bytes([CRC_EXTRA[type]])), little-endian

The streaming `Decoder` resynchronises at the next 0x00 after any corrupt byte and never
delivers a frame whose CRC fails.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, fields
from enum import IntEnum, IntFlag
from typing import ClassVar, NamedTuple

from protocols.settings import WireSettings
from protocols.text import ascii_printable

PROTOCOL_VERSION = 2
MAX_BODY = 250  # bytes before COBS; larger frames are discarded (ours are at most 60)
MAX_ENCODED = MAX_BODY + 2  # COBS adds 1 byte per 254 (so 1 here), plus slack
HEADER = 3
CRC_LEN = 4
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


class ErrorCode(IntEnum):
    """Why a command was refused (NACK)."""

    UNSUPPORTED = 1  # a message type the machine does not accept from a host
    MALFORMED = 2  # payload length wrong for the type
    OUT_OF_RANGE = 3  # a value outside the machine's compiled limits
    OFF_STEP = 4  # a value not on the setting's step
    NOT_READY = 5  # no HELLO with a matching protocol version since boot
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
    PROTOCOL = 5


class Capability(IntFlag):
    NONE = 0
    PEDAL = 0x0001  # a foot pedal input
    DEPTH_SENSOR = 0x0002  # actual depth is measured, not just the setpoint
    CURRENT_SENSOR = 0x0004
    TEMPERATURE_SENSOR = 0x0008
    SIMULATOR = 0x0010  # this machine is a simulator, not a device that can hurt anyone


ERROR_TEXT = {
    ErrorCode.UNSUPPORTED: "the machine does not accept this message",
    ErrorCode.MALFORMED: "the frame was malformed",
    ErrorCode.OUT_OF_RANGE: "outside the machine's limits",
    ErrorCode.OFF_STEP: "not on the setting's step",
    ErrorCode.NOT_READY: "the machine has not completed a handshake (restarted?)",
    ErrorCode.LATCHED: "a fault is latched: clear it first",
    ErrorCode.NO_SETTINGS: "no settings have been applied yet",
    ErrorCode.PEDAL_DOWN: "the pedal is held down: release it to arm",
    ErrorCode.FAULT_PERSISTS: "the cause of the fault is still present",
    ErrorCode.WOULD_LENGTHEN: "the watchdog may only be shortened",
}


# --- message definitions -------------------------------------------------------------------
# Each definition string is the message's schema; CRC_EXTRA is the low byte of its CRC-32, so
# two ends that disagree on a layout fail every CRC of that type. IDENT and HELLO keep their
# extra byte forever (see `_FROZEN_EXTRA`): their first payload bytes are the protocol version,
# so a host can always read the version of a machine speaking another protocol.

def _extra(definition: str) -> int:
    return zlib.crc32(definition.encode("ascii")) & 0xFF


@dataclass(frozen=True)
class Message:
    TYPE: ClassVar[MsgType]
    FORMAT: ClassVar[str] = "<"
    DEFINITION: ClassVar[str] = ""

    def payload(self) -> bytes:
        return _STRUCTS[self.TYPE].pack(*self._values())

    def _values(self) -> tuple:
        return tuple(getattr(self, f.name) for f in fields(self))

    @classmethod
    def from_payload(cls, payload: bytes) -> Message:
        s = _STRUCTS[cls.TYPE]
        if len(payload) != s.size:
            raise Malformed(f"{cls.TYPE.name} payload is {len(payload)} bytes, not {s.size}")
        # The decoder's hot path (50 Hz telemetry): fill the frozen instance's fields directly
        # instead of going through the generated __init__ (one object.__setattr__ per field).
        obj = object.__new__(cls)
        obj.__dict__.update(zip(_NAMES[cls.TYPE], s.unpack(payload), strict=True))
        return obj


class Malformed(ValueError):
    """A frame whose CRC checked but whose payload does not fit its type."""


@dataclass(frozen=True)
class Hello(Message):
    TYPE = MsgType.HELLO
    FORMAT = "<B"
    DEFINITION = "HELLO protocol:u8"
    protocol: int = PROTOCOL_VERSION

    @classmethod
    def from_payload(cls, payload: bytes) -> Hello:
        # Frozen layout: the version is byte 0 whatever the protocol version; longer payloads
        # of later versions are accepted and the rest ignored.
        if len(payload) < 1:
            raise Malformed("HELLO payload is empty")
        return cls(payload[0])


@dataclass(frozen=True)
class Arm(Message):
    TYPE = MsgType.ARM
    DEFINITION = "ARM"


@dataclass(frozen=True)
class Disarm(Message):
    TYPE = MsgType.DISARM
    DEFINITION = "DISARM"


@dataclass(frozen=True)
class Set(Message):
    TYPE = MsgType.SET
    FORMAT = "<HHH"
    DEFINITION = "SET depth_um:u16 rate_dhz:u16 voltage_mv:u16"
    depth_um: int
    rate_dhz: int
    voltage_mv: int

    @property
    def settings(self) -> WireSettings:
        return WireSettings(self.depth_um, self.rate_dhz, self.voltage_mv)


@dataclass(frozen=True)
class Watchdog(Message):
    TYPE = MsgType.WATCHDOG
    FORMAT = "<H"
    DEFINITION = "WATCHDOG timeout_ms:u16"
    timeout_ms: int


@dataclass(frozen=True)
class Stop(Message):
    TYPE = MsgType.STOP
    DEFINITION = "STOP"


@dataclass(frozen=True)
class ClearFault(Message):
    TYPE = MsgType.CLEAR_FAULT
    DEFINITION = "CLEAR_FAULT"


@dataclass(frozen=True)
class Heartbeat(Message):
    TYPE = MsgType.HEARTBEAT
    DEFINITION = "HEARTBEAT"


def _ascii(raw: bytes) -> str:
    return ascii_printable(raw.rstrip(b"\x00").decode("latin-1"))  # never a control character


@dataclass(frozen=True)
class Ident(Message):
    TYPE = MsgType.IDENT
    FORMAT = "<BBBB8s12sIHHHHHHHHBHHHH"
    DEFINITION = ("IDENT protocol:u8 fw_major:u8 fw_minor:u8 fw_patch:u8 model:c8 serial:c12 "
                  "boot_id:u32 capabilities:u16 lo:3u16 hi:3u16 watchdog_ms:u16 state:u8 "
                  "faults:u16 applied:3u16")
    protocol: int
    fw_major: int
    fw_minor: int
    fw_patch: int
    model: str
    serial: str
    boot_id: int
    capabilities: int
    lo: WireSettings
    hi: WireSettings
    watchdog_ms: int
    state: int
    faults: int
    applied: WireSettings  # 0, 0, 0 when nothing has been applied since boot

    def _values(self) -> tuple:
        return (self.protocol, self.fw_major, self.fw_minor, self.fw_patch,
                self.model.encode("ascii")[:8], self.serial.encode("ascii")[:12],
                self.boot_id, self.capabilities, *self.lo, *self.hi, self.watchdog_ms,
                self.state, self.faults, *self.applied)

    @classmethod
    def from_payload(cls, payload: bytes) -> Ident:
        s = _STRUCTS[cls.TYPE]
        if len(payload) < 1:
            raise Malformed("IDENT payload is empty")
        if payload[0] != PROTOCOL_VERSION:
            raise VersionMismatch(payload[0])
        if len(payload) != s.size:
            raise Malformed(f"IDENT payload is {len(payload)} bytes, not {s.size}")
        v = s.unpack(payload)
        return cls(v[0], v[1], v[2], v[3], _ascii(v[4]), _ascii(v[5]), v[6], v[7],
                   WireSettings(*v[8:11]), WireSettings(*v[11:14]), v[14], v[15], v[16],
                   WireSettings(*v[17:20]))

    @property
    def firmware_version(self) -> str:
        return f"{self.fw_major}.{self.fw_minor}.{self.fw_patch}"


class VersionMismatch(Malformed):
    """An IDENT from a machine speaking another protocol version."""

    def __init__(self, version: int):
        super().__init__(f"protocol version {version}")
        self.version = version


@dataclass(frozen=True)
class Ack(Message):
    TYPE = MsgType.ACK
    FORMAT = "<B"
    DEFINITION = "ACK command:u8"
    command: int  # the type of the command acknowledged


@dataclass(frozen=True)
class Applied(Message):
    TYPE = MsgType.APPLIED
    FORMAT = "<HHH"
    DEFINITION = "APPLIED depth_um:u16 rate_dhz:u16 voltage_mv:u16"
    depth_um: int
    rate_dhz: int
    voltage_mv: int

    @property
    def settings(self) -> WireSettings:
        return WireSettings(self.depth_um, self.rate_dhz, self.voltage_mv)


@dataclass(frozen=True)
class Nack(Message):
    TYPE = MsgType.NACK
    FORMAT = "<BBB"
    DEFINITION = "NACK command:u8 code:u8 field:u8"
    command: int  # the type of the command refused
    code: int  # ErrorCode
    field: int  # Field

    def describe(self) -> str:
        try:
            what = ERROR_TEXT[ErrorCode(self.code)]
        except ValueError:
            what = f"error code {self.code}"
        try:
            fld = Field(self.field)
        except ValueError:
            fld = None
        return what if not fld else f"{fld.name.lower()}: {what}"


@dataclass(frozen=True)
class Telemetry(Message):
    TYPE = MsgType.TELEMETRY
    FORMAT = "<BBHHHHHhIHHH"
    DEFINITION = ("TELEMETRY state:u8 flags:u8 faults:u16 rate_dhz:u16 voltage_mv:u16 "
                  "current_ma:u16 depth_um:u16 temperature_dc:i16 uptime_ms:u32 "
                  "set_depth_um:u16 set_rate_dhz:u16 set_voltage_mv:u16")
    state: int
    flags: int  # bit 0 pedal down, bit 1 motor on, bit 2 link alive, bit 3 host session
    faults: int
    rate_dhz: int
    voltage_mv: int
    current_ma: int
    depth_um: int
    temperature_dc: int
    uptime_ms: int
    set_depth_um: int = 0
    set_rate_dhz: int = 0
    set_voltage_mv: int = 0

    PEDAL: ClassVar[int] = 0x01
    MOTOR: ClassVar[int] = 0x02
    LINK: ClassVar[int] = 0x04
    SESSION: ClassVar[int] = 0x08  # a HELLO of this protocol version was answered since boot

    @property
    def pedal_down(self) -> bool:
        return bool(self.flags & self.PEDAL)

    @property
    def motor_on(self) -> bool:
        return bool(self.flags & self.MOTOR)

    @property
    def setpoints(self) -> WireSettings:
        return WireSettings(self.set_depth_um, self.set_rate_dhz, self.set_voltage_mv)


MESSAGES: dict[MsgType, type[Message]] = {
    m.TYPE: m for m in (Hello, Arm, Disarm, Set, Watchdog, Stop, ClearFault, Heartbeat,
                        Ident, Ack, Applied, Nack, Telemetry)
}
HOST_COMMANDS = frozenset({MsgType.HELLO, MsgType.ARM, MsgType.DISARM, MsgType.SET,
                           MsgType.WATCHDOG, MsgType.STOP, MsgType.CLEAR_FAULT})
_STRUCTS = {t: struct.Struct(m.FORMAT) for t, m in MESSAGES.items()}
_NAMES = {t: tuple(f.name for f in fields(m)) for t, m in MESSAGES.items()}
_FROZEN_EXTRA = {MsgType.HELLO: _extra("HELLO protocol:u8"),
                 MsgType.IDENT: _extra("IDENT protocol:u8")}
CRC_EXTRA: dict[MsgType, int] = {
    t: _FROZEN_EXTRA.get(t, _extra(m.DEFINITION)) for t, m in MESSAGES.items()
}
PAYLOAD_SIZE: dict[MsgType, int] = {t: s.size for t, s in _STRUCTS.items()}
# Index by type byte: the extra byte as a 1-byte bytes object, or None for an unknown type.
_EXTRA_BYTES: list[bytes | None] = [None] * 256
for _t, _x in CRC_EXTRA.items():
    _EXTRA_BYTES[_t] = bytes([_x])


# --- COBS ----------------------------------------------------------------------------------

def cobs_encode(data: bytes) -> bytes:
    """Consistent Overhead Byte Stuffing: the result has no 0x00 byte."""
    out = bytearray()
    blocks = data.split(b"\x00")
    last = len(blocks) - 1
    for i, block in enumerate(blocks):
        while len(block) >= 254:
            out.append(0xFF)
            out += block[:254]
            block = block[254:]
            if not block and i == last:
                return bytes(out)
        out.append(len(block) + 1)
        out += block
    return bytes(out)


def cobs_decode(data: bytes) -> bytes | None:
    """The inverse of `cobs_encode`; None if `data` is not valid COBS (or contains 0x00)."""
    # Fast path for runs without a 0xFF block (all our frames): every code byte after the
    # first stands where a zero was, so zero them in place and drop the first.
    out = bytearray(data)
    i, n = 0, len(data)
    while i < n:
        code = out[i]
        if code == 0xFF:
            return _cobs_decode_general(data)
        if code == 0:
            return None
        out[i] = 0
        i += code
    if i != n:
        return None
    return bytes(out[1:])


def _cobs_decode_general(data: bytes) -> bytes | None:
    parts = []
    i, n = 0, len(data)
    while i < n:
        code = data[i]
        if code == 0:
            return None
        j = i + code
        if j > n:
            return None
        parts.append(data[i + 1:j])
        if code != 0xFF and j < n:
            parts.append(b"\x00")
        i = j
    return b"".join(parts)


# --- frames --------------------------------------------------------------------------------

class Frame(NamedTuple):
    seq: int
    ack: int
    type: int
    payload: bytes

    def message(self) -> Message:
        """The typed message; raises Malformed if the payload does not fit the type."""
        cls = MESSAGES.get(self.type)  # type: ignore[call-overload]
        if cls is None:
            raise Malformed(f"unknown message type 0x{self.type:02x}")
        return cls.from_payload(self.payload)


def encode_body(seq: int, ack: int, mtype: int, payload: bytes = b"") -> bytes:
    extra = _EXTRA_BYTES[mtype]
    if extra is None:
        raise ValueError(f"unknown message type 0x{mtype:02x}")
    head = bytes((seq, ack, mtype)) + payload
    return head + (zlib.crc32(extra, zlib.crc32(head))).to_bytes(4, "little")


def encode_raw(seq: int, ack: int, mtype: int, payload: bytes = b"") -> bytes:
    """A complete frame for the wire (COBS + delimiter) from raw parts."""
    return cobs_encode(encode_body(seq, ack, mtype, payload)) + b"\x00"


def encode(msg: Message, *, seq: int = 0, ack: int = 0) -> bytes:
    """A complete frame for the wire."""
    return encode_raw(seq, ack, msg.TYPE, msg.payload())


def decode_body(body: bytes) -> Frame | None:
    """The frame in a COBS-decoded body, or None if it is too short, unknown or its CRC fails."""
    if len(body) < HEADER + CRC_LEN or len(body) > MAX_BODY:
        return None
    extra = _EXTRA_BYTES[body[2]]
    if extra is None:
        return None
    head = body[:-4]
    if zlib.crc32(extra, zlib.crc32(head)) != int.from_bytes(body[-4:], "little"):
        return None
    return Frame(body[0], body[1], body[2], head[3:])


@dataclass
class DecoderStats:
    frames: int = 0
    bad_frames: int = 0  # COBS, length, unknown type or CRC failures
    bytes: int = 0
    overflows: int = 0  # runs longer than any frame, discarded up to the next 0x00


class Decoder:
    """Streaming decoder: feed bytes as they arrive, get back the frames that check.

    Every 0x00 ends a frame. A corrupt frame is dropped whole, and decoding resumes with the
    byte after the next 0x00; no frame is delivered unless its CRC (with its type's extra
    byte) checks.
    """

    __slots__ = ("_buf", "_skip", "stats")

    def __init__(self) -> None:
        self._buf = b""
        self._skip = False  # discarding an over-long run until the next delimiter
        self.stats = DecoderStats()

    def feed(self, data: bytes) -> list[Frame]:
        stats = self.stats
        stats.bytes += len(data)
        if b"\x00" not in data:
            if self._skip:
                return []
            buf = self._buf + data
            if len(buf) > MAX_ENCODED:
                self._buf, self._skip = b"", True
                stats.overflows += 1
            else:
                self._buf = buf
            return []
        parts = (self._buf + data).split(b"\x00")
        tail = parts.pop()
        if self._skip:
            parts[0] = b""
            self._skip = False
        if len(tail) > MAX_ENCODED:
            tail, self._skip = b"", True
            stats.overflows += 1
        self._buf = tail
        out = []
        append = out.append
        bad = 0
        for p in parts:
            if not p:
                continue
            if len(p) > MAX_ENCODED:
                bad += 1
                continue
            # Inline COBS decode of the common case: one block, no zero inside the body.
            if p[0] == len(p):
                body = p[1:]
            else:
                body = cobs_decode(p)
                if body is None:
                    bad += 1
                    continue
            frame = decode_body(body)
            if frame is None:
                bad += 1
            else:
                append(frame)
        stats.frames += len(out)
        stats.bad_frames += bad
        return out

    def reset(self) -> None:
        self._buf, self._skip = b"", False
