"""Extract an article from its page: body, title, author, categories, date and cover, by site recipe or generic fallback."""

from __future__ import annotations

import codecs
import copy
import html as html_module
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import urljoin, urlsplit

import lxml.html
from lxml import etree
from lxml.cssselect import CSSSelector, SelectorError

from crawler.recipes import Recipe
from pipelines.html import drop_bad_char_refs, srcset_candidates

# Bigger pages are not articles worth parsing, and readability's scoring gets slow on them.
MAX_PAGE_BYTES = 8 * 1024 * 1024
# Readability's scoring takes seconds per 10,000 elements; real article pages have a few thousand.
FALLBACK_MAX_ELEMENTS = 30_000
# Below this much text the generic fallback found navigation or boilerplate, not an article.
FALLBACK_MIN_TEXT_CHARS = 80
# Lazy-loading attributes read for cover and avatar images when the recipe names none of its own.
DEFAULT_LAZY_ATTRIBUTES = ("data-src", "data-original", "data-lazy-src", "data-actualsrc", "data-original-src")

# GB2312 and GBK pages routinely carry characters only GB18030, their superset, defines;
# ISO-8859-1 and ASCII labels mean windows-1252 in browsers (WHATWG encoding standard).
_CHARSET_ALIASES = {
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "gb_2312-80": "gb18030",
    "cp936": "gb18030",
    "iso-8859-1": "windows-1252",
    "latin1": "windows-1252",
    "latin-1": "windows-1252",
    "us-ascii": "windows-1252",
    "ascii": "windows-1252",
}
_CHARSET = re.compile(r"""charset\s*=\s*["']?\s*([A-Za-z0-9._:-]+)""", re.IGNORECASE)
_META_CHARSET = re.compile(rb"""<meta[^>]{0,200}?charset\s*=\s*["']?\s*([A-Za-z0-9._:-]+)""", re.IGNORECASE)
# Characters lxml refuses (C0 controls other than tab, newline and carriage return).
_CONTROL_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f]")
_CONTROL_BYTES = bytes(c for c in range(0x20) if _CONTROL_CHARS.match(chr(c)))
# Control bytes that text never contains: more than a few of them at the start means a binary file.
_BINARY_BYTES = re.compile(rb"[\x00-\x08\x0e-\x1a\x1c-\x1f]")
_NON_HTML_TYPES = re.compile(r"^\s*(image|audio|video|font|model)/|^\s*application/(pdf|zip|gzip|x-gzip|x-tar|vnd\.)", re.IGNORECASE)
# Text-free elements whose content never counts as visible text.
_INVISIBLE_TAGS = ("script", "style", "noscript", "template", "svg", "math", "head", "title")
# Elements after which visible text continues on a new line (or as a new word).
_BLOCK_TAGS = frozenset(
    {
        "address", "article", "aside", "blockquote", "br", "dd", "div", "dl", "dt", "figcaption", "figure",
        "footer", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "li", "main", "nav", "ol", "p", "pre",
        "section", "table", "td", "th", "tr", "ul",
    }
)
_ARTICLE_TYPES = frozenset(
    {
        "article", "newsarticle", "blogposting", "reportagenewsarticle", "analysisnewsarticle",
        "opinionnewsarticle", "techarticle", "scholarlyarticle", "socialmediaposting", "liveblogposting",
    }
)
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]")
_CJK_RUN = re.compile(_CJK.pattern + "+")
_TRUNCATION_MARK = re.compile(
    r"(\.\.\.|…|\[…\]|\[\.\.\.\]|\(more…?\)|阅读全文|查看全文|点击查看|继续阅读|read more|continue reading|keep reading)"
    r"[\s\]\)»›>→.…:：!！。]*$",
    re.IGNORECASE,
)
SUMMARY_MAX_CJK_CHARS = 500
_ROUGH_TAGS = re.compile(r"<(?:script|style)\b.*?</(?:script|style)\s*>|<[^>]*>", re.I | re.S)
SUMMARY_MAX_LATIN_WORDS = 120
# _too_short first counts this many characters: plenty for either limit in most long texts.
_TOO_SHORT_HEAD = 1500


class ExtractError(ValueError):
    """No article body could be found in the page; the message says why."""


