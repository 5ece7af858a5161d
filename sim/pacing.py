"""Pacing a simulated serial line to its baud rate.

A UART at 115200 baud with 8N1 framing carries 10 bits per byte: 11,520 bytes per second at
most, one byte every 86.8 µs. A pty would carry megabytes per second and hide every timing
problem a real line has. So bytes are released on a virtual line clock: a byte is delivered
only once its whole transmission time has passed, and an idle line earns no credit, so no
window of any length carries more than the line could.
"""

from __future__ import annotations

BITS_PER_BYTE = 10  # start + 8 data + stop


class BaudPacer:
    def __init__(self, baud: int, now: float):
        if baud <= 0:
            raise ValueError(f"baud {baud} must be positive")
        self.bytes_per_s = baud / BITS_PER_BYTE
        self._free_at = now  # when the line finishes the last byte it was given
        self._busy = False

    def take(self, wanted: int, now: float) -> int:
        """How many of `wanted` queued bytes have finished crossing the line by `now`."""
        if wanted <= 0:
            return 0
        if not self._busy:  # an idle line starts sending the queued bytes now, no earlier
            self._free_at = max(self._free_at, now)
            self._busy = True
        n = min(wanted, int((now - self._free_at) * self.bytes_per_s))
        if n > 0:
            self._free_at += n / self.bytes_per_s
        if n == wanted:
            self._busy = False
        return n

    def wait_s(self, now: float) -> float:
        """Seconds until one more queued byte will have crossed the line."""
        if not self._busy:
            return 1 / self.bytes_per_s
        return max(0.0, self._free_at + 1 / self.bytes_per_s - now)
