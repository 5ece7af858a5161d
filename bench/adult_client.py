"""The client every benchmark records for: an adult with a signed consent, as the gate asks."""

from __future__ import annotations

from datetime import date

from sessions.clients import ConsentForm, NewClient, add_client


def adult_client(store, name: str = "Bench Client", **fields) -> int:
    return add_client(store, NewClient(
        name=name, date_of_birth=date(1980, 1, 1),
        consent=ConsentForm(procedure=True, photos=False, version="v1",
                            signed_on=date(2026, 1, 5)), **fields))
