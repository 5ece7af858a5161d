"""The link core and the firmware core wired back to back on one fake clock.

Both are pure state machines, so a whole conversation (handshake, heartbeats, retransmission,
STOP, faults) runs in a test in microseconds of real time and exactly the same way every time.
Each direction of the "line" can drop or rewrite frames; every frame that crosses it is kept in
`wire`, and the firmware's own log is the machine's account of what the needle did.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from firmware_bridge.codec import Decoder, Frame, MsgType, encode_raw
from firmware_bridge.core import LinkCore
from protocols.settings import MachineSettings
from sim.clock import FakeClock
from sim.firmware import Firmware

# Decides the fate of one frame on the line: True passes it, False drops it.
Gate = Callable[[Frame], bool]


@dataclass(frozen=True)
class Crossing:
    t_ms: int
    to_machine: bool
    frame: Frame


class Wiring:
    def __init__(self, *, seq: int = 10, **firmware_options):
        self.clock = FakeClock()
        self.firmware = Firmware(self.clock, boot_id=0x1234, **firmware_options)
        self.core = LinkCore(now=0.0, seq=seq)
        self.to_machine: Gate = lambda f: True
        self.to_host: Gate = lambda f: True
        self.events: list = []
        self.wire: list[Crossing] = []
        self._dec = (Decoder(), Decoder())

    @property
    def t_ms(self) -> int:
        return self.clock.now_ns() // 1_000_000

    def now(self) -> float:
        return self.clock.now_ns() / 1e9

    def _carry(self, data: bytes, to_machine: bool) -> bytes:
        gate = self.to_machine if to_machine else self.to_host
        out = b""
        for f in self._dec[0 if to_machine else 1].feed(data):
            self.wire.append(Crossing(self.t_ms, to_machine, f))
            if gate(f):
                out += encode_raw(f.seq, f.ack, f.type, f.payload)
        return out

    def step(self, ms: int = 1) -> None:
        """Advance both ends `ms` milliseconds, a millisecond at a time."""
        for _ in range(ms):
            self.clock.advance_ms(1)
            now = self.now()
            self.core.tick(now=now)
            self._exchange(now)

    def _exchange(self, now: float) -> None:
        out = self.core.take_output()
        if out:
            data = self._carry(out, True)
            if data:
                self.firmware.feed(data)
        self.firmware.tick()
        back = self.firmware.take_output()
        if back:
            data = self._carry(back, False)
            if data:
                self.core.receive(data, now=now)
        self.events += self.core.take_events()

    def act(self, fn: Callable[[LinkCore, float], object]) -> object:
        """Call `fn(core, now)` now (a command, STOP) and let its frames go out."""
        result = fn(self.core, self.now())
        self._exchange(self.now())
        return result

    def until(self, predicate: Callable[[], bool], max_ms: int = 5000) -> bool:
        for _ in range(max_ms):
            if predicate():
                return True
            self.step()
        return predicate()

    def connect(self) -> None:
        ticket = self.act(lambda c, now: c.begin(now=now))
        assert self.until(lambda: ticket.done, 2000) and self.core.ident is not None
        self.step(30)  # a first telemetry frame

    def sent(self, mtype: MsgType, *, after_ms: int = -1) -> list[Crossing]:
        return [c for c in self.wire if c.to_machine and c.frame.type == mtype
                and c.t_ms > after_ms]

    def of(self, cls) -> list:
        return [e for e in self.events if isinstance(e, cls)]

    def fw_log(self, what: str) -> list:
        return [e for e in self.firmware.log if e.what == what]

    def apply(self, settings: MachineSettings):
        from firmware_bridge.codec import Set

        ticket = self.act(lambda c, now: c.submit(Set(*settings.to_wire()),
                                                  requested=settings, now=now))
        self.until(lambda: ticket.done, 3000)
        return ticket

    def command(self, msg):
        ticket = self.act(lambda c, now: c.submit(msg, now=now))
        self.until(lambda: ticket.done, 3000)
        return ticket