@dataclass(frozen=True)
class ArticleFields:
    """What an article page yields: raw strings as found, URLs made absolute, nothing else normalized."""

    title: str | None
    content_html: str | None  # the body element's HTML, widgets removed, NOT sanitized (the html stage does that)
    text_length: int  # characters of visible text in the body, whitespace runs counted as one
    author: str | None
    author_url: str | None
    author_bio: str | None
    author_avatar: str | None
    categories: tuple[str, ...]
    published: str | None  # raw string as found; the metadata stage parses it
    cover_image: str | None  # absolute URL
    language: str | None  # <html lang>
    method: str  # "recipe:<name>" or "fallback:readability"


def extract_article(
    body: bytes, url: str, headers: Mapping[str, str] | None = None, recipe: Recipe | None = None
) -> ArticleFields:
    """Extract the article from one fetched page. Raises ExtractError (and nothing else) when no body is found."""
    try:
        return _extract(body, url, _plain_headers(headers), recipe)
    except ExtractError:
        raise
    except (RecursionError, MemoryError) as exc:
        raise ExtractError(f"page too complex to parse ({type(exc).__name__})") from None
    except Exception as exc:  # noqa: BLE001 - any parser bug must stay this page's problem, not the crawl's
        raise ExtractError(f"could not parse the page: {type(exc).__name__}: {exc}") from None


def looks_like_summary(content_html: str | None, summary: str | None, *, text: str | None = None) -> bool:
    """True when what a feed gave for an entry is plainly a summary, so the article page is worth fetching.

    `text` is the body's text as the html stage cleaned it (`Entry.content_text`), when the caller has
    it. Cleaning only ever leaves text out (share bars, a bio, boilerplate), so when that text is long
    enough and ends with no truncation mark, neither does the raw body's, and the answer is False
    without parsing it again. Otherwise the raw body decides, as without `text`: a short post whose
    widgets made it long enough before stays what it was.
    """
    if (
        text
        and not _too_short(text)
        and not _TRUNCATION_MARK.search(text[-40:])
        and not _ends_truncated(content_html or summary or "")
    ):
        return False
    if content_html and len(content_html) > 4 * SUMMARY_MAX_CJK_CHARS * 3:
        # Plainly long: a cheap look at the raw text settles it without parsing (every entry passes here).
        rough = html_module.unescape(_ROUGH_TAGS.sub(" ", content_html))
        words = rough.split()
        letters = sum(map(len, words))  # the text without whitespace, counted (no CJK character is whitespace)
        cjk = _cjk_count(rough) * 3 >= letters
        long_enough = letters > 3 * SUMMARY_MAX_CJK_CHARS if cjk else len(words) > 3 * SUMMARY_MAX_LATIN_WORDS
        if long_enough and not _TRUNCATION_MARK.search(" ".join(words[-12:])[-40:]):
            return False
    text = visible_text(content_html) if content_html and content_html.strip() else ""
    if not text:
        text = visible_text(summary) if summary and summary.strip() else ""
    if not text:
        return True
    if _TRUNCATION_MARK.search(text[-40:]):
        return True
    return _too_short(text)


def _too_short(text: str) -> bool:
    """Fewer than SUMMARY_MAX_CJK_CHARS characters of mostly CJK text, or SUMMARY_MAX_LATIN_WORDS words."""
    if len(text) > _TOO_SHORT_HEAD and _long_either_way(*_words_and_letters(text[:_TOO_SHORT_HEAD])):
        # A prefix has no more words and letters than the whole text: when it is long enough
        # counted either way, so is the text, and the rest of a long article need not be split.
        return False
    words, letters = _words_and_letters(text)
    if _long_either_way(words, letters):
        return False  # no need to tell the script
    if _cjk_count(text) * 3 >= letters:
        return letters < SUMMARY_MAX_CJK_CHARS
    return words < SUMMARY_MAX_LATIN_WORDS


def _words_and_letters(text: str) -> tuple[int, int]:
    """(words, characters other than whitespace) of text."""
    words = text.split()
    return len(words), sum(map(len, words))


def _long_either_way(words: int, letters: int) -> bool:
    """Long enough whether the text is counted as CJK characters or as words."""
    return letters >= SUMMARY_MAX_CJK_CHARS and words >= SUMMARY_MAX_LATIN_WORDS


