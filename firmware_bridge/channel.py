"""The machine service's local channel: one JSON object per line, both ways.

    client -> service   {"op": "hello", "role": "control" | "observe", "who": "..."}
                        {"op": "do", "id": 7, "cmd": "set", "arg": [1500, 1200, 7000]}
                        {"op": "bye"}                      (an orderly goodbye)
    service -> client   {"op": "welcome", "role": ..., "status": {...}, "service": {...}}
                        {"op": "refused", "reason": "..."} (and the service hangs up)
                        {"op": "event", "event": {...}, "status": {...}}
                        {"op": "result", "id": 7, "result": {...}}

Events are the link's own dataclasses (firmware_bridge.events), encoded field by field from
their type hints so that both ends share one definition; settings travel as the wire's
integers, never floats. Nothing here does I/O.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from enum import Enum
from typing import Any

from firmware_bridge import events as ev
from firmware_bridge.codec import Fault, Ident, State, Telemetry
from firmware_bridge.commands import Kind, Op, Result
from firmware_bridge.core import Knowledge
from firmware_bridge.handle import Status
from protocols.envelope import SafetyEnvelope
from protocols.settings import MachineSettings, WireSettings

MAX_LINE = 1 << 20  # a peer that sends a longer line is not speaking this channel

_EVENTS: dict[str, type[ev.Event]] = {cls.__name__: cls for cls in typing.get_args(ev.Event)}
_HINTS = {name: typing.get_type_hints(cls) for name, cls in _EVENTS.items()}


class ChannelError(ValueError):
    """A line that is not this channel's."""


def _out(value: Any) -> Any:
    if isinstance(value, MachineSettings):
        return list(value.to_wire())
    if isinstance(value, Telemetry):
        return dataclasses.asdict(value)
    if isinstance(value, Enum):
        return value.value
    return value


def _in(hint: Any, value: Any) -> Any:
    if value is None:
        return None
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    if hint is MachineSettings:
        return MachineSettings.from_wire(*value)
    if hint is Telemetry:
        return Telemetry(**value)
    if isinstance(hint, type) and issubclass(hint, Enum):
        return hint(value)
    return value


def encode_event(event: ev.Event) -> dict[str, Any]:
    out = {f.name: _out(getattr(event, f.name)) for f in dataclasses.fields(event)}
    out["type"] = type(event).__name__
    return out


def decode_event(data: dict[str, Any]) -> ev.Event:
    try:
        name = data["type"]
        cls, hints = _EVENTS[name], _HINTS[name]
        return cls(**{k: _in(hints[k], v) for k, v in data.items() if k != "type"})
    except (KeyError, TypeError, ValueError) as exc:
        raise ChannelError(f"not an event: {exc}") from None


def _envelope_out(env: SafetyEnvelope | None) -> list[list[int]] | None:
    return None if env is None else [list(w) for w in env.to_wire()]


def _envelope_in(data: list[list[int]] | None) -> SafetyEnvelope | None:
    return None if data is None else SafetyEnvelope.from_wire(WireSettings(*data[0]),
                                                              WireSettings(*data[1]))


def encode_ident(ident: Ident | None) -> dict[str, Any] | None:
    if ident is None:
        return None
    return {f.name: (list(v) if isinstance(v, tuple) else v)
            for f in dataclasses.fields(ident) for v in [getattr(ident, f.name)]}


def decode_ident(data: dict[str, Any] | None) -> Ident | None:
    if data is None:
        return None
    fields: dict[str, Any] = {k: WireSettings(*v) if k in ("lo", "hi", "applied") else v
                              for k, v in data.items()}
    return Ident(**fields)


def encode_status(s: Status) -> dict[str, Any]:
    """The link's status, for the channel."""
    return {"ident": encode_ident(s.ident), "state": None if s.state is None else int(s.state),
            "faults": int(s.faults), "knowledge": s.knowledge.value, "applied": _out(s.applied),
            "confirmed": s.confirmed, "link_state": s.link_state.value,
            "telemetry": _out(s.telemetry), "envelope": _envelope_out(s.envelope),
            "machine_envelope": _envelope_out(s.machine_envelope), "rto": s.rto,
            "queued": s.queued}


def decode_status(d: dict[str, Any]) -> Status:
    try:
        envelope = _envelope_in(d["envelope"])
        assert envelope is not None
        return Status(
            decode_ident(d["ident"]), None if d["state"] is None else State(d["state"]),
            Fault(d["faults"]), Knowledge(d["knowledge"]),
            _in(MachineSettings | None, d["applied"]), d["confirmed"],
            ev.LinkState(d["link_state"]), _in(Telemetry | None, d["telemetry"]), envelope,
            _envelope_in(d["machine_envelope"]), d["rto"], d["queued"])
    except (KeyError, TypeError, ValueError, AssertionError) as exc:
        raise ChannelError(f"not a status: {exc}") from None


def encode_result(r: Result) -> dict[str, Any]:
    return {"op": r.op.value, "kind": r.kind.value, "message": r.message,
            "applied": _out(r.applied), "code": r.code}


def decode_result(d: dict[str, Any]) -> Result:
    try:
        return Result(Op(d["op"]), Kind(d["kind"]), d["message"],
                      _in(MachineSettings | None, d["applied"]), d["code"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ChannelError(f"not a result: {exc}") from None


def encode_arg(op: Op, arg: object) -> Any:
    return _out(arg)


def decode_arg(op: Op, value: Any) -> object:
    if op is Op.SET:
        return MachineSettings.from_wire(*value)
    if op is Op.WATCHDOG:
        if not isinstance(value, int):
            raise ChannelError(f"watchdog: {value!r} is not a whole number of ms")
        return value
    return None


def line(message: dict[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode() + b"\n"


class LineReader:
    """Bytes in, whole messages out."""

    def __init__(self) -> None:
        self._buf = b""

    def feed(self, data: bytes) -> list[dict[str, Any]]:
        self._buf += data
        if b"\n" not in self._buf:
            if len(self._buf) > MAX_LINE:
                raise ChannelError("a line longer than the channel allows")
            return []
        *lines, self._buf = self._buf.split(b"\n")
        out = []
        for raw in lines:
            try:
                msg = json.loads(raw)
            except ValueError:
                raise ChannelError("a line that is not JSON") from None
            if not isinstance(msg, dict) or "op" not in msg:
                raise ChannelError("a message without an op")
            out.append(msg)
        return out
