"""The machine service: one process per machine owns the port and runs the link, and offers
it to local clients over a channel only this user can open.

    console  ──(inherited socket pair, or a 0600 Unix socket)──>  service  ──serial──>  machine
    observers (a second screen, a monitoring script) ──────────>  (read-only)

One controlling client gives commands; any number of observers see every event and may send
STOP (and nothing else: stopping is always allowed). If the controlling client goes away
without saying goodbye (a crash, kill -9, a closed terminal) the service sends STOP at once.
Everything here runs on the link's own loop (firmware_bridge.link.Machine): one thread owns
the link and every client's state, and the heartbeat never waits on a client.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from firmware_bridge import channel
from firmware_bridge.codec import State
from firmware_bridge.commands import Kind, Op, Result
from firmware_bridge.events import Event, LinkState
from firmware_bridge.link import Machine

log = logging.getLogger(__name__)

OUTBOX_LIMIT = 4 << 20  # a client this far behind is dropped (a controller's drop is a STOP)
EXIT_GRACE_S = 1.0  # after the controller left: time for STOP to be acknowledged


def peer_uid(sock: socket.socket) -> int | None:
    """The user id at the other end of a Unix socket (Linux SO_PEERCRED), None if unknown."""
    try:
        creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    except (OSError, AttributeError):
        return None
    uid: int = struct.unpack("3i", creds)[1]
    return uid


@dataclass(eq=False)
class _Client:
    sock: socket.socket
    reader: channel.LineReader = field(default_factory=channel.LineReader)
    outbox: bytearray = field(default_factory=bytearray)
    role: str = ""  # "" until hello; then "control" or "observe"
    who: str = ""
    since: float = 0.0
    inherited: bool = False  # the socket pair of the program that started this service

    @property
    def fd(self) -> int:
        return self.sock.fileno()


class MachineService:
    """Serves one connected Machine. Build it, then `start()`; `wait()` until it ends."""

    def __init__(self, machine: Machine, *, listener: socket.socket | None = None,
                 inherited: socket.socket | None = None, exit_with_controller: bool = False,
                 info: dict[str, Any] | None = None, on_ending: Callable[[], None] | None = None):
        self.machine = machine
        self.on_ending = on_ending or (lambda: None)  # e.g. leave the registry
        self.listener = listener
        self.inherited = inherited
        self.exit_with_controller = exit_with_controller
        self.info = dict(info or {}, pid=os.getpid())
        self.clients: list[_Client] = []
        self.controller: _Client | None = None
        self.finished = threading.Event()
        self._exit_at: float | None = None
        self._uid = os.getuid()

    # --- life --------------------------------------------------------------------------------

    def start(self) -> None:
        self.machine.subscribe(self._on_event)
        self.machine.call_soon(self._install)

    def wait(self, timeout: float | None = None) -> bool:
        return self.finished.wait(timeout)

    def shut(self) -> None:
        """End the service (from any thread): STOP if armed, then release everything."""
        self.machine.call_soon(lambda now: self._finish(now, "the service was asked to end"))

    def _install(self, now: float) -> None:
        if self.listener is not None:
            self.listener.setblocking(False)
            self.machine.add_reader(self.listener.fileno(), self._accept)
        if self.inherited is not None:
            self._add(self.inherited, inherited=True)
        self._tick(now)

    def _tick(self, now: float) -> None:
        # The only periodic work the service adds to the loop: its own exit.
        if self._exit_at is not None and now >= self._exit_at:
            self._finish(now, "its controlling client has gone")
            return
        if not self.finished.is_set():
            self.machine.call_later(0.1, self._tick)

    def _finish_soon(self, now: float) -> None:
        if self.controller is None:
            self._finish(now, "its controlling client has gone")

    def _finish(self, now: float, why: str) -> None:
        if self.finished.is_set():
            return
        log.info("machine service ends: %s", why)
        for c in list(self.clients):
            self._drop(c, now, stop=False)
        if self.listener is not None:
            self.machine.remove_reader(self.listener.fileno())
            with contextlib.suppress(OSError):
                self.listener.close()
        self.finished.set()

    # --- clients -----------------------------------------------------------------------------

    def _accept(self, now: float) -> None:
        assert self.listener is not None
        try:
            sock, _ = self.listener.accept()
        except (BlockingIOError, OSError):
            return
        uid = peer_uid(sock)
        if uid is not None and uid != self._uid:
            # The socket's 0600 mode already keeps others out; this is the second lock.
            with contextlib.suppress(OSError):
                sock.sendall(channel.line({"op": "refused",
                                           "reason": "this machine service belongs to "
                                                     "another user"}))
                sock.close()
            return
        self._add(sock)

    def _add(self, sock: socket.socket, *, inherited: bool = False) -> None:
        sock.setblocking(False)
        client = _Client(sock, inherited=inherited)
        self.clients.append(client)
        def readable(now: float, c: _Client = client) -> None:
            self._readable(c, now)

        self.machine.add_reader(client.fd, readable)

    def _readable(self, c: _Client, now: float) -> None:
        try:
            data = c.sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._drop(c, now, stop=True)
            return
        try:
            messages = c.reader.feed(data)
        except channel.ChannelError as exc:
            self._send(c, {"op": "refused", "reason": f"not this channel's language: {exc}"})
            self._drop(c, now, stop=True)
            return
        for msg in messages:
            self._handle(c, msg, now)

    def _handle(self, c: _Client, msg: dict[str, Any], now: float) -> None:
        op = msg.get("op")
        if op == "hello":
            self._hello(c, msg, now)
        elif not c.role:
            self._send(c, {"op": "refused", "reason": "say hello first"})
            self._drop(c, now, stop=False)
        elif op == "do":
            self._do(c, msg, now)
        elif op == "bye":
            self._bye(c, now)

    def _hello(self, c: _Client, msg: dict[str, Any], now: float) -> None:
        role = msg.get("role")
        who = str(msg.get("who", "a client"))[:200]
        if role not in ("control", "observe"):
            self._send(c, {"op": "refused", "reason": f"unknown role {role!r}: control or "
                                                      "observe"})
            self._drop(c, now, stop=False)
            return
        if self._exit_at is not None:
            self._send(c, {"op": "refused", "reason": "this machine service is ending; "
                                                      "connect again"})
            self._drop(c, now, stop=False)
            return
        if role == "control" and self.controller is not None and self.controller is not c:
            held = self.controller
            since = time.strftime("%H:%M:%S", time.localtime(held.since))
            self._send(c, {"op": "refused", "reason": f"the machine is controlled by "
                                                      f"{held.who} since {since}"})
            self._drop(c, now, stop=False)
            return
        c.role, c.who, c.since = role, who, time.time()
        if role == "control":
            self.controller = c
        info = dict(self.info, controller=self.controller.who if self.controller else "")
        self._send(c, {"op": "welcome", "role": role, "service": info,
                       "status": channel.encode_status(self.machine.status)})

    def _do(self, c: _Client, msg: dict[str, Any], now: float) -> None:
        ident = msg.get("id")
        try:
            cmd = msg.get("cmd")
            if not isinstance(cmd, str):  # the ValueError Op(cmd) raises for any non-command
                raise ValueError(f"{cmd!r} is not a valid {Op.__qualname__}")
            op = Op(cmd)
            arg = channel.decode_arg(op, msg.get("arg"))
        except (ValueError, TypeError) as exc:
            self._result(c, ident, Result(Op.STOP, Kind.FAILED, f"bad command: {exc}"))
            return
        if c is not self.controller and op is not Op.STOP:
            holder = self.controller.who if self.controller else "nobody"
            self._result(c, ident, Result(op, Kind.NOT_ALLOWED,
                                          f"{op.name}: this client only observes (the machine "
                                          f"is controlled by {holder}); it may send STOP"))
            return
        self.machine.request(op, arg, now, lambda r: self._result(c, ident, r))

    def _bye(self, c: _Client, now: float) -> None:
        """An orderly goodbye: the controller disarms what it armed, nothing latches."""
        if c is self.controller and self.machine.core.may_be_armed:
            self.machine.request(Op.DISARM, None, now, lambda r: None)
        self._drop(c, now, stop=False)

    def _drop(self, c: _Client, now: float, *, stop: bool) -> None:
        if c not in self.clients:
            return
        self.clients.remove(c)
        self.machine.remove_reader(c.fd)
        with contextlib.suppress(OSError):
            if c.outbox:
                c.sock.setblocking(True)
                c.sock.settimeout(0.05)
                c.sock.sendall(bytes(c.outbox))
        with contextlib.suppress(OSError):
            c.sock.close()
        if c is self.controller:
            self.controller = None
            if self.exit_with_controller:
                # Ending: nobody may find this service or take it over any more, and it lets
                # the port go as soon as the last command is answered.
                self._exit_at = now + EXIT_GRACE_S
                self.on_ending()
                self.machine.stop_reopening()
            end = (lambda r: self.machine.call_soon(self._finish_soon)) \
                if self.exit_with_controller else (lambda r: None)
            if stop:
                # Nobody is at the controls any more: the needle must not run on.
                log.warning("controlling client %s went away: STOP", c.who)
                self.machine.request(Op.STOP, None, now, end)
            elif self.exit_with_controller:
                self.machine.call_soon(self._finish_soon)

    # --- sending -----------------------------------------------------------------------------

    def _on_event(self, event: Event) -> None:
        if not self.clients:
            return
        msg = channel.line({"op": "event", "event": channel.encode_event(event),
                            "status": channel.encode_status(self.machine.status)})
        now = time.monotonic()
        for c in list(self.clients):
            if c.role:
                self._queue(c, msg, now)

    def _result(self, c: _Client, ident: object, result: Result) -> None:
        self._send(c, {"op": "result", "id": ident, "result": channel.encode_result(result),
                       "status": channel.encode_status(self.machine.status)})

    def _send(self, c: _Client, message: dict[str, Any]) -> None:
        self._queue(c, channel.line(message), time.monotonic())

    def _queue(self, c: _Client, data: bytes, now: float) -> None:
        c.outbox += data
        try:
            n = c.sock.send(c.outbox)
        except BlockingIOError:
            n = 0
        except OSError:
            self._drop(c, now, stop=True)
            return
        del c.outbox[:n]
        if len(c.outbox) > OUTBOX_LIMIT:
            log.warning("client %s is not reading: dropped", c.who)
            c.outbox.clear()
            self._drop(c, now, stop=True)


def serve(machine: Machine, *, listener: socket.socket | None = None,
          inherited: socket.socket | None = None, exit_with_controller: bool = False,
          info: dict[str, Any] | None = None, until: Callable[[], bool] | None = None,
          on_ending: Callable[[], None] | None = None) -> None:
    """Run a service on `machine` until it ends (or `until()` says so), then STOP if the
    machine may be armed and release the port."""
    service = MachineService(machine, listener=listener, inherited=inherited,
                             exit_with_controller=exit_with_controller, info=info,
                             on_ending=on_ending)
    service.start()
    try:
        while not service.wait(0.2):
            if until is not None and until():
                service.shut()
    finally:
        if machine.state in (State.ARMED, State.RUNNING, None) and \
                machine.link_state is not LinkState.LOST:
            machine.stop(wait=True, timeout=1.0)
        machine.close(disarm=False)
