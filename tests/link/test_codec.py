"""The wire codec: the schema-derived messages, round trips, COBS and the streaming decoder.

The byte vectors are docs/protocol.md's worked examples, read out of the document
(tests/link/spec.py); tests/link/test_spec_examples.py checks each one both ways.
"""

import struct
import zlib
from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

from firmware_bridge import codec
from firmware_bridge.codec import (
    MAX_BODY,
    MESSAGES,
    OVERHEAD,
    PAYLOAD_SIZE,
    PROTOCOL_VERSION,
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
    Message,
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
from firmware_bridge.schema import MAX_BODY_SENT, MAX_RUN, SCHEMAS, SchemaError, parse
from protocols.settings import WireSettings
from tests.link.spec import examples
from tests.link.test_spec_examples import message_from

# (message, seq, ack, wire bytes in hex), from the spec's worked examples
GOLDEN = [(message_from(ex), ex.seq, ex.ack, ex.wire.hex(" ")) for ex in examples()]


def test_every_message_type_has_a_golden_vector():
    assert {type(m) for m, *_ in GOLDEN} == set(MESSAGES.values())


def test_overhead_is_nine_bytes_per_frame():
    for msg, _seq, _ack, wire in GOLDEN:
        assert len(bytes.fromhex(wire)) == PAYLOAD_SIZE[msg.TYPE] + OVERHEAD == (
            len(msg.payload()) + 9)


def test_every_golden_frame_fails_with_another_types_extra_byte():
    """CRC_EXTRA makes a schema mismatch a CRC failure, even with the same payload length."""
    wire = next(w for m, _s, _a, w in GOLDEN if isinstance(m, Set))
    body = cobs_decode(bytes.fromhex(wire)[:-1])
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
    Hello: st.builds(Hello, u8),
    Arm: st.builds(Arm), Disarm: st.builds(Disarm), Stop: st.builds(Stop),
    ClearFault: st.builds(ClearFault), Heartbeat: st.builds(Heartbeat),
    Set: st.builds(Set, u16, u16, u16),
    Watchdog: st.builds(Watchdog, u16),
    Ident: st.builds(Ident, st.just(PROTOCOL_VERSION), u8, u8, u8, ascii8, ascii12, u32, u16,
                     wire3, wire3, u16, u8, u16, wire3),
    Ack: st.builds(Ack, u8), Applied: st.builds(Applied, u16, u16, u16),
    Nack: st.builds(Nack, u8, u8, u8),
    Telemetry: st.builds(Telemetry, u8, u8, u16, u16, u16, u16, u16, i16, u32, u16, u16, u16, u8,
                         u32),
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
    for other in (PROTOCOL_VERSION - 1, PROTOCOL_VERSION + 1):
        frame = Decoder().feed(encode_raw(0, 1, MsgType.IDENT, bytes([other]) + bytes(17)))[0]
        with pytest.raises(VersionMismatch) as exc:
            frame.message()
        assert exc.value.version == other


# --- the schema -----------------------------------------------------------------------------

def test_layouts_sizes_and_names_come_from_the_definition_strings():
    t = SCHEMAS[MsgType.TELEMETRY]
    assert t.struct.format == "<BBHHHHHhIHHHBI" and t.size == PAYLOAD_SIZE[MsgType.TELEMETRY] == 29
    assert t.names[-5:] == ("set_depth_um", "set_rate_dhz", "set_voltage_mv", "runs",
                            "needle_ms")
    assert SCHEMAS[MsgType.IDENT].struct.format == "<BBBB8s12sIHHHHHHHHBHHHH"
    assert zlib.crc32(t.definition.encode()) & 0xFF == t.crc_extra
    frozen = zlib.crc32(b"IDENT protocol:u8") & 0xFF
    assert SCHEMAS[MsgType.IDENT].crc_extra == frozen  # frozen, whatever the layout


def test_telemetry_names_its_setpoints():
    t = Telemetry(2, 0x0F, 0, 1198, 7500, 412, 1500, 312, 99, 1500, 1200, 7500, 3, 45210)
    assert t.setpoints == WireSettings(1500, 1200, 7500)
    assert t.pedal_down and t.motor_on


def test_a_class_that_disagrees_with_its_definition_is_refused_at_import():
    with pytest.raises(TypeError, match="its definition says"):
        @codec._bind
        @dataclass(frozen=True)
        class WrongSet(Message):
            TYPE = MsgType.SET
            depth_um: int
            voltage_mv: int  # swapped
            rate_dhz: int


@pytest.mark.parametrize("definition", ["SET depth_um:u17", "SET a:u8 a:u8", "ARM x", "HELLO"])
def test_a_bad_definition_string_is_refused(definition):
    with pytest.raises(SchemaError):
        parse(MsgType.SET, definition)


def test_size_limits_sent_60_accepted_250_discarded_past_252():
    """C-1.1, C-1.3: version 2 sends at most 60-byte bodies; a receiver accepts up to 250 and
    discards runs longer than 252."""
    assert MAX_BODY_SENT == 60 and MAX_BODY == 250 and MAX_RUN == 252
    big = Decoder().feed(encode_raw(1, 0, MsgType.HELLO, bytes([PROTOCOL_VERSION]) + bytes(242)))
    assert len(big) == 1 and big[0].message() == Hello(PROTOCOL_VERSION)  # a 250-byte body
    d = Decoder()
    assert d.feed(encode_raw(1, 0, MsgType.HELLO, bytes(244))) == []  # 251 bytes: dropped
    assert d.feed(b"\x55" * 253 + b"\x00" + encode(Arm(), seq=2)) == [
        Frame(2, 0, MsgType.ARM, b"")]


def test_ident_strings_are_decoded_as_printable_ascii_only():
    """A device whose model or serial holds ESC ] 0;... BEL or ESC [2J cannot reach the
    terminal through them: every byte outside printable ASCII decodes as '?'."""
    ident = Ident(protocol=PROTOCOL_VERSION, fw_major=2, fw_minor=0, fw_patch=0, model="SMP-R1",
                  serial="SIM-0001", boot_id=1, capabilities=0x1F,
                  lo=WireSettings(200, 500, 3000), hi=WireSettings(2500, 1500, 12000),
                  watchdog_ms=250, state=0, faults=0, applied=WireSettings(0, 0, 0))
    payload = bytearray(ident.payload())
    payload[4:12] = b"\x1b]0;x\x07\xff\x00"
    payload[12:24] = b"S\x1b[2J\x9b1\x7f\x00\x00\x00\x00"
    frame = Decoder().feed(encode_raw(0, 1, MsgType.IDENT, bytes(payload)))[0]
    ident = frame.message()
    assert (ident.model, ident.serial) == ("?]0;x??", "S?[2J?1?")
