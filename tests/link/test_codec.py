"""The wire codec: golden byte vectors, round trips, COBS and the streaming decoder.

The golden vectors below were computed by hand from docs/protocol.md (struct layouts, zlib
CRC-32 over the body plus the type's CRC_EXTRA byte, COBS by the textbook byte-at-a-time
algorithm) and are the worked examples in that document. Encoding and decoding are both
checked against them, so a bug that is symmetric in encoder and decoder cannot hide.
"""

import struct
import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from firmware_bridge.codec import (
    CRC_EXTRA,
    MESSAGES,
    OVERHEAD,
    PAYLOAD_SIZE,
    Ack,
    Applied,
    Arm,
    ClearFault,
    Decoder,
    Disarm,
    Frame,
    Heartbeat,
    Hello,
    Ident,
    Malformed,
    MsgType,
    Nack,
    Set,
    Stop,
    Telemetry,
    VersionMismatch,
    Watchdog,
    cobs_decode,
    cobs_encode,
    decode_body,
    encode,
    encode_raw,
)
from protocols.settings import WireSettings

IDENT = Ident(protocol=1, fw_major=1, fw_minor=0, fw_patch=0, model="SMP-R1", serial="SIM-0001",
              boot_id=0x12345678, capabilities=0x1F, lo=WireSettings(200, 500, 3000),
              hi=WireSettings(2500, 1500, 12000), watchdog_ms=250, state=0, faults=0,
              applied=WireSettings(0, 0, 0))
TELEMETRY = Telemetry(state=2, flags=0x0F, faults=0, rate_dhz=1198, voltage_mv=7500,
                      current_ma=412, depth_um=1500, temperature_dc=312, uptime_ms=123456)

# (message, seq, ack, wire bytes in hex)
GOLDEN = [
    (Hello(1), 1, 0, "02 01 07 01 01 2c 93 fb 33 00"),
    (Arm(), 2, 0, "02 02 06 02 76 48 74 43 00"),
    (Disarm(), 3, 0, "02 03 06 03 4f b0 0d b9 00"),
    (Set(1500, 1200, 7500), 4, 0, "02 04 0c 04 dc 05 b0 04 4c 1d 65 01 72 c0 00"),
    (Watchdog(200), 5, 0, "02 05 03 05 c8 05 62 4d 0c 8d 00"),
    (Stop(), 6, 0, "02 06 06 06 6a 46 7b bc 00"),
    (ClearFault(), 7, 0, "02 07 06 07 05 26 6e 55 00"),
    (Heartbeat(), 0, 0, "01 01 06 08 8d c0 27 26 00"),
    (IDENT, 0, 1,
     "01 05 01 81 01 01 01 07 53 4d 50 2d 52 31 01 09 53 49 4d 2d 30 30 30 31 01 01 01 06 78 "
     "56 34 12 1f 02 c8 0c f4 01 b8 0b c4 09 dc 05 e0 2e fa 01 01 01 01 01 01 01 01 01 05 07 "
     "d0 3f 99 00"),
    (Ack(MsgType.ARM), 0, 2, "01 08 02 82 02 b6 89 a6 13 00"),
    (Applied(1500, 1200, 7500), 0, 4, "01 0d 04 83 dc 05 b0 04 4c 1d d7 51 33 2a 00"),
    (Nack(MsgType.SET, 3, 3), 0, 4, "01 0a 04 84 04 03 03 f2 c7 42 5e 00"),
    (TELEMETRY, 7, 4,
     "06 07 04 85 02 0f 01 0e ae 04 4c 1d 9c 01 dc 05 38 01 40 e2 01 05 8b d1 95 a3 00"),
]
# CRC_EXTRA per type, as docs/protocol.md lists them.
EXTRA = {MsgType.HELLO: 0xE5, MsgType.ARM: 0x1E, MsgType.DISARM: 0xA1, MsgType.SET: 0x5A,
         MsgType.WATCHDOG: 0xF9, MsgType.STOP: 0x02, MsgType.CLEAR_FAULT: 0xA5,
         MsgType.HEARTBEAT: 0x36, MsgType.IDENT: 0x8C, MsgType.ACK: 0xA9,
         MsgType.APPLIED: 0x54, MsgType.NACK: 0xF4, MsgType.TELEMETRY: 0xF1}