def _ends_truncated(html: str) -> bool:
    """Whether the raw HTML's last words, tags left out, are a truncation mark ("…", "Read more", 阅读全文)."""
    # The last 800 characters are plenty: a tag they cut in half only adds its end ('class="x">')
    # before the words that count, and only the last 40 characters of text can hold the mark.
    rough = html_module.unescape(_ROUGH_TAGS.sub(" ", html[-800:]))
    # rsplit stops after the last 12 words: the same words as split()[-12:], without a string for every other one.
    return bool(_TRUNCATION_MARK.search(" ".join(rough.rsplit(None, 12)[-12:])[-40:]))


def _cjk_count(text: str) -> int:
    """len(_CJK.findall(text)), without a string per character."""
    if text.isascii():
        return 0
    return sum(map(len, _CJK_RUN.findall(text)))


def visible_text(html: str | None) -> str:
    """The text a reader sees in an HTML fragment, whitespace collapsed; "" when there is none."""
    if not html or not html.strip():
        return ""
    # etree's parser rather than lxml.html's: the same tree, without lxml.html's Python class
    # lookup for every element. The control characters lxml refuses are single bytes in
    # UTF-8, so they go from the bytes (what _clean_chars does, without its regex scan).
    parser = etree.HTMLParser(encoding="utf-8", remove_comments=True, remove_pis=True)
    try:
        root = etree.fromstring(drop_bad_char_refs(html).encode("utf-8", "replace").translate(None, _CONTROL_BYTES), parser)
    except (etree.ParserError, etree.XMLSyntaxError, ValueError):
        return ""
    return _visible_text_of(root) if root is not None else ""  # a tree of our own: no copy


def _plain_headers(headers: Mapping[Any, Any] | None) -> dict[str, str]:
    """Lower-cased str headers, also from Scrapy's bytes keys and lists of bytes values."""
    plain: dict[str, str] = {}
    for key, value in (headers or {}).items():
        if isinstance(value, (list, tuple)):
            value = value[0] if value else ""
        if isinstance(key, bytes):
            key = key.decode("latin-1")
        if isinstance(value, bytes):
            value = value.decode("latin-1")
        plain[str(key).lower()] = str(value)
    return plain


def _extract(body: bytes, url: str, headers: dict[str, str], recipe: Recipe | None) -> ArticleFields:
    root = _parse_page(body, headers)
    base = _base_url(root, url)
    lazy = tuple(dict.fromkeys((*(recipe.lazy_attributes if recipe else ()), *DEFAULT_LAZY_ATTRIBUTES)))
    meta = _PageMetadata(root, base, lazy)

    # Metadata first: a recipe's remove selectors may drop elements its author selectors point at.
    if recipe is not None:
        title = _first(_values(root, recipe.title, _text_value, recipe)) or meta.title()
        author = _first(_values(root, recipe.author, _text_value, recipe)) or meta.author()
        author_url = _first(_values(root, recipe.author_url, _link_value(base, lazy), recipe)) or meta.author_url()
        author_bio = _first(_values(root, recipe.author_bio, _text_value, recipe)) or meta.author_bio()
        avatar = _first(_values(root, recipe.author_avatar, _image_value(base, lazy), recipe)) or meta.author_avatar()
        categories = _all_of_first(root, recipe.categories, recipe) or meta.categories()
        published = _first(_values(root, recipe.published, _date_value, recipe)) or meta.published()
        cover = _first(_values(root, recipe.cover, _image_value(base, lazy), recipe)) or meta.cover()
    else:
        title, author, author_url, author_bio = meta.title(), meta.author(), meta.author_url(), meta.author_bio()
        avatar, categories, published, cover = meta.author_avatar(), meta.categories(), meta.published(), meta.cover()

    content, method = None, "fallback:readability"
    if recipe is not None:
        content = _recipe_body(root, recipe)
        if content is not None:
            method = f"recipe:{recipe.name}"
    if content is None:
        content = _readability_body(root, base)
        if recipe is not None:
            _remove(content, recipe.remove, recipe)
    _absolutize(content, base, lazy)
    text = _element_text(content)
    if not text:
        raise ExtractError("no article body found: the page has no visible text where an article would be")
    if method.startswith("fallback:") and len(text) < FALLBACK_MIN_TEXT_CHARS:
        raise ExtractError(f"no article body found: the generic extractor found only {len(text)} characters of text")
    return ArticleFields(
        title=title,
        content_html=lxml.html.tostring(content, encoding="unicode", method="html", with_tail=False),
        text_length=len(text),
        author=author,
        author_url=author_url,
        author_bio=author_bio,
        author_avatar=avatar,
        categories=categories,
        published=published,
        cover_image=cover,
        language=_language(root, headers),
        method=method,
    )


