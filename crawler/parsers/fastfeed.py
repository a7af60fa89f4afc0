"""A fast path for plain RSS 2.0 and Atom 1.0 feeds: lxml builds exactly what feedparser would, or declines."""

from __future__ import annotations

import html.entities
import re
from collections.abc import Callable
from typing import Any

from lxml import etree

from crawler.items import RawFeed

# The contract: whenever fast_parse returns a RawFeed, it equals what feed.parse_feed's feedparser
# path returns for the same bytes. So this module mimics feedparser 6.0's handlers for a small
# whitelist of elements and attributes, and answers None ("ask feedparser") for anything else.
# Where feedparser's own rule is a small helper (content types, HTML guessing), that helper is called;
# its author, tag and URL-fixing helpers are restated below on plain dicts (they cost more in
# FeedParserDict lookups than in their own work), and tests/test_fastfeed.py holds them to feedparser.
# The dicts are plain, for speed: no key written here is one FeedParserDict renames, and the one
# key it derives that to_raw_feed reads ("enclosures") is derived here the same way.

ATOM = "http://www.w3.org/2005/Atom"
CONTENT = "http://purl.org/rss/1.0/modules/content/"
DC = "http://purl.org/dc/elements/1.1/"
MEDIA = "http://search.yahoo.com/mrss/"
SY = "http://purl.org/rss/1.0/modules/syndication/"
WFW = "http://wellformedweb.org/CommentAPI/"
SLASH = "http://purl.org/rss/1.0/modules/slash/"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
# feedparser's own small rules, restated here so that a crawl whose feeds all take this path never
# imports feedparser (about 9 MB and 50-100 ms in each process). tests/test_fastfeed.py checks each one
# against feedparser's.
# feedparser.html._cp1252: C1 controls read as the windows-1252 characters they stand for.
_cp1252 = {code: bytes([code]).decode("cp1252") for code in range(0x80, 0xA0) if code not in (0x81, 0x8D, 0x8F, 0x90, 0x9D)}
# feedparser.urls._urifixer
_urifixer = re.compile(r"^([A-Za-z][A-Za-z0-9+-.]*://)(/*)(.*?)")
# feedparser.mixin._HTML_TYPES
_HTML_TYPES = frozenset({"application/xhtml+xml", "text/html"})
# feedparser.sanitizer._HTMLSanitizer.acceptable_elements, which looks_like_html allows
_ACCEPTABLE_ELEMENTS = frozenset(
    {
        "a", "abbr", "acronym", "address", "area", "article", "aside", "audio", "b", "big", "blockquote",
        "br", "button", "canvas", "caption", "center", "cite", "code", "col", "colgroup", "command",
        "datagrid", "datalist", "dd", "del", "details", "dfn", "dialog", "dir", "div", "dl", "dt", "em",
        "event-source", "fieldset", "figcaption", "figure", "font", "footer", "form", "h1", "h2", "h3",
        "h4", "h5", "h6", "header", "hr", "i", "img", "input", "ins", "kbd", "keygen", "label", "legend",
        "li", "m", "map", "menu", "meter", "multicol", "nav", "nextid", "noscript", "ol", "optgroup",
        "option", "output", "p", "pre", "progress", "q", "s", "samp", "section", "select", "small", "sound",
        "source", "spacer", "span", "strike", "strong", "sub", "sup", "table", "tbody", "td", "textarea",
        "tfoot", "th", "thead", "time", "tr", "tt", "u", "ul", "var", "video",
    }
)
_CLOSE_TAG_RE = re.compile(r"</(\w+)>")
_ENTITY_REF_RE = re.compile(r"&#?\w+;")
_TAG_NAME_RE = re.compile(r"</?(\w+)")
_NAMED_ENTITY_RE = re.compile(r"&(\w+);")


def map_content_type(content_type: str) -> str:
    """feedparser's _FeedParserMixin.map_content_type."""
    content_type = content_type.lower()
    if content_type in ("text", "plain"):
        return "text/plain"
    if content_type == "html":
        return "text/html"
    if content_type == "xhtml":
        return "application/xhtml+xml"
    return content_type