def test_every_message_type_has_a_golden_vector():
    assert {type(m) for m, *_ in GOLDEN} == set(MESSAGES.values())


def test_crc_extra_table_is_the_documented_one():
    assert {t: x for t, x in CRC_EXTRA.items()} == EXTRA


@pytest.mark.parametrize(("msg", "seq", "ack", "wire"), GOLDEN,
                         ids=[type(g[0]).__name__ for g in GOLDEN])
def test_golden_encode(msg, seq, ack, wire):
    assert encode(msg, seq=seq, ack=ack).hex(" ") == wire


@pytest.mark.parametrize(("msg", "seq", "ack", "wire"), GOLDEN,
                         ids=[type(g[0]).__name__ for g in GOLDEN])
def test_golden_decode(msg, seq, ack, wire):
    frames = Decoder().feed(bytes.fromhex(wire))
    assert frames == [Frame(seq, ack, msg.TYPE, frames[0].payload)]
    assert frames[0].message() == msg


def test_overhead_is_nine_bytes_per_frame():
    for msg, _seq, _ack, wire in GOLDEN:
        assert len(bytes.fromhex(wire)) == PAYLOAD_SIZE[msg.TYPE] + OVERHEAD == (
            len(msg.payload()) + 9)


def test_every_golden_frame_fails_with_another_types_extra_byte():
    """CRC_EXTRA makes a schema mismatch a CRC failure, even with the same payload length."""
    body = cobs_decode(bytes.fromhex(GOLDEN[3][3])[:-1])  # SET
    assert decode_body(body) is not None
    forged = body[:2] + bytes([MsgType.APPLIED]) + body[3:]  # same length, other type
    assert decode_body(forged) is None


# --- round trips ---------------------------------------------------------------------------

u8, u16, u32 = (st.integers(0, 255), st.integers(0, 0xFFFF), st.integers(0, 0xFFFFFFFF))
i16 = st.integers(-0x8000, 0x7FFF)
ascii8 = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=8)
ascii12 = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=12)
wire3 = st.builds(WireSettings, u16, u16, u16)
STRATEGIES = {
    Hello: st.builds(Hello, st.just(1)),
    Arm: st.builds(Arm), Disarm: st.builds(Disarm), Stop: st.builds(Stop),
    ClearFault: st.builds(ClearFault), Heartbeat: st.builds(Heartbeat),
    Set: st.builds(Set, u16, u16, u16),
    Watchdog: st.builds(Watchdog, u16),
    Ident: st.builds(Ident, st.just(1), u8, u8, u8, ascii8, ascii12, u32, u16, wire3, wire3, u16,
                     u8, u16, wire3),
    Ack: st.builds(Ack, u8), Applied: st.builds(Applied, u16, u16, u16),
    Nack: st.builds(Nack, u8, u8, u8),
    Telemetry: st.builds(Telemetry, u8, u8, u16, u16, u16, u16, u16, i16, u32),
}


def test_a_strategy_for_every_message():
    assert set(STRATEGIES) == set(MESSAGES.values())


@pytest.mark.parametrize("cls", list(STRATEGIES), ids=lambda c: c.__name__)
def test_round_trip(cls):
    @given(STRATEGIES[cls], u8, u8)
    def check(msg, seq, ack):
        wire = encode(msg, seq=seq, ack=ack)
        assert wire.count(0) == 1 and wire.endswith(b"\x00")
        (frame,) = Decoder().feed(wire)
        assert (frame.seq, frame.ack, frame.type) == (seq, ack, msg.TYPE)
        assert frame.message() == msg

    check()


@given(st.binary(max_size=600))
def test_cobs_round_trip(data):
    enc = cobs_encode(data)
    assert 0 not in enc
    assert len(enc) <= len(data) + 1 + len(data) // 254
    assert cobs_decode(enc) == data


