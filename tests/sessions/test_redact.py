"""Known identifiers taken out of included free text (best effort: see sessions/redact.py)."""

import pytest

from sessions.redact import redact

NAMES = {"Jane Doe-Smith": "Client-A", "Li Wu": "Client-B"}


@pytest.mark.parametrize(("text", "expected"), [
    ("Jane Doe-Smith came", "Client-A came"),
    ("jane, JANE, Jane", "Client-A, Client-A, Client-A"),
    ("Doe said smith and DOE-SMITH", "Client-A said Client-A and Client-A"),
    ("Li and Wu; li wu", "Client-B and Client-B; Client-B"),
    ("linear limit wool", "linear limit wool"),  # parts match whole words only
    ("call +44 20 7946 0123", "call [phone]"),
    ("or 020 7946 0123, (020) 7946-0123, 07700 900123", "or [phone], [phone], [phone]"),
    ("+1-555-010-9999 and 555.010.9999", "[phone] and [phone]"),
    ("jane.doe@example.org or li_wu+smp@mail.example.co.uk", "[e-mail] or [e-mail]"),
    ("DOB 17/05/1980, 1980-05-17, 17.05.80", "DOB [date], [date], [date]"),
    ("born 17 May 1980, May 17th, 1980, 17th of May 1980", "born [date], [date], [date]"),
    ("depth 1.50 mm, lot PG-2026-001, 12 weeks, 30%", "depth 1.50 mm, lot PG-2026-001, 12 "
     "weeks, 30%"),
])
def test_identifiers_in_text(text, expected):
    assert redact(text, NAMES) == expected
