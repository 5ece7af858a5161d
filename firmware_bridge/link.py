"""A machine link in this process: the link core (firmware_bridge.core) driven by one I/O loop.

    from firmware_bridge import Machine
    with Machine.connect("/dev/ttyUSB0") as m:        # or "sim://", "socket://...", ...
        m.subscribe(print)
        confirmed = m.apply(settings)                  # the machine's read-back
        m.arm()
        ...
        m.stop()

One thread, the loop, owns the core and the port's writing side: it reads the port (or is
handed what a reader thread read, for transports without a file descriptor), runs the core's
timers, writes what the core says to write and hands its events to the subscribers. Every other
thread talks to it by message (`call_soon`), never by sharing the core. The machine service
(firmware_bridge.service) runs its clients' sockets on this same loop, so one thread owns all
of the link's state, and the heartbeat never waits on anything but the port.

The console does not use this class directly: it talks to the machine service, which runs the
link in a process of its own (docs/architecture.md). Scripts, tests and the service do.
Subscriber callbacks run on the loop thread: keep them short, never block in them.
"""

from __future__ import annotations

import contextlib
import heapq
import logging
import math
import os
import selectors
import threading
import time
from collections import deque
from collections.abc import Callable

from firmware_bridge.codec import (
    Applied,
    Arm,
    ClearFault,
    Disarm,
    Nack,
    Set,
    Watchdog,
)
from firmware_bridge.commands import (
    CommandRefused,
    Kind,
    LinkError,
    NotConfirmed,
    Op,
    OutcomeUnknown,
    OutsideEnvelope,
    Result,
    SettingsMismatch,
)
from firmware_bridge.core import (
    HANDSHAKE_S,
    Knowledge,
    LinkCore,
    Outcome,
    Ticket,
)
from firmware_bridge.events import LinkHealth, SettingsRefused
from firmware_bridge.handle import MachineHandle, Status
from firmware_bridge.transport import Transport, TransportError, open_transport
from protocols.envelope import HARD_LIMITS, EmptyEnvelope, SafetyEnvelope
from protocols.errors import SmpError
from protocols.settings import MachineSettings

log = logging.getLogger(__name__)

# A frame on a paced line arrives a byte at a time; reading again after this long instead of
# at every byte coalesces the reads of a frame (a 33-byte frame takes 2.9 ms at 115200 baud)
# while adding at most this much to when the frame is seen.
COALESCE_S = 0.001
REOPEN_EVERY_S = 0.5


