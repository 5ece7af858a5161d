"""Link faults injected between the simulated machine and its transport.

One `FaultyChannel` per direction of the byte stream. Byte faults (bit errors, dropped and
duplicated bytes) act on single bytes; frame faults (dropped, duplicated, delayed, reordered
frames) act on whole frames, found by the 0x00 delimiter that ends every frame on the wire.
Everything random comes from one `random.Random(seed)`, so a failing run replays exactly.
Outages (the device silent, the link down) and garbage bursts are switched on by time.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, fields

DELIMITER = 0


@dataclass
class LinkFaults:
    bit_error_rate: float = 0.0  # probability that any one bit is flipped
    drop_byte_rate: float = 0.0
    dup_byte_rate: float = 0.0
    drop_frame_rate: float = 0.0
    dup_frame_rate: float = 0.0
    reorder_frame_rate: float = 0.0  # a frame swaps places with the next one
    delay_frame_rate: float = 0.0
    delay_s: float = 0.0  # how long a delayed frame is held

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "delay_s":
                if not 0 <= value <= 10:
                    raise ValueError(f"delay_s {value} is outside 0 to 10 s")
            elif not 0 <= value <= 1:
                raise ValueError(f"{f.name} {value} is outside 0 to 1")

    @property
    def any(self) -> bool:
        return any(getattr(self, f.name) for f in fields(self) if f.name != "delay_s")


class FaultyChannel:
    """One direction of the link with faults applied; `process` returns timed chunks."""

    def __init__(self, faults: LinkFaults | None = None, seed: int = 0):
        self.faults = faults or LinkFaults()
        self.rng = random.Random(seed)
        self._frame = bytearray()
        self._held: bytes | None = None  # a frame waiting to be swapped with the next
        self.silent_until = 0.0  # the sender says nothing (device hung)
        self.down_until = 0.0  # the wire is cut: nothing passes, bytes are lost
        self.counts = {"bits_flipped": 0, "bytes_dropped": 0, "bytes_duplicated": 0,
                       "frames_dropped": 0, "frames_duplicated": 0, "frames_delayed": 0,
                       "frames_reordered": 0, "bytes_lost_in_outage": 0}

    def outage(self, now: float, *, silent_s: float = 0.0, down_s: float = 0.0) -> None:
        self.silent_until = max(self.silent_until, now + silent_s)
        self.down_until = max(self.down_until, now + down_s)

    def blocked(self, now: float) -> bool:
        return now < self.silent_until or now < self.down_until

    def garbage(self, n: int) -> bytes:
        """A burst of line noise, as a loose connector or a wrong baud rate produces."""
        return bytes(self.rng.randrange(256) for _ in range(n))

    def process(self, data: bytes, now: float) -> list[tuple[float, bytes]]:
        """The chunks to deliver for `data` sent at `now`, each with its delivery time."""
        if self.blocked(now):
            self.counts["bytes_lost_in_outage"] += len(data)
            self._frame.clear()
            return []
        f = self.faults
        if not f.any:
            return [(now, data)] if data else []
        out: list[tuple[float, bytes]] = []
        for byte in data:
            self._frame.append(byte)
            if byte == DELIMITER:
                out.extend(self._frame_faults(bytes(self._frame), now))
                self._frame.clear()
        return out

    def _frame_faults(self, frame: bytes, now: float) -> list[tuple[float, bytes]]:
        f, rng, c = self.faults, self.rng, self.counts
        if f.drop_frame_rate and rng.random() < f.drop_frame_rate:
            c["frames_dropped"] += 1
            return []
        frame = self._byte_faults(frame)
        copies = [frame]
        if f.dup_frame_rate and rng.random() < f.dup_frame_rate:
            c["frames_duplicated"] += 1
            copies.append(frame)
        if f.reorder_frame_rate:
            if self._held is not None:
                copies.append(self._held)  # the held frame goes after this one
                self._held = None
            elif rng.random() < f.reorder_frame_rate:
                c["frames_reordered"] += 1
                self._held = frame
                return []
        at = now
        if f.delay_frame_rate and rng.random() < f.delay_frame_rate:
            c["frames_delayed"] += 1
            at = now + f.delay_s
        return [(at, b) for b in copies]

    def _byte_faults(self, frame: bytes) -> bytes:
        f, rng, c = self.faults, self.rng, self.counts
        if not (f.bit_error_rate or f.drop_byte_rate or f.dup_byte_rate):
            return frame
        out = bytearray()
        for byte in frame:
            if f.drop_byte_rate and rng.random() < f.drop_byte_rate:
                c["bytes_dropped"] += 1
                continue
            if f.bit_error_rate:
                for bit in range(8):
                    if rng.random() < f.bit_error_rate:
                        byte ^= 1 << bit
                        c["bits_flipped"] += 1
            out.append(byte)
            if f.dup_byte_rate and rng.random() < f.dup_byte_rate:
                c["bytes_duplicated"] += 1
                out.append(byte)
        return bytes(out)
