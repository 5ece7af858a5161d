"""Reading docs/protocol.md itself: its worked examples, its message tables and its clause
index, so that tests check the document a machine maker reads, not a copy of it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

SPEC = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"
_FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.S | re.M)


@dataclass(frozen=True)
class Example:
    name: str  # the message type's name
    seq: int
    ack: int
    fields: dict[str, str]  # as written: "1500", "0x0F", "SMP-R1", "200/500/3000"
    body: bytes
    wire: bytes
    crc: int | None
    line: int  # where the block starts in the file, for messages


def _hex(text: str, where: str) -> bytes:
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise AssertionError(f"{where}: not hex: {text!r}") from None


def examples(text: str | None = None) -> list[Example]:
    """Every fenced block with a `wire` line: its first lines are the fields (continuation
    lines are indented), then `body`, `wire` and optionally `crc`."""
    text = SPEC.read_text(encoding="utf-8") if text is None else text
    out = []
    for m in _FENCE.finditer(text):
        lines = m[1].splitlines()
        keys: dict[str, str] = {}
        current = ""
        for line in lines:
            if line[:1].isspace() and current:
                keys[current] += " " + line.strip()
            else:
                head, _, rest = line.partition(" ")
                current = head if head in ("body", "wire", "crc") else "fields"
                keys[current] = rest.strip() if current != "fields" else line.strip()
        if "wire" not in keys:
            continue
        where = f"{SPEC.name}:{text[:m.start()].count(chr(10)) + 2}"
        name, *items = keys["fields"].split()
        fields = dict(item.split("=", 1) for item in items)
        seq, ack = int(fields.pop("seq", "0"), 0), int(fields.pop("ack", "0"), 0)
        out.append(Example(name, seq, ack, fields, _hex(keys.get("body", ""), where),
                           _hex(keys["wire"], where),
                           int(keys["crc"], 0) if "crc" in keys else None,
                           int(where.rsplit(":", 1)[1])))
    return out


def table_rows(text: str, header: str) -> list[list[str]]:
    """The body rows of the first markdown table at or after the line starting with
    `header` (its header and separator rows left out)."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header))
    while not lines[start].startswith("|"):
        start += 1
    rows = []
    for line in lines[start + 1:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not set("".join(cells)) <= set("-: "):
            rows.append(cells)
    return rows


def section(text: str, heading: str) -> str:
    """The text from a heading line to the next heading of the same or a higher level."""
    level = heading.split(" ", 1)[0]
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(heading))
    end = next((i for i in range(start + 1, len(lines))
                if lines[i].startswith("#") and len(lines[i].split(" ", 1)[0]) <= len(level)),
               len(lines))
    return "\n".join(lines[start:end])
