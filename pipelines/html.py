"""Pure HTML normalization: strip site widgets, move the bio out, fix images and links, sanitize to an allow-list."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import quote, urljoin, urlsplit

import nh3
from lxml import etree
from lxml.cssselect import CSSSelector

from pipelines.resources import data_dir

# How clean_html works, and why in this order
# -------------------------------------------
#  1. parse      lxml's HTML parser (libxml2): fast, and never gives up on broken markup.
#  2. widgets    rules.remove_selectors and always-dangerous elements go first: their text must
#                not be read as a bio or a boilerplate line, and the selectors need the class
#                and id attributes that the sanitizer removes later.
#  3. unwrap     tags outside the allow-list: block-like ones (<section>, WeChat's paragraphs)
#                become <div> so that paragraphs do not run together; the others lose only the
#                tag. Before the bio, so that a marker and its paragraphs wrapped in sibling
#                <section>s become siblings.
#  4. bio        the bio collection stops at the first boilerplate line, and only once the bio
#                is gone do the copyright lines under it become the trailing run dropped below.
#  5. lazy imgs  before links are made absolute, so that the URL taken from data-src is too.
#  6. links      made absolute, then scheme-checked: joining first means "//host/x" is judged
#                by its real scheme, and pixels and iframe hosts are judged on absolute URLs.
#                Every <img> gets referrerpolicy="no-referrer" and loading="lazy" here, as
#                plain attributes that nh3 keeps in order: nh3's own
#                set_tag_attribute_values writes them in hash-map order, which changes from
#                process to process, and stored HTML must be the same on every crawl.
#  7. nesting    rebuilt where html5ever (inside nh3) or libxml2 (on a second pass) would read
#                the tree back differently (a <div> in a <p>, a link in a link, cells outside
#                rows, ...): a tree either parser rebuilds breaks idempotence.
#  8. empties    removed after every step that can empty an element (a paragraph that held
#                only a pixel).
#  9. boilerplt  trailing lines, only now: a tracking pixel, a refused iframe or an empty
#                block after the copyright line would hide it on the first pass and not the
#                second. Then <div>s around a single block are unwrapped, and whitespace is
#                folded last, because removing an element can bring two spaces together.
# 10. nh3        the allow-list sanitizer is the security boundary and the serializer. The
#                steps above already removed what it would remove, so it changes no structure
#                (which keeps a second pass identical); it still catches whatever they missed.
# 11. text       from the tree nh3 serialized, which nh3 leaves as it is: the search text is
#                what is stored (a test checks text == extract_text(html) on random input).
#
# Policy decisions:
# - data: URLs are dropped everywhere, data:image/... on <img src> included: inline images
#   bloat every stored row, are not image URLs for CleanHtml.images, and allowing "data" in
#   nh3's url_schemes would allow it on every href too.
# - Relative URLs with no base_url to resolve them stay relative (they are harmless); a
#   protocol-relative "//host/x" becomes https. An iframe needs an absolute URL on an
#   allowed host. A link whose URL is refused (or a bare <a name>) becomes its text.
# - Empty paragraphs, <p>&nbsp;</p> and <p><br></p> spacers included, are removed; table
#   cells, <img>, <hr> and media elements never count as empty.
# - Widget selectors, bio markers and boilerplate patterns only ever remove; a second pass finds
#   nothing left to remove. Positional selectors (:last-child) would break that: do not use them.

DEFAULT_RULES_PATH = data_dir() / "html_rules.toml"

_RULE_FIELDS = ("remove_selectors", "bio_markers", "boilerplate_patterns", "lazy_attributes", "iframe_hosts")


@dataclass(frozen=True)
class HtmlRules:
    """What to strip and keep: site widgets, bio markers, boilerplate lines, lazy attributes, iframe hosts."""

    remove_selectors: tuple[str, ...] = ()
    bio_markers: tuple[str, ...] = ()
    boilerplate_patterns: tuple[str, ...] = ()
    lazy_attributes: tuple[str, ...] = ()
    iframe_hosts: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # Lists from a recipe become tuples: the rules must stay hashable (compiled once each).
        for name in _RULE_FIELDS:
            value = getattr(self, name)
            if isinstance(value, str):
                raise TypeError(f"HtmlRules.{name} must be a sequence of strings, not one string")
            if not isinstance(value, tuple):
                object.__setattr__(self, name, tuple(value))


@dataclass(frozen=True)
class CleanHtml:
    """A cleaned body: sanitized HTML, its plain text, the bio moved out of it, its image URLs."""

    html: str
    text: str
    bio: str | None
    images: tuple[str, ...]


_EMPTY = CleanHtml(html="", text="", bio=None, images=())


def rules_from_mapping(data: Mapping[str, Any]) -> HtmlRules:
    """Rules from a parsed TOML table (a site recipe's [html] table or the defaults file)."""
    unknown = sorted(set(data) - set(_RULE_FIELDS))
    if unknown:
        raise ValueError(f"unknown html rule key(s): {', '.join(unknown)}")
    values: dict[str, tuple[str, ...]] = {}
    for name in _RULE_FIELDS:
        raw = data.get(name, [])
        if not isinstance(raw, list) or not all(isinstance(item, str) for item in raw):
            raise ValueError(f"html rule {name!r} must be a list of strings")
        values[name] = tuple(raw)
    rules = HtmlRules(**values)
    _compile(rules)  # an invalid selector or regex fails here, at load time, not mid-crawl
    return rules


def load_html_rules(path: str | Path) -> HtmlRules:
    """Read rules from a TOML file: top-level keys, or an [html] table when there is one."""
    with open(path, "rb") as handle:
        data = tomllib.load(handle)
    table = data.get("html", data)
    if not isinstance(table, dict):
        raise ValueError(f"{path}: [html] must be a table")  # noqa: TRY004 - callers catch ValueError for any bad rules file
    try:
        return rules_from_mapping(table)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from exc


def merge_rules(base: HtmlRules, extra: HtmlRules) -> HtmlRules:
    """The base rules plus extra's, in order, without repeats."""
    merged = {
        name: tuple(dict.fromkeys(getattr(base, name) + getattr(extra, name))) for name in _RULE_FIELDS
    }
    return HtmlRules(**merged)


# --- the allow-list ----------------------------------------------------------------------------

_ALLOWED_TAGS = frozenset(
    "p br h1 h2 h3 h4 h5 h6 blockquote pre code em strong b i u s sub sup ul ol li dl dt dd "
    "table thead tbody tfoot tr th td caption figure figcaption img picture source a hr span div "
    "abbr cite q del ins mark small time video audio iframe".split()
)
_ALLOWED_ATTRIBUTES: dict[str, set[str]] = {
    "*": {"title", "lang", "dir"},
    "a": {"href"},
    # referrerpolicy and loading are set by _fix_links on every <img>, and restricted to
    # those values in nh3 (tag_attribute_values).
    "img": {"src", "srcset", "alt", "width", "height"},
    "source": {"src", "srcset", "type", "media"},
    "video": {"src", "poster", "controls", "width", "height"},
    "audio": {"src", "controls"},
    "iframe": {"src", "width", "height", "allowfullscreen"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan"},
    "time": {"datetime"},
    "blockquote": {"cite"},
    "q": {"cite"},
    "del": {"cite", "datetime"},
    "ins": {"cite", "datetime"},
    "ol": {"start"},
}
_IMG_SET_ATTRIBUTES = {"referrerpolicy": "no-referrer", "loading": "lazy"}

# Removed with everything inside: never article text, or dangerous, whatever the rules say.
_DROP_WITH_CONTENT = frozenset(
    "script style noscript template svg math object embed applet param canvas head title meta "
    "link base frame frameset noframes noembed xmp plaintext textarea select option optgroup "
    "datalist input button keygen output dialog map area track".split()
)
# Outside the allow-list but block-like: kept as <div> so their paragraphs stay apart.
_BLOCKISH = frozenset(
    "section article header footer main aside nav address center details summary hgroup "
    "fieldset legend form dir menu listing search".split()
)
_BLOCK = frozenset(
    "p div h1 h2 h3 h4 h5 h6 blockquote pre ul ol li dl dt dd table thead tbody tfoot tr "
    "caption figure figcaption hr body".split()
) | _BLOCKISH
# Start tags that close an open <p> in an HTML5 parser: a <p> holding one is rebuilt.
_P_CLOSERS = frozenset(
    "p div h1 h2 h3 h4 h5 h6 blockquote pre ul ol li dl dt dd table figure figcaption hr".split()
)
# HTML5 "special" elements: where the search for an open <li>/<dd>/<dt> to close stops.
_SPECIAL = frozenset(
    "blockquote body caption dd div dl dt figcaption figure h1 h2 h3 h4 h5 h6 hr iframe img li "
    "ol p pre source table tbody td tfoot th thead tr ul br".split()
)
_HEADINGS = frozenset("h1 h2 h3 h4 h5 h6".split())
# Where _reopens stops looking for an open <li>, or <dd>/<dt>, to close.
_LI_STOPS = _SPECIAL - {"div", "p", "li"}
_DD_STOPS = _SPECIAL - {"div", "p", "dd", "dt"}
_NO_TAGS: frozenset[str] = frozenset()
# Void in HTML5, but libxml2 (an HTML4 parser) lets them hold what follows them.
_VOIDS_LIBXML_FILLS = ("source", "track", "wbr", "embed", "keygen")
_TABLE_PARTS = frozenset("thead tbody tfoot tr td th caption".split())
_TABLE_ANY = _TABLE_PARTS | {"table"}
_TABLE_SECTIONS = frozenset("table thead tbody tfoot".split())
_TABLE_CHILDREN = {"table": frozenset("caption thead tbody tfoot tr".split()), "tr": frozenset({"td", "th"})}
_HTML_SPACE = " \t\n\r\f"  # what an HTML5 parser leaves in place inside a table
# Parent -> children at whose start tag libxml2 closes the parent (lxml 6.1 / libxml2 2.14;
# tests/test_html.py checks this against the libxml2 actually installed).
_LIBXML_CLOSES: dict[str, frozenset[str]] = {
    parent: frozenset(children.split())
    for parent, children in {
        "a": "a table td th",
        "b": "p td th",
        "i": "p td th",
        "u": "p td th",
        "s": "p",
        "small": "p",
        "span": "td th",
        "caption": "tbody tfoot thead tr",
        "dd": "dt",
        "dt": "dd dl",
        "dl": "li",
        "li": "li",
        "ul": "pre",
        "pre": "dd dl dt li table ul",
        "h1": "li p table",
        "h2": "li p table",
        "h3": "li p table",
        "h4": "li p table",
        "h5": "li p table",
        "h6": "li p table",
        "p": " ".join(sorted(_P_CLOSERS)) + " caption tbody td tfoot th tr",
        "tbody": "tbody tfoot",
        "thead": "tbody tfoot",
        "tfoot": "tbody",
        "tr": "tbody tfoot tr",
        "td": "tbody td tfoot th tr",
        "th": "tbody td tfoot th tr",
    }.items()
}
_LIBXML_CLOSING = tuple(sorted(frozenset().union(*_LIBXML_CLOSES.values())))
_INLINE = frozenset("a b i u s small span em strong code sub sup abbr cite q del ins mark time".split())
_MAX_NESTING_ROUNDS = 8
# Content of their own: an element holding one is not empty. <br> is not content (a paragraph
# holding only <br> is a spacer) but is never removed by itself.
_KEEP_EMPTY = frozenset("img hr td th iframe video audio source".split())
# Elements with no text of their own in extract_text.
_NO_TEXT = _DROP_WITH_CONTENT | {"iframe", "video", "audio", "img", "picture", "source"}
# Neither text nor children read by _text_of, only the tail (comments and processing
# instructions are removed by the parser, but would be skipped too).
_NO_TEXT_OR_BREAK = frozenset({*_NO_TEXT, "br", etree.Comment, etree.ProcessingInstruction})

_URL_ATTRIBUTES = ("href", "src", "poster", "cite")
_URL_TAGS = tuple(sorted(tag for tag, names in _ALLOWED_ATTRIBUTES.items() if names & {*_URL_ATTRIBUTES, "srcset"}))
_WEB_SCHEMES = frozenset({"http", "https"})
_WEB_PREFIXES = ("https://", "http://")
_LINK_SCHEMES = frozenset({"http", "https", "mailto"})

_FOLD_RE = re.compile(r"[ \t\n\r\f]+")
# The ASCII whitespace str.split() splits on, but for " " and "\n".
_ODD_ASCII_SPACE = "\t\x0b\x0c\r\x1c\x1d\x1e\x1f"
_INVISIBLE_RE = re.compile("[\u200b\u200c\u200d\u2060\ufeff]")
# Characters libxml2 cannot take (NUL, C0 controls, lone surrogates, non-characters).
# C1 controls go too: invisible, and in feeds nearly always mojibake.
_BAD_CHARS_RE = re.compile("[\x00-\x08\x0b\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
_BAD_ASCII_BYTES = bytes(c for c in range(128) if _BAD_CHARS_RE.match(chr(c)))
_URL_CTRL_RE = re.compile("[\x00-\x1f\x7f]")
_URL_STRIP = "".join(map(chr, range(0x21)))  # C0 controls and space
# An absolute http(s) URL that urljoin returns as it is, whatever the base: an ASCII host (no
# IPv6 brackets, nothing for urlsplit to check), no ";params" for urlparse to split off the
# path, no empty "?" or "#" for urlunparse to drop, and no tab or newline for urlsplit to remove.
_PLAIN_WEB_URL_RE = re.compile(
    r"https?://[A-Za-z0-9.\-_~%!$&'()*+,;=:@]+(?P<path>/[^?#;\t\n\r]*)?(?:\?[^#\t\n\r]+)?(?:#[^\t\n\r]+)?"
)
# The same with no space or control character anywhere: a value it matches needs none of the
# stripping and checks _clean_url makes before it tries _PLAIN_WEB_URL_RE, and is given back as it is.
_BARE_WEB_URL_RE = re.compile(
    r"https?://[A-Za-z0-9.\-_~%!$&'()*+,;=:@]+(?:/[^?#;\x00-\x20\x7f]*)?(?:\?[^#\x00-\x20\x7f]+)?(?:#[^\x00-\x20\x7f]+)?"
)
# Far below the text node libxml2 refuses without its huge option (10 MB).
_PLAIN_TEXT_MAX = 1_000_000
_FULL_DOC_RE = re.compile(r"\s*(?:<\?xml[^>]*>\s*)?<(?:!doctype|html|head|body)\b", re.IGNORECASE)
# Everything str.strip() strips, plus zero-width characters: "no visible text".
_SPACE_CHARS = (
    " \t\n\r\f\v\x1c\x1d\x1e\x1f\x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007"
    "\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000\u200b\u200c\u200d\u2060\ufeff"
)



@dataclass(frozen=True)
class _Caseless:
    """A regex written in lower case, matched ignoring case.

    ASCII text is lower-cased and matched without re.IGNORECASE, which is several times
    faster and finds the same (IGNORECASE's non-ASCII equivalents, such as the Kelvin sign
    for "k", cannot occur in ASCII text); other text goes through the IGNORECASE regex.
    """

    caseless: re.Pattern[str]
    lower: re.Pattern[str]

    @classmethod
    def compile(cls, pattern: str) -> _Caseless:
        letters = re.sub(r"\\.", "", pattern)  # escapes such as \d or \S are not letters to match
        if letters != letters.lower():
            raise ValueError(f"not a lower-case pattern: {pattern!r}")
        return cls(re.compile(pattern, re.IGNORECASE), re.compile(pattern))

    def search(self, text: str) -> bool:
        if text.isascii():
            return self.lower.search(text.lower()) is not None
        return self.caseless.search(text) is not None

    def match(self, text: str) -> bool:
        if text.isascii():
            return self.lower.match(text.lower()) is not None
        return self.caseless.match(text) is not None


_PLACEHOLDER_RE = _Caseless.compile(
    r"placeholder|lazy|blank\.(?:gif|png)|gr[ae]y\.(?:gif|png)|spacer\.gif|pixel\.gif|"
    r"transparent\.(?:gif|png)|loading\.(?:gif|svg)|1x1"
)
_TRACKING_RE = _Caseless.compile(
    r"^https?://(?:[^/?#]*\.)?(?:"
    r"feeds\.feedburner\.com/~[rf]/|feedproxy\.google\.com/~[rf]/|feeds\.feedblitz\.com/~/i/|"
    r"stats\.wordpress\.com/|pixel\.wp\.com/|(?:ssl\.|www\.)?google-analytics\.com/|"
    r"[^/?#]*doubleclick\.net/|[^/?#]*scorecardresearch\.com/|pixel\.quantserve\.com/|"
    r"[^/?#]*feedsportal\.com/|www\.facebook\.com/tr|bat\.bing\.com/|hm\.baidu\.com/|"
    r"[^/?#]*\.cnzz\.com/|[^/?#]*amazon-adsystem\.com/|www\.assoc-amazon\.com/|medium\.com/_/stat)"
)
# One of these is in (the lower case of) every URL _PLACEHOLDER_RE finds: each of its
# alternatives holds one; tests/test_html.py checks _is_placeholder against the regex.
_PLACEHOLDER_WORDS = (
    "placeholder", "lazy", "1x1", "blank.", "ay.", "ey.", "spacer.gif", "pixel.gif", "transparent.", "loading."
)
# What must end the authority of a URL _TRACKING_RE matches: each of its alternatives is a host
# (or host pattern) followed by "/", with nothing but the authority before it. Most image URLs end
# with none of them and need no run of the regex, which backtracks at every dot of the host.
# tests/test_html.py checks _is_tracking_url against the regex.
_TRACKING_HOST_ENDS = (
    "feeds.feedburner.com", "feedproxy.google.com", "feeds.feedblitz.com", "stats.wordpress.com", "pixel.wp.com",
    "google-analytics.com", "doubleclick.net", "scorecardresearch.com", "pixel.quantserve.com", "feedsportal.com",
    "www.facebook.com", "bat.bing.com", "hm.baidu.com", ".cnzz.com", "amazon-adsystem.com", "www.assoc-amazon.com",
    "medium.com",
)
_AUTHORITY_RE = re.compile(r"https?://([^/?#]*)")
_ICON_RE = _Caseless.compile(
    r"(?:^|[/_.\-=])(?:icons?|avatars?|emojis?|emoticons?|favicons?|smilies|smiley|spacer|sprites?|"
    r"gravatar|blank|pixel)(?:[/_.\-]|\d|$)|gravatar\.com/|/wp-includes/images/"
)
# One of these is in every path _ICON_RE finds ("emoticon", "favicon" hold "icon"; "gravatar"
# holds "avatar"); tests/test_html.py checks _is_icon_path against the regex.
_ICON_WORDS = ("icon", "avatar", "emoji", "smil", "spacer", "sprite", "blank", "pixel", "/wp-includes/images/")
_EMOJI_SRC_RE = _Caseless.compile(r"s\.w\.org/images/core/emoji/|/wp-includes/images/smilies/")
_CSS_TINY_RE = re.compile(r"(?:^|;)\s*(?:width|height)\s*:\s*[01](?:\.0+)?(?:px)?\s*(?:;|$)|display\s*:\s*none", re.I)
_DIMENSION_RE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(?:px)?\s*$", re.IGNORECASE)
_SIMPLE_SELECTOR_RE = re.compile(r"([.#]?)(-?[A-Za-z_][\w-]*)|(\[)([A-Za-z_][\w-]*)\]")
_BIO_TAGS = ("p", "h1", "h2", "h3", "h4", "h5", "h6")  # where a bio marker is looked for
_BREAK = "\x00"  # a <br> or the edge of a block in _marked_text: NUL is never left in the text (_parse)
_BREAK_RE = re.compile("[ \t\n\r\f]*\x00[ \t\n\r\f]*")
_SRCSET_BREAK_RE = re.compile(r"\s|,$")  # what srcset_candidates would split a URL at
_MARKER_SEPARATORS = ":：|｜-—– "
_BOILERPLATE_MAX = 300
_MIN_IMAGE_SIDE = 50


# --- compiled rules ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Compiled:
    # Simple selectors (".class", "#id", "tag", "[attr]") are matched in one pass in Python;
    # only the rest goes through cssselect's XPath, which costs a scan of the tree per selector.
    remove_classes: frozenset[str]
    remove_ids: frozenset[str]
    remove_tags: frozenset[str]
    remove_attributes: frozenset[str]
    remove: CSSSelector | None
    bio_marker: re.Pattern[str] | None  # any marker, spaces matching any whitespace run
    bio_opening: re.Pattern[str] | None  # matches a text that holds a marker, or ends in the start of one
    bio_start: re.Pattern[str] | None  # the first character of any marker, matched as in bio_marker
    boilerplate: tuple[re.Pattern[str], ...]
    lazy_src: tuple[str, ...]
    lazy_srcset: tuple[str, ...]
    iframe_hosts: tuple[str, ...]


@lru_cache(maxsize=64)
def _compile(rules: HtmlRules) -> _Compiled:
    # Compiled once per rules object: a crawl cleans thousands of bodies with the same few rules.
    simple: dict[str, set[str]] = {".": set(), "#": set(), "": set(), "[": set()}
    complex_selectors = []
    for selector in (s.strip() for s in rules.remove_selectors):
        match = _SIMPLE_SELECTOR_RE.fullmatch(selector)
        if match:
            kind = match.group(1) if match.group(2) else "["
            name = match.group(2) or match.group(4)
            simple[kind].add(name if kind in ".#" else name.lower())
        elif selector:
            complex_selectors.append(selector)
    remove = None
    if complex_selectors:
        try:
            remove = CSSSelector(", ".join(complex_selectors), translator="html")
        except Exception as exc:  # cssselect raises several unrelated types for bad selectors
            raise ValueError(f"invalid CSS selector in {complex_selectors!r}: {exc}") from exc
    patterns = []
    for pattern in rules.boilerplate_patterns:
        try:
            patterns.append(re.compile(pattern, re.IGNORECASE))
        except re.error as exc:
            raise ValueError(f"invalid boilerplate pattern {pattern!r}: {exc}") from exc
    lazy = tuple(a.strip().lower() for a in rules.lazy_attributes if a.strip())
    return _Compiled(
        remove_classes=frozenset(simple["."]),
        remove_ids=frozenset(simple["#"]),
        remove_tags=frozenset(simple[""]),
        remove_attributes=frozenset(simple["["]),
        remove=remove,
        bio_marker=_marker_pattern(rules.bio_markers),
        bio_opening=_marker_opening_pattern(rules.bio_markers),
        bio_start=_marker_start_pattern(rules.bio_markers),
        boilerplate=tuple(patterns),
        lazy_src=tuple(a for a in lazy if not a.endswith("srcset")),
        lazy_srcset=tuple(a for a in lazy if a.endswith("srcset")),
        iframe_hosts=tuple(h.strip().lower().lstrip(".") for h in rules.iframe_hosts if h.strip()),
    )


def _marker_pattern(markers: tuple[str, ...]) -> re.Pattern[str] | None:
    words = [m.split() for m in markers if m.strip()]
    if not words:
        return None
    alternatives = sorted((r"\s+".join(map(re.escape, w)) for w in words), key=len, reverse=True)
    return re.compile("|".join(alternatives), re.IGNORECASE)


def _marker_opening_pattern(markers: tuple[str, ...]) -> re.Pattern[str] | None:
    # A marker as in _marker_pattern, or the whole text when it is the start of one: the text of a
    # paragraph before its first child that this does not match begins no marker, however long the
    # whitespace between the marker's words ("About\n the autho<b>r</b>"). Per marker, each character
    # (or run of whitespace) is followed by the rest of the marker or by the end of the text.
    chains = []
    for words in (m.split() for m in markers if m.strip()):
        atoms = [atom for i, word in enumerate(words) for atom in ([r"\s+"] if i else []) + [re.escape(c) for c in word]]
        chain = atoms[-1]
        for atom in reversed(atoms[:-1]):
            chain = f"{atom}(?:{chain}|\\Z)"
        chains.append(chain)
    return re.compile("|".join(chains), re.IGNORECASE) if chains else None


def _marker_start_pattern(markers: tuple[str, ...]) -> re.Pattern[str] | None:
    # A text whose first character it does not match opens no bio: a look at one character
    # instead of reading a paragraph whole (each literal ignores case as in _marker_pattern).
    starts = sorted({re.escape(m.strip()[0]) for m in markers if m.strip()})
    return re.compile("|".join(starts), re.IGNORECASE) if starts else None


@lru_cache(maxsize=1)
def _xpaths() -> dict[str, etree.XPath]:
    # Each is one walk of the tree in C instead of a Python loop with a generator per element.
    closers = " or ".join(f"self::{tag}" for tag in sorted(_P_CLOSERS))
    return {
        "p_with_blocks": etree.XPath(f"descendant::p[descendant::*[{closers}]]"),
        "nested_links": etree.XPath("descendant::a[ancestor::a]"),
    }


@lru_cache(maxsize=1)
def _cleaner() -> nh3.Cleaner:
    return nh3.Cleaner(
        tags=set(_ALLOWED_TAGS),
        clean_content_tags={"script", "style", "noscript", "template", "svg", "math", "object",
                            "embed", "textarea", "select", "button", "title", "xmp", "noembed",
                            "noframes", "applet"},
        attributes={tag: set(names) for tag, names in _ALLOWED_ATTRIBUTES.items()},
        # Not set_tag_attribute_values: nh3 adds those in hash-map order, which changes from
        # process to process, and stored HTML must not change between crawls.
        tag_attribute_values={"img": {name: {value} for name, value in _IMG_SET_ATTRIBUTES.items()}},
        url_schemes=set(_LINK_SCHEMES),
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    )


def _fold_strip(text: str, chars: str) -> str:
    """Whitespace runs folded to one space, then chars (which include the space) stripped from both ends.

    The same as re.sub(r"\\s+", " ", text).strip(chars): str.split() splits on what \\s matches,
    and the space the regex would leave at an end is stripped anyway. The regex costs a
    replacement per space.
    """
    return " ".join(text.split()).strip(chars)


# The defaults, also kept as data (with comments) in data/html_rules.toml: built into the code
# so that the module works where that file is absent (a scrapyd egg holds only the packages).
# tests/test_html.py checks that the two say the same.
DEFAULT_RULES: HtmlRules = HtmlRules(
    remove_selectors=(
        ".support-author", ".support-title", ".button--pay", ".reward", ".reward-box", ".article-reward",
        ".dashang", ".donate", ".share", ".post-share", ".article-share", ".share-buttons",
        ".social-share", ".sharedaddy", ".sd-sharing-enabled", ".wp-share",
        ".addtoany_share_save_container", ".a2a_kit", ".shareaholic-canvas", "#jp-post-flair",
        ".jp-relatedposts", ".related-posts", ".yarpp-related", ".crp_related", ".follow", ".follow-us",
        ".qrcode", ".qr-code", "#js_pc_qr_code", ".feedflare", ".adsbygoogle", ".wordads-ad-wrapper",
        ".screen-reader-text", ".more-link", "button", "form", "svg", "[hidden]",
    ),
    bio_markers=(
        "#专栏作家#", "#专栏作者#", "作者简介", "作者介绍", "关于作者", "About the author",
    ),
    boilerplate_patterns=(
        "本文.{0,120}?发布于.{0,60}?未经.{0,30}?禁止.{0,10}?转载", "题图(?:来自|来源|由|[:：]).{0,120}",
        "The post .{1,300} appeared first on .{1,200}",
    ),
    lazy_attributes=(
        "data-src", "data-original", "data-actualsrc", "data-lazy-src", "data-lazyload", "data-lazy",
        "data-original-src", "data-echo", "data-srcset", "data-lazy-srcset",
    ),
    iframe_hosts=(
        "youtube.com", "youtube-nocookie.com", "player.vimeo.com", "player.bilibili.com", "v.qq.com",
        "player.youku.com", "w.soundcloud.com", "open.spotify.com",
    ),
)
_compile(DEFAULT_RULES)  # fails at import, not mid-crawl, if an edit broke a selector or pattern


# --- public functions --------------------------------------------------------------------------


def clean_html(
    html: str | bytes | None,
    *,
    base_url: str | None = None,
    rules: HtmlRules = DEFAULT_RULES,
    max_images: int | None = None,
) -> CleanHtml:
    """Sanitize a stored body; return it with its plain text, the bio moved out, and its images.

    `max_images` keeps only the first that many image URLs (None: all of them): the html stage
    reads the first at most, and judging each image costs a few microseconds.
    """
    cleaned, bio, body, text = _clean(html, base_url, rules)
    if not cleaned:
        return CleanHtml(html="", text="", bio=bio, images=()) if bio else _EMPTY
    # Images and text read from the tree nh3 serialized, not from a parse of its output: nh3
    # changes no structure there (the tests check text == extract_text(html)), and a parse costs time.
    images: dict[str, None] = {}
    if max_images is None or max_images > 0:
        for img in body.iter("img"):
            # every <img> left passed _is_tracking in _fix_links, with this same src
            src = img.get("src") or ""
            if (
                src
                and src not in images
                and _is_meaningful_image(src, img.get("width"), img.get("height"), tracking_checked=True)
            ):
                images[src] = None
                if len(images) == max_images:
                    break
    return CleanHtml(html=cleaned, text=text, bio=bio, images=tuple(images))


def normalize_html(
    html: str | bytes | None, *, base_url: str | None = None, rules: HtmlRules = DEFAULT_RULES
) -> str:
    """clean_html(...).html; idempotent: normalize_html(normalize_html(x)) == normalize_html(x)."""
    return _clean(html, base_url, rules)[0]


def cleaned_text(
    html: str | bytes | None, *, base_url: str | None = None, rules: HtmlRules = DEFAULT_RULES
) -> str:
    """clean_html(...).text without serializing or sanitizing the HTML: for a summary, whose HTML is not kept."""
    return _clean(html, base_url, rules, serialize=False)[3]


def extract_text(html: str | bytes | None) -> str:
    """Plain text of any HTML: one line per paragraph, heading, list item or <br>; no script text."""
    body = _parse(html)
    return _text_of(body) if body is not None else ""


def find_cover_image(html: str | bytes | None, *, base_url: str | None = None) -> str | None:
    """The first meaningful image: not a pixel, icon, avatar, emoji or anything under 50px."""
    body = _parse(html)
    if body is None:
        return None
    compiled = _compile(DEFAULT_RULES)
    _drop_widgets(body, compiled)
    base = _usable_base(base_url)
    for img in body.iter("img"):
        _fix_lazy(img, compiled, base)
        src = _clean_url(img.get("src"), base, _WEB_SCHEMES)
        if not src or _is_tracking(img, src):
            continue
        if _is_meaningful_image(src, img.get("width"), img.get("height")):
            return src
    return None


# --- the pipeline ------------------------------------------------------------------------------


def _clean(
    html: str | bytes | None, base_url: str | None, rules: HtmlRules, *, serialize: bool = True, again: bool = True
) -> tuple[str, str | None, Any, str]:
    """The sanitized HTML, the bio, the cleaned tree the HTML was serialized from, and its text.

    With serialize=False the HTML is "" and only the tree and text are of use: nh3 changes no text of it.
    """
    body = _parse(html)
    if body is None:
        return "", None, None, ""
    # A Python proxy for every element, alive through every pass below: lxml then hands the
    # same object back on each walk instead of building one per element and walk.
    # The first pass below walks this same list instead of the tree again.
    proxies = list(body.iter(etree.Element))
    compiled = _compile(rules)
    bio = None
    rebuilt = False
    # A <body> with text only (most summaries) has no widget, bio, image, link or nesting for
    # the steps below to find: only a widget rule on <body> itself could match it.
    if len(body) or len(body.attrib) or "body" in compiled.remove_tags:
        _unwrap_disallowed(_drop_widgets(body, compiled, proxies))
        base = _usable_base(base_url)
        for el in list(body.iter("img", "iframe", "source", "video", "audio")):
            _fix_lazy(el, compiled, base)
            if el.tag == "img":
                _replace_emoji(el)  # before the bio: the emoji is text a second pass reads there
        bio, _ = _move_bio(body, compiled)
        _fix_links(body, base, compiled)
        rebuilt = _fix_nesting(body)
    emptied: list[Any] = []
    if not _remove_empty(body, emptied):
        return "", bio, None, ""
    if compiled.bio_marker is not None and (rebuilt or (emptied and _in_bio_candidate(emptied))):
        # The text the bio was looked for in may have changed since, as a second pass will read it:
        # an element holding only spaces or invisible characters went (an inline one leaving a
        # space), so that "About<span>\u200b</span>the author" is a marker now, or an empty block
        # no longer splits a word, or text moved out of a table.
        more, removed = _move_bio(body, compiled)
        if removed:
            bio = "\n".join(part for part in (bio, more) if part) or None
            if not _remove_empty(body):
                return "", bio, None, ""
    _unwrap_wrappers(body)
    # Only now, on the tree as a second pass will see it: empties gone, wrappers unwrapped.
    while _drop_trailing_boilerplate(body, compiled):
        # a bio marker may stand alone now that the line after it has gone
        more, removed = _move_bio(body, compiled)
        bio = "\n".join(part for part in (bio, more) if part) or None
        if not _remove_empty(body):
            return "", bio, None, ""
        _unwrap_wrappers(body)
        if not removed:
            break
    text = _fold_and_text(body)
    if not serialize:
        return "", bio, body, text
    body.attrib.clear()
    serialized = etree.tostring(body, encoding="unicode", method="html", with_tail=False)
    inner = serialized[len("<body>") : -len("</body>")]
    cleaned: str = _cleaner().clean(inner) if inner else ""
    if again and _lost_urls(inner, cleaned):
        # nh3 refused a URL our checks let through (a host the URL standard forbids, like "a b.com" or
        # "a<b.com"), leaving a link to nowhere or an image of nothing that another pass would unwrap
        # or drop. Make that pass now: cleaning must give the same HTML when it runs on its own output.
        cleaned, more, body, text = _clean(cleaned, base_url, rules, serialize=serialize, again=False)
        bio = "\n".join(part for part in (bio, more) if part) or None
    return cleaned, bio, body, text


def _lost_urls(before: str, after: str) -> bool:
    """Whether nh3 dropped a URL attribute: fewer href= or src= in its output than in what it was given."""
    return after.count(" href=") < before.count(" href=") or after.count(" src=") < before.count(" src=")


_CHAR_REF_RE = re.compile(r"&#(?:[xX]([0-9a-fA-F]{1,8})|([0-9]{1,10}));?")
_REF_START_RE = re.compile(r"&(?:#(?:[xX][0-9a-fA-F]*|[0-9]*))?$")  # what a reference's text may start with
_REF_START_ENDS = frozenset("&#xX0123456789abcdefABCDEF")
_LF_REF_RE = re.compile(r"&#(?:[xX]0{0,7}[aA](?![0-9a-fA-F])|0{0,8}10(?![0-9]))")


def drop_bad_char_refs(text: str) -> str:
    """Numeric references to characters XML forbids, made harmless as a browser reads them.

    libxml2 decodes "&#x1;" into a control character that lxml then refuses to write back
    (ValueError) and that must not reach stored HTML. As in HTML5, &#128;-&#159; mean their
    windows-1252 characters (&#147; is a curly quote); the other forbidden ones are dropped.
    &#13; (a carriage return, which lxml writes back raw) becomes the line break HTML parsers
    make of a raw one: the stored HTML must not turn it into another character when read again.
    """
    # "#" first: a one-character search is a memchr, a two-character one costs some 20 times more
    if "#" not in text or "&#" not in text:
        return text
    return _CHAR_REF_RE.sub(_char_ref, text)


def _char_ref(match: re.Match[str]) -> str:
    hex_digits, digits = match.groups()
    code = int(hex_digits, 16) if hex_digits else int(digits)
    if code > 0x10FFFF:
        return _dropped(match)
    if 0x80 <= code <= 0x9F:
        char = bytes([code]).decode("cp1252", errors="replace")
        return _dropped(match) if char == "\ufffd" else char
    if code == 0x0C:
        return " "
    if code == 0x0D:
        # A carriage return, which html5ever (nh3) reads as the line break libxml2 makes of a raw one:
        # a newline now, or nothing before the newline that ends the same line.
        text, end = match.string, match.end()
        return "" if text[end : end + 1] in ("\n", "\r") or _LF_REF_RE.match(text, end) else "\n"
    return _dropped(match) if _BAD_CHARS_RE.match(chr(code)) else match.group(0)


def _dropped(match: re.Match[str]) -> str:
    """Nothing for a reference dropped; U+FFFD where the text around would then make one, as "&&#1;#2;" would."""
    start, text = match.start(), match.string
    if not start or text[start - 1] not in _REF_START_ENDS:
        return ""  # the character before can end no start of a reference
    return "\ufffd" if _REF_START_RE.search(text, max(0, start - 16), start) else ""


def _parse(html: str | bytes | None) -> Any:
    """The <body> element of html, or None when there is nothing usable. Never raises."""
    if html is None:
        return None
    if isinstance(html, (bytes, bytearray)):
        raw = bytes(html)
        try:
            html = raw.decode("utf-8")
        except UnicodeDecodeError:
            html = raw.decode("cp1252", errors="replace")
    if not isinstance(html, str):
        return None
    html = html.replace("\x0c", " ")
    if not html.isascii() or len(html.encode("ascii").translate(None, _BAD_ASCII_BYTES)) != len(html):
        html = _BAD_CHARS_RE.sub("", html)  # a scan costs 4x the translate: ASCII text tries that first
    # After the characters go: "&#\x7f1;" is a reference to U+0001 once the DEL has gone.
    html = drop_bad_char_refs(html)
    if not html.strip(_SPACE_CHARS):
        return None
    if "<" not in html and "&" not in html and len(html) <= _PLAIN_TEXT_MAX:
        # Plain text (most summaries): the tree libxml2 builds for it, without libxml2, which
        # changes nothing in it but its line ends.
        root = etree.Element("html")
        body = etree.SubElement(root, "body")
        body.text = html.replace("\r\n", "\n").replace("\r", "\n")
        return body
    if not _FULL_DOC_RE.match(html):
        # no closing tags: after an unclosed <iframe> or <textarea> they would be read as its text
        html = "<html><body>" + html
    parser = _html_parser()
    try:
        root = etree.fromstring(html, parser)
    except Exception:  # noqa: BLE001 - libxml2 reports unusable input with several exception types
        return None
    if _stopped_too_deep(parser):  # about 1 us: the log is empty for most bodies
        root = _read_deep(html)
    if root is None:
        return None
    body = next(root.iterchildren("body"), None)  # root.find("body"), without ElementPath's overhead
    if body is None and root.tag == "body":
        body = root
    if body is not None:
        _unnest_voids(body)
    return body


# libxml2 stops reading at 256 levels of nesting, even with recover=True: it reports a fatal error
# and keeps the tree it had, the empty shells of the elements opened so far. A body of a few hundred
# unclosed <div>, <font> or <li> tags, which careless editors do write, would lose all its text.
# Such HTML is read again with libxml2's huge_tree, which allows 2,048 levels, and flattened to
# about _FLAT_DEPTH levels, so that the passes below (some recursive) and a second cleaning of the
# result see an ordinary tree, and nh3 (whose time grows with the square of the depth) a shallow one.
_FLAT_DEPTH = 200


def _html_parser(*, huge_tree: bool = False) -> Any:
    # A parser is cheap to make and not safe to share between threads: one per call.
    return etree.HTMLParser(remove_comments=True, remove_pis=True, no_network=True, recover=True, huge_tree=huge_tree)


def _stopped_too_deep(parser: Any) -> bool:
    return any(error.message.startswith("Excessive depth") for error in parser.error_log)


def _read_deep(html: str) -> Any:
    """The tree of html nested deeper than libxml2 reads by default, at most _FLAT_DEPTH + 2 levels deep."""
    # Past 2,048 levels libxml2 stops again, and what it read until then is kept. (nh3's html5ever
    # reads any depth, but in time that grows with the square of it: 15 s for 60,000 levels.)
    parser = _html_parser(huge_tree=True)
    try:
        root = etree.fromstring(html, parser)
    except Exception:  # noqa: BLE001 - libxml2 reports unusable input with several exception types
        return None
    if root is None:
        return None
    depth = {root: 0}
    anchors = []
    for el in root.iter(etree.Element):  # document order: a parent before its children
        if el is not root:
            depth[el] = level = depth[el.getparent()] + 1
            if level == _FLAT_DEPTH and len(el):
                anchors.append(el)
    for anchor in anchors:
        _flatten_into(anchor)
    return root


def _flatten_into(anchor: Any) -> None:
    """Make what anchor holds at most two levels deep, in one pass over it.

    What holds at most one level of elements (a paragraph with its links, a link, an image) is kept
    whole; every other element is unwrapped, its text and tail kept in place, and what must go with
    its content (scripts and the like) is dropped, as the widget pass would. Unwrapping one level
    at a time would move a deep element once per level: quadratic in the depth.
    """
    height: dict[Any, int] = {}
    for el in reversed(list(anchor.iter(etree.Element))):  # children before their parent
        height[el] = 1 + max((height[child] for child in el), default=0)
    pieces: list[Any] = []  # texts and kept elements, in document order
    stack: list[Any] = list(reversed(anchor))
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            pieces.append(item)
        elif item.tag in _DROP_WITH_CONTENT or height[item] <= 2:
            if item.tag not in _DROP_WITH_CONTENT:
                pieces.append(item)
            if item.tail:
                pieces.append(item.tail)
        else:  # unwrapped: its text, then its children, then its tail
            if item.tail:
                stack.append(item.tail)
            stack.extend(reversed(item))
            if item.text:
                stack.append(item.text)
    for child in list(anchor):
        anchor.remove(child)
    last = None
    for piece in pieces:
        if isinstance(piece, str):
            if last is None:
                anchor.text = (anchor.text or "") + piece
            else:
                last.tail = (last.tail or "") + piece
        else:
            anchor.append(piece)  # out of the detached wrapper that held it
            piece.tail = None
            last = piece


def _unnest_voids(body: Any) -> None:
    """Move out what libxml2 put inside HTML5 void elements it does not know as void.

    libxml2 reads "<source>a<img>" as <source>a<img></source>; to a browser (and to html5ever)
    the text and image follow the <source>. Left inside, they would be dropped with an
    <embed>, skipped as text of a <source>, and read back differently on a second pass.
    """
    for el in list(body.iter(*_VOIDS_LIBXML_FILLS)):
        if not el.text and not len(el):
            continue
        text, el.text = el.text, None
        tail, el.tail = el.tail, None
        anchor = el
        for child in list(el):
            anchor.addnext(child)  # the child's tail moves with it
            anchor = child
        el.tail = text
        if tail:
            anchor.tail = (anchor.tail or "") + tail


def _drop_widgets(body: Any, compiled: _Compiled, elements: list[Any] | None = None) -> list[Any]:
    """Remove widgets and always-dangerous elements; return the elements outside the allow-list.

    Those are found in the same walk, in document order, and may include elements inside what was
    removed: unwrapping one of them changes nothing in body. `elements`, when given, is
    list(body.iter(etree.Element)) of the tree as it is.
    """
    tags = _DROP_WITH_CONTENT | compiled.remove_tags
    classes, ids, attributes = compiled.remove_classes, compiled.remove_ids, compiled.remove_attributes
    doomed, disallowed = [], []
    for el in body.iter(etree.Element) if elements is None else elements:
        tag = el.tag
        if tag in tags:
            doomed.append(el)
            continue
        if tag not in _ALLOWED_TAGS and el is not body:
            disallowed.append(el)
        # The names, in one call (el.attrib would build a proxy): most elements have none, and
        # need no get at all.
        keys = el.keys()
        if not keys:
            continue
        if classes and "class" in keys:
            names = el.get("class")
            if names and not classes.isdisjoint(names.split()):
                doomed.append(el)
                continue
        if ids and "id" in keys and el.get("id") in ids:
            doomed.append(el)
            continue
        for name in attributes:
            if name in keys:
                doomed.append(el)
                break
    if compiled.remove is not None:
        doomed.extend(el for el in compiled.remove(body) if el is not body)
    for el in doomed:
        _drop(el)
    for el in list(body.iter("iframe", "video", "audio")):  # a list: a live walk stops at a removed child
        # Fallback content: never shown by a browser that plays them, no line of the body (and
        # raw text in an <iframe> to an HTML5 parser). Only a player's <source>s stay.
        el.text = None
        for child in list(el):
            if child.tag != "source" or el.tag == "iframe":
                el.remove(child)  # with its tail, which is fallback text too
            else:
                child.tail = None
    return disallowed


def _drop(el: Any) -> None:
    """Remove el and what it holds, keeping its tail text; a no-op once it is detached."""
    parent = el.getparent()
    if parent is None:
        return
    if el.tail:
        _append_text_before(el, el.tail)
    parent.remove(el)


def _unwrap(el: Any) -> None:
    """Remove the tag of el, keeping its text, children and tail in place."""
    parent = el.getparent()
    if parent is None:
        return
    if el.text:
        _append_text_before(el, el.text)
    tail, el.tail = el.tail, None
    for child in list(el):
        el.addprevious(child)  # moves the child's tail with it; no index lookups, which are O(n)
    if tail:
        _append_text_before(el, tail)
    parent.remove(el)


def _append_text_before(el: Any, text: str) -> None:
    previous = el.getprevious()
    if previous is not None:
        previous.tail = (previous.tail or "") + text
    else:
        parent = el.getparent()
        parent.text = (parent.text or "") + text


def _text_content(el: Any) -> str:
    # "".join(el.itertext()), written by libxml2 in one call: a third of the cost of the iterator
    text: str = etree.tostring(el, method="text", encoding="unicode", with_tail=False)
    return text


def _unwrap_disallowed(elements: list[Any]) -> None:
    for el in elements:
        if el.tag in _BLOCKISH:
            el.tag = "div"
        else:
            _unwrap(el)


# --- bio and boilerplate -----------------------------------------------------------------------


def _marker_rest(text: str, marker: re.Pattern[str]) -> str | None:
    """None when text does not open a bio; else what follows the marker (often "")."""
    stripped = text.strip(_SPACE_CHARS)
    match = marker.match(stripped)
    if match is None:
        return None
    rest = stripped[match.end() :]
    if not rest.strip(_SPACE_CHARS + ":："):
        return ""  # the marker alone, as a heading or paragraph
    if rest.lstrip(_SPACE_CHARS)[:1] in (":", "："):
        return _fold_strip(rest, _MARKER_SEPARATORS + _SPACE_CHARS)
    return None  # "About the authors of this study ...": prose, not a marker


def _move_bio(body: Any, compiled: _Compiled) -> tuple[str | None, bool]:
    """Remove each bio marker and the paragraphs after it; their text, and whether any went."""
    marker, start, opening = compiled.bio_marker, compiled.bio_start, compiled.bio_opening
    lines: list[str] = []
    removed = False
    # Again until none is left: removing one can leave another marker standing alone.
    while (
        marker is not None
        and start is not None
        and opening is not None
        and _move_one_bio_sweep(body, compiled, (marker, start, opening), lines)
    ):
        removed = True
    return "\n".join(line for line in lines if line) or None, removed


def _move_one_bio_sweep(
    body: Any, compiled: _Compiled, patterns: tuple[re.Pattern[str], re.Pattern[str], re.Pattern[str]], lines: list[str]
) -> bool:
    marker, start, opening = patterns
    found = False
    for el in list(body.iter(*_BIO_TAGS)):
        first = (el.text or "").strip(_SPACE_CHARS)
        if first:
            if not opening.match(first):
                continue  # the common case, decided without reading the whole paragraph
        elif not start.match(_opening(el)):
            continue  # no marker starts its text: most paragraphs that open with a link or <strong>
        if not _attached(el, body):
            continue
        rest = None
        for reading in _readings(_marked_text(el)):
            if (rest := _marker_rest(reading, marker)) is not None:
                break
        if rest is None:
            continue
        if rest:
            lines.append(rest)
        taken = [el]
        sibling = el.getnext()
        while sibling is not None and sibling.tag in ("p", "div"):
            readings = [_fold_strip(reading, _SPACE_CHARS) for reading in _readings(_marked_text(sibling))]
            text = readings[0]
            if text and (
                any(_is_boilerplate(reading, compiled) or _marker_rest(reading, marker) is not None for reading in readings)
                or any(True for _ in sibling.iter(*_HEADINGS, "hr", "table", "figure"))
            ):
                break
            if text:
                lines.append(_text_of(sibling))
            taken.append(sibling)
            sibling = sibling.getnext()
        for item in taken:
            _drop(item)
        found = True
    return found


def _in_bio_candidate(elements: list[Any]) -> bool:
    """Whether one of elements is, or is inside, an element _move_bio reads (a paragraph or heading)."""
    # Those detached since were emptied in turn: their parents are in elements too.
    return any(el.tag in _BIO_TAGS or next(el.iterancestors(*_BIO_TAGS), None) is not None for el in elements)


def _opening(el: Any) -> str:
    """The text of el from its first character that is not a space (or ""), up to where that text node ends."""
    # What the first non-blank text of el.itertext() gives, read in itertext's order (the text, then
    # each child's subtree and tail): most paragraphs decide at their first child, and an itertext
    # iterator costs more to set up than that.
    text: str | None = el.text
    if text and (text := text.lstrip(_SPACE_CHARS)):
        return text
    for child in el:
        # a comment's text is not text (only its tail is): none is left after _parse, but be exact
        if isinstance(child.tag, str) and (text := _opening(child)):
            return text
        text = child.tail
        if text and (text := text.lstrip(_SPACE_CHARS)):
            return text
    return ""


def _attached(el: Any, body: Any) -> bool:
    node = el
    while node is not None:
        if node is body:
            return True
        node = node.getparent()
    return False


def _is_boilerplate(text: str, compiled: _Compiled) -> bool:
    return len(text) <= _BOILERPLATE_MAX and any(p.match(text) for p in compiled.boilerplate)


@dataclass
class _Line:
    """The last line of a body: one block element, or a run of inline content between blocks."""

    # In document order: (element, None) for an element, (owner, "text" / "tail") for loose text.
    pieces: list[tuple[Any, str | None]]

    def texts(self) -> list[str]:
        """Its text, folded, in each of _readings."""
        parts = [_marked_text(el) if attr is None else getattr(el, attr) or "" for el, attr in self.pieces]
        return [_fold_strip(reading, _SPACE_CHARS) for reading in _readings("".join(parts))]

    def has_media(self) -> bool:
        # tags tested in Python: lxml's iter(*tags) sets up a matcher per call that costs more
        return any(node.tag in _KEEP_EMPTY for el, attr in self.pieces if attr is None for node in el.iter())

    def only_line_breaks(self) -> bool:
        return all(attr is None and el.tag == "br" for el, attr in self.pieces)

    def drop(self) -> None:
        for el, attr in self.pieces:
            if attr is not None:
                setattr(el, attr, None)
        for el, attr in self.pieces:
            if attr is None:
                _drop(el)


def _marked_text(el: Any) -> str:
    """The text of el, with _BREAK for each <br> and at each end of a block inside it (see _readings)."""
    if el.tag == "br":
        return _BREAK
    if not len(el):
        return el.text or ""
    if not any(node.tag in _BLOCK or node.tag == "br" for node in el.iterdescendants()):
        return _text_content(el)
    out: list[str] = []
    _append_marked_text(el, out)
    return "".join(out)


def _append_marked_text(el: Any, out: list[str]) -> None:
    if el.text:
        out.append(el.text)
    for child in el:
        tag = child.tag
        if tag == "br":
            out.append(_BREAK)
        elif tag in _BLOCK:
            out.append(_BREAK)
            _append_marked_text(child, out)
            out.append(_BREAK)
        elif isinstance(tag, str):  # a comment's text is not text (none is left after _parse)
            _append_marked_text(child, out)
        if child.tail:
            out.append(child.tail)


def _readings(text: str) -> tuple[str, ...]:
    r"""The ways a text _marked_text marked is read for a bio marker or a boilerplate line: its breaks as
    spaces, and (when it has any) as nothing, with the whitespace next to them.

    Folding removes the whitespace next to a <br> or a block, so that "appeare\n<br>d" is
    "appeare<br>d" on a second pass: each reading is the same on both, where the text as it stands
    would be "appeare d" on one and "appeared" on the other. Both are tried, as the text as it stands
    was: "题图<br>来自" holds "题图来自", and "appeared first on\n<br>X" holds "appeared first on X".
    """
    if _BREAK not in text:
        return (text,)
    return text.replace(_BREAK, " "), _BREAK_RE.sub("", text)


def _holds_block(el: Any) -> bool:
    return el.tag in _BLOCK or _has_block_inside(el)


def _has_block_inside(el: Any) -> bool:
    # Not el.iterdescendants(*_BLOCK): its matcher for 40 tags costs 9 us a call, more than
    # testing the tags of a paragraph's descendants in Python (the first one usually decides).
    return any(node.tag in _BLOCK for node in el.iterdescendants())


def _last_line(container: Any) -> _Line | None:
    """The last line in container, read as a browser lays it out; None when it is empty.

    Lines are found through any wrapper, so they are the same whether or not a wrapper is
    unwrapped later: a second pass must see the same last line as the first.
    """
    pieces: list[tuple[Any, str | None]] = []
    for child in reversed(list(container)):
        if child.tail and child.tail.strip(_SPACE_CHARS):
            pieces.append((child, "tail"))
        if not _holds_block(child):
            pieces.append((child, None))
            continue
        if pieces:
            break  # the inline run after this block is the last line
        if child.tag == "table" or not _has_block_inside(child):
            return _Line([(child, None)])
        inner = _last_line(child)
        return inner if inner is not None else _Line([(child, None)])  # emptied: drop it too
    else:
        if container.text and container.text.strip(_SPACE_CHARS):
            pieces.append((container, "text"))
    if not pieces:
        return None
    pieces.reverse()
    return _Line(pieces)


def _drop_trailing_boilerplate(body: Any, compiled: _Compiled) -> bool:
    """Drop the boilerplate lines (and emptied wrappers) that end the body; True when any went."""
    if not compiled.boilerplate:
        return False
    dropped = False
    while (line := _last_line(body)) is not None:
        if line.has_media():
            break
        texts = line.texts()
        text = texts[0]
        if text and not any(_is_boilerplate(reading, compiled) for reading in texts):
            break
        if not text and line.only_line_breaks():
            break  # a line break at the end: not worth a pass of its own
        line.drop()
        dropped = True
    return dropped


# --- images and links --------------------------------------------------------------------------


def _fix_lazy(el: Any, compiled: _Compiled, base: str | None) -> None:
    """Take the real URL a lazy-loading script would have put in src / srcset.

    URLs are judged (and src is kept) as _fix_links will write them, which is how a second pass
    reads them: "photo.jpg" under a base ".../lazy-sunday/" is a placeholder's URL, and an emoji's
    URL with a newline in "emoji" is an emoji's.
    """
    src = (el.get("src") or "").strip()
    if src and _judged_otherwise(src) and (absolute := _clean_url(src, base, _WEB_SCHEMES)) is not None:
        if absolute != src:
            el.set("src", absolute)
        src = absolute
    placeholder = not src or _is_placeholder(src)
    if placeholder:
        for name in compiled.lazy_src:
            value = (el.get(name) or "").strip()
            if value:
                if _judged_otherwise(value):
                    value = _clean_url(value, base, _WEB_SCHEMES) or value
                if not _is_placeholder(value):
                    el.set("src", value)
                    placeholder = False
                    break
    if not el.get("srcset"):
        for name in compiled.lazy_srcset:
            value = (el.get(name) or "").strip()
            if value:
                el.set("srcset", value)
                break
    if placeholder and el.tag == "img" and el.get("srcset"):
        best = _best_candidate(el.get("srcset"))
        if best:
            el.set("src", best)


def _judged_otherwise(url: str) -> bool:
    """False when _clean_url would give url back, or at most drop an empty "?" or "#" from it (most URLs).

    Then what _fix_lazy and _replace_emoji look for in it is there as much as in what _fix_links writes.
    An absolute http(s) URL with no tab or line break (stripped of spaces and refused controls before)
    is only ever parsed and written back; a data: URL is refused, and judged as it is.
    """
    if url.startswith(_WEB_PREFIXES):
        return "\n" in url or "\t" in url or "\r" in url
    return url[:5].lower() != "data:"


def _is_placeholder(src: str) -> bool:
    lowered = src.lower()
    if lowered.startswith("data:") or lowered == "about:blank":
        return True
    if src.isascii():
        for word in _PLACEHOLDER_WORDS:
            if word in lowered:
                break
        else:
            return False  # most image URLs: none of what the regex needs is there
    return _PLACEHOLDER_RE.search(src)


def srcset_candidates(srcset: str) -> list[tuple[str, str]]:
    """(url, descriptor) pairs, following the HTML srcset parsing rules (URLs may hold commas)."""
    candidates = []
    pos, end = 0, len(srcset)
    while pos < end:
        while pos < end and (srcset[pos].isspace() or srcset[pos] == ","):
            pos += 1
        start = pos
        while pos < end and not srcset[pos].isspace():
            pos += 1
        url = srcset[start:pos]
        descriptor = ""
        if url.endswith(","):
            url = url.rstrip(",")
        else:
            start = pos
            while pos < end and srcset[pos] != ",":
                pos += 1
            descriptor = srcset[start:pos].strip()
        if url:
            candidates.append((url, descriptor))
    return candidates


def _best_candidate(srcset: str) -> str | None:
    best: tuple[int, float, str] | None = None
    for url, descriptor in srcset_candidates(srcset):
        rank = (0, 1.0)
        match = re.fullmatch(r"(\d+(?:\.\d+)?)([wx])", descriptor.lower())
        if match:
            rank = (1 if match.group(2) == "w" else 0, float(match.group(1)))
        if best is None or rank > best[:2]:
            best = (rank[0], rank[1], url)
    return best[2] if best else None


def _usable_base(base_url: str | None) -> str | None:
    if not base_url or not isinstance(base_url, str):
        return None
    base = _URL_CTRL_RE.sub("", base_url.strip())
    try:
        parts = urlsplit(base)
    except ValueError:
        return None
    return base if parts.scheme.lower() in _WEB_SCHEMES and parts.netloc else None


def _clean_url(value: str | None, base: str | None, schemes: frozenset[str]) -> str | None:
    """An absolute (or, without a base, unresolvable relative) URL with an allowed scheme, else None."""
    if value is None:
        return None
    if _BARE_WEB_URL_RE.fullmatch(value):
        return value  # most URLs
    # Browsers drop leading/trailing C0 controls and spaces and every tab and newline, so
    # "jav&#x09;ascript:" is javascript: to them; judge the URL the way they will read it.
    url = value.strip(_URL_STRIP).replace("\t", "").replace("\n", "").replace("\r", "")
    if not url or _URL_CTRL_RE.search(url):
        return None
    if _PLAIN_WEB_URL_RE.fullmatch(url):
        return url  # what urljoin and urlsplit below would give back unchanged: most URLs
    if url.startswith("//") and base is None:
        url = "https:" + url
    try:
        if base is not None:
            url = urljoin(base, url)
        scheme = urlsplit(url).scheme.lower()
    except ValueError:
        return None
    if scheme:
        return url if scheme in schemes else None
    # Still relative: no base to resolve it. A "scheme" urlsplit refused (bad characters)
    # is no scheme to a browser either, but reject anything that still looks like one.
    head = url.split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]
    return None if ":" in head else url


def _clean_srcset(value: str, base: str | None) -> str | None:
    parts = []
    for url, descriptor in srcset_candidates(value):
        absolute = _clean_url(url, base, _WEB_SCHEMES)
        if absolute:
            if " " in absolute or absolute[-1] == "," or not absolute.isprintable():
                # from a base with a space in it: a space would split the candidate in two, and a
                # comma at its end would go with the separator
                absolute = _SRCSET_BREAK_RE.sub(lambda m: quote(m.group()), absolute)
            parts.append(f"{absolute} {descriptor}".strip())
    return ", ".join(parts) or None


def _dimension(value: str | None) -> float | None:
    if not value:
        return None
    if value.isascii() and value.isdigit():
        return float(value)  # what the regex takes from most values ("800"), without it
    match = _DIMENSION_RE.match(value)
    return float(match.group(1)) if match else None


def _is_tracking(img: Any, src: str) -> bool:
    width, height = _dimension(img.get("width")), _dimension(img.get("height"))
    if (width is not None and width <= 1) or (height is not None and height <= 1):
        return True
    style = img.get("style")
    if style and _CSS_TINY_RE.search(style):
        return True
    return _is_tracking_url(src)


def _is_tracking_url(src: str) -> bool:
    """_TRACKING_RE.match(src), with a cheap test first."""
    if src.isascii():
        authority = _AUTHORITY_RE.match(src.lower())
        if authority is None or not authority.group(1).endswith(_TRACKING_HOST_ENDS):
            return False
    return _TRACKING_RE.match(src)


def _is_meaningful_image(src: str, width: str | None, height: str | None, *, tracking_checked: bool = False) -> bool:
    lowered = src.lower()
    if not lowered.startswith(("http://", "https://")) or (not tracking_checked and _is_tracking_url(src)):
        return False
    plain = _PLAIN_WEB_URL_RE.fullmatch(src)
    if plain:
        path = plain.group("path") or ""  # what urlsplit gives, without the call
    else:
        try:
            path = urlsplit(src).path
        except ValueError:
            return False
    if _is_icon_path(path) or "gravatar.com/" in lowered:
        return False
    w, h = _dimension(width), _dimension(height)
    return not ((w is not None and w < _MIN_IMAGE_SIDE) or (h is not None and h < _MIN_IMAGE_SIDE))


def _is_icon_path(path: str) -> bool:
    """_ICON_RE.search(path), with a cheap test first: the regex finds none of _ICON_WORDS."""
    if path.isascii():
        lowered = path.lower()
        for word in _ICON_WORDS:
            if word in lowered:
                break
        else:
            return False
    return _ICON_RE.search(path)


def _replace_emoji(img: Any) -> None:
    # WordPress turns emoji into <img class="wp-smiley" alt="😀">: the character is the content.
    classes = (img.get("class") or "").lower().split()
    if "wp-smiley" in classes or "emoji" in classes or _is_emoji_src(img.get("src") or ""):
        alt = (img.get("alt") or "").strip()
        img.tail = alt + (img.tail or "")
        _drop(img)


def _is_emoji_src(src: str) -> bool:
    """_EMOJI_SRC_RE.search(src): for ASCII, whose lower case the regex reads, as plain substrings."""
    if src.isascii():
        lowered = src.lower()
        return "s.w.org/images/core/emoji/" in lowered or "/wp-includes/images/smilies/" in lowered
    return _EMOJI_SRC_RE.search(src)


def _host_allowed(url: str, hosts: tuple[str, ...]) -> bool:
    try:
        host = (urlsplit(url).hostname or "").lower()
    except ValueError:
        return False
    return bool(host) and any(host == h or host.endswith("." + h) for h in hosts)


def _fix_links(body: Any, base: str | None, compiled: _Compiled) -> None:
    # Only where the allow-list keeps a URL attribute; nh3 drops it everywhere else.
    doomed, anchors = [], []
    for el in body.iter(*_URL_TAGS):
        tag = el.tag
        for name in _URL_ATTRIBUTES:
            value = el.get(name)
            if value is None:
                continue
            schemes = _LINK_SCHEMES if (tag == "a" and name == "href") else _WEB_SCHEMES
            url = _clean_url(value, base, schemes)
            if url is None:
                del el.attrib[name]
            elif url != value:
                el.set(name, url)
        srcset = el.get("srcset")
        if srcset is not None:
            cleaned = _clean_srcset(srcset, base)
            if cleaned is None:
                del el.attrib["srcset"]
            elif cleaned != srcset:
                el.set("srcset", cleaned)
        # what is left of it, judged on its own attributes as they now are
        if tag == "img":
            src = el.get("src")
            if not src or _is_tracking(el, src):
                doomed.append(el)
            for name, value in _IMG_SET_ATTRIBUTES.items():
                # removed first so that they always come last, in this order
                if el.get(name) is not None:
                    del el.attrib[name]
                el.set(name, value)
        elif tag == "iframe":
            src = el.get("src")
            if not src or not _host_allowed(src, compiled.iframe_hosts):
                doomed.append(el)
        elif tag == "source":
            if not el.get("src") and not el.get("srcset"):
                doomed.append(el)
        elif tag == "a" and not el.get("href"):
            anchors.append(el)  # a named anchor or a link whose target was refused: just text
    for el in anchors:
        _unwrap(el)
    for el in doomed:
        _drop(el)


# --- structure, empties, whitespace ------------------------------------------------------------


def _fix_nesting(body: Any) -> bool:
    """Rebuild nesting that either parser would read back differently, until none is left; True if any was.

    The tree is serialized for nh3 (html5ever) and, on a second pass, parsed again by libxml2;
    both close or move elements that the other keeps, and a tree either would rebuild makes
    a second pass differ from the first. One round can expose another (unwrapping a stray
    table cell lifts its <p> into a heading), hence the loop; it ends because every round
    only removes tags or renames them to <div>.
    """
    if not _nesting_suspect(body):
        return False  # most bodies: a first round would change nothing, and costs twice this walk
    xpaths = _xpaths()
    rebuilt = False
    for _ in range(_MAX_NESTING_ROUNDS):
        changed = False
        for el in xpaths["p_with_blocks"](body):
            el.tag = "div"  # an HTML5 parser closes the <p> at the first block inside it
            changed = True
        nested = [h for h in body.iter(*_HEADINGS) if h.getparent().tag in _HEADINGS]
        for el in nested + xpaths["nested_links"](body):
            _unwrap(el)  # a heading in a heading, a link in a link: closed by the inner start tag
            changed = True
        for el in list(body.iter("li", "dd", "dt")):
            if _reopens(el):
                el.tag = "div"  # would close the open item it sits in
                changed = True
        changed = _fix_tables(body) or changed
        for el in list(body.iter(*_LIBXML_CLOSING)):
            parent = el.getparent()
            if parent is None:
                continue
            if el.tag in _LIBXML_CLOSES.get(parent.tag, ()):
                # libxml2 closes the parent when this child starts: drop the lesser tag
                _unwrap(parent if parent.tag in _INLINE else el)
                changed = True
        if not changed:
            return rebuilt
        rebuilt = True
    return rebuilt


def _nesting_suspect(body: Any) -> bool:
    """False only when a round of _fix_nesting would change nothing; one walk for all its checks.

    Any table part makes it True (the table checks are not repeated here): a False must be
    right, a True only costs the full round.
    """
    # Per element with children: its tag, and whether its children are inside a <p>, inside an
    # <a>, and inside an <li> (or a <dd>/<dt>) with no other special element in between (see
    # _reopens). Pre-order, so a parent is always there before its children.
    context: dict[Any, tuple[str, bool, bool, bool, bool]] = {body: ("body", False, False, False, False)}
    elements = body.iter(etree.Element)
    next(elements)  # body itself
    for el in elements:
        tag = el.tag
        parent, in_p, in_a, in_li, in_dd = context[el.getparent()]
        if tag in _TABLE_ANY or tag in _LIBXML_CLOSES.get(parent, _NO_TAGS) or (in_p and tag in _P_CLOSERS):
            return True
        if tag == "a":
            if in_a:
                return True
            in_a = True
        elif tag == "p":
            in_p = True
        elif tag in _HEADINGS and parent in _HEADINGS:
            return True
        if tag == "li":
            if in_li:
                return True
            in_li = True
        elif tag in _LI_STOPS:
            in_li = False
        if tag == "dd" or tag == "dt":
            if in_dd:
                return True
            in_dd = True
        elif tag in _DD_STOPS:
            in_dd = False
        if len(el):
            context[el] = (tag, in_p, in_a, in_li, in_dd)
    return False


def _fix_tables(body: Any) -> bool:
    changed = False
    for el in list(body.iter(*_TABLE_PARTS)):
        parent_tag = el.getparent().tag
        if el.tag in ("td", "th"):
            if parent_tag == "tr":
                continue
            if parent_tag in _TABLE_SECTIONS:
                _wrap_cells(el)  # an HTML5 parser would imply the <tr>
            else:
                _unwrap(el)  # ignored outside a table row
        elif el.tag == "tr":
            if parent_tag in _TABLE_SECTIONS:
                continue
            _unwrap(el)
        elif parent_tag == "table":
            continue
        else:
            _unwrap(el)
        changed = True
    for table in list(body.iter("table")):
        changed = _foster(table) or changed
    return changed


def _wrap_cells(cell: Any) -> None:
    row = etree.Element("tr")
    cell.addprevious(row)
    while cell is not None and cell.tag in ("td", "th"):
        following = cell.getnext()
        row.append(cell)  # the tail moves with it
        cell = following


def _foster(table: Any) -> bool:
    """Move what is not a table part out in front of the table, as an HTML5 parser does."""
    changed = False
    parts = [table] + [
        part
        for part in table.iter("thead", "tbody", "tfoot", "tr")
        if next(part.iterancestors("table", "td", "th", "caption")) is table
    ]
    for part in parts:
        wanted = _TABLE_CHILDREN.get(part.tag, ("tr",))
        if part.text and part.text.strip(_HTML_SPACE):
            _append_text_before(table, part.text)
            part.text = None
            changed = True
        for child in list(part):
            if child.tag in wanted:
                if child.tail and child.tail.strip(_HTML_SPACE):
                    _append_text_before(table, child.tail)
                    child.tail = None
                    changed = True
                continue
            tail, child.tail = child.tail, None
            table.addprevious(child)
            if tail and tail.strip(_HTML_SPACE):
                _append_text_before(table, tail)
            changed = True
    return changed


def _reopens(el: Any) -> bool:
    same = ("li",) if el.tag == "li" else ("dd", "dt")
    for node in el.iterancestors():
        if node.tag in same:
            return True
        if node.tag in _SPECIAL and node.tag not in ("div", "p"):
            return False
    return False


def _has_text(value: str | None) -> bool:
    if not value:
        return False
    # A visible first character settles it without strip's copy of the whole text.
    return value[0] not in _SPACE_CHARS or bool(value.strip(_SPACE_CHARS))


def _remove_empty(body: Any, emptied: list[Any] | None = None) -> bool:
    """Remove elements with no text and no media; False when nothing visible is left at all.

    Each element that lost a child (a <br> never goes by itself) is added to emptied, as often.
    """
    return _prune(body, [] if emptied is None else emptied)


def _prune(el: Any, emptied: list[Any]) -> bool:
    """Whether el has content, once what it holds without any is removed (innermost first).

    A recursion: no list of every element, no generator per element. Siblings go first to
    last, which leaves the same text as last to first: a removed element's tail joins the
    text before it either way, in the same order.
    """
    child_content = False
    if len(el):
        for child in list(el):
            if _prune(child, emptied):
                child_content = True  # kept: its content is el's
            elif child.tag != "br":
                if child.tag not in _BLOCK and _text_content(child):
                    # an inline element holding only a space: keep the space between its neighbours
                    child.tail = " " + (child.tail or "")
                emptied.append(el)
                _drop(child)
    tag = el.tag
    if tag == "video" or tag == "audio":
        return bool(el.get("src")) or any(True for _ in el.iter("source"))
    # read once the children are gone: a removed first child's tail joins el.text
    return tag in _KEEP_EMPTY or child_content or _has_text(el.text) or any(_has_text(child.tail) for child in el)


def _unwrap_wrappers(body: Any) -> None:
    """Unwrap attribute-less <span>s, <div>s around a single block and the <div> around everything."""
    if not len(body):
        return  # text only (most summaries): no walk to find no wrapper
    for el in reversed(list(body.iter("div", "span"))):  # innermost first
        children = list(el)
        parent = el.getparent()
        if parent is None or not all(_may_nest(parent.tag, child.tag) for child in children):
            continue  # its children would then sit where a parser moves them out
        if el.tag == "span":
            if not el.get("lang") and not el.get("dir") and not el.get("title"):
                _unwrap(el)
        elif (
            len(children) == 1
            and children[0].tag in _BLOCK
            and not _has_text(el.text)
            and not _has_text(children[0].tail)
        ):
            _unwrap(el)
    while len(body) == 1 and body[0].tag == "div" and not _has_text(body.text) and not _has_text(body[0].tail):
        _unwrap(body[0])


def _may_nest(parent: str, child: str) -> bool:
    """Whether both parsers keep child directly inside parent (as far as the steps above need)."""
    if child in _LIBXML_CLOSES.get(parent, ()):
        return False
    return not (parent in _HEADINGS and child in _HEADINGS)


def _fold_and_text(body: Any) -> str:
    """Fold whitespace runs to one space outside <pre>, drop spaces a browser would not show; the text.

    The text is what _text_of reads from the folded tree (nothing changes the tree's text after
    this: nh3 only serializes it), read in the same walk instead of a second one. Each text is
    final when it is visited: the spaces that the next element (a block or <br>) or the end of
    a block would hide are looked ahead for, not trimmed afterwards.
    """
    # text only (most summaries): no walk to find no <pre>
    for pre in body.iter("pre") if len(body) else ():
        if pre.text:
            # an HTML5 parser drops one newline right after <pre>: leave none there to drop
            pre.text = pre.text.lstrip("\n") or None
    out: list[str] = []
    text = body.text
    if text and (text := _fold_own_text(body, text, True)):
        if text[0] == "\ufeff":
            # html5ever (nh3) drops a byte order mark that starts its input, and a second pass
            # would then drop the space after it: drop them all now.
            text = text.lstrip(" \ufeff")
            body.text = text or None
        if text:
            out.append(text)
    _fold_children(body, False, True, out.append)
    return _lines_of(out)


def _fold_own_text(el: Any, text: str, block: bool) -> str:
    """el.text folded (el outside <pre> and not a <pre>), written back when it changed."""
    # Text is written back only when it changed: lxml makes a new text node on every write.
    folded = _fold_html_space(text)
    if block:
        folded = folded.lstrip(" ")
    if folded.endswith(" "):
        if not len(el):
            if block:
                folded = folded.rstrip(" ")
        elif (first := el[0].tag) in _BLOCK or first == "br":
            folded = folded.rstrip(" ")
    if folded != text:
        el.text = folded or None
    return folded


def _fold_children(el: Any, pre: bool, read: bool, append: Callable[[str], None]) -> None:
    # pre: el is or is inside a <pre> (nothing under it is folded); read: its text is read (see
    # _text_of_children, whose recursion this follows).
    el_block = el.tag in _BLOCK  # a space that ends its last line is not shown
    for child in el:
        tag = child.tag
        block = tag in _BLOCK
        if tag in _NO_TEXT_OR_BREAK:
            if read and tag == "br":
                append("\n")
            # not read, but folded all the same
            if not pre and (text := child.text):
                _fold_own_text(child, text, block)
            if len(child):
                _fold_children(child, pre, False, append)
        else:
            in_pre = pre or tag == "pre"
            if read and block:
                append("\n")
            text = child.text
            if text:
                # Most texts need no folding or trimming: only these would _fold_own_text change
                # (the runs _fold_html_space folds, a space a block or what follows may hide), and
                # the calls cost more than the tests.
                if not in_pre and (
                    text[-1] == " "
                    or (block and text[0] == " ")
                    or "  " in text
                    or "\n" in text
                    or "\t" in text
                    or "\r" in text
                    or "\f" in text
                ):
                    text = _fold_own_text(child, text, block)
                if read and text:
                    append(text)
            if len(child):
                _fold_children(child, in_pre, read, append)
            if read:
                if block:
                    append("\n")
                elif tag == "td" or tag == "th":
                    append(" ")
        tail = child.tail
        if tail:
            if not pre:
                if tail == "\n" and (block or tag == "br"):
                    child.tail = None  # the newline after a block in the source: most tails
                    continue
                folded = _fold_html_space(tail)
                if block or tag == "br":
                    folded = folded.lstrip(" ")
                if folded.endswith(" "):
                    following = child.getnext()
                    if el_block if following is None else (following.tag in _BLOCK or following.tag == "br"):
                        folded = folded.rstrip(" ")
                if folded != tail:
                    child.tail = folded or None
                tail = folded
            if read and tail:
                append(tail)


def _fold_html_space(text: str) -> str:
    """_FOLD_RE.sub(" ", text), without the regex for the common cases (the sub costs a call per space)."""
    if text == "\n":
        return " "  # the newline between two blocks in the source: most tails
    if "  " in text or "\n" in text or "\t" in text or "\r" in text or "\f" in text:
        return _FOLD_RE.sub(" ", text)
    return text


# --- text --------------------------------------------------------------------------------------


def _text_of(root: Any) -> str:
    """Lines of text: one per block, list item or <br>; source newlines count only in <pre>."""
    out: list[str] = []
    if root.tag not in _NO_TEXT_OR_BREAK:  # the root's own line breaks would only add empty lines
        pre = root.tag == "pre"
        text = root.text
        if text:
            out.append(text if pre else text.replace("\n", " "))
        _text_of_children(root, pre, out.append)
    return _lines_of(out)


def _lines_of(out: list[str]) -> str:
    text = "".join(out)
    # In a text without these, an ASCII line has no whitespace but " ": it needs no isprintable,
    # which costs a table look-up per character.
    ascii_plain = not any(space in text for space in _ODD_ASCII_SPACE)
    lines = [
        # Already folded, most lines: no space at either end, no run of spaces, and no other
        # whitespace or invisible character (printable means no whitespace but " ": every other
        # whitespace character, like every invisible one, is a control or separator).
        line
        if line[0] != " " and line[-1] != " " and "  " not in line and ((ascii_plain and line.isascii()) or line.isprintable())
        else _fold_line(line)
        for line in text.split("\n")
        if line
    ]
    return "\n".join(filter(None, lines))


def _text_of_children(el: Any, pre: bool, append: Callable[[str], None]) -> None:
    # A recursion, which costs less than an iterwalk's two events per element: libxml2 nests
    # elements at most 256 deep (as _last_line counts on too).
    # Outside <pre> only a newline needs replacing here: every other whitespace run is folded
    # in _text_of, and a newline there would split a line.
    for child in el:
        tag = child.tag
        if tag in _NO_TEXT_OR_BREAK:
            if tag == "br":
                append("\n")
        else:
            in_pre = pre or tag == "pre"
            block = tag in _BLOCK
            if block:
                append("\n")
            text = child.text
            if text:
                append(text if in_pre else text.replace("\n", " "))
            if len(child):
                _text_of_children(child, in_pre, append)
            if block:
                append("\n")
            elif tag == "td" or tag == "th":
                append(" ")
        tail = child.tail
        if tail:
            append(tail if pre else tail.replace("\n", " "))


def _fold_line(line: str) -> str:
    if not line.isascii():
        line = _INVISIBLE_RE.sub("", line)
    # split() folds and trims the same whitespace as the regex \s (Py_UNICODE_ISSPACE)
    return " ".join(line.split())
