"""Setpoint and command frames written straight into the pty, past the host and its checks:
only the firmware stands between them and the needle."""

from __future__ import annotations

import struct
import time
import zlib

import pytest

from firmware_bridge.codec import CRC_EXTRA, MsgType, cobs_encode, encode_raw
from tests.reliability.conftest import CROWN, connected, set_text

SET = MsgType.SET


def raw_set(seq: int, depth_um: int, rate_dhz: int, voltage_mv: int) -> bytes:
    return encode_raw(seq, 0, SET, struct.pack("<HHH", depth_um, rate_dhz, voltage_mv))


def unknown_type(seq: int) -> bytes:
    """Type 0x7E, which no one defines, carrying a SET's payload and a CRC made with SET's extra
    byte: a receiver that ignored the type would take it for a good SET."""
    head = bytes((seq, 0, 0x7E)) + struct.pack("<HHH", 1000, 1000, 6000)
    crc = zlib.crc32(bytes([CRC_EXTRA[SET]]), zlib.crc32(head)).to_bytes(4, "little")
    return cobs_encode(head + crc) + b"\x00"


CASES = {
    "depth 3000 um": (raw_set, (3000, 1300, 7500), "SET: OUT_OF_RANGE DEPTH"),
    "rate 0": (raw_set, (1800, 0, 7500), "SET: OUT_OF_RANGE RATE"),
    "voltage 65535 mV": (raw_set, (1800, 1300, 65535), "SET: OUT_OF_RANGE VOLTAGE"),
    "depth off-step": (raw_set, (1825, 1300, 7500), "SET: OFF_STEP DEPTH"),
    "voltage off-step": (raw_set, (1800, 1300, 7550), "SET: OFF_STEP VOLTAGE"),
    "all ones": (raw_set, (0xFFFF, 0xFFFF, 0xFFFF), "SET: OUT_OF_RANGE DEPTH"),
    "short payload": (lambda seq: encode_raw(seq, 0, SET, b"\x08\x07\x14\x05\x4c"), (),
                      "SET: MALFORMED"),
    "long payload": (lambda seq: encode_raw(seq, 0, SET, bytes(8)), (), "SET: MALFORMED"),
    "unknown type": (unknown_type, (), None),  # dropped unread (docs/protocol.md section 2)
}


@pytest.mark.parametrize("case", list(CASES))
def test_the_firmware_refuses_what_the_host_would_never_send(sim, case):
    build, values, refusal = CASES[case]
    with connected(sim.address) as host:
        assert host.apply(CROWN) == CROWN
        host.arm()
        assert sim.log.wait_state("ARMED")
        seq = (sim.log.sets()[-1].seq + 128) % 255 + 1  # far from the host's own numbers
        t0 = time.monotonic_ns()
        sim.inject(build(seq, *values))
        if refusal:
            refused = sim.log.wait_entry("refused", after_ns=t0)
            assert refused is not None and (refused.seq, refused.detail) == (seq, refusal)
        else:
            time.sleep(0.3)
        # A refused frame neither disarms nor runs the machine; its settings are the host's.
        assert sim.log.state() == "ARMED"
        sim.say("pedal down")
        assert sim.log.wait_state("RUNNING")
        sim.say("pedal up")
    assert [e.detail for e in sim.log.sets()] == [set_text(CROWN)]  # `applied` never changed
    assert not [e for e in sim.log.entries() if e.seq == seq and e.what != "refused"]
    if not refusal:
        assert not sim.log.refused()
    sim.log.assert_needle_safe()
    sim.log.assert_sets_once_and_as_recorded(host.events, requested=[CROWN])
