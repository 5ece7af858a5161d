"""Keyed pseudonyms: one per client, technician, machine serial and lot, stable for one database.

HMAC-SHA256 with a random key kept in the record's `meta` table, so nobody can recover a name
by hashing candidate names without the database, and the same client is the same pseudonym on
every screen and in every export made from that database.
"""

from __future__ import annotations

import hashlib
import hmac

from sessions import meta
from sessions.store import Store


def key(store: Store) -> bytes:
    """The database's pseudonym key, created on first use."""
    return bytes.fromhex(meta.value(store, meta.PSEUDONYM_KEY))


def pseudonym(secret: bytes, kind: str, value: str) -> str:
    digest = hmac.new(secret, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()
    return f"{kind.capitalize()}-{digest[:8].upper()}"


class Pseudonyms:
    """The pseudonyms of one database (reads the key once)."""

    def __init__(self, store: Store):
        self._key = key(store)

    def client(self, client_id: int) -> str:
        return pseudonym(self._key, "client", str(client_id))

    def technician(self, name: str) -> str:
        return pseudonym(self._key, "technician", name)

    def serial(self, serial: str) -> str:
        return pseudonym(self._key, "serial", serial)

    def lot(self, lot: str) -> str:
        return pseudonym(self._key, "lot", lot)
