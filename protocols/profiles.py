"""Per-zone treatment profiles and their resolution for a stage and a skin."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from protocols.envelope import HARD_LIMITS, SafetyEnvelope, Violation
from protocols.errors import SmpError
from protocols.needles import NeedleField
from protocols.quantities import QUANTITIES
from protocols.settings import MachineSettings
from protocols.skin import ADJUSTMENTS, SkinCondition
from protocols.stages import STAGE_PLANS, Stage, StagePlan
from protocols.text import check
from protocols.zones import Zone

PROFILE_NAME_PATTERN = r"^[a-z0-9][a-z0-9-]{0,63}$"


class Profile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=PROFILE_NAME_PATTERN)
    zone: Annotated[Zone, BeforeValidator(lambda v: Zone.parse(v) if isinstance(v, str) else v)]
    settings: MachineSettings
    needle: NeedleField
    notes: Annotated[str, AfterValidator(lambda v: check("notes", v, multiline=True))] = Field(
        default="", max_length=2000)

    @model_validator(mode="before")
    @classmethod
    def _nest_settings(cls, data: Any) -> Any:
        """Profile files write the three settings flat beside the name; nest them here."""
        if isinstance(data, dict) and "settings" not in data:
            data = dict(data)
            data["settings"] = {q.field: data.pop(q.field) for q in QUANTITIES if q.field in data}
        return data


@dataclass(frozen=True)
class Resolution:
    """The settings to send for a profile, and every reason they differ from its base."""

    profile: Profile
    stage: Stage
    conditions: tuple[SkinCondition, ...]
    settings: MachineSettings
    reasons: tuple[str, ...]
    plan: StagePlan
    advisories: tuple[str, ...]


class ProfileRefused(SmpError):
    """The resolved settings fall outside the envelope; nothing was clamped."""

    def __init__(self, context: str, violations: list[Violation], reasons: tuple[str, ...]):
        self.violations = violations
        self.reasons = reasons
        super().__init__(f"{context}: refused: " + "; ".join(str(v) for v in violations))


def resolve(
    profile: Profile,
    stage: Stage = Stage.S1,
    conditions: Iterable[SkinCondition] = (),
    envelope: SafetyEnvelope = HARD_LIMITS,
) -> Resolution:
    """Apply the skin adjustments to `profile` and check the result against `envelope`."""
    conds = tuple(c for c in SkinCondition if c in set(conditions))  # canonical order
    context = ", ".join([profile.zone.value, stage.label, *(c.label for c in conds)])
    values = {q.field: profile.settings.value(q) for q in QUANTITIES}
    reasons: list[str] = []
    for adj in ADJUSTMENTS:
        if adj.condition not in conds:
            continue
        q = adj.quantity
        head = f"{profile.zone.value}, {stage.label}, {adj.condition.label}"
        if adj.condition is SkinCondition.SCAR_TISSUE and profile.zone is Zone.SCAR:
            reasons.append(f"{head}: {q.label} unchanged: the scar profile already allows for it")
            continue
        old = values[q.field]
        new = adj.apply(old)
        if new == old:
            reasons.append(f"{head}: {q.label} {q.fmt_unit(old)} unchanged: already within "
                           f"the {q.fmt_unit(adj.amount)} ceiling for {adj.condition.label}")
        else:
            reasons.append(f"{head}: {q.label} {q.fmt(old)} -> {q.fmt_unit(new)}: {adj.why}")
        values[q.field] = new
    violations = envelope.check_values(values)
    if violations:
        raise ProfileRefused(context, violations, tuple(reasons))
    settings = MachineSettings(**values)
    return Resolution(
        profile=profile, stage=stage, conditions=conds, settings=settings,
        reasons=tuple(reasons), plan=STAGE_PLANS[stage], advisories=tuple(settings.advisories()),
    )
