"""Adding clients to the record (identity, health and consent kept in separate tables)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from protocols.text import check
from sessions.models import Client, ClientHealth, Consent
from sessions.store import Store


class _Checked(BaseModel):
    """Every text field is checked for control characters and bidirectional overrides
    (protocols/text.py), so no writer can store one."""

    # A ValidationError's text would quote the input: a health datum in a log or crash file.
    model_config = ConfigDict(hide_input_in_errors=True)
    MULTILINE: ClassVar[frozenset[str]] = frozenset()

    @field_validator("*", mode="after")
    @classmethod
    def _safe_text(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, str) and info.field_name:
            return check(info.field_name.replace("_", " "), value,
                         multiline=info.field_name in cls.MULTILINE)
        return value


class Health(_Checked):
    """Special-category data: shown only where needed, withheld by pseudonymised exports."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    MULTILINE: ClassVar[frozenset[str]] = frozenset({"allergies", "medications"})

    hair_colour: str = Field(default="", max_length=100)
    hair_loss_stage: str = Field(default="", pattern=r"^$|^NW[1-7]$|^Ludwig (I|II|III)$")
    hair_loss_cause: str = Field(default="", max_length=100)
    fitzpatrick: int | None = Field(default=None, ge=1, le=6)
    skin_quality: str = Field(default="", max_length=100)
    allergies: str = Field(default="", max_length=2000)
    patch_test: str = Field(default="", max_length=200)
    medications: str = Field(default="", max_length=2000)


class ConsentForm(_Checked):
    model_config = ConfigDict(extra="forbid", frozen=True)

    procedure: bool
    photos: bool
    version: str = Field(min_length=1, max_length=50)
    signed_on: date


class NewClient(_Checked):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=200)
    phone: str = Field(default="", max_length=50)
    email: str = Field(default="", max_length=200)
    date_of_birth: date | None = None
    health: Health = Health()
    consent: ConsentForm | None = None


def add_client(store: Store, client: NewClient, now: datetime | None = None) -> int:
    """Insert a client; returns the id used everywhere else (and by `smp history ID`)."""
    with store.unit() as s:
        row = Client(name=client.name.strip(), phone=client.phone, email=client.email,
                     date_of_birth=client.date_of_birth, created_at=now or datetime.now(UTC),
                     scar_work=False)
        s.add(row)
        s.flush()
        s.add(ClientHealth(client_id=row.id, **client.health.model_dump()))
        if client.consent:
            s.add(Consent(client_id=row.id, **client.consent.model_dump()))
        return row.id
