"""docs/protocol.md checked against itself and the codec: every worked example is read out of
the document (no copy here), decoded to the fields its text states and encoded back byte for
byte; the catalogue and layout tables are the schema's."""

import re
import struct

import pytest

from firmware_bridge.codec import MESSAGES, Decoder, Frame, cobs_decode, encode
from firmware_bridge.schema import SCHEMAS, MsgType
from protocols.settings import WireSettings
from tests.link.spec import SPEC, Example, examples, section, table_rows

EXAMPLES = examples()


def message_from(ex: Example):
    """The message an example's fields describe, built through the schema's field list."""
    t = MsgType[ex.name]
    schema = SCHEMAS[t]
    assert set(ex.fields) == set(schema.names), (
        f"line {ex.line}: {ex.name} fields {sorted(ex.fields)}, the definition has "
        f"{list(schema.names)}")
    values = []
    for f in schema.fields:
        raw = ex.fields[f.name]
        if f.kind is str:
            values.append(raw)
        elif f.kind is WireSettings:
            values.append(WireSettings(*(int(v, 0) for v in raw.split("/"))))
        else:
            values.append(int(raw, 0))
    return MESSAGES[t](*values)


def check(ex: Example) -> None:
    msg = message_from(ex)
    assert encode(msg, seq=ex.seq, ack=ex.ack) == ex.wire, (
        f"line {ex.line}: {ex.name} encodes to {encode(msg, seq=ex.seq, ack=ex.ack).hex(' ')}")
    frames = Decoder().feed(ex.wire)
    assert len(frames) == 1, f"line {ex.line}: the wire bytes are not one valid frame"
    assert frames[0] == Frame(ex.seq, ex.ack, msg.TYPE, msg.payload())
    assert frames[0].message() == msg
    assert cobs_decode(ex.wire[:-1]) == ex.body, f"line {ex.line}: body and wire disagree"
    if ex.crc is not None:
        assert int.from_bytes(ex.body[-4:], "little") == ex.crc, f"line {ex.line}: crc"


def test_the_spec_has_a_worked_example_of_every_message():
    assert sorted(ex.name for ex in EXAMPLES) == sorted(t.name for t in MsgType)


@pytest.mark.parametrize("ex", EXAMPLES, ids=[e.name for e in EXAMPLES])
def test_every_worked_example_decodes_to_its_fields_and_encodes_back(ex):
    check(ex)


def test_a_broken_example_in_the_spec_fails():
    """One byte changed in the IDENT example's wire line (or the old extra 00 in its body)."""
    text = SPEC.read_text(encoding="utf-8")
    block = next(m for m in re.finditer(r"```\nIDENT .*?```", text, re.S))
    for broken in (block[0].replace("E0 2E FA", "E0 2E FB", 1),
                   block[0].replace("body  00 01 81", "body  00 01 81 00", 1)):
        assert broken != block[0]
        (ex,) = examples(broken)
        with pytest.raises(AssertionError):
            check(ex)


def test_the_catalogue_table_is_the_schema():
    """Section 3: type, payload size, definition string and CRC_EXTRA of every message."""
    rows = table_rows(SPEC.read_text(encoding="utf-8"), "| type | name |")
    seen = {}
    for code, name, _direction, size, definition, extra in [r[:6] for r in rows]:
        t = MsgType(int(code, 16))
        assert t.name == name
        s = SCHEMAS[t]
        assert (int(size), definition.strip("`"), int(re.search(r"0x[0-9A-F]{2}", extra)[0], 16)
                ) == (s.size, s.definition, s.crc_extra), name
        seen[t] = s
    assert set(seen) == set(MsgType)


@pytest.mark.parametrize("mtype", [t for t in MsgType if SCHEMAS[t].fields],
                         ids=lambda t: t.name)
def test_the_layout_tables_of_section_4_are_the_schema(mtype):
    text = section(SPEC.read_text(encoding="utf-8"), "## 4.")
    heading = next(line for line in text.splitlines()
                   if line.startswith(f"### {mtype.name} (0x{mtype:02X})"))
    rows = table_rows(text, heading)
    offset, expected = 0, []
    for f in SCHEMAS[mtype].fields:
        expected.append((str(offset), f.wire_type, f.name))
        offset += struct.calcsize(f"<{f.fmt}")
    assert [tuple(r[:3]) for r in rows] == expected
