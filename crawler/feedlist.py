"""Load feed lists: OPML 2.0 and our TOML list, told apart by content."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from lxml import etree


class FeedListError(ValueError):
    """The file is not a feed list we can read; the message names it and says why."""


@dataclass(frozen=True)
class FeedSpec:
    url: str
    name: str | None = None
    categories: tuple[str, ...] = ()
    timezone: str | None = None  # for the feed's dates without a zone: "Asia/Shanghai" or "+08:00"
    full_content: bool | None = None  # always (true) or never (false) fetch article pages; unset: decide


def valid_timezone(value: str) -> bool:
    """An IANA zone name (`Asia/Shanghai`) or a UTC offset (`+08:00`)."""
    import re
    import zoneinfo

    if re.fullmatch(r"[+-](0\d|1[0-4]):?[0-5]\d", value.strip()):
        return True
    try:
        zoneinfo.ZoneInfo(value.strip())
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return False
    return True


def load_feed_list(path: str | Path) -> list[FeedSpec]:
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise FeedListError(f"{path}: cannot read ({exc.strerror or exc})") from None
    head = data[:512].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if head.startswith(b"<"):
        return parse_opml(data, str(path))
    return parse_toml_list(data, str(path))


def parse_toml_list(data: bytes, name: str = "<toml>") -> list[FeedSpec]:
    try:
        doc = tomllib.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise FeedListError(f"{name}: neither OPML nor a TOML feed list ({exc})") from None
    feeds = doc.get("feeds")
    if not isinstance(feeds, list):
        raise FeedListError(f"{name}: a TOML feed list needs [[feeds]] tables with a url each")
    out = []
    for index, item in enumerate(feeds, 1):
        if not isinstance(item, dict) or not isinstance(item.get("url"), str) or not item["url"].strip():
            raise FeedListError(f"{name}: feed #{index} has no url")
        categories = item.get("categories") or []
        if isinstance(categories, str):
            categories = [categories]
        full_content = item.get("full_content")
        if full_content is not None and not isinstance(full_content, bool):
            raise FeedListError(f"{name}: feed #{index} full_content must be true or false")
        timezone = item.get("timezone")
        if timezone is not None and (not isinstance(timezone, str) or not valid_timezone(timezone)):
            raise FeedListError(f"{name}: feed #{index} has an unknown timezone {timezone!r}")
        out.append(
            FeedSpec(
                url=item["url"].strip(),
                name=str(item["name"]) if item.get("name") else None,
                categories=tuple(str(c) for c in categories if str(c).strip()),
                timezone=timezone,
                full_content=full_content,
            )
        )
    return out


def parse_opml(data: bytes, name: str = "<opml>") -> list[FeedSpec]:
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False, recover=True)
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:
        raise FeedListError(f"{name}: not valid OPML ({exc})") from None
    if root is None or etree.QName(root).localname.lower() != "opml":
        raise FeedListError(f"{name}: not an OPML document (no <opml> root)")
    out: list[FeedSpec] = []
    body = root.find("body")
    if body is None:
        raise FeedListError(f"{name}: OPML without a <body>")

    def walk(node: etree._Element, folders: tuple[str, ...]) -> None:
        for outline in node.iterchildren("outline"):
            url = (outline.get("xmlUrl") or outline.get("xmlurl") or "").strip()
            title = (outline.get("title") or outline.get("text") or "").strip() or None
            if url:
                cats = list(folders)
                for cat in (outline.get("category") or "").split(","):
                    cat = cat.strip().strip("/")
                    if cat and cat not in cats:
                        cats.append(cat)
                out.append(FeedSpec(url=url, name=title, categories=tuple(cats)))
            walk(outline, folders + ((title,) if title and not url else ()))

    walk(body, ())
    return out
