"""Identity keys and content fingerprints: one id for the same article, whatever feed it came through."""

from __future__ import annotations

import hashlib

from crawler.items import Entry, evolve

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
    return evolve(entry, identity=identity, id=entry_id(identity), content_hash=content_hash(entry))


def _digest(text: str) -> str:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


def columnist_site(url: str | None) -> str | None:
    """The site a columnist writes for: the entry URL's host without `www.`."""
    if not url:
        return None
    host = url.split("://", 1)[-1].split("/", 1)[0].split("@")[-1].split(":")[0].lower()
    return host[4:] if host.startswith("www.") else host or None


def columnist_id(site: str, name: str) -> str:
    """One id for one person on one site, whichever feed their posts came through."""
    return _digest(f"{site}\x1f{' '.join(name.split()).casefold()}")[:_ID_HEX]


def is_person(author: str | None, feed_title: str | None) -> bool:
    """False for the site's own name standing in for an author (`人人都是产品经理` on its own feed)."""
    if not author or not author.strip():
        return False
    if not feed_title:
        return True
    site_name = feed_title.replace("－", "-").rsplit("-", 1)[-1].strip()
    return author.strip() not in (feed_title.strip(), site_name)
