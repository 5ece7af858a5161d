"""Deliberate deviations from docs/protocol.md, for showing that `smp conformance` can fail.

Each quirk is a mistake a firmware team could plausibly make; `smp sim --quirk NAME` (or
`Firmware(quirks=...)`) switches it on, and the conformance clause named beside it fails while
every other clause still passes (tests/conformance/test_quirks.py shows it).
"""

from __future__ import annotations

from collections.abc import Iterable

from firmware_bridge.codec import Decoder, Frame

# name -> (the clause it breaks, what the firmware then does wrong)
QUIRKS: dict[str, tuple[str, str]] = {
    "telemetry-ack-zero": ("C-9.2", "TELEMETRY's ack is always 0"),
    "fault-frame-voltage": ("C-11.6", "a motor fault cuts the drive only after the next "
                                      "TELEMETRY frame, which says FAULTED with drive volts"),
    "seq0-executed": ("C-5.5", "a command with seq 0 is executed"),
    "duplicate-reexecuted": ("C-5.2", "a copy of the last command is executed again"),
    "stale-copy-executed": ("C-5.3", "a late copy of an older command is executed again"),
    "stop-needs-session": ("C-8.2", "STOP is refused NOT_READY before a handshake"),
    "watchdog-lengthens": ("C-7.4", "WATCHDOG may lengthen the timeout in force"),
    "no-resync-after-garbage": ("C-1.2", "the first good frame after a bad run is lost"),
    "arm-with-pedal-down": ("C-10.3", "ARM is accepted while the pedal is held (the needle "
                                      "starts at once)"),
    "telemetry-burst": ("C-9.1", "an extra TELEMETRY frame is sent at once on every state "
                                 "change, off the 20 ms rhythm"),
    "hello-keeps-armed": ("C-6.3", "HELLO leaves an armed machine armed"),
}


class QuirkError(ValueError):
    pass


def check(names: Iterable[str]) -> frozenset[str]:
    """The quirks named, or QuirkError naming the allowed ones."""
    out = frozenset(names)
    unknown = sorted(out - QUIRKS.keys())
    if unknown:
        raise QuirkError(f"unknown quirk {unknown[0]!r}; allowed: {', '.join(QUIRKS)}")
    return out


class NoResyncDecoder:
    """A decoder that loses the first good frame after a bad run, as one that trusted a
    corrupted length would (the quirk `no-resync-after-garbage`)."""

    def __init__(self) -> None:
        self._inner = Decoder()
        self._poisoned = False

    def feed(self, data: bytes) -> list[Frame]:
        out: list[Frame] = []
        start = 0
        while start < len(data):
            end = data.find(b"\x00", start)
            end = len(data) if end < 0 else end + 1
            stats = self._inner.stats
            bad = stats.bad_frames + stats.overflows
            frames = self._inner.feed(data[start:end])
            if stats.bad_frames + stats.overflows > bad:
                self._poisoned = True
            if frames and self._poisoned:
                frames, self._poisoned = frames[1:], False
            out += frames
            start = end
        return out