# --- decoding and parsing ---------------------------------------------------------------------------


def _parse_page(body: bytes, headers: Mapping[str, str]) -> lxml.html.HtmlElement:
    if not isinstance(body, (bytes, bytearray, memoryview)):
        raise ExtractError(f"expected the page as bytes, got {type(body).__name__}")
    body = bytes(body)
    if not body.strip():
        raise ExtractError("empty page")
    if len(body) > MAX_PAGE_BYTES:
        raise ExtractError(f"page larger than {MAX_PAGE_BYTES} bytes")
    ctype = headers.get("content-type", "")
    if _NON_HTML_TYPES.search(ctype):
        raise ExtractError(f"not an HTML page: {ctype.split(';')[0].strip()}")
    head = body[:2048]
    if not head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) and len(_BINARY_BYTES.findall(head)) > max(8, len(head) // 50):
        raise ExtractError("not an HTML page: binary content")
    text = _clean_chars(_decode(body, ctype))
    if not text.strip():
        raise ExtractError("empty page")
    parser = lxml.html.HTMLParser(encoding="utf-8", remove_comments=True, remove_pis=True)
    try:
        root = lxml.html.document_fromstring(text.encode("utf-8", "replace"), parser=parser)
    except (etree.ParserError, etree.XMLSyntaxError, ValueError) as exc:
        raise ExtractError(f"not parseable as HTML: {exc}") from None
    if root is None:
        raise ExtractError("not parseable as HTML: empty document")
    return root


def _decode(body: bytes, content_type: str) -> str:
    """Decode by BOM, then the HTTP charset, then <meta charset>, then by trying UTF-8 and GB18030."""
    for bom, name in ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be")):
        if body.startswith(bom):
            return body[len(bom):].decode(name, "replace")
    declared = [m.group(1) for m in [_CHARSET.search(content_type)] if m]
    meta = _META_CHARSET.search(body[:4096])
    if meta:
        declared.append(meta.group(1).decode("ascii", "replace"))
    for label in declared:
        codec = _codec_name(label)
        if codec:
            return body.decode(codec, "replace")
    for name in ("utf-8", "gb18030"):
        try:
            return body.decode(name)
        except UnicodeDecodeError:
            continue
    return body.decode("windows-1252", "replace")


def _codec_name(label: str) -> str | None:
    label = label.strip().lower()
    label = _CHARSET_ALIASES.get(label, label)
    try:
        name = codecs.lookup(label).name
    except LookupError:
        return None
    # A <meta> cannot truthfully declare UTF-16: the bytes it is written in would be unreadable as ASCII.
    return "utf-8" if name.startswith("utf-16") else name


def _clean_chars(text: str) -> str:
    return _CONTROL_CHARS.sub("", text.replace("\x00", ""))


def _base_url(root: lxml.html.HtmlElement, url: str) -> str:
    for base in root.iter("base"):
        href = (base.get("href") or "").strip()
        if href:
            joined = _join(url, href)
            if joined:
                return joined
    return url


def _language(root: lxml.html.HtmlElement, headers: Mapping[str, str]) -> str | None:
    lang = (root.get("lang") or root.get("{http://www.w3.org/XML/1998/namespace}lang") or "").strip()
    if not lang:
        for meta in root.iter("meta"):
            if (meta.get("http-equiv") or "").strip().lower() == "content-language":
                lang = (meta.get("content") or "").strip()
                break
    if not lang:
        lang = headers.get("content-language", "").strip()
    return lang.split(",")[0].strip() or None


# --- the body -----------------------------------------------------------------------------------------


def _recipe_body(root: lxml.html.HtmlElement, recipe: Recipe) -> lxml.html.HtmlElement | None:
    """The first content selector whose element still has text once the recipe's widgets are removed."""
    for selector in recipe.content:
        for element in _select(root, selector, recipe):
            candidate = copy.deepcopy(element)
            candidate.tail = None
            _remove(candidate, recipe.remove, recipe)
            if _element_text(candidate):
                return candidate
    return None


def _readability_body(root: lxml.html.HtmlElement, base: str) -> lxml.html.HtmlElement:
    count = sum(1 for _ in root.iter())
    if count > FALLBACK_MAX_ELEMENTS:
        raise ExtractError(f"no article body found: {count} elements is too many for the generic extractor")
    # Imported here: only pages without a recipe need it, and this module loads for every entry.
    from readability import Document

    try:
        summary = Document(copy.deepcopy(root), url=base).summary(html_partial=True)
    except Exception as exc:  # noqa: BLE001 - readability raises Unparseable and whatever lxml raised inside it
        raise ExtractError(f"no article body found: {exc or type(exc).__name__}") from None
    try:
        fragments = lxml.html.fragments_fromstring(_clean_chars(summary or ""))
    except (etree.ParserError, ValueError):
        fragments = []
    elements = [f for f in fragments if not isinstance(f, str)]
    if len(elements) == 1 and not any(isinstance(f, str) and f.strip() for f in fragments):
        return elements[0]
    wrapper = lxml.html.Element("div")
    for fragment in fragments:
        if isinstance(fragment, str):
            if len(wrapper):
                wrapper[-1].tail = (wrapper[-1].tail or "") + fragment
            else:
                wrapper.text = (wrapper.text or "") + fragment
        else:
            wrapper.append(fragment)
    return wrapper


def _remove(content: lxml.html.HtmlElement, selectors: Iterable[str], recipe: Recipe) -> None:
    for selector in selectors:
        for element in _select(content, selector, recipe):
            if element is not content and element.getparent() is not None:
                element.drop_tree()  # keeps the tail text, which belongs to the parent


def _absolutize(content: lxml.html.HtmlElement, base: str, lazy: tuple[str, ...]) -> None:
    url_attributes = ("href", "src", "poster", "cite", "action", *(a for a in lazy if not a.endswith("srcset")))
    srcset_attributes = ("srcset", *(a for a in lazy if a.endswith("srcset")))
    for element in content.iter():
        if not isinstance(element.tag, str):
            continue
        for name in url_attributes:
            value = element.get(name)
            if value and not value.lstrip().lower().startswith(("#", "data:", "javascript:", "mailto:", "tel:")):
                joined = _join(base, value)
                if joined and joined != value:
                    element.set(name, joined)
        for name in srcset_attributes:
            value = element.get(name)
            if value:
                element.set(name, _absolute_srcset(base, value))


def _absolute_srcset(base: str, value: str) -> str:
    return ", ".join(
        " ".join((_join(base, url) or url, *descriptor.split())) for url, descriptor in srcset_candidates(value)
    )


def _element_text(element: lxml.html.HtmlElement) -> str:
    """Visible text of an element: scripts and styles skipped, a break after each block, whitespace collapsed."""
    return _visible_text_of(copy.deepcopy(element))


def _visible_text_of(clone: Any) -> str:
    """_element_text of an element the caller gives up: its tree is changed."""
    clone.tail = None
    etree.strip_elements(clone, *_INVISIBLE_TAGS, etree.Comment, etree.ProcessingInstruction, with_tail=False)
    if isinstance(clone.tag, str) and clone.tag in _INVISIBLE_TAGS:
        return ""
    for node in clone.iterdescendants(*_BLOCK_TAGS):
        node.tail = "\n" + (node.tail or "")
    return " ".join(_string_value()(clone).split())


@lru_cache(maxsize=1)
def _string_value() -> etree.XPath:
    # What lxml.html's text_content() evaluates, for elements of either parser.
    return etree.XPath("string()", smart_strings=False)


# --- field values -------------------------------------------------------------------------------------


def _select(root: lxml.html.HtmlElement, selector: str, recipe: Recipe) -> list[lxml.html.HtmlElement]:
    try:
        matcher = CSSSelector(selector, translator="html")
    except (SelectorError, etree.XPathError) as exc:
        raise ExtractError(f"recipe {recipe.name}: bad selector {selector!r}: {exc}") from None
    return [e for e in matcher(root) if isinstance(e.tag, str)]


Reader = Callable[[lxml.html.HtmlElement], "str | None"]


def _values(root: lxml.html.HtmlElement, selectors: Iterable[str], read: Reader, recipe: Recipe) -> Iterator[str]:
    for selector in selectors:
        for element in _select(root, selector, recipe):
            value = read(element)
            if value:
                yield value


def _all_of_first(root: lxml.html.HtmlElement, selectors: Iterable[str], recipe: Recipe) -> tuple[str, ...]:
    """Categories: every match of the first selector that yields any, de-duplicated in page order."""
    for selector in selectors:
        found = [v for v in (_text_value(e) for e in _select(root, selector, recipe)) if v]
        if found:
            return _unique(found)
    return ()


def _first(values: Iterator[str]) -> str | None:
    return next(values, None)


def _unique(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(v for v in values if v))


def _collapse(value: str | None) -> str | None:
    if value is None:
        return None
    return " ".join(value.split()) or None


def _text_value(element: lxml.html.HtmlElement) -> str | None:
    if element.tag == "meta":
        return _collapse(element.get("content"))
    return _element_text(element) or None


def _date_value(element: lxml.html.HtmlElement) -> str | None:
    for name in ("datetime", "content"):
        value = _collapse(element.get(name))
        if value:
            return value
    if element.tag == "abbr":  # microformats keep the machine-readable date in the title
        value = _collapse(element.get("title"))
        if value:
            return value
    return _element_text(element) or None


def _link_value(base: str, lazy: tuple[str, ...]) -> Reader:
    def read(element: lxml.html.HtmlElement) -> str | None:
        if element.tag in ("img", "source"):
            return _image_value(base, lazy)(element)
        for name in ("href", "content", "src"):
            value = (element.get(name) or "").strip()
            if value and not value.lower().startswith(("javascript:", "#", "data:")):
                return _join(base, value)
        return None

    return read


def _image_value(base: str, lazy: tuple[str, ...]) -> Reader:
    def read(element: lxml.html.HtmlElement) -> str | None:
        if element.tag not in ("img", "source"):
            if element.tag in ("meta", "link", "a"):
                value = (element.get("content") or element.get("href") or "").strip()
                return _join(base, value) if value and not value.lower().startswith("data:") else None
            nested = next((e for e in element.iter("img")), None)
            return read(nested) if nested is not None else None
        for name in (*lazy, "src", "srcset"):
            value = (element.get(name) or "").strip()
            if name.endswith("srcset") and value:
                candidates = srcset_candidates(value)
                value = candidates[0][0] if candidates else ""
            if value and not value.lower().startswith("data:"):
                return _join(base, value)
        return None

    return read


def _join(base: str, value: str) -> str | None:
    value = value.strip()
    if not value:
        return None
    try:
        joined = urljoin(base, value)
        _ = urlsplit(joined).port  # raises on a malformed IPv6 host or a bad port
    except ValueError:
        return None
    return joined


# --- generic metadata: <meta> tags and JSON-LD ------------------------------------------------------


class _PageMetadata:
    """Metadata any page may carry: Open Graph / article:* <meta> tags and a JSON-LD Article."""

    def __init__(self, root: lxml.html.HtmlElement, base: str, lazy: tuple[str, ...]) -> None:
        self.root = root
        self.base = base
        self.lazy = lazy
        self.metas: dict[str, list[str]] = {}
        for meta in root.iter("meta"):
            key = (meta.get("property") or meta.get("name") or meta.get("itemprop") or "").strip().lower()
            value = _collapse(meta.get("content"))
            if key and value:
                self.metas.setdefault(key, []).append(value)
        self.ld = _json_ld_article(root)

    def _meta(self, *keys: str) -> str | None:
        for key in keys:
            if self.metas.get(key):
                return self.metas[key][0]
        return None

    def _url(self, value: str | None) -> str | None:
        return _join(self.base, value) if value and not value.lower().startswith("data:") else None

    def title(self) -> str | None:
        found = self._meta("og:title") or _ld_text(self.ld.get("headline")) or self._meta("twitter:title")
        if found:
            return found
        headings = [h for h in self.root.iter("h1") if _element_text(h)]
        if len(headings) == 1:
            return _element_text(headings[0])
        titles = [_element_text(t) for t in self.root.iter("title")]
        return next((t for t in titles if t), None)

    def _ld_author(self) -> dict[str, Any]:
        author = self.ld.get("author")
        if isinstance(author, list):
            author = next((a for a in author if a), None)
        if isinstance(author, str):
            return {"name": author}
        return author if isinstance(author, dict) else {}

    def author(self) -> str | None:
        found = _ld_text(self._ld_author().get("name")) or self._meta("author", "article:author", "dc.creator")
        if found and not re.match(r"https?://", found):
            return found
        for link in self.root.cssselect("a[rel~=author]"):
            text = _element_text(link)
            if text:
                return text
        return None

    def author_url(self) -> str | None:
        ld_url = _ld_text(self._ld_author().get("url"))
        if ld_url:
            return self._url(ld_url)
        meta = self._meta("article:author")
        if meta and re.match(r"https?://", meta):
            return meta
        for link in self.root.cssselect("link[rel~=author], a[rel~=author]"):
            href = (link.get("href") or "").strip()
            if href and not href.lower().startswith(("mailto:", "javascript:")):
                return self._url(href)
        return None

    def author_bio(self) -> str | None:
        return _ld_text(self._ld_author().get("description"))

    def author_avatar(self) -> str | None:
        return self._url(_ld_image(self._ld_author().get("image")))

    def published(self) -> str | None:
        found = self._meta("article:published_time", "og:article:published_time", "datepublished")
        found = found or _ld_text(self.ld.get("datePublished"))
        found = found or self._meta("pubdate", "publishdate", "date", "dc.date", "dcterms.created")
        if found:
            return found
        for time in self.root.cssselect("time[itemprop=datePublished], time[pubdate]"):
            value = _date_value(time)
            if value:
                return value
        return None

    def cover(self) -> str | None:
        found = self._meta("og:image", "og:image:url", "og:image:secure_url", "twitter:image", "twitter:image:src")
        found = found or _ld_image(self.ld.get("image"))
        if not found:
            for link in self.root.cssselect("link[rel~=image_src]"):
                found = (link.get("href") or "").strip() or None
                if found:
                    break
        return self._url(found)

    def categories(self) -> tuple[str, ...]:
        found = [*self.metas.get("article:section", []), *self.metas.get("article:tag", [])]
        if not found:
            found = [*_ld_list(self.ld.get("articleSection")), *_ld_list(self.ld.get("keywords"))]
        return _unique(" ".join(v.split()) for v in found)


def _json_ld_article(root: lxml.html.HtmlElement) -> dict[str, Any]:
    """The first Article-like object in the page's JSON-LD blocks, or {}."""
    for script in root.iter("script"):
        if (script.get("type") or "").strip().lower() != "application/ld+json" or not script.text:
            continue
        try:
            data = json.loads(script.text.strip().rstrip(";"), strict=False)
        except (ValueError, RecursionError):
            continue
        for item in _ld_objects(data, depth=0):
            types = item.get("@type")
            names = types if isinstance(types, list) else [types]
            if any(isinstance(t, str) and t.lower() in _ARTICLE_TYPES for t in names):
                return item
    return {}


def _ld_objects(data: Any, depth: int) -> Iterator[dict[str, Any]]:
    if depth > 4:
        return
    if isinstance(data, list):
        for item in data:
            yield from _ld_objects(item, depth + 1)
    elif isinstance(data, dict):
        yield data
        if "@graph" in data:
            yield from _ld_objects(data["@graph"], depth + 1)
        if isinstance(data.get("mainEntity"), dict):
            yield from _ld_objects(data["mainEntity"], depth + 1)


def _ld_text(value: Any) -> str | None:
    if isinstance(value, list):
        value = next((v for v in value if v), None)
    if isinstance(value, dict):
        value = value.get("name") or value.get("@id")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)
    return _collapse(value) if isinstance(value, str) else None


def _ld_image(value: Any) -> str | None:
    if isinstance(value, list):
        value = next((v for v in value if v), None)
    if isinstance(value, dict):
        value = value.get("url") or value.get("contentUrl") or value.get("@id")
    return (value.strip() or None) if isinstance(value, str) else None


def _ld_list(value: Any) -> list[str]:
    if isinstance(value, str):
        return [v.strip() for v in re.split(r"[,，、]", value) if v.strip()]
    if isinstance(value, list):
        return [v.strip() for v in value if isinstance(v, str) and v.strip()]
    return []


__all__ = [
    "DEFAULT_LAZY_ATTRIBUTES",
    "FALLBACK_MAX_ELEMENTS",
    "FALLBACK_MIN_TEXT_CHARS",
    "MAX_PAGE_BYTES",
    "ArticleFields",
    "ExtractError",
    "extract_article",
    "looks_like_summary",
    "visible_text",
]
