"""The gate before a session starts: contraindications (docs/domain.md) and the minimum interval.

Refusing items stop the session unless overridden with a reason; warning items need an
acknowledgement (also a non-empty reason). Every answer, verdict and reason is recorded.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from protocols.text import check
from sessions.errors import GateRefused

INTERVAL = "interval"  # the override key for the minimum-interval rule
# Tattooing of Minors Act 1969 (England and Wales), and most US states: 18, and no override.
ADULT_AGE = 18
WARN_UNDER_DAYS = 10
REFUSE_UNDER_DAYS = 7


class Contraindication(StrEnum):
    SUNBURN = "sunburn"
    INFECTION_OR_WOUND = "infection-or-wound"
    ACNE_OR_PSORIASIS_FLARE = "acne-or-psoriasis-flare"
    UNHEALED_TRANSPLANT = "unhealed-transplant"
    KELOID_PRONE = "keloid-prone"
    SENSITIVITY_NO_PATCH_TEST = "sensitivity-no-patch-test"
    BLOOD_THINNERS_OR_ALCOHOL = "blood-thinners-or-alcohol"
    PREGNANCY = "pregnancy"

    @property
    def refuses(self) -> bool:
        """True: refuse until resolved; False: warn and require an acknowledgement."""
        return self in _REFUSING

    @property
    def label(self) -> str:
        return _LABELS[self]


_REFUSING = {Contraindication.SUNBURN, Contraindication.INFECTION_OR_WOUND,
             Contraindication.ACNE_OR_PSORIASIS_FLARE, Contraindication.UNHEALED_TRANSPLANT}
_LABELS = {
    Contraindication.SUNBURN: "sunburnt skin",
    Contraindication.INFECTION_OR_WOUND: "active infection or open wounds",
    Contraindication.ACNE_OR_PSORIASIS_FLARE: "scalp acne or psoriasis flare in the zone",
    Contraindication.UNHEALED_TRANSPLANT: "unhealed transplant area",
    Contraindication.KELOID_PRONE: "keloid-prone skin",
    Contraindication.SENSITIVITY_NO_PATCH_TEST:
        "skin sensitivity or pigment allergy without a patch test",
    Contraindication.BLOOD_THINNERS_OR_ALCOHOL: "blood thinners or alcohol in the last 48 h",
    Contraindication.PREGNANCY: "pregnancy",
}


@dataclass(frozen=True)
class ClientFacts:
    """What the record says of the client that the gate needs, whatever was answered."""

    date_of_birth: date | None
    consented: bool  # a signed consent to the procedure is on record


def age_on(born: date, day: date) -> int:
    return day.year - born.year - ((day.month, day.day) < (born.month, born.day))


def client_refusals(client: ClientFacts, day: date) -> list[str]:
    """Why this client may not have a session at all (no override can change these)."""
    out = []
    if client.date_of_birth is None:
        out.append(f"no date of birth on record (only adults, {ADULT_AGE} or over, are "
                   "treated: record it on the client first)")
    elif age_on(client.date_of_birth, day) < ADULT_AGE:
        out.append(f"the client is under {ADULT_AGE}: refused, with no override")
    if not client.consented:
        out.append("no signed consent to the procedure on record (record it, with the "
                   "form's version and the date signed, before a first session)")
    return out


@dataclass(frozen=True)
class Verdict:
    item: str
    present: bool
    decision: str  # clear | warned | acknowledged | overridden
    detail: str = ""
    reason: str = ""


# An override of a refusal is a clinical judgement on the record: it must say why, in words.
REASON_MIN_WORDS, REASON_MIN_CHARS = 3, 15
REASON_RULE = (f"a reason of substance: at least {REASON_MIN_WORDS} words and "
               f"{REASON_MIN_CHARS} characters saying why it is safe today")


def substantive(reason: str) -> bool:
    """At least a few real words: not "x", "ok ok ok", or one character repeated."""
    text = reason.strip()
    words = [w for w in text.split() if sum(ch.isalnum() for ch in w) >= 2]
    return (len(words) >= REASON_MIN_WORDS and len(text) >= REASON_MIN_CHARS
            and len(set(text.replace(" ", "").casefold())) > 3
            and len({w.casefold() for w in words}) >= REASON_MIN_WORDS)


def evaluate(
    answers: Mapping[Contraindication, bool],
    overrides: Mapping[str, str],
    days_since_last: float | None,
    *,
    client: ClientFacts,
    day: date,
) -> list[Verdict]:
    """The verdict for every item, or GateRefused naming everything unresolved and how to
    override it. `overrides` maps an item (or "interval") to its reason. The client's own
    facts (adult, consented) refuse first, and nothing overrides them."""
    refused = client_refusals(client, day)
    if refused:
        raise GateRefused("session refused: " + "; ".join(refused))
    missing = [c.value for c in Contraindication if c not in answers]
    if missing:
        raise GateRefused(f"contraindication gate: unanswered: {', '.join(missing)}; "
                          "every question must be answered yes or no")
    unknown = set(overrides) - {c.value for c in Contraindication} - {INTERVAL}
    if unknown:
        raise GateRefused(f"contraindication gate: unknown override {sorted(unknown)[0]!r}; "
                          f"allowed: {', '.join(c.value for c in Contraindication)}, {INTERVAL}")
    for key, reason in overrides.items():
        check(f"reason for {key}", reason)
    verdicts, blocked = [], []
    for c in Contraindication:
        reason = overrides.get(c.value, "").strip()
        if not answers[c]:
            verdicts.append(Verdict(c.value, False, "clear"))
        elif reason and c.refuses and not substantive(reason):
            # The reason itself is not repeated: it may hold health data.
            blocked.append(f"{c.label} (refused; overriding {c.value!r} needs {REASON_RULE})")
        elif reason:
            verdicts.append(Verdict(c.value, True, "overridden" if c.refuses else "acknowledged",
                                    c.label, reason))
        else:
            blocked.append(f"{c.label} ({'refused' if c.refuses else 'needs an acknowledgement'}"
                           f"; override {c.value!r} with a reason)")
    if days_since_last is not None:
        detail = f"{days_since_last:.1f} days since the last session"
        reason = overrides.get(INTERVAL, "").strip()
        if days_since_last < REFUSE_UNDER_DAYS and not reason:
            blocked.append(f"{detail}, under the minimum {REFUSE_UNDER_DAYS} (override "
                           f"{INTERVAL!r} with a reason)")
        elif days_since_last < REFUSE_UNDER_DAYS and not substantive(reason):
            blocked.append(f"{detail}, under the minimum {REFUSE_UNDER_DAYS} (overriding "
                           f"{INTERVAL!r} needs {REASON_RULE})")
        elif days_since_last < REFUSE_UNDER_DAYS:
            verdicts.append(Verdict(INTERVAL, True, "overridden", detail, reason))
        elif days_since_last < WARN_UNDER_DAYS:
            verdicts.append(Verdict(INTERVAL, True, "warned",
                                    f"{detail}, under the usual {WARN_UNDER_DAYS}", reason))
        else:
            verdicts.append(Verdict(INTERVAL, False, "clear", detail))
    if blocked:
        raise GateRefused("session refused: " + "; ".join(blocked))
    return verdicts
