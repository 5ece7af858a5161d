"""The wire codec: COBS framing, CRC-32 with a per-type extra byte, and every message.

docs/protocol.md is the normative description; firmware_bridge/schema.py holds the one
definition string per message, and everything about a message's layout here is derived from
it. A frame on the wire is ``COBS(body) + b"\\x00"``; the body is

    offset 0  seq   u8   sender's command sequence number (0 = not a command)
    offset 1  ack   u8   sequence number being answered (0 = none)
    offset 2  type  u8   message type
    offset 3  payload    fixed little-endian integers, layout per type
    last 4    crc   u32  zlib.crc32(body[:-4] + bytes([CRC_EXTRA[type]])), little-endian

The streaming `Decoder` resynchronises at the next 0x00 after any corrupt byte and never
delivers a frame whose CRC fails.
"""

from __future__ import annotations

import builtins
import zlib
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any, ClassVar, NamedTuple, TypeVar, overload

from firmware_bridge.schema import (
    CRC_EXTRA,
    CRC_LEN,
    DC_PER_C,
    DHZ_PER_HZ,
    HEADER,
    HOST_COMMANDS,
    MA_PER_A,
    MAX_BODY,
    MAX_RUN,
    MV_PER_V,
    OVERHEAD,
    PAYLOAD_SIZE,
    PROTOCOL_VERSION,
    SCHEMAS,
    UM_PER_MM,
    Capability,
    ErrorCode,
    Fault,
    Field,
    Flag,
    MsgType,
    Schema,
    State,
)
from protocols.settings import WireSettings
from protocols.text import ascii_printable

__all__ = [  # the wire vocabulary lives in schema.py and is re-exported here for the codec's users
    "CRC_EXTRA", "HOST_COMMANDS", "MAX_BODY", "MESSAGES", "OVERHEAD", "PAYLOAD_SIZE",
    "PROTOCOL_VERSION", "Ack", "AnyMessage", "Applied", "Arm", "Capability", "ClearFault",
    "Decoder", "DecoderStats", "Disarm", "ErrorCode", "Fault", "Field", "Flag", "Frame",
    "Heartbeat", "Hello", "Ident", "Malformed", "Measured", "Message", "MsgType", "Nack",
    "Readings", "Set", "State", "Stop", "Telemetry", "VersionMismatch", "Watchdog",
    "cobs_decode", "cobs_encode", "decode_body", "encode", "encode_body", "encode_raw",
]

MAX_ENCODED = MAX_RUN

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


class Malformed(ValueError):
    """A frame whose CRC checked but whose payload does not fit its type."""


class VersionMismatch(Malformed):
    """An IDENT from a machine speaking another protocol version."""

    def __init__(self, version: int):
        super().__init__(f"protocol version {version}")
        self.version = version


# --- messages ------------------------------------------------------------------------------
# Each class is bound to its schema by `_bind`: the struct layout, size, field names and
# CRC_EXTRA come from the definition string in schema.py. The annotations are there for type
# checkers and readers; `_bind` refuses, at import, a class whose fields say otherwise.

def _ascii(raw: bytes) -> str:
    return ascii_printable(raw.rstrip(b"\x00").decode("latin-1"))  # never a control character


@dataclass(frozen=True)
class Message:
    TYPE: ClassVar[MsgType]
    SCHEMA: ClassVar[Schema]
    DEFINITION: ClassVar[str]
    _pack: ClassVar[Callable[[Message], bytes]]
    _unpack: ClassVar[Callable[[bytes], Message]]

    def payload(self) -> bytes:
        return type(self)._pack(self)

    @classmethod
    def from_payload(cls, payload: bytes) -> Message:
        return cls._unpack(payload)


M = TypeVar("M", bound=Message)


