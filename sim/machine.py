"""A whole simulated machine: firmware, physics, the serial line's faults and pacing, the
trainer's controls and scenario playback, independent of any transport.

A transport (pty, TCP, in-process) moves bytes: it hands what the host wrote to `receive()`,
calls `step()` often (every few milliseconds), writes what `transmit()` returns back to the
host, and sleeps at most `next_wakeup_s()`. Everything else happens here, on the machine's
clock, so tests can drive the same object on a FakeClock.
"""

from __future__ import annotations

import dataclasses
import heapq
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Unpack

from sim.clock import Clock
from sim.firmware import Firmware, FirmwareOptions
from sim.linkfaults import FaultyChannel, LinkFaults
from sim.pacing import BaudPacer
from sim.physics import Skin
from sim.scenario import CLEARABLE, FAULTS, Scenario, Step

_RATES = {"bit-errors": "bit_error_rate", "drop-bytes": "drop_byte_rate",
          "dup-bytes": "dup_byte_rate", "drop-frames": "drop_frame_rate",
          "dup-frames": "dup_frame_rate", "reorder-frames": "reorder_frame_rate"}
ByteFilter = Callable[[bytes], bytes]
TX_BUFFER_BYTES = 4096  # a UART transmit buffer: frames that do not fit are dropped, as on a MCU


@dataclass(order=True)
class _Timed:
    at_ns: int
    order: int
    data: bytes = field(compare=False)


class MachineOptions(FirmwareOptions, total=False):
    """SimulatedMachine's keyword arguments after the clock, for callers that pass them
    through."""

    seed: int
    faults: LinkFaults | None
    baud: int | None
    firmware: Firmware | None


class _Direction:
    """One direction of the line: faults, then delay ordering, then baud pacing."""

    def __init__(self, faults: LinkFaults, seed: int, baud: int | None, now_ns: int):
        self.channel = FaultyChannel(faults, seed)
        self.pacer = BaudPacer(baud, now_ns / 1e9) if baud else None
        self._timed: list[_Timed] = []
        self._order = 0
        self._ready = bytearray()
        self.dropped_frames = 0
        self.carried = 0

    def push(self, data: bytes, now_ns: int) -> None:
        for at_s, chunk in self.channel.process(data, now_ns / 1e9):
            self._order += 1
            heapq.heappush(self._timed, _Timed(round(at_s * 1e9), self._order, chunk))

    def inject(self, data: bytes, now_ns: int) -> None:
        """Bytes that appear on the line by themselves (noise): no frame faults apply."""
        self._order += 1
        heapq.heappush(self._timed, _Timed(now_ns, self._order, data))

    def pull(self, now_ns: int) -> bytes:
        while self._timed and self._timed[0].at_ns <= now_ns:
            chunk = heapq.heappop(self._timed).data
            if len(self._ready) + len(chunk) > TX_BUFFER_BYTES:
                self.dropped_frames += 1
                continue
            self._ready += chunk
        n = len(self._ready) if self.pacer is None else self.pacer.take(len(self._ready),
                                                                        now_ns / 1e9)
        out = bytes(self._ready[:n])
        del self._ready[:n]
        self.carried += n
        return out

    def wait_s(self, now_ns: int) -> float:
        waits = [1.0]
        if self._ready:
            waits.append(self.pacer.wait_s(now_ns / 1e9) if self.pacer else 0.0)
        if self._timed:
            waits.append(max(0.0, (self._timed[0].at_ns - now_ns) / 1e9))
        return min(waits)


