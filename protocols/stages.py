"""Session stages and what each aims for (docs/domain.md "Sessions and density")."""

from __future__ import annotations

import re
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from protocols.errors import SmpError


class BadDilution(SmpError, ValueError):
    pass


class Stage(StrEnum):
    S1 = "1"
    S2 = "2"
    S3 = "3"
    S4 = "4"
    TOUCH_UP = "touch-up"

    @property
    def label(self) -> str:
        return "touch-up" if self is Stage.TOUCH_UP else f"stage {self.value}"

    @classmethod
    def parse(cls, text: str) -> Stage:
        key = text.strip().lower().removeprefix("stage").strip().replace(" ", "-")
        key = {"touchup": "touch-up", "t": "touch-up"}.get(key, key)
        try:
            return cls(key)
        except ValueError:
            raise SmpError(
                f"unknown stage {text!r}; allowed: {', '.join(s.value for s in cls)}"
            ) from None


class Dilution(BaseModel):
    """Water : pigment by volume ("20:1" light, "6:1" darker, "0:1" neat)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    water: int = Field(ge=0, le=50)
    pigment: int = Field(ge=1, le=10)

    @classmethod
    def parse(cls, text: str) -> Dilution:
        m = re.fullmatch(r"\s*(\d{1,2})\s*:\s*(\d{1,2})\s*", text)
        if not m or not (0 <= int(m[1]) <= 50 and 1 <= int(m[2]) <= 10):
            raise BadDilution(
                f"bad dilution {text!r}: write water:pigment, e.g. 20:1 (light), 6:1 (darker), "
                "0:1 (neat); water 0 to 50, pigment 1 to 10"
            )
        return cls(water=int(m[1]), pigment=int(m[2]))

    @property
    def water_per_pigment(self) -> float:
        return self.water / self.pigment

    def __str__(self) -> str:
        return f"{self.water}:{self.pigment}"


class StagePlan(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    stage: Stage
    target_density_pct: int = Field(ge=0, le=100)
    lightest: Dilution
    darkest: Dilution
    aim: str


def _plan(stage: Stage, density: int, lightest: str, darkest: str, aim: str) -> StagePlan:
    return StagePlan(stage=stage, target_density_pct=density, lightest=Dilution.parse(lightest),
                     darkest=Dilution.parse(darkest), aim=aim)


# Density targets are docs/domain.md's; dilution bands are starting points between its examples
# (20:1 light, 6:1 darker), lighter early and darker later. A clinic adjusts them per client.
STAGE_PLANS: dict[Stage, StagePlan] = {
    p.stage: p
    for p in (
        _plan(Stage.S1, 30, "20:1", "12:1",
              "a first light layer in the lightest shade; the hairline is designed now"),
        _plan(Stage.S2, 70, "12:1", "8:1", "build density with a darker shade"),
        _plan(Stage.S3, 100, "8:1", "6:1", "full density; refine the hairline and the tone"),
        _plan(Stage.S4, 100, "8:1", "6:1",
              "extra density for scars, alopecia, very dry, sensitive or thick skin"),
        _plan(Stage.TOUCH_UP, 100, "10:1", "6:1",
              "restore faded density and match the healed tone"),
    )
}