def looks_like_html(s: str) -> bool:
    """feedparser's _FeedParserMixin.looks_like_html: a close tag or an entity, known tags and entities only."""
    if not (_CLOSE_TAG_RE.search(s) or _ENTITY_REF_RE.search(s)):
        return False
    if any(t.lower() not in _ACCEPTABLE_ELEMENTS for t in _TAG_NAME_RE.findall(s)):
        return False
    return all(e in html.entities.entitydefs for e in _NAMED_ENTITY_RE.findall(s))


# feedparser renames a declared prefix to its own name for that namespace, whatever element uses
# the prefix: only declarations with its own names, on the root element, leave names alone.
_DECLARATIONS = {"content": CONTENT, "dc": DC, "media": MEDIA, "sy": SY, "atom": ATOM, "wfw": WFW, "slash": SLASH}
_FIRST_ELEMENT = re.compile(rb"<\w")
# Every byte but the C1 controls: what is left of a text's Latin-1 bytes after deleting these is its C1 controls.
_NOT_C1 = bytes(i for i in range(256) if not 0x80 <= i <= 0x9F)
_ENTITY_LIKE = re.compile("&([A-Za-z0-9_]+);")
_TEXT_TYPES = ("text/plain", "text/html")
# feedparser's _sync_author_detail pattern for an email inside an author string
_AUTHOR_EMAIL = re.compile(
    r"(([a-zA-Z0-9\_\-\.\+]+)@((\[[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.)|(([a-zA-Z0-9\-]+\.)+))([a-zA-Z]{2,4}|[0-9]{1,3})(\]?))(\?subject=\S+)?"
)

Context = dict[str, Any]
Handler = Callable[["_Build", Context, Any], bool]
# element tag -> (handler, attributes it may carry, at most once per parent, must be a leaf)
Table = dict[str, tuple[Handler, frozenset[str], bool, bool]]


def _save_author(context: Context, key: str, value: str) -> None:
    """feedparser's _FeedParserMixin._save_author, on a plain dict."""
    context.setdefault("author_detail", {})[key] = value
    _sync_author_detail(context)
    context.setdefault("authors", [{}])[-1][key] = value


def _sync_author_detail(context: Context) -> None:
    """feedparser's _FeedParserMixin._sync_author_detail, on a plain dict."""
    detail = context.get("authors", [{}])[-1]
    if detail:
        name = detail.get("name")
        email = detail.get("email")
        if name and email:
            context["author"] = f"{name} ({email})"
        elif name:
            context["author"] = name
        elif email:
            context["author"] = email
        return
    author, email = context.get("author"), None
    if not author:
        return
    match = _AUTHOR_EMAIL.search(author)
    if match:
        email = match.group(0)
        author = author.replace(email, "").replace("()", "").replace("<>", "").replace("&lt;&gt;", "").strip()
        if author and author[0] == "(":
            author = author[1:]
        if author and author[-1] == ")":
            author = author[:-1]
        author = author.strip()
    if author or email:
        context.setdefault("author_detail", detail)
    if author:
        detail["name"] = author
    if email:
        detail["email"] = email


def _add_tag(context: Context, term: str | None, scheme: str | None, label: str | None) -> None:
    """feedparser's _FeedParserMixin._add_tag, on a plain dict."""
    tags = context.setdefault("tags", [])
    if not term and not scheme and not label:
        return
    value = {"term": term, "scheme": scheme, "label": label}
    if value not in tags:
        tags.append(value)


def _fix_uri(uri: str) -> str:
    """feedparser's _urljoin("", uri): slashes after "scheme://" dropped (urljoin leaves uri alone without a base)."""
    match = _urifixer.match(uri)
    return uri if match is None or match.start(2) == match.end(2) else match.group(1) + uri[match.end(2) :]


class _Build:
    """The state of one parse: the format, the language content inherits, the entries so far."""

    def __init__(self, atom: bool, lang: str | None) -> None:
        self.atom = atom
        self.lang = lang
        self.entries: list[Context] = []

    def detail(self, content_type: str, value: str) -> Context:
        return {"type": content_type, "language": self.lang, "base": "", "value": value}

    def walk(self, parent: Any, table: Table, context: Context) -> bool:
        seen: set[str] = set()
        lookup = table.get
        for child in parent:
            tag = child.tag
            spec = lookup(tag)  # comments and processing instructions have no str tag: not found
            if spec is None:
                return False
            handler, attributes, once, leaf = spec
            if once:
                if tag in seen:
                    return False  # feedparser's choice between duplicates varies by element
                seen.add(tag)
            if not attributes.issuperset(child.keys()) or (leaf and len(child)) or not handler(self, context, child):
                return False
        return True


