"""A client of the machine service: the same API as firmware_bridge.link.Machine, over the
service's local channel (firmware_bridge.channel).

    client = MachineClient.connect(socket_path)            # or MachineClient.over(sock)
    client.subscribe(handle)                              # events, on the client's thread
    client.apply(settings); client.arm(); client.stop()

What it says about the machine is the service's last snapshot, which came with the last event:
nothing is guessed on this side. If the service goes away, the link is LOST at once (an event
says so) and every command fails; the machine's watchdog stops the needle.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from firmware_bridge import channel
from firmware_bridge.codec import Capability
from firmware_bridge.commands import (
    Kind,
    LinkError,
    NotAllowed,
    Op,
    Result,
)
from firmware_bridge.core import envelope_problems
from firmware_bridge.events import LinkHealth, LinkState, LinkStateChanged
from firmware_bridge.handle import MachineHandle, Status
from protocols.envelope import HARD_LIMITS, SafetyEnvelope
from protocols.settings import MachineSettings

log = logging.getLogger(__name__)

HELLO_TIMEOUT_S = 10.0  # the service hand-shakes with the machine before it welcomes us


class MachineClient(MachineHandle):
    """One connection to a machine service, as its controller or an observer."""

    def __init__(self, sock: socket.socket, *, role: str = "control", who: str = "",
                 configured: SafetyEnvelope = HARD_LIMITS):
        super().__init__()
        self.sock = sock
        self.role = role
        self.configured = configured
        self.service: dict[str, Any] = {}
        self.url = ""
        self._reader_ = channel.LineReader()
        self._send_lock = threading.Lock()
        self._ids = itertools.count(1)
        self._pending: dict[int, tuple[Callable[[Result], None], Op]] = {}
        self._snapshot: Status | None = None
        self._health: LinkHealth | None = None
        self._gone = ""
        self._closing = False
        self._welcome = threading.Event()
        self._refused = ""
        self._failed = ""  # the service could not reach the machine
        self._thread = threading.Thread(target=self._read_loop, name="smp-machine-client",
                                        daemon=True)
        self._thread.start()
        self._send({"op": "hello", "role": role, "who": who or "a client"})
        if not self._welcome.wait(HELLO_TIMEOUT_S):
            self.close()
            raise LinkError(self._gone or "the machine service did not answer")
        if self._failed:
            self.close()
            raise LinkError(self._failed)
        if self._refused:
            self.close()
            raise NotAllowed(self._refused)

    @classmethod
    def connect(cls, path: str, *, role: str = "control", who: str = "",
                configured: SafetyEnvelope = HARD_LIMITS) -> MachineClient:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(path)
        except OSError as exc:
            sock.close()
            raise LinkError(f"cannot reach the machine service at {path}: "
                            f"{exc.strerror or exc}") from None
        return cls(sock, role=role, who=who, configured=configured)

    # --- what the service last said -----------------------------------------------------------

    @property
    def status(self) -> Status:
        assert self._snapshot is not None  # the welcome brings the first; no client before
        return self._snapshot

    @property
    def link_state(self) -> LinkState:
        return LinkState.LOST if self._gone else self.status.link_state

    @property
    def simulated(self) -> bool:
        ident = self.status.ident
        return bool(ident and ident.capabilities & Capability.SIMULATOR)

    @property
    def gone(self) -> str:
        """Why the service is gone ("" while it is there)."""
        return self._gone

    def health(self) -> LinkHealth | None:
        return self._health

    def check(self, settings: MachineSettings) -> list[str]:
        s = self.status
        return envelope_problems(s.envelope, self.configured, s.machine_envelope, settings)

    # --- commands ------------------------------------------------------------------------------

    def stop(self, *, wait: bool = True, timeout: float = 2.0) -> bool:
        """STOP: sent at once from the calling thread, ahead of nothing it could wait on."""
        try:
            if not wait:
                self._send({"op": "do", "id": next(self._ids), "cmd": Op.STOP.value})
                return False
            return self._request(Op.STOP, None, timeout).ok
        except LinkError:
            return False

    def close(self, *, disarm: bool = True) -> None:
        """Say goodbye (the service disarms what this controller armed) and hang up."""
        if self._closing:
            return
        self._closing = True
        if disarm and not self._gone:
            with contextlib.suppress(OSError, LinkError):
                self._send({"op": "bye"})
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=2.0)
        self.sock.close()

    # --- internals -------------------------------------------------------------------------------

    def _send(self, message: dict[str, Any]) -> None:
        if self._gone:
            raise LinkError(f"the machine service is gone ({self._gone})")
        data = channel.line(message)
        with self._send_lock:
            try:
                self.sock.sendall(data)
            except OSError as exc:
                raise LinkError(f"the machine service is gone ({exc.strerror or exc})") from None

    def submit(self, op: Op, arg: object, callback: Callable[[Result], None]) -> None:
        """Carry out a command without waiting; `callback(result)` runs on the client's reader
        thread when it ends (keep it short: hand the result to your own thread)."""
        ident = next(self._ids)
        self._pending[ident] = (callback, op)
        try:
            self._send({"op": "do", "id": ident, "cmd": op.value,
                        "arg": channel.encode_arg(op, arg)})
        except LinkError as exc:
            if self._pending.pop(ident, None) is not None:
                kind = Kind.UNKNOWN if op is Op.SET and self._gone else Kind.FAILED
                callback(Result(op, kind, f"{op.name}: {exc}"))

    def _read_loop(self) -> None:
        reason = "the machine service closed the channel"
        try:
            while True:
                try:
                    data = self.sock.recv(65536)
                except OSError as exc:
                    reason = f"the machine service's channel failed ({exc.strerror or exc})"
                    break
                if not data:
                    break
                for msg in self._reader_.feed(data):
                    self._on_message(msg)
        except channel.ChannelError as exc:
            reason = f"the machine service sent what it must not ({exc})"
        finally:
            self._lost(reason)

    def _on_message(self, msg: dict[str, Any]) -> None:
        op = msg["op"]
        if "status" in msg:
            self._snapshot = channel.decode_status(msg["status"])
        if op == "event":
            event = channel.decode_event(msg["event"])
            if isinstance(event, LinkHealth):
                self._health = event
            self._publish(event)
        elif op == "result":
            request = msg.get("id")
            waiter = None if request is None else self._pending.pop(request, None)
            if waiter is not None:
                waiter[0](channel.decode_result(msg["result"]))
        elif op == "welcome":
            self.service = msg.get("service", {})
            self.url = str(self.service.get("url", ""))
            self._welcome.set()
        elif op == "refused":
            self._refused = str(msg.get("reason", "refused"))
            self._welcome.set()
        elif op == "failed":
            self._failed = str(msg.get("reason", "the machine service failed"))
            self._welcome.set()

    def _lost(self, reason: str) -> None:
        if self._gone:
            return
        self._gone = reason
        pending, self._pending = self._pending, {}
        for callback, op in pending.values():
            # A SET in flight when the service went: whether the machine applied it is not
            # known (its telemetry, once someone hears it again, will say).
            kind = Kind.UNKNOWN if op is Op.SET else Kind.FAILED
            callback(Result(op, kind, f"{op.name}: {reason}"))
        self._welcome.set()
        if self._closing or self._snapshot is None:
            return
        old = self._snapshot.link_state
        if old is not LinkState.LOST:
            self._publish(LinkStateChanged(time.monotonic(), old, LinkState.LOST, reason))