def _bind(cls: type[M]) -> type[M]:
    """Derive a message class's wire layout from its definition string."""
    schema = SCHEMAS[cls.TYPE]
    declared = [(f.name, f.type) for f in fields(cls)]
    wanted = [(f.name, f.kind.__name__) for f in schema.fields]
    if declared != wanted:
        raise TypeError(f"{cls.__name__} declares {declared}, its definition says {wanted}")
    cls.SCHEMA, cls.DEFINITION = schema, schema.definition
    layout, size = schema.struct, schema.size
    name = cls.TYPE.name

    def check(payload: bytes) -> None:
        if len(payload) != size:
            raise Malformed(f"{name} payload is {len(payload)} bytes, not {size}")

    if schema.scalar:
        pack_values = layout.pack

        def pack(msg: Message) -> bytes:
            return pack_values(*msg.__dict__.values())

        unpack = _scalar_unpacker(cls, schema, check)
    else:
        specs = schema.fields

        def pack(msg: Message) -> bytes:
            values: list[object] = []
            for f in specs:
                v = getattr(msg, f.name)
                if f.kind is str:
                    values.append(v.encode("ascii"))
                elif f.kind is WireSettings:
                    values.extend(v)
                else:
                    values.append(v)
            return layout.pack(*values)

        def unpack(payload: bytes) -> Message:
            check(payload)
            raw, i, out = layout.unpack(payload), 0, list[object]()
            for f in specs:
                if f.kind is str:
                    out.append(_ascii(raw[i]))
                elif f.kind is WireSettings:
                    out.append(WireSettings(*raw[i:i + 3]))
                else:
                    out.append(raw[i])
                i += f.values
            return cls(*out)

    cls._pack, cls._unpack = staticmethod(pack), staticmethod(unpack)
    return cls


def _scalar_unpacker(cls: type[Message], schema: Schema,
                     check: Callable[[bytes], None]) -> Callable[[bytes], Message]:
    """The decoder's hot path (50 Hz telemetry), generated from the schema as dataclasses and
    namedtuple generate theirs: unpack into locals, then fill the frozen instance's __dict__
    in one call instead of a setattr per field through __init__."""
    names = schema.names
    fields_ = ", ".join(names) + ("," if len(names) == 1 else "")
    src = (f"def unpack(payload, _new=_new, _cls=_cls, _unpack=_unpack, _size={schema.size}):\n"
           f"    if len(payload) != _size:\n"
           f"        _check(payload)\n"
           + (f"    {fields_} = _unpack(payload)\n" if names else "")
           + "    obj = _new(_cls)\n"
           + (f"    obj.__dict__.update({', '.join(f'{n}={n}' for n in names)})\n" if names
              else "")
           + "    return obj\n")
    scope: dict[str, Any] = {"_new": object.__new__, "_cls": cls, "_unpack": schema.struct.unpack,
             "_check": check}
    exec(src, scope)  # the source is built from the schema's field names only
    unpack: Callable[[bytes], Message] = scope["unpack"]
    return unpack


@_bind
@dataclass(frozen=True)
class Hello(Message):
    TYPE = MsgType.HELLO
    protocol: int = PROTOCOL_VERSION

    @classmethod
    def from_payload(cls, payload: bytes) -> Hello:
        # Frozen layout: the version is byte 0 whatever the protocol version; longer payloads
        # (of later versions) are accepted and the rest ignored.
        if len(payload) < 1:
            raise Malformed("HELLO payload is empty")
        return cls(payload[0])


@_bind
@dataclass(frozen=True)
class Arm(Message):
    TYPE = MsgType.ARM


@_bind
@dataclass(frozen=True)
class Disarm(Message):
    TYPE = MsgType.DISARM


@_bind
@dataclass(frozen=True)
class Set(Message):
    TYPE = MsgType.SET
    depth_um: int
    rate_dhz: int
    voltage_mv: int

    @property
    def settings(self) -> WireSettings:
        return WireSettings(self.depth_um, self.rate_dhz, self.voltage_mv)


@_bind
@dataclass(frozen=True)
class Watchdog(Message):
    TYPE = MsgType.WATCHDOG
    timeout_ms: int