def test_cobs_textbook_examples():
    examples = {
        "00": "01 01", "00 00": "01 01 01", "00 11 00": "01 02 11 01",
        "11 22 00 33": "03 11 22 02 33", "11 22 33 44": "05 11 22 33 44",
        "11 00 00 00": "02 11 01 01 01",
    }
    for raw, enc in examples.items():
        assert cobs_encode(bytes.fromhex(raw)).hex(" ") == enc
        assert cobs_decode(bytes.fromhex(enc)).hex(" ") == raw
    run = bytes(range(1, 255))  # 254 non-zero bytes: one full block, no trailing code byte
    assert cobs_encode(run) == b"\xff" + run
    assert cobs_decode(b"\xff" + run) == run


def test_cobs_rejects_a_block_running_past_the_end():
    assert cobs_decode(bytes.fromhex("05 11 22")) is None


# --- the streaming decoder -----------------------------------------------------------------

def test_decoder_handles_any_split_of_the_stream():
    wire = b"".join(bytes.fromhex(g[3]) for g in GOLDEN)
    expected = Decoder().feed(wire)
    assert len(expected) == len(GOLDEN)
    for size in (1, 2, 3, 7, 64):
        d = Decoder()
        got = []
        for i in range(0, len(wire), size):
            got += d.feed(wire[i:i + size])
        assert got == expected


def test_decoder_resynchronises_after_a_corrupt_byte():
    good = encode(Set(1500, 1200, 7500), seq=9)
    bad = bytearray(good)
    bad[5] ^= 0x40
    d = Decoder()
    assert d.feed(bytes(bad) + good) == [Frame(9, 0, MsgType.SET, Set(1500, 1200, 7500).payload())]
    assert d.stats.bad_frames == 1


def test_decoder_resynchronises_after_line_noise_and_a_lost_delimiter():
    good = encode(Arm(), seq=3)
    d = Decoder()
    # noise, then a frame whose delimiter was lost (merges with the next), then a good one
    frames = d.feed(b"\x13\x37\x99" + good[:-1] + good + good)
    assert [f.type for f in frames] == [MsgType.ARM]  # the merged run is dropped whole


def test_decoder_discards_an_endless_run_without_a_delimiter():
    d = Decoder()
    assert d.feed(b"\x55" * 10_000) == []
    assert d.stats.overflows >= 1
    assert [f.type for f in d.feed(b"\x55" * 100 + b"\x00" + encode(Arm(), seq=1))] == [
        MsgType.ARM]


def test_unknown_type_and_short_frames_are_dropped():
    body = bytes([1, 0, 0x42]) + struct.pack("<I", zlib.crc32(bytes([1, 0, 0x42])))
    assert Decoder().feed(cobs_encode(body) + b"\x00") == []
    assert Decoder().feed(b"\x03\x01\x02\x00") == []


def test_wrong_length_payload_with_good_crc_is_malformed():
    frame = Decoder().feed(encode_raw(1, 0, MsgType.SET, b"\x01\x02"))[0]
    with pytest.raises(Malformed):
        frame.message()


def test_ident_of_another_protocol_version_is_recognised_as_such():
    """IDENT keeps its CRC_EXTRA and its first byte across versions (docs/protocol.md)."""
    frame = Decoder().feed(encode_raw(0, 1, MsgType.IDENT, bytes([2]) + b"\x00" * 70))[0]
    with pytest.raises(VersionMismatch) as exc:
        frame.message()
    assert exc.value.version == 2


def test_ident_strings_are_decoded_as_printable_ascii_only():
    """A device whose model or serial holds ESC ] 0;... BEL or ESC [2J cannot reach the
    terminal through them: every byte outside printable ASCII decodes as '?'."""
    payload = bytearray(IDENT.payload())
    payload[4:12] = b"\x1b]0;x\x07\xff\x00"
    payload[12:24] = b"S\x1b[2J\x9b1\x7f\x00\x00\x00\x00"
    frame = Decoder().feed(encode_raw(0, 1, MsgType.IDENT, bytes(payload)))[0]
    ident = frame.message()
    assert (ident.model, ident.serial) == ("?]0;x??", "S?[2J?1?")
