"""Zones of the scalp, as technicians name them."""

from __future__ import annotations

import difflib
from enum import StrEnum

from protocols.errors import SmpError


class UnknownZone(SmpError, ValueError):
    pass


class Zone(StrEnum):
    HAIRLINE = "hairline"
    TEMPLES = "temples"
    MID_SCALP = "mid-scalp"
    CROWN = "crown"
    SIDES = "sides"
    BACK = "back"
    NAPE = "nape"
    SCAR = "scar"
    ALOPECIA_PATCH = "alopecia-patch"
    PART_LINE = "part-line"

    @property
    def label(self) -> str:
        return _LABELS[self]

    @classmethod
    def parse(cls, text: str) -> Zone:
        """A zone from its name or a common synonym ("vertex", "donor", "frontal")."""
        key = text.strip().lower().replace("_", "-").replace(" ", "-")
        try:
            return cls(_ALIASES.get(key, key))
        except ValueError:
            names = [z.value for z in cls]
            close = difflib.get_close_matches(key, names + list(_ALIASES), n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise UnknownZone(
                f"unknown zone {text!r}{hint}; allowed: {', '.join(names)}"
            ) from None


def used_in_label(zone: Zone | None) -> str:
    """Where a pigment or cartridge was used: its zone, or every zone of the session (None)."""
    return "all zones" if zone is None else zone.label


_LABELS = {
    Zone.HAIRLINE: "Hairline",
    Zone.TEMPLES: "Temples",
    Zone.MID_SCALP: "Mid-scalp (frontal)",
    Zone.CROWN: "Crown (vertex)",
    Zone.SIDES: "Sides",
    Zone.BACK: "Back (donor)",
    Zone.NAPE: "Nape",
    Zone.SCAR: "Scar tissue",
    Zone.ALOPECIA_PATCH: "Alopecia patch",
    Zone.PART_LINE: "Part line / diffuse thinning",
}

_ALIASES = {
    "frontal": "mid-scalp",
    "midscalp": "mid-scalp",
    "vertex": "crown",
    "donor": "back",
    "temple": "temples",
    "alopecia": "alopecia-patch",
    "part": "part-line",
    "diffuse-thinning": "part-line",
    "diffuse": "part-line",
}