@_bind
@dataclass(frozen=True)
class Stop(Message):
    TYPE = MsgType.STOP


@_bind
@dataclass(frozen=True)
class ClearFault(Message):
    TYPE = MsgType.CLEAR_FAULT


@_bind
@dataclass(frozen=True)
class Heartbeat(Message):
    TYPE = MsgType.HEARTBEAT


@_bind
@dataclass(frozen=True)
class Ident(Message):
    TYPE = MsgType.IDENT
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

    @classmethod
    def from_payload(cls, payload: bytes) -> Ident:
        # Frozen layout: byte 0 is the version in every protocol version; read it first.
        if len(payload) < 1:
            raise Malformed("IDENT payload is empty")
        if payload[0] != PROTOCOL_VERSION:
            raise VersionMismatch(payload[0])
        return cls._unpack(payload)  # type: ignore[return-value]

    @property
    def firmware_version(self) -> str:
        return f"{self.fw_major}.{self.fw_minor}.{self.fw_patch}"


@_bind
@dataclass(frozen=True)
class Ack(Message):
    TYPE = MsgType.ACK
    command: int  # the type of the command acknowledged


@_bind
@dataclass(frozen=True)
class Applied(Message):
    TYPE = MsgType.APPLIED
    depth_um: int
    rate_dhz: int
    voltage_mv: int

    @property
    def settings(self) -> WireSettings:
        return WireSettings(self.depth_um, self.rate_dhz, self.voltage_mv)


@_bind
@dataclass(frozen=True)
class Nack(Message):
    TYPE = MsgType.NACK
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


class Measured:
    """TELEMETRY's five measurements in physical units (floats), for anything that carries them
    in wire units under the wire's names: the message, and the simulator's sensors."""

    __slots__ = ()
    rate_dhz: int
    voltage_mv: int
    current_ma: int
    depth_um: int
    temperature_dc: int

    @property
    def rate_hz(self) -> float:
        return self.rate_dhz / DHZ_PER_HZ

    @property
    def voltage_v(self) -> float:
        return self.voltage_mv / MV_PER_V

    @property
    def current_a(self) -> float:
        return self.current_ma / MA_PER_A

    @property
    def depth_mm(self) -> float:
        return self.depth_um / UM_PER_MM

    @property
    def temperature_c(self) -> float:
        return self.temperature_dc / DC_PER_C


@_bind
@dataclass(frozen=True)
class Telemetry(Message, Measured):
    TYPE = MsgType.TELEMETRY
    state: int
    flags: int  # Flag bits: pedal down, motor on, link alive, session
    faults: int
    rate_dhz: int
    voltage_mv: int
    current_ma: int
    depth_um: int
    temperature_dc: int
    uptime_ms: int
    set_depth_um: int  # the setpoints in force (0, 0, 0 if none since boot)
    set_rate_dhz: int
    set_voltage_mv: int
    runs: int  # entries to RUNNING since boot, modulo 256: no run goes unseen
    needle_ms: int  # milliseconds the needle has been driven since boot, modulo 2^32

    @property
    def pedal_down(self) -> bool:
        return bool(self.flags & Flag.PEDAL)

    @property
    def motor_on(self) -> bool:
        return bool(self.flags & Flag.MOTOR)

    @property
    def setpoints(self) -> WireSettings:
        """The setpoints the machine applies now (all 0 if none since boot)."""
        return WireSettings(self.set_depth_um, self.set_rate_dhz, self.set_voltage_mv)


_BOUNDS = {f.name: f.bounds for f in Telemetry.SCHEMA.fields if f.kind is int}
_RATE, _VOLTAGE, _CURRENT, _DEPTH, _TEMPERATURE = (
    (scale, *_BOUNDS[name]) for name, scale in (
        ("rate_dhz", DHZ_PER_HZ), ("voltage_mv", MV_PER_V), ("current_ma", MA_PER_A),
        ("depth_um", UM_PER_MM), ("temperature_dc", DC_PER_C)))


