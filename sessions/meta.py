"""Small facts a record keeps about itself in its `meta` table, each made on first use."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable

from sqlalchemy import exc

from sessions.models import Meta
from sessions.store import Store

PSEUDONYM_KEY = "pseudonym_key"
# Which record this is, whatever its URL: a record deleted and made again at the same path is
# another record, and what was journaled for the old one must not be replayed into it.
RECORD_ID = "record_id"

MAKERS: dict[str, Callable[[], str]] = {
    PSEUDONYM_KEY: lambda: secrets.token_hex(32),
    RECORD_ID: lambda: str(uuid.uuid4()),
}


def value(store: Store, key: str) -> str:
    """The record's `key`, created on first use (by whichever chair comes first)."""
    with store.reading() as s:  # read first: a read-only record that has it can still use it
        row = s.get(Meta, key)
        if row is not None:
            return row.value
    try:
        with store.unit() as s:
            row = s.get(Meta, key)
            if row is None:
                row = Meta(key=key, value=MAKERS[key]())
                s.add(row)
            return row.value
    except exc.IntegrityError:  # another chair created it at the same moment: use theirs
        with store.reading() as s:
            theirs = s.get(Meta, key)
            assert theirs is not None  # the IntegrityError says their row exists
            return theirs.value
