"""Format detection (gofeed's universal parser tests, README rules) and the sanitizer stress page."""

from __future__ import annotations

from tests.conformance import compare as C
from tests.conformance.model import OURS, Check, FileCtx

BASE = "https://corpus.example/"
# gofeed-universal, as the corpus README states it: file -> (format, feed title); None: a parse error.
DETECTION = {
    "atom10_feed.xml": ("atom", "Feed Title"),
    "rss_feed_bom.xml": ("rss", "Feed Title"),
    "rdf_feed.xml": ("rss", "Feed Title"),
    "json10_feed.json": ("json", "title"),
    "json11_feed.json": ("json", "title"),
    "sample.json": ("json", "title"),
    "unknown_feed.xml": None,
    "empty_feed.xml": None,
    "invalid.json": None,
}


def universal(ctx: FileCtx) -> list[Check]:
    if ctx.path.name not in DETECTION:
        return []
    ours = ctx.ours(BASE + ctx.relpath)
    expected = DETECTION[ctx.path.name]
    if expected is None:
        return [Check("a parse error", ours.error is not None, OURS, f"ours parsed it as {ours.feed.version if ours.feed else None}")]
    kind, title = expected
    version = ours.feed.version if ours.feed else ""
    # RDF (RSS 1.0) counts as RSS for gofeed; feedparser names it rss10.
    return [
        Check(f"read as {kind}", version.startswith(kind), OURS, f"ours {version!r}; {ours.error}"),
        C.check("feed.title", C.same_title(ours.title, title)),
    ]


def sanitizer_stress(ctx: FileCtx) -> list[Check]:
    """A full web page through our HTML normalization: nothing unsafe survives, text does."""
    from pipelines.html import clean_html

    ours = ctx.ours(BASE + ctx.relpath)
    clean = clean_html(ctx.body.decode("utf-8", "replace"), base_url=BASE + ctx.relpath)
    problems = C.unsafe_parts(clean.html)
    return [
        Check("a web page is not a feed", ours.error is not None, OURS, f"ours parsed {len(ours.entries)} entries"),
        Check("sanitized page: nothing unsafe left", not problems, OURS, f"{problems[:10]}"),
        Check("sanitized page: text kept", len(clean.text) > 1000, OURS, f"{len(clean.text)} characters"),
    ]