class Machine(MachineHandle):
    """A connected machine, its link in this process. Build it with `Machine.connect(url)`."""

    def __init__(self, transport: Transport, envelope: SafetyEnvelope = HARD_LIMITS, *,
                 reopen: Callable[[], Transport] | None = None):
        super().__init__()
        self.transport = transport
        # How to open the port again when it goes away (a cable pulled and put back); None:
        # the link stays dead. Never re-arms: a person does.
        self._reopen = reopen
        self.configured = envelope
        self._core = LinkCore(envelope, now=time.monotonic())
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._calls: deque[Callable[[float], None]] = deque()
        self._timers: list[tuple[float, int, Callable[[float], None]]] = []
        self._order = 0
        self._waiting: list[tuple[Ticket, Callable[[Ticket], None]]] = []
        self._closing = threading.Event()
        self._stopped = threading.Event()
        self._fd: int | None = None
        self._reader: threading.Thread | None = None
        self._partial = False  # the last read ended inside a frame
        self._status = self._snapshot()
        self._thread = threading.Thread(target=self._loop, name="smp-link", daemon=True)

    # --- connecting ----------------------------------------------------------------------

    @classmethod
    def connect(cls, url: str, envelope: SafetyEnvelope = HARD_LIMITS, *,
                baudrate: int = 115200, handshake_s: float = HANDSHAKE_S, dtr: bool = False,
                rts: bool = False, reopen: bool = False) -> Machine:
        """Open the port, hand-shake (HELLO -> IDENT) and adopt the narrower envelope.

        `dtr`/`rts` are the modem lines' levels set before the port opens (deasserted by
        default, so that a board that resets on DTR is not reset by connecting). With
        `reopen`, a port that goes away is opened again every half second.
        """
        def opener() -> Transport:
            return open_transport(url, baudrate=baudrate, dtr=dtr, rts=rts)

        machine = cls(opener(), envelope, reopen=opener if reopen else None)
        try:
            machine.start(handshake_s)
        except BaseException:
            machine.close(disarm=False)
            raise
        return machine

    def start(self, handshake_s: float = HANDSHAKE_S) -> None:
        """Start the loop and hand-shake; raises LinkError if no machine answers as it must."""
        self._attach()
        self._thread.start()
        done = threading.Event()
        box: list[Ticket] = []

        def begin(now: float) -> None:
            box.append(self._core.begin(now=now, timeout_s=handshake_s))
            self._waiting.append((box[0], lambda _t: done.set()))

        self.call_soon(begin)
        if not done.wait(handshake_s + 2.0) or box[0].outcome is not Outcome.DONE:
            raise LinkError(self._core.no_ident_reason(self.transport.url))

    # --- what the link knows (read from any thread) ----------------------------------------

    @property
    def status(self) -> Status:
        return self._status

    @property
    def simulated(self) -> bool:
        return self._core.simulated

    @property
    def heartbeat_gaps(self) -> deque[float]:
        """Gaps between heartbeats written (seconds), for measurement."""
        return self._core.heartbeat_gaps

    def health(self) -> LinkHealth:
        return self._core.health(time.monotonic())

    def check(self, settings: MachineSettings) -> list[str]:
        """Why `settings` would be refused before sending (empty if they would be sent)."""
        return self._core.check(settings)

    # --- commands (from any thread but the loop's) -----------------------------------------

    def stop(self, *, wait: bool = True, timeout: float = 2.0) -> bool:
        """STOP: written first, three times; the machine latches; everything else is
        cancelled. Returns True once the machine acknowledged (False at once if not `wait`)."""
        if not wait:
            self.call_soon(lambda now: self.request(Op.STOP, None, now, lambda _r: None))
            return False
        try:
            return self._request(Op.STOP, None, timeout).ok
        except LinkError:
            return False

    def submit(self, op: Op, arg: object, callback: Callable[[Result], None]) -> None:
        """Carry out a command without waiting; `callback(result)` runs on the loop thread
        when it ends (keep it short: hand the result to your own thread)."""
        if self._closing.is_set() or not self._thread.is_alive():
            callback(Result(op, Kind.FAILED, f"{op.name}: the link is closed"))
            return
        self.call_soon(lambda now: self.request(op, arg, now, callback))

    def close(self, *, disarm: bool = True) -> None:
        """Disarm (if it may be armed), stop the loop and release the port."""
        if self._closing.is_set():
            return
        if (disarm and self._thread.is_alive() and not self._core.dead
                and self._core.ident is not None and self._core.may_be_armed):
            with contextlib.suppress(SmpError):
                self.disarm(timeout=1.0)
        self._closing.set()
        self._wake()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=2.0)
        self.transport.cancel_read()
        if self._reader is not None and self._reader.is_alive():
            self._reader.join(timeout=2.0)
        self.transport.close()
        self._selector.close()
        for fd in (self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)

    # --- the loop's API (for code that runs on the loop: the machine service) ----------------

    def call_soon(self, fn: Callable[[float], None]) -> None:
        """Run `fn(now)` on the loop thread (thread-safe)."""
        self._calls.append(fn)
        self._wake()

    def stop_reopening(self) -> None:
        """A port that goes away from now on stays gone (the service is ending)."""
        self._reopen = None

    def call_later(self, delay_s: float, fn: Callable[[float], None]) -> None:
        """On the loop: run `fn(now)` on the loop `delay_s` from now."""
        self._order += 1
        heapq.heappush(self._timers, (time.monotonic() + delay_s, self._order, fn))

    def add_reader(self, fd: int, callback: Callable[[float], None]) -> None:
        """On the loop: call `callback(now)` whenever `fd` is readable."""
        self._selector.register(fd, selectors.EVENT_READ, callback)

    def remove_reader(self, fd: int) -> None:
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(fd)

    def request(self, op: Op, arg: object, now: float,
                on_result: Callable[[Result], None]) -> None:
        """On the loop: carry out one command; `on_result` gets how it ended, on the loop.

        `arg` is the MachineSettings of a SET, the milliseconds of a WATCHDOG, else None.
        """
        core = self._core
        if op is Op.STOP:
            ticket = core.stop(now=now)
        elif op is Op.SET:
            assert isinstance(arg, MachineSettings)
            problems = core.check(arg)
            if problems:
                reason = "; ".join(problems)
                self._publish(SettingsRefused(now, arg, reason, "bridge"))
                on_result(Result(op, Kind.OUTSIDE, f"not sent: {reason}"))
                return
            ticket = core.submit(Set(*arg.to_wire()), requested=arg, now=now)
        elif op is Op.ARM and (core.knowledge is Knowledge.UNKNOWN or (
                core.knowledge is Knowledge.KNOWN and not core.confirmed)):
            on_result(Result(op, Kind.NOT_CONFIRMED, "settings not confirmed by the machine: "
                                                      "apply settings before arming"))
            return
        else:
            msg = {Op.ARM: Arm, Op.DISARM: Disarm, Op.CLEAR_FAULT: ClearFault}.get(op)
            ticket = core.submit(msg() if msg else Watchdog(int(arg)), now=now)  # type: ignore
        self._waiting.append((ticket, lambda t: on_result(self._result(op, arg, t))))

    def _result(self, op: Op, arg: object, ticket: Ticket) -> Result:
        reply = ticket.reply
        if ticket.outcome is Outcome.FAILED and op is Op.SET:
            return Result(op, Kind.UNKNOWN, f"SET {arg}: {ticket.error}; the machine's settings "
                                            "are not confirmed (STOP sent)")
        if ticket.outcome is not Outcome.DONE:
            return Result(op, Kind.FAILED, f"{ticket.name} failed: {ticket.error}")
        if isinstance(reply, Nack):
            what = f"the machine refused {arg}" if op is Op.SET else \
                f"the machine refused to {_VERB[op]}"
            return Result(op, Kind.REFUSED, f"{what}: {reply.describe()}", code=reply.code)
        if op is not Op.SET:
            return Result(op, Kind.DONE)
        assert isinstance(reply, Applied)
        applied = self._core.applied
        if applied is None or applied.to_wire() != reply.settings:
            return Result(op, Kind.FAILED, f"the machine reports applied settings "
                                           f"{tuple(reply.settings)} outside the hard limits; "
                                           "STOP sent")
        if applied != arg:
            return Result(op, Kind.MISMATCH, f"the machine applied {applied} but {arg} was "
                                             "asked; STOP sent", applied)
        return Result(op, Kind.DONE, applied=applied)

    @property
    def core(self) -> LinkCore:
        """The core itself: only for code running on the loop thread."""
        return self._core

    # --- internals -----------------------------------------------------------------------

    def _wake(self) -> None:
        with contextlib.suppress(BlockingIOError, OSError):
            os.write(self._wake_w, b"x")

    def _snapshot(self) -> Status:
        c = self._core
        return Status(c.ident, c.state, c.faults, c.knowledge, c.applied, c.confirmed,
                      c.link_state, c.telemetry, c.envelope, c.machine_envelope, c.rto,
                      c.queued)

    def _attach(self) -> None:
        """Start reading the transport: polled on the loop, or by a reader thread."""
        self.transport.reset_input()
        self._fd = self.transport.fileno()
        if self._fd is not None:
            self._selector.register(self._fd, selectors.EVENT_READ, self._read_port)
        else:
            self._reader = threading.Thread(target=self._read_thread, name="smp-link-reader",
                                            daemon=True)
            self._reader.start()

    def _try_reopen(self, now: float) -> None:
        if self._closing.is_set() or self._reopen is None:
            return
        try:
            transport = self._reopen()
        except TransportError:
            self.call_later(REOPEN_EVERY_S, self._try_reopen)
            return
        with contextlib.suppress(TransportError, OSError):
            self.transport.close()
        self.transport = transport
        self._attach()
        self._core.reconnected(now=now)

    def _read_port(self, now: float) -> None:
        try:
            data = self.transport.read_available()
        except TransportError as exc:
            self._port_gone(str(exc), now)
            return
        if data:
            self._core.receive(data, now=now)
            self._partial = data[-1] != 0

    def _read_thread(self) -> None:
        """For transports without a file descriptor: read, and hand the bytes to the loop."""
        while not self._closing.is_set():
            try:
                data = self.transport.read()
            except TransportError as exc:
                reason = str(exc)

                def gone(now: float, r: str = reason) -> None:
                    self._port_gone(r, now)

                self.call_soon(gone)
                return
            if data:
                def deliver(now: float, d: bytes = data) -> None:
                    self._core.receive(d, now=now)

                self.call_soon(deliver)

    def _port_gone(self, reason: str, now: float) -> None:
        if self._closing.is_set():
            return
        if self._core.dead:
            return
        if self._fd is not None:
            self.remove_reader(self._fd)
            self._fd = None
        self._core.port_gone(reason, now=now)
        if self._reopen is not None:
            self.call_later(REOPEN_EVERY_S, self._try_reopen)

    def _loop(self) -> None:
        try:
            self._run()
        except Exception as exc:
            # A bug here must fail safe: one last STOP, then the link is dead (and with no
            # heartbeat the machine's watchdog stops the needle in any case).
            log.exception("the link loop failed")
            with contextlib.suppress(Exception):
                self._core.stop(now=time.monotonic())
                self.transport.write(self._core.take_output())
            self._core.port_gone(f"internal error in the link ({type(exc).__name__})",
                                 now=time.monotonic())
            self._status = self._snapshot()
            for event in self._core.take_events():
                self._publish(event)
        finally:
            self._stopped.set()

    def _run(self) -> None:
        core = self._core
        while not self._closing.is_set():
            now = time.monotonic()
            while self._calls:
                self._calls.popleft()(now)
            while self._timers and self._timers[0][0] <= now:
                heapq.heappop(self._timers)[2](now)
            core.tick(now=now)
            out = core.take_output()
            if out:
                try:
                    self.transport.write(out)
                except TransportError as exc:
                    self._port_gone(str(exc), now)
            events = core.take_events()
            if self._waiting:
                ended = [(t, cb) for t, cb in self._waiting if t.done]
                if ended:
                    self._waiting = [(t, cb) for t, cb in self._waiting if not t.done]
            else:
                ended = []
            self._status = self._snapshot()
            for event in events:
                self._publish(event)
            for ticket, cb in ended:
                try:
                    cb(ticket)
                except Exception:
                    log.exception("command callback failed")
            if self._calls or core.busy():
                continue
            deadline = core.deadline()
            if self._timers:
                deadline = min(deadline, self._timers[0][0])
            # None: nothing is due (a dead link waits for its port to come back, or close)
            timeout = None if deadline == math.inf else max(0.0, deadline - time.monotonic())
            port = self._fd
            if port is not None and self._partial and timeout != 0:
                # Inside a frame: let the rest of it arrive before reading the port again
                # (everything else still wakes the loop at once).
                self._partial = False
                self._selector.unregister(port)
                try:
                    self._wait(COALESCE_S if timeout is None else min(timeout, COALESCE_S))
                finally:
                    if self._fd is not None:
                        self._selector.register(port, selectors.EVENT_READ, self._read_port)
                continue
            self._wait(timeout)

    def _wait(self, timeout: float | None) -> None:
        for key, _mask in self._selector.select(timeout):
            now = time.monotonic()
            if key.data is None:
                with contextlib.suppress(BlockingIOError, OSError):
                    os.read(self._wake_r, 4096)
            else:
                key.data(now)


_VERB = {Op.ARM: "arm", Op.DISARM: "disarm", Op.CLEAR_FAULT: "clear the fault",
         Op.WATCHDOG: "set the watchdog", Op.STOP: "stop"}

__all__ = ["CommandRefused", "EmptyEnvelope", "LinkError", "Machine", "NotConfirmed",
           "OutcomeUnknown", "OutsideEnvelope", "SettingsMismatch", "Status"]
