"""Finding a client from what was typed: the one rule of the console's client and history
screens and `smp history` (docs/record.md "Finding a client").

Every typed word must appear somewhere in the name, both sides folded: case, Unicode form,
accents and spacing ignored ("zoe lukasz" finds "Zoë Łukasz"). A number, "12" or "#12", is the
client with that id, where ids are shown: in presentation mode only the pseudonym is matched.
Exact matches (the whole folded name) come first, the rest in the order given.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from typing import Protocol, TypeVar

# Letters NFKD keeps whole (a stroke is not a combining mark): the ones of European names.
_STROKES = str.maketrans({"ł": "l", "ø": "o", "đ": "d", "ħ": "h", "ŧ": "t", "ı": "i"})


class Named(Protocol):
    @property
    def id(self) -> int: ...

    @property
    def name(self) -> str: ...


C = TypeVar("C", bound=Named)


def fold(text: str) -> str:
    """`text` as searches compare it: case-folded, compatibility-decomposed, without accents
    or strokes, spaces collapsed ("ZOË  Łukasz" and "zoe lukasz" fold alike)."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(bare.translate(_STROKES).split())


def client_id(text: str) -> int | None:
    """The id typed as "12" or "#12", else None."""
    key = text.strip().removeprefix("#")
    return int(key) if key.isascii() and key.isdigit() else None


def match_clients(clients: Sequence[C], text: str, *, by_id: bool = True) -> list[C]:
    """The clients `text` finds (all of them for ""); `by_id` False where ids are not shown."""
    want = fold(text)
    if not want:
        return list(clients)
    if by_id and (cid := client_id(text)) is not None:
        return [c for c in clients if c.id == cid]
    words = want.split()
    named = [(c, fold(c.name)) for c in clients]
    return ([c for c, name in named if name == want]
            + [c for c, name in named if name != want and all(w in name for w in words)])