def _popped(el: Any, uri: bool = False) -> str:
    """The element's text as feedparser's pop() leaves it (base64 and HTML guessing aside)."""
    text = (el.text or "").strip()
    if uri and text:
        text = _fix_uri(text)
    return _fixed(text)


def _fixed(text: str) -> str:
    """pop()'s repairs: UTF-8 read as Latin-1 is read again, C1 controls become windows-1252 characters."""
    if text.isascii():
        return text
    try:
        text = text.encode("iso-8859-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        pass
    return text.translate(_cp1252) if _has_c1(text) else text


def _has_c1(text: str) -> bool:
    """Whether text holds a C1 control (U+0080-U+009F): two passes in C, several times faster than a regex on CJK text."""
    return bool(text.encode("latin-1", "ignore").translate(None, _NOT_C1))


def _attributes(el: Any) -> dict[str, str]:
    return {k: v.lower() if k in ("rel", "type") else v for k, v in el.items()}  # as feedparser reads them


def _content_type(el: Any, default: str) -> str | None:
    given = el.get("type")
    content_type = default if given is None else map_content_type(given.lower())
    return content_type if content_type in _TEXT_TYPES else None


def _ignore(b: _Build, context: Context, el: Any) -> bool:
    return _content_type(el, "text/plain") is not None  # other types have feedparser decode or rewrite


def _store(key: str) -> Handler:
    def handle(b: _Build, context: Context, el: Any) -> bool:
        context[key] = _popped(el)
        return True

    return handle


def _title(b: _Build, context: Context, el: Any) -> bool:
    content_type = _content_type(el, "text/plain")
    if content_type is None:
        return False
    text = (el.text or "").strip()
    # RSS titles are "text" until they look like HTML; Atom says what they are.
    if not b.atom and content_type == "text/plain" and looks_like_html(text):
        content_type = "text/html"
    context["title"] = value = _fixed(text)
    context["title_detail"] = b.detail(content_type, value)
    return True


def _body(key: str) -> Handler:
    def handle(b: _Build, context: Context, el: Any) -> bool:
        content_type = _content_type(el, "text/plain" if b.atom else "text/html")
        if content_type is None:
            return False
        value = _popped(el)
        if key == "content":
            context.setdefault("content", []).append(b.detail(content_type, value))
            context.setdefault("summary", value)
        else:
            context["summary"], context["summary_detail"] = value, b.detail(content_type, value)
        return True

    return handle


def _guid(b: _Build, context: Context, el: Any) -> bool:
    is_link = el.get("isPermaLink", "true") == "true"
    value = _popped(el, uri=is_link)
    context["id"] = value
    context.setdefault("guidislink", is_link and "link" not in context)
    if is_link:
        context.setdefault("link", value)
    return True


def _text_link(b: _Build, context: Context, el: Any) -> bool:
    links = context.setdefault("links", [])
    links.append({"rel": "alternate", "type": "text/html"})
    value = _popped(el, uri=True)
    if "&" in value:  # nothing for the entity repairs to do otherwise
        if b.entries and context is b.entries[-1]:
            value = value.replace("&amp;", "&")
        value = _ENTITY_LIKE.sub(r"&\g<1>", value)
    if b.entries and context is b.entries[-1]:
        context["link"] = value
        if value:
            links[-1]["href"] = value
    else:
        context["link"] = links[-1]["href"] = value
    return True


def _href_link(b: _Build, context: Context, el: Any) -> bool:
    attrs = _attributes(el)
    if "href" not in attrs:
        return False
    attrs.setdefault("rel", "alternate")
    attrs.setdefault("type", "application/atom+xml" if attrs["rel"] == "self" else "text/html")
    attrs["href"] = _fix_uri(attrs["href"])
    context.setdefault("links", []).append(attrs)
    if attrs["rel"] == "alternate" and map_content_type(attrs["type"]) in _HTML_TYPES:
        context["link"] = attrs["href"]
    return True


def _author(b: _Build, context: Context, el: Any) -> bool:
    context.setdefault("authors", []).append({})
    if not b.walk(el, _TABLES["person"], context):
        return False
    # The author element's own text (an RSS author, or what an Atom person has between its parts).
    context["author"] = _fixed("".join([el.text or "", *(child.tail or "" for child in el)]).strip())
    _sync_author_detail(context)
    return True


def _person(key: str) -> Handler:
    def handle(b: _Build, context: Context, el: Any) -> bool:
        # feedparser keeps name and email as found (stripped), and repairs the uri like any link
        value = _popped(el, uri=True) if key == "href" else (el.text or "").strip()
        _save_author(context, key, value)
        return True

    return handle


def _category(b: _Build, context: Context, el: Any) -> bool:
    _add_tag(context, el.get("term"), el.get("scheme", el.get("domain")), el.get("label"))
    value = _popped(el)
    if value:
        if context["tags"] and not context["tags"][-1]["term"]:
            context["tags"][-1]["term"] = value
        else:
            _add_tag(context, value, None, None)
    return True


def _enclosure(b: _Build, context: Context, el: Any) -> bool:
    attrs = _attributes(el)
    if attrs.get("url"):
        attrs["href"] = attrs.pop("url")
    attrs["rel"] = "enclosure"
    context.setdefault("links", []).append(attrs)
    return True


def _media(key: str) -> Handler:
    def handle(b: _Build, context: Context, el: Any) -> bool:
        if (el.text or "").strip():
            return False  # a thumbnail's text would stand in for a missing url
        context.setdefault(key, []).append(_attributes(el))
        return True

    return handle


def _entry(table_name: str) -> Handler:
    def handle(b: _Build, context: Context, el: Any) -> bool:
        entry: Context = {}
        b.entries.append(entry)
        if not b.walk(el, _TABLES[table_name], entry):
            return False
        if "links" in entry:  # what FeedParserDict derives on reading "enclosures"
            entry["enclosures"] = [{k: v for k, v in x.items() if k != "rel"} for x in entry["links"] if x["rel"] == "enclosure"]
        return True

    return handle


def _within(table_name: str) -> Handler:
    def handle(b: _Build, context: Context, el: Any) -> bool:
        return b.walk(el, _TABLES[table_name], context)

    return handle


def _row(handler: Handler, *attributes: str, once: bool = True, leaf: bool = True) -> tuple[Handler, frozenset[str], bool, bool]:
    return handler, frozenset(attributes), once, leaf


_LINK = ("href", "rel", "type", "title", "hreflang", "length")
_A = f"{{{ATOM}}}"
_THUMBNAIL = _row(_media("media_thumbnail"), "url", "width", "height", once=False)
_TABLES: dict[str, Table] = {
    "rss": {"channel": _row(_within("channel"), leaf=False)},
    "channel": {
        "title": _row(_title),
        "link": _row(_text_link),
        "language": _row(_store("language")),
        "ttl": _row(_store("ttl")),
        "generator": _row(_store("generator")),
        f"{{{SY}}}updatePeriod": _row(_store("sy_updateperiod")),
        f"{{{SY}}}updateFrequency": _row(_store("sy_updatefrequency")),
        "category": _row(_category, "domain", once=False),
        "managingEditor": _row(_author, once=False),
        f"{{{DC}}}creator": _row(_author, once=False),
        f"{_A}link": _row(_href_link, *_LINK, once=False),
        # the image's parts all land in feed.image, which to_raw_feed never reads
        "image": _row(_within("image"), leaf=False),
        "item": _row(_entry("item"), once=False, leaf=False),
        **{tag: _row(_ignore) for tag in ("description", "pubDate", "lastBuildDate", "copyright", "docs", "webMaster", f"{{{SY}}}updateBase")},
    },
    "image": {tag: _row(_ignore) for tag in ("title", "url", "link", "width", "height", "description")},
    "item": {
        "title": _row(_title),
        "link": _row(_text_link),
        "description": _row(_body("summary")),
        f"{{{CONTENT}}}encoded": _row(_body("content")),
        "guid": _row(_guid, "isPermaLink"),
        "pubDate": _row(_store("published")),
        f"{{{DC}}}date": _row(_store("updated")),
        "author": _row(_author, once=False),
        f"{{{DC}}}creator": _row(_author, once=False),
        "category": _row(_category, "domain", once=False),
        "enclosure": _row(_enclosure, "url", "length", "type", once=False),
        f"{{{MEDIA}}}thumbnail": _THUMBNAIL,
        f"{{{MEDIA}}}content": _row(_media("media_content"), "url", "type", "medium", "width", "height", once=False),
        f"{_A}link": _row(_href_link, *_LINK, once=False),
        **{tag: _row(_ignore) for tag in ("comments", f"{{{WFW}}}commentRss", f"{{{SLASH}}}comments")},
    },
    "feed": {
        f"{_A}id": _row(_guid),
        f"{_A}title": _row(_title, "type"),
        f"{_A}link": _row(_href_link, *_LINK, once=False),
        f"{_A}author": _row(_author, once=False, leaf=False),
        f"{_A}category": _row(_category, "term", "scheme", "label", once=False),
        f"{_A}generator": _row(_store("generator"), "uri", "version"),
        f"{_A}entry": _row(_entry("entry"), once=False, leaf=False),
        **{f"{_A}{tag}": _row(_ignore, "type") for tag in ("subtitle", "rights")},
        **{f"{_A}{tag}": _row(_ignore) for tag in ("updated", "icon", "logo")},
    },
    "entry": {
        f"{_A}id": _row(_guid),
        f"{_A}title": _row(_title, "type"),
        f"{_A}link": _row(_href_link, *_LINK, once=False),
        f"{_A}published": _row(_store("published")),
        f"{_A}updated": _row(_store("updated")),
        f"{_A}author": _row(_author, once=False, leaf=False),
        f"{_A}category": _row(_category, "term", "scheme", "label", once=False),
        f"{_A}summary": _row(_body("summary"), "type"),
        f"{_A}content": _row(_body("content"), "type"),
        f"{_A}rights": _row(_ignore, "type"),
        f"{{{MEDIA}}}thumbnail": _THUMBNAIL,
    },
    "person": {f"{_A}name": _row(_person("name")), f"{_A}email": _row(_person("email")), f"{_A}uri": _row(_person("href"))},
}


def fast_parse(body: bytes, url: str, doc_base: str) -> RawFeed | None:
    """The RawFeed feedparser would give for this UTF-8, defused document; None when we cannot be sure."""
    from crawler.parsers.feed import FeedError, to_raw_feed  # feed.py imports this module

    first = _FIRST_ELEMENT.search(body)
    # A DOCTYPE or comment before the root changes what feedparser reads (it scans that prolog itself).
    if first is None or b"<!" in body[: first.start()]:
        return None
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False, recover=False)
    try:
        root = etree.fromstring(body, parser)
    except (etree.XMLSyntaxError, ValueError):
        return None
    info = root.getroottree().docinfo
    if info.xml_version != "1.0" or info.doctype or (info.encoding or "").lower() not in ("utf-8", "utf8"):
        return None
    # Every namespace declared once, on the root, with feedparser's own prefix.
    nsmap = root.nsmap
    if body.count(b"xmlns") != len(nsmap) or any(_DECLARATIONS.get(p) != u for p, u in nsmap.items() if p is not None):
        return None
    if root.tag == "rss" and root.get("version") == "2.0" and None not in nsmap:
        atom, table, version, allowed = False, _TABLES["rss"], "rss20", {"version", XML_LANG}
    elif root.tag == f"{{{ATOM}}}feed" and nsmap.get(None, ATOM) == ATOM:
        atom, table, version, allowed = True, _TABLES["feed"], "atom10", {XML_LANG}
    else:
        return None
    if not allowed.issuperset(root.keys()):
        return None
    feed: Context = {}
    lang = root.get(XML_LANG) or None
    if lang:
        lang = feed["language"] = lang.replace("_", "-")
    build = _Build(atom, lang)
    if not build.walk(root, table, feed):
        return None
    try:
        return to_raw_feed({"feed": feed, "entries": build.entries, "version": version, "bozo": False}, url, body, doc_base)
    except FeedError:
        return None  # feedparser's path raises the same error, with its own words
