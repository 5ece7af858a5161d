"""The session workflow's plain values: the plan, the client chosen, the end summary, and the
rules for the next session. No state, no threads: the session owner (console/controller.py)
and the screens share these. The record's forms and questions that screens fill in (a new
client, the gate's contraindications, a session a crash left open) are named here too:
screens never import sessions/ (docs/architecture.md).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from protocols import Dilution, NeedleSpec, SkinCondition, SmpError, Stage, Zone
from sessions import history
from sessions.clients import ConsentForm as ConsentForm
from sessions.clients import Health as Health
from sessions.clients import NewClient as NewClient
from sessions.gate import INTERVAL as INTERVAL
from sessions.gate import REFUSE_UNDER_DAYS, ClientFacts
from sessions.gate import WARN_UNDER_DAYS as WARN_UNDER_DAYS
from sessions.gate import Contraindication as Contraindication
from sessions.gate import Verdict as Verdict
from sessions.history import ClientSummary as ClientSummary
from sessions.pseudonyms import Pseudonyms as Pseudonyms
from sessions.recorder import OpenSession as OpenSession
from sessions.recorder import needle_what

# `X as X` above: named here for the screens (a re-export), the record's forms and questions.

NEXT_SESSION_DAYS = (10, 14)  # docs/domain.md: 10 to 14 days typical
TOUCH_UP_YEARS, SCAR_TOUCH_UP_YEARS = history.TOUCH_UP_YEARS, history.SCAR_TOUCH_UP_YEARS


# The simulator's prefilled lots (never a real one) and their expiry, a year on.
TRAINING_LOT = "TRAINING"


def training_expiry() -> date:
    return date.today() + timedelta(days=365)


class WorkflowError(SmpError):
    """A step taken out of order, or input the workflow cannot accept."""


@dataclass(frozen=True)
class Pigment:
    brand: str
    shade: str
    dilution: Dilution
    lot: str
    expiry: date


@dataclass(frozen=True)
class Cartridge:
    needle: NeedleSpec
    lot: str
    expiry: date

    def same(self, other: Cartridge | None) -> bool:
        """The same cartridge: its code and lot (a lot has one expiry)."""
        return (other is not None and self.needle.code == other.needle.code
                and self.lot.strip() == other.lot.strip())

    @property
    def text(self) -> str:
        """Short, for a zone line: "1003RL lot T-123"."""
        return f"{self.needle.code} lot {self.lot}"


def cartridge_from(zone: Zone, code: str, lot: str, expiry: str) -> Cartridge:
    """A zone's cartridge as typed; a bad field is one line naming the zone's cartridge and
    the field ("crown cartridge expiry ..."). The lot and its expiry are checked where the
    record takes them (sessions.recorder.check_lot)."""
    what, code = needle_what(zone), code.strip()
    if not code:
        raise WorkflowError(f"{what}: the cartridge code is required, e.g. 1003RL")
    try:
        needle = NeedleSpec.parse(code)
    except SmpError as exc:
        raise WorkflowError(f"{what}: {exc}") from None
    try:
        day = date.fromisoformat(expiry.strip())
    except ValueError:
        raise WorkflowError(f"{what} expiry {expiry.strip()!r}: write a date as "
                            "YYYY-MM-DD") from None
    return Cartridge(needle, lot.strip(), day)


@dataclass(frozen=True)
class Plan:
    technician: str
    stage: Stage
    zones: tuple[Zone, ...]
    conditions: tuple[SkinCondition, ...]
    pigment: Pigment
    # One per planned zone, from the plan screen (each zone's profile names its needle).
    cartridges: Mapping[Zone, Cartridge]


@dataclass(frozen=True)
class ClientChoice:
    id: int
    name: str
    sessions: int
    days_since_last: float | None
    last_stage: Stage | None
    suggested_stage: Stage
    facts: ClientFacts  # date of birth and consent, as the record has them: for the gate
    # The skin conditions the client's record states (Fitzpatrick IV to VI from the skin type
    # recorded): the plan starts with them ticked.
    skin: tuple[SkinCondition, ...] = ()
    alias: str = ""  # the client's pseudonym, shown instead of the name in presentation mode


@dataclass(frozen=True)
class EndSummary:
    session_id: int
    aftercare: tuple[str, ...]
    next_session: str
    coverage: tuple[tuple[Zone, int | None], ...]


def next_stage(stage: Stage) -> Stage:
    return {Stage.S1: Stage.S2, Stage.S2: Stage.S3, Stage.S3: Stage.S4}.get(stage,
                                                                           Stage.TOUCH_UP)


def next_session_text(stage: Stage, worked: Sequence[Zone], today: date) -> str:
    """The next session within the interval rules (docs/domain.md "Sessions and density")."""
    lo, hi = (today + timedelta(days=d) for d in NEXT_SESSION_DAYS)
    earliest = today + timedelta(days=REFUSE_UNDER_DAYS)
    if stage in (Stage.S1, Stage.S2):
        return (f"{next_stage(stage).label} between {lo} and {hi} "
                f"(not before {earliest} without an override)")
    if stage == Stage.S3:
        return (f"stage 4 between {lo} and {hi} if scars, alopecia, very dry, sensitive or "
                f"thick skin need it; otherwise a touch-up in {TOUCH_UP_YEARS} years")
    years = SCAR_TOUCH_UP_YEARS if Zone.SCAR in worked else TOUCH_UP_YEARS
    due = history.add_years(today, years)
    return f"a touch-up around {due} ({years} years)"
