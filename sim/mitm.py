"""A man in the middle of a serial line, in a process of its own: the host opens the pty this
prints, the machine is the pty it is given, and every frame crossing is relayed, dropped,
rewritten or corrupted as told on standard input. For testing a host (ours, or a maker's)
against a line that fails in exactly one way, with a real machine or `smp sim` behind it.

    python -m sim.mitm /dev/pts/7
    -> "mitm on /dev/pts/9"
    stdin commands, each answered "ok <CLOCK_MONOTONIC ns when it took effect>":
      cut m2h | cut h2m | cut both | heal        a one-way (or two-way) cut, and its end
      drop m2h APPLIED | pass m2h APPLIED        drop every frame of a type one way, or stop
      state m2h 7                                rewrite TELEMETRY's state byte (CRC redone)
      ber m2h 1e-2 | ber h2m 0                   flip each bit with this probability
      quit

Frames are relayed whole (decoded and re-encoded), so a filter acts on frames, not bytes;
bit errors are applied to the re-encoded bytes.
"""

from __future__ import annotations

import contextlib
import os
import random
import select
import sys
import termios
import threading
import time
import tty

from firmware_bridge.codec import Decoder, MsgType, encode_raw

H2M, M2H = "h2m", "m2h"


class Direction:
    def __init__(self, seed: int):
        self.decoder = Decoder()
        self.cut = False
        self.drop: set[int] = set()
        self.state: int | None = None
        self.ber = 0.0
        self.rng = random.Random(seed)

    def relay(self, data: bytes) -> bytes:
        out = bytearray()
        for f in self.decoder.feed(data):
            if self.cut or f.type in self.drop:
                continue
            payload = f.payload
            if self.state is not None and f.type == MsgType.TELEMETRY:
                payload = bytes([self.state]) + payload[1:]
            out += encode_raw(f.seq, f.ack, f.type, payload)
        if self.ber and out:
            for i in range(len(out)):
                for bit in range(8):
                    if self.rng.random() < self.ber:
                        out[i] ^= 1 << bit
        return bytes(out)


def _raw(fd: int) -> None:
    tty.setraw(fd)
    attrs = termios.tcgetattr(fd)
    attrs[3] &= ~termios.ECHO
    termios.tcsetattr(fd, termios.TCSANOW, attrs)


def main(upstream: str) -> None:
    machine = os.open(upstream, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    _raw(machine)
    master, slave = os.openpty()
    _raw(slave)
    os.set_blocking(master, False)
    dirs = {H2M: Direction(1), M2H: Direction(2)}
    lock = threading.Lock()
    print(f"mitm on {os.ttyname(slave)}", flush=True)

    def commands() -> None:
        for line in sys.stdin:
            words = line.split()
            if not words:
                continue
            with lock:
                if words[0] == "quit":
                    os._exit(0)
                if words[0] == "cut":
                    for d in ([H2M, M2H] if words[1] == "both" else [words[1]]):
                        dirs[d].cut = True
                elif words[0] == "heal":
                    for d in dirs.values():
                        d.cut = False
                elif words[0] in ("drop", "pass"):
                    t = MsgType[words[2]].value
                    (dirs[words[1]].drop.add if words[0] == "drop"
                     else dirs[words[1]].drop.discard)(t)
                elif words[0] == "state":
                    dirs[words[1]].state = None if words[2] == "none" else int(words[2])
                elif words[0] == "ber":
                    dirs[words[1]].ber = float(words[2])
                print(f"ok {time.monotonic_ns()}", flush=True)

    threading.Thread(target=commands, daemon=True).start()
    while True:
        ready, _, _ = select.select([machine, master], [], [], 1.0)
        for fd in ready:
            try:
                data = os.read(fd, 4096)
            except (BlockingIOError, OSError):
                continue
            if not data:
                continue
            with lock:
                if fd == master:
                    out, to = dirs[H2M].relay(data), machine
                else:
                    out, to = dirs[M2H].relay(data), master
            if out:
                with contextlib.suppress(BlockingIOError, OSError):
                    os.write(to, out)


if __name__ == "__main__":
    main(sys.argv[1])