class SimulatedMachine:
    def __init__(self, clock: Clock, *, seed: int = 0, faults: LinkFaults | None = None,
                 baud: int | None = None, firmware: Firmware | None = None,
                 **firmware_options: Unpack[FirmwareOptions]):
        self.clock = clock
        self.seed = seed
        self._lock = threading.RLock()
        now = clock.now_ns()
        faults = faults or LinkFaults()
        # Two independent random streams from one seed: the same seed replays the same run.
        self.to_machine = _Direction(dataclasses.replace(faults), seed * 2 + 1, baud, now)
        self.to_host = _Direction(dataclasses.replace(faults), seed * 2 + 2, baud, now)
        self.firmware = firmware or Firmware(clock, **firmware_options)
        self.firmware.output = self._from_firmware
        # Exact, hand-written byte filters for tests (drop this one ACK, rewrite that frame);
        # applied before the seeded faults. Each returns the bytes to pass on.
        self.host_to_machine: ByteFilter | None = None
        self.machine_to_host: ByteFilter | None = None
        self.pedal_stuck = False
        self._pedal_wanted = False
        self.script: list[Step] = []
        self._script_start_ns = 0
        self.caption = ""
        self.expected_settings = None  # what the playing scenario asks the host to apply

    # --- the byte path ---------------------------------------------------------------------

    def _from_firmware(self, frame: bytes) -> None:
        if self.machine_to_host is not None:
            frame = self.machine_to_host(frame)
        self.to_host.push(frame, self.clock.now_ns())

    def receive(self, data: bytes) -> None:
        """Bytes the host wrote to the line."""
        with self._lock:
            if self.host_to_machine is not None:
                data = self.host_to_machine(data)
            self.to_machine.push(data, self.clock.now_ns())

    def step(self) -> None:
        with self._lock:
            now = self.clock.now_ns()
            self._play_due(now)
            arrived = self.to_machine.pull(now)
            if arrived:
                self.firmware.feed(arrived)
            self.firmware.tick()

    def transmit(self) -> bytes:
        """Bytes that have crossed the line to the host by now."""
        with self._lock:
            return self.to_host.pull(self.clock.now_ns())

    def next_wakeup_s(self) -> float:
        with self._lock:
            now = self.clock.now_ns()
            # The firmware's timers (telemetry due, watchdog, fault trips) fire at their
            # deadlines, as a real device's timer interrupts do, not at the next poll.
            deadline = self.firmware.next_deadline_ns()
            return min(0.005, self.to_host.wait_s(now), self.to_machine.wait_s(now),
                       max(0.0, (deadline - now) / 1e9))

    # --- the trainer's controls --------------------------------------------------------------

    def press_pedal(self, down: bool) -> None:
        with self._lock:
            self._pedal_wanted = down
            self.firmware.set_pedal(down or self.pedal_stuck)

    def set_skin(self, skin: Skin) -> None:
        with self._lock:
            self.firmware.physics.skin = Skin(skin)

    def inject(self, name: str, value: float | int | None = None) -> None:
        """Switch on one fault by its scenario name (see sim.scenario.FAULTS)."""
        if name not in FAULTS:
            raise ValueError(f"unknown fault {name!r}; allowed: {', '.join(FAULTS)}")
        convert = FAULTS[name][1]
        number: float = 0.0  # used only by the faults that take an argument
        if convert is not None:
            number = convert(str(value))  # the same checks as a scenario line
        with self._lock:
            now = self.clock.now_ns()
            injected = self.firmware.physics.injected
            if name in _RATES:
                for d in (self.to_machine, self.to_host):
                    setattr(d.channel.faults, _RATES[name], float(number))
            elif name == "delay-frames":
                for d in (self.to_machine, self.to_host):
                    d.channel.faults.delay_frame_rate = 1.0
                    d.channel.faults.delay_s = float(number)
            elif name == "garbage":
                self.to_host.inject(self.to_host.channel.garbage(int(number)), now)
            elif name == "silent":
                self.to_host.channel.outage(now / 1e9, silent_s=float(number))
            elif name == "link-drop":
                for d in (self.to_machine, self.to_host):
                    d.channel.outage(now / 1e9, down_s=float(number))
            elif name == "reboot":
                self.firmware.reboot()
            elif name == "stall":
                injected.jam = True
            elif name == "overcurrent":
                injected.short_a = 3.0
            elif name == "overtemp":
                injected.heat_w = 150.0  # blocked cooling, compressed in time for teaching
            elif name == "pedal-stuck":
                self.pedal_stuck = True
                self.firmware.set_pedal(True)
            elif name == "depth-short":
                injected.depth_limit_um = int(number)
            elif name == "misapply":
                self.firmware.misapply = True

    def clear(self, name: str) -> None:
        """Remove the cause of a fault; a latched fault is cleared only by the host."""
        with self._lock:
            injected = self.firmware.physics.injected
            if name == "stall":
                injected.jam = False
            elif name == "overcurrent":
                injected.short_a = 0.0
            elif name == "overtemp":
                injected.heat_w = 0.0
            elif name == "pedal-stuck":
                self.pedal_stuck = False
                self.firmware.set_pedal(self._pedal_wanted)
            elif name == "depth-short":
                injected.depth_limit_um = None
            elif name == "misapply":
                self.firmware.misapply = False
            elif name in _RATES or name == "delay-frames":
                for d in (self.to_machine, self.to_host):
                    if name == "delay-frames":
                        d.channel.faults.delay_frame_rate = d.channel.faults.delay_s = 0.0
                    else:
                        setattr(d.channel.faults, _RATES[name], 0.0)
            else:
                raise ValueError(f"{name!r} cannot be cleared; allowed: {', '.join(CLEARABLE)}")

    # --- scenarios ---------------------------------------------------------------------------

    def play(self, scenario: Scenario) -> None:
        with self._lock:
            self.script = list(scenario.steps)
            self._script_start_ns = self.clock.now_ns()
            self.caption = scenario.description

    @property
    def playing(self) -> bool:
        return bool(self.script)

    def _play_due(self, now: int) -> None:
        while self.script and self._script_start_ns + self.script[0].at_s * 1e9 <= now:
            self.do(self.script.pop(0))

    def do(self, step: Step) -> None:
        """Carry out one scenario step now, whatever its time."""
        with self._lock:
            action, args = step.action, step.args
            if action == "say":
                self.caption = args[0]
            elif action == "settings":
                self.expected_settings = args[0]
            elif action == "skin":
                self.set_skin(args[0])
            elif action == "pedal":
                self.press_pedal(args[0] == "down")
            elif action == "fault":
                self.inject(*args)
            elif action == "clear":
                self.clear(args[0])
            elif action == "end":
                self.script.clear()

    # --- what a trainer sees -----------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """The machine as a trainer's panel (or the control channel) shows it."""
        with self._lock:
            fw = self.firmware
            r = fw.physics.readings()
            return {
                "state": fw.state.name, "faults": [f.name for f in type(fw.faults)
                                                   if f and f in fw.faults],
                "pedal": fw.pedal, "link": fw.link_alive, "session": fw.handshaken,
                "boot_id": fw.boot_id, "readings": dataclasses.asdict(r),
                "applied": fw.applied._asdict() if fw.applied else None,
                "skin": fw.physics.skin.value, "caption": self.caption,
                "playing": self.playing, "quirks": sorted(fw.quirks),
            }

    def status_line(self) -> str:
        fw = self.firmware
        r = fw.physics.readings()
        faults = fw.faults.name if fw.faults else "none"
        return (f"SIMULATOR {fw.state.name:<8} pedal {'DOWN' if fw.pedal else 'up  '} "
                f"link {'alive' if fw.link_alive else 'LOST '} "
                f"{r.rate_hz:5.1f} Hz {r.voltage_v:4.1f} V "
                f"{r.current_a:4.2f} A depth {r.depth_mm:4.2f} mm "
                f"{r.temperature_c:5.1f} C skin {fw.physics.skin.value:<6} faults {faults}")
