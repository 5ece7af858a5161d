"""The conformance probe: a deliberately small host written against docs/protocol.md, on the
codec and a byte transport only (not the link supervisor), so that what it checks is the
device. One thread: every wait reads the line, keeps the heartbeat going and records what
arrived with the probe's clock.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass

from firmware_bridge.codec import (
    Decoder,
    Frame,
    Heartbeat,
    Malformed,
    Message,
    Telemetry,
    encode,
    encode_raw,
)
from firmware_bridge.schema import HOST_TYPES, MsgType
from firmware_bridge.transport import Transport

HEARTBEAT_EVERY_S = 0.020  # well inside C-7.6's 50 ms, so a 100 ms watchdog never starves
_ANSWERS: dict[int, set[MsgType]] = {MsgType.HELLO: {MsgType.IDENT},
                                     MsgType.SET: {MsgType.APPLIED, MsgType.NACK}}


@dataclass(frozen=True)
class Seen:
    """A frame as it arrived: the probe's clock (s), the frame, and for TELEMETRY the message."""

    at: float
    frame: Frame
    telemetry: Telemetry | None = None

    @property
    def ack(self) -> int:
        return self.frame.ack


@dataclass(frozen=True)
class Reading(Seen):
    """A TELEMETRY frame that decoded: what `telemetry()` returns, so its message is there."""

    telemetry: Telemetry


class Probe:
    def __init__(self, transport: Transport, clock: Callable[[], float] = time.monotonic):
        self.transport = transport
        self.clock = clock
        self.decoder = Decoder()
        self.frames: list[Seen] = []  # every frame received, in order
        self.host_frames = 0  # frames of host types received (an echo, a loopback)
        self.heartbeat = True  # send heartbeats while waiting
        self.heartbeat_frame = encode(Heartbeat())
        self.heartbeat_feeds = True  # False while `heartbeat_frame` is not a valid host frame
        self.bytes_in = 0
        self._seq = 0
        self._last_write = float("-inf")
        self.last_host_frame_at = float("-inf")  # when the last valid host frame was written

    # --- writing ---------------------------------------------------------------------------

    def next_seq(self) -> int:
        self._seq = self._seq % 255 + 1
        return self._seq

    def write(self, data: bytes, *, host_frame: bool = True) -> float:
        """Bytes onto the line; returns when (probe clock) they were written."""
        self.transport.write(data)
        now = self.clock()
        self._last_write = now
        if host_frame:
            self.last_host_frame_at = now
        return now

    def send(self, msg: Message, *, seq: int | None = None, ack: int = 0) -> int:
        seq = self.next_seq() if seq is None else seq
        self.write(encode(msg, seq=seq, ack=ack))
        return seq

    def send_raw(self, seq: int, mtype: int, payload: bytes = b"", *, ack: int = 0) -> int:
        self.write(encode_raw(seq, ack, mtype, payload))
        return seq

    # --- reading ---------------------------------------------------------------------------

    def poll(self) -> None:
        """One read of the line (it returns after a short timeout when nothing comes)."""
        if self.heartbeat and self.clock() - self._last_write >= HEARTBEAT_EVERY_S:
            self.write(self.heartbeat_frame, host_frame=self.heartbeat_feeds)
        data = self.transport.read()
        if not data:
            return
        self.bytes_in += len(data)
        now = self.clock()
        for f in self.decoder.feed(data):
            if f.type in HOST_TYPES:
                self.host_frames += 1
                continue
            seen = Seen(now, f)
            if f.type == MsgType.TELEMETRY:
                with contextlib.suppress(Malformed):  # kept as a frame without its message
                    seen = Reading(now, f, f.message(Telemetry))
            self.frames.append(seen)

    def wait(self, seconds: float) -> None:
        end = self.clock() + seconds
        while self.clock() < end:
            self.poll()

    def wait_for(self, predicate: Callable[[Seen], bool], timeout: float,
                 since: int | None = None) -> Seen | None:
        """The first frame from index `since` (default: from now on) that satisfies it."""
        i = len(self.frames) if since is None else since
        end = self.clock() + timeout
        while True:
            while i < len(self.frames):
                if predicate(self.frames[i]):
                    return self.frames[i]
                i += 1
            if self.clock() >= end:
                return None
            self.poll()

    def mark(self) -> int:
        """An index into `frames`: what arrives from now on is after it."""
        return len(self.frames)

    def answers(self, seq: int, since: int, mtype: int | None = None) -> list[Seen]:
        """Answers (IDENT, ACK, APPLIED, NACK) with `ack` == seq received since `since`; for a
        command type, only those that answer it."""
        out = []
        for s in self.frames[since:]:
            f = s.frame
            if f.type == MsgType.TELEMETRY or f.ack != seq:
                continue
            if mtype is not None and not _answers(mtype, f):
                continue
            out.append(s)
        return out

    def command(self, msg: Message | None = None, *, seq: int | None = None,
                raw: tuple[int, bytes] | None = None, timeout: float = 0.3,
                ack: int = 0) -> tuple[int, Seen | None]:
        """Send once and wait for its answer: (seq, the answer or None). `raw` is (type,
        payload) for frames no message class describes."""
        since = self.mark()
        if raw is not None:
            mtype = raw[0]
            seq = self.send_raw(self.next_seq() if seq is None else seq, raw[0], raw[1],
                                ack=ack)
        else:
            assert msg is not None
            mtype = msg.TYPE
            seq = self.send(msg, seq=seq, ack=ack)
        got = self.wait_for(lambda s: s.frame.type != MsgType.TELEMETRY
                            and s.frame.ack == seq and _answers(mtype, s.frame),
                            timeout, since=since)
        return seq, got

    def telemetry(self, since: int = 0) -> list[Reading]:
        return [s for s in self.frames[since:] if isinstance(s, Reading)]

    def next_telemetry(self, timeout: float = 0.2) -> Reading | None:
        s = self.wait_for(lambda s: isinstance(s, Reading), timeout)
        return s if isinstance(s, Reading) else None

    def device_offset(self, since: int = 0) -> float | None:
        """probe clock − device uptime (s), from the earliest-arriving telemetry frames: the
        device's clock mapped onto the probe's, up to the line's delay."""
        tel = self.telemetry(since)
        if not tel:
            return None
        return min(s.at - s.telemetry.uptime_ms / 1000 for s in tel)


def _answers(mtype: int, f: Frame) -> bool:
    if f.type in (MsgType.ACK, MsgType.NACK):
        return bool(f.payload) and f.payload[0] == mtype
    return f.type in _ANSWERS.get(mtype, set())