def _fit(value: float, scale: int, lo: int, hi: int) -> int:
    n = round(value * scale)
    return n if lo <= n <= hi else lo if n < lo else hi  # not min/max: the simulator's tick


@dataclass(frozen=True, slots=True)
class Readings(Measured):
    """What a machine's sensors report, in TELEMETRY's wire units: the integers its firmware
    judges faults by and sends (the simulator's side of `Measured`)."""

    rate_dhz: int
    voltage_mv: int
    current_ma: int
    depth_um: int
    temperature_dc: int

    @classmethod
    def from_physical(cls, *, rate_hz: float, voltage_v: float, current_a: float,
                      depth_mm: float, temperature_c: float) -> Readings:
        """Each value rounded once to its wire unit, then held within what its field carries
        (a sensor reads full scale; the wire never wraps)."""
        return cls(_fit(rate_hz, *_RATE), _fit(voltage_v, *_VOLTAGE), _fit(current_a, *_CURRENT),
                   _fit(depth_mm, *_DEPTH), _fit(temperature_c, *_TEMPERATURE))


AnyMessage = (Hello | Arm | Disarm | Set | Watchdog | Stop | ClearFault | Heartbeat | Ident | Ack
              | Applied | Nack | Telemetry)
MESSAGES: dict[MsgType, type[Message]] = {
    m.TYPE: m for m in (Hello, Arm, Disarm, Set, Watchdog, Stop, ClearFault, Heartbeat,
                        Ident, Ack, Applied, Nack, Telemetry)
}
assert set(MESSAGES) == set(SCHEMAS), "a message type without its class, or the reverse"
# Index by type byte: the function from payload to message (Frame.message's dispatch).
_FROM_PAYLOAD: list[Callable[[bytes], AnyMessage] | None] = [None] * 256
for _t, _m in MESSAGES.items():
    _FROM_PAYLOAD[_t] = _m.from_payload  # type: ignore[assignment]
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

    @overload
    def message(self) -> AnyMessage: ...
    @overload
    def message(self, kind: builtins.type[M]) -> M: ...  # `type` is a field here

    def message(self, kind: builtins.type[Message] | None = None) -> Message:
        """The typed message; raises Malformed if the payload does not fit the type, or if
        the frame is not of `kind` (when given: the caller's type, checked, not assumed)."""
        from_payload = _FROM_PAYLOAD[self.type]
        if from_payload is None:
            raise Malformed(f"unknown message type 0x{self.type:02x}")
        msg = from_payload(self.payload)
        if kind is not None and not isinstance(msg, kind):
            raise Malformed(f"{msg.TYPE.name} frame, not {kind.TYPE.name}")
        return msg


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
        out: list[Frame] = []
        append = out.append
        bad = 0
        # decode_body() inlined: this loop is the reader's hot path (50 Hz telemetry).
        extras, crc32, new, from_bytes = _EXTRA_BYTES, zlib.crc32, tuple.__new__, int.from_bytes
        for p in parts:
            if not p:
                continue
            if len(p) > MAX_ENCODED:
                bad += 1
                continue
            # Inline COBS decode of the common case: one block, no zero inside the body.
            body: bytes | None
            if p[0] == len(p):
                body = p[1:]
            else:
                body = cobs_decode(p)
                if body is None:
                    bad += 1
                    continue
            n = len(body)
            extra = extras[body[2]] if n >= HEADER + CRC_LEN else None
            if extra is None or n > MAX_BODY:
                bad += 1
                continue
            head = body[:-4]
            if crc32(extra, crc32(head)) != from_bytes(body[-4:], "little"):
                bad += 1
                continue
            append(new(Frame, (body[0], body[1], body[2], head[3:])))
        stats.frames += len(out)
        stats.bad_frames += bad
        return out

    def reset(self) -> None:
        self._buf, self._skip = b"", False
