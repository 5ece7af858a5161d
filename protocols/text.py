"""Text that people type and that programs print: one check for what may be stored, one escape
for whatever is shown.

A control character in a stored string reaches whatever later prints it: ESC ] 0;...BEL
retitles a terminal window, ESC [2J clears the screen, BEL rings; bidirectional overrides and
isolates (and the invisible left-to-right / right-to-left marks) make text read in another
order than it is stored. So text a person gives the record is refused with any of them (one
line naming the field), and text that is shown anyway (a record written by another version or
by raw SQL, a device's IDENT strings, a profile file) is shown escaped, never raw.
"""

from __future__ import annotations

import unicodedata

from protocols.errors import SmpError

# U+200E/U+200F marks, U+202A..U+202E embeddings and overrides, U+2066..U+2069 isolates.
BIDI = frozenset(chr(c) for c in (0x200E, 0x200F, *range(0x202A, 0x202F),
                                  *range(0x2066, 0x206A)))
# Line and paragraph separators break a line where a single-line field expects none.
SEPARATORS = frozenset("\u2028\u2029")
MULTILINE = frozenset("\n\t")  # allowed in multi-line text only (notes)
_NAMES = {0x07: "BEL", 0x08: "backspace", 0x09: "tab", 0x0A: "newline", 0x0D: "carriage return",
          0x1B: "ESC", 0x7F: "DEL"}
_SHORT = {"\n": "\\n", "\t": "\\t", "\r": "\\r"}


class UnsafeText(SmpError, ValueError):
    """Text with a control character or a bidirectional override. A ValueError too, so that a
    pydantic validator reports it as the field's error."""


def _unsafe(ch: str, multiline: bool) -> bool:
    o = ord(ch)
    if o < 0x20 or 0x7F <= o <= 0x9F:
        return not (multiline and ch in MULTILINE)
    return ch in BIDI or ch in SEPARATORS


def describe(ch: str) -> str:
    """A character named so that a person can find it: 'control character U+001B (ESC)'."""
    o = ord(ch)
    if ch in BIDI or ch in SEPARATORS:
        return f"U+{o:04X} ({unicodedata.name(ch).lower()})"
    name = _NAMES.get(o, "C1 control" if o >= 0x80 else "")
    return f"control character U+{o:04X}" + (f" ({name})" if name else "")


def check(field: str, value: str, *, multiline: bool = False) -> str:
    """`value` unchanged if it is safe to store, else UnsafeText naming `field` (never the
    value: it may be a health datum)."""
    for ch in value:
        if _unsafe(ch, multiline):
            allowed = "printable text, newlines and tabs" if multiline else "printable text"
            raise UnsafeText(f"{field}: {describe(ch)} is not allowed; allowed: {allowed} "
                             "(no control characters or bidirectional overrides)")
    return value


def printable(value: object, *, multiline: bool = False) -> str:
    """`value` as text safe to print: each unsafe character shown as its escape (ESC as
    \\x1b, U+202E as \\u202e), so it can be seen and never acts on the terminal."""
    text = str(value)
    if text.isprintable():  # the common case, at C speed (every unsafe character fails it)
        return text
    return "".join(_escape(ch) if _unsafe(ch, multiline) else ch for ch in text)


def _escape(ch: str) -> str:
    o = ord(ch)
    if ch in _SHORT:
        return _SHORT[ch]
    return f"\\x{o:02x}" if o <= 0xFF else f"\\u{o:04x}"


def ascii_printable(value: str) -> str:
    """A device string (IDENT model and serial) kept to printable ASCII: anything else is '?'."""
    return "".join(ch if " " <= ch <= "~" else "?" for ch in value)
