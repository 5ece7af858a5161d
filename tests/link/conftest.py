"""Fixtures for link tests: a simulated machine behind a real pty, and a host connected to it."""

import time

import pytest

import console.sim_transport  # noqa: F401  (registers sim://)
from firmware_bridge import Machine
from firmware_bridge.codec import Decoder, encode_raw
from sim.serve import PtyServer


@pytest.fixture
def pty():
    link = PtyServer.simulate(boot_id=0x0B00_7001)
    link.start()
    yield link
    link.close()


def connected(address):
    """A host connected to `address` that keeps every event it is told in `.events`."""
    m = Machine.connect(address)
    m.events = []
    m.subscribe(m.events.append)
    return m


@pytest.fixture
def machine(pty):
    with connected(pty.address) as m:
        yield m


def wait_for(predicate, timeout=2.0, step=0.005):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


def told(host, field: str, value) -> bool:
    """The host's last telemetry frame says `field` is `value` (False before any frame: a
    loaded machine can take longer than the test to deliver the first one)."""
    t = host.telemetry
    return t is not None and getattr(t, field) == value


class FrameFilter:
    """A byte-path filter that works frame by frame: `decide(frame)` returns how many copies
    of the frame to pass on (0 drops it, 2 duplicates it) or replacement bytes."""

    def __init__(self, decide):
        self.decide = decide
        self.decoder = Decoder()

    def __call__(self, data: bytes) -> bytes:
        out = b""
        for f in self.decoder.feed(data):
            verdict = self.decide(f)
            if isinstance(verdict, bytes):
                out += verdict
            else:
                out += encode_raw(f.seq, f.ack, f.type, f.payload) * verdict
        return out
