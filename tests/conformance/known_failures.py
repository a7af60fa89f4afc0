"""The one list of expectations we knowingly do not meet, each with its reason.

Every entry becomes a visible `pytest.mark.xfail(strict=True)` test: when the check
starts passing, the run fails until the entry is removed. `check` is an fnmatch
pattern over the check names of that file (see the table in docs/conformance.md).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class KnownFailure:
    path: str  # corpus-relative file
    check: str  # fnmatch pattern over the file's check names
    reason: str


KNOWN_FAILURES: tuple[KnownFailure, ...] = (
    # --- our parser (feedparser underneath) ----------------------------------------------------
    KnownFailure(
        "rss/gofeed-parser/issue_217_enclosure_children.xml", "*",
        "feedparser reads the <media:title> inside an <enclosure> as the item's title, so the otherwise empty item is kept",
    ),
    KnownFailure(
        "rss/gofeed-parser/rss_channel_item_guid_naked_markup.xml", "*",
        "markup inside <guid> (<p>abc123</p>): feedparser reads <p> as an element and leaves the guid empty, so the item is skipped",
    ),
    KnownFailure(
        "rss/gofeed-parser/rss_channel_managingEditor_naked_markup.xml", "feed.author",
        "markup inside <managingEditor>: feedparser reads <p> as an element and leaves the author empty",
    ),
    KnownFailure(
        "rss/gofeed-parser/rss_channel_item_uri_at_protocol.xml", "entries[[]0].url",
        "feedparser takes the link's uri= attribute (at://…) over its text; we store no URL rather than a non-web one",
    ),
    KnownFailure(
        "atom/gofeed-parser/atom10_feed_title_xhtml_escaped_markup.xml", "feed.title",
        "ill-formed XML (<title> closed by </subtitle>): feedparser's fallback parser recovers nothing, the feed is refused",
    ),
    KnownFailure(
        "atom/gofeed-parser/atom10_feed_title_xhtml_inline_markup.xml", "feed.title",
        "ill-formed XML (<title> closed by </subtitle>): feedparser's fallback parser recovers nothing, the feed is refused",
    ),
    KnownFailure(
        "atom/gofeed-parser/issue_275_extensions_and_source.xml", "entries[[]3].content[[]0]",
        "a <content type=\"application/atom+xml\"> payload (<x/>) is read as HTML, where it has no text",
    ),
    KnownFailure(
        "other/feedparser/cdf/channel_title.xml", "expect[[]1]*",
        "CDF (Microsoft's 1997 Channel Definition Format) is not a format we accept: a document without RSS, Atom or RDF is refused",
    ),
    # --- titles: our rule differs on purpose -----------------------------------------------------
    KnownFailure(
        "sanitize/feedparser/entry_title_crazy.xml", "expect[[]1]*",
        "feedparser keeps the text of an unterminated <script and of comments in the title; our plain-text title drops them",
    ),
    KnownFailure(
        "sanitize/feedparser/feed_title_crazy.xml", "expect[[]1]*",
        "feedparser keeps the text of an unterminated <script and of comments in the title; our plain-text title drops them",
    ),
    # --- upstream values that are not ours to meet -------------------------------------------
    KnownFailure(
        "real-world/feedjira/HuffPostCanada.xml", "last entry guid (stripped)",
        "the last item has no <guid>; feedjira's id '1' is its own fallback, we store no guid (identity comes from the link)",
    ),
    # --- feedparser's own tests (passthrough) that feedparser 6.0.14 does not meet ------------
    *(
        KnownFailure(
            f"extensions/feedparser/itunes/{name}.xml", "expect[[]1]*",
            "passthrough: feedparser 6.0.14 (our pinned version) answers itunes_explicit with None; the test snapshot is newer",
        )
        for name in ("itunes_channel_explicit_no", "itunes_channel_explicit_true", "itunes_item_explicit_false", "itunes_item_explicit_no")
    ),
    KnownFailure(
        "other/feedparser/http/headers_content_location-unsafe.xml", "expect[[]1]*",
        "passthrough: upstream fetches this file over HTTP; parsed from bytes there is no document URL to fall back on "
        "when the Content-Location is unsafe",
    ),
)  # fmt: skip
