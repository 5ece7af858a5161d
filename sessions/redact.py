"""Taking known identifiers out of free text: names (in any case, each part of a hyphenated or
multi-word name, short ones too), e-mail addresses, dates and phone numbers in their usual
formats.

Best effort, never a guarantee: a GP's name, a street address or "the tall one from the bakery"
has no pattern. That is why pseudonymised exports withhold free text unless the person
exporting asks for it by name, and why the included text is passed through here as well.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

EMAIL_MARK, DATE_MARK, PHONE_MARK = "[e-mail]", "[date]", "[phone]"
_MONTHS = (r"jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|"
           r"sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?")
_ORD = r"(?:st|nd|rd|th)?"
EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
DATE = re.compile(
    r"(?<!\w)(?:"
    r"\d{4}[-/.]\d{1,2}[-/.]\d{1,2}"  # 1980-05-17
    r"|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}"  # 17/05/1980, 5.17.80
    rf"|\d{{1,2}}{_ORD}(?:\s+of)?\s+(?:{_MONTHS})\.?,?\s+\d{{2,4}}"  # 17th of May 1980
    rf"|(?:{_MONTHS})\.?\s+\d{{1,2}}{_ORD},?\s+\d{{2,4}}"  # May 17th, 1980
    r")(?!\w)", re.IGNORECASE)
PHONE = re.compile(r"(?<![\w+\-/.])\+?\(?\d[\d\s().\-/]{5,}\d(?!\w)")
PHONE_DIGITS = 7  # fewer digits is a number, not a phone
_SPLIT = re.compile(r"[\s\-\u2010-\u2015'\u2019.,]+")


def name_parts(name: str) -> list[str]:
    """The ways a name shows up in text: whole, and each part of two letters or more."""
    parts = {*name.split(), *_SPLIT.split(name)}
    return sorted({name.strip(), *(p for p in parts if len(p) >= 2)} - {""}, key=len,
                  reverse=True)


def redact(text: str, names: Mapping[str, str] = {}) -> str:
    """`text` with e-mails, dates and phone numbers marked, and each name in `names` (and
    every part of it, whatever the case) replaced by its pseudonym."""
    text = EMAIL.sub(EMAIL_MARK, text)
    text = DATE.sub(DATE_MARK, text)
    text = PHONE.sub(lambda m: PHONE_MARK if sum(c.isdigit() for c in m[0]) >= PHONE_DIGITS
                     else m[0], text)
    for name, alias in names.items():
        parts = name_parts(name)
        if parts:
            pattern = r"(?<!\w)(?:" + "|".join(map(re.escape, parts)) + r")(?!\w)"
            text = re.sub(pattern, alias, text, flags=re.IGNORECASE)
    return text
