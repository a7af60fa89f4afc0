"""Identity keys and content fingerprints: one id for the same article, whatever feed it came through."""

from __future__ import annotations

import hashlib
from dataclasses import replace

from crawler.items import Entry

# Changing any of these changes every stored id: they are part of the database format.
_ID_HEX = 16  # 64 bits: no collision to fear below billions of entries


def identity_key(entry: Entry) -> str:
    """The key an entry's id is made from: canonical URL, else guid, else title and date."""
    if entry.url:
        return f"url:{entry.url}"
    if entry.guid:
        return f"guid:{entry.guid.strip()}"
    return "hash:" + _digest(f"{entry.title}\x1f{entry.published_at or entry.published_raw or ''}")


def entry_id(identity: str) -> str:
    """A short, stable id for an identity key."""
    return _digest(identity)[:_ID_HEX]


def content_hash(entry: Entry) -> str:
    """Fingerprint of what a reader sees; a change of it makes a revision."""
    parts = (entry.title, entry.content_html, entry.author or "", "\x1e".join(entry.categories), entry.cover_image or "")
    return _digest("\x1f".join(parts))


def identify(entry: Entry) -> Entry:
    """The dedupe stage: fill id, identity and content_hash."""
    identity = identity_key(entry)
    return replace(entry, identity=identity, id=entry_id(identity), content_hash=content_hash(entry))


def _digest(text: str) -> str:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()
