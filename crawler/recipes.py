"""Site recipes: load the per-site TOML files from data/sites/ and pick the one for a URL by its host."""

from __future__ import annotations

import logging
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from cssselect import GenericTranslator, SelectorError

from pipelines.resources import data_dir

DEFAULT_SITES_DIR = data_dir() / "sites"
DEFAULT_MIN_TEXT_CHARS = 200

# Every value a <img referrerpolicy> may take; "" leaves the browser default.
REFERRER_POLICIES = frozenset(
    {
        "",
        "no-referrer",
        "no-referrer-when-downgrade",
        "origin",
        "origin-when-cross-origin",
        "same-origin",
        "strict-origin",
        "strict-origin-when-cross-origin",
        "unsafe-url",
    }
)
_SELECTOR_KEYS = (
    "content",
    "remove",
    "title",
    "author",
    "author_url",
    "author_bio",
    "author_avatar",
    "categories",
    "published",
    "cover",
)
_KNOWN_KEYS = frozenset(
    {"name", "hosts", *_SELECTOR_KEYS, "lazy_attributes", "referrer_policy", "full_content", "live_sample", "min_text_chars"}
)
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_HOST = re.compile(r"^(?=.{1,253}$)[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$")
_ATTRIBUTE = re.compile(r"^[a-z_:][a-z0-9_.:-]*$")

logger = logging.getLogger(__name__)


class RecipeError(ValueError):
    """A recipe file is unreadable or invalid; the message names the file and the key."""


@dataclass(frozen=True)
class Recipe:
    """How to read one site's article pages; every selector list is tried in order, first match wins."""

    name: str  # "woshipm"; also the folder of its saved pages under tests/fixtures/sites/
    hosts: tuple[str, ...]  # a host matches itself and its subdomains
    content: tuple[str, ...]  # CSS selectors of the body, first match wins
    remove: tuple[str, ...] = ()  # widgets, share bars, related posts, comments inside the body
    title: tuple[str, ...] = ()
    author: tuple[str, ...] = ()  # element text or meta[content]
    author_url: tuple[str, ...] = ()  # profile link (href)
    author_bio: tuple[str, ...] = ()
    author_avatar: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()  # tags/categories links: every match of the first selector that matches
    published: tuple[str, ...] = ()  # element text, datetime attr, or meta content
    cover: tuple[str, ...] = ()  # og:image etc.
    lazy_attributes: tuple[str, ...] = ()
    referrer_policy: str = ""  # "no-referrer" for hosts that refuse hot-linking
    full_content: bool = False  # always fetch the page for this site's feeds
    live_sample: str | None = None  # one real article URL for `recipes check --live`
    min_text_chars: int = DEFAULT_MIN_TEXT_CHARS  # below this the extraction counts as failed / drifted


def load_recipes(directory: str | Path | None = None) -> tuple[Recipe, ...]:
    """Every *.toml recipe in `directory` (default: data/sites, wherever pipelines.resources finds data/), sorted by file name."""
    folder = Path(directory) if directory is not None else DEFAULT_SITES_DIR
    if directory is None and not folder.is_dir():
        # Code running from a zipped egg (scrapyd) has no data/ beside it: crawl without recipes, and say how to fix it.
        logger.warning("%s: no site recipes beside the code; set FEEDLOOM_SITES_DIR to use them", folder)
        return ()
    if not folder.is_dir():
        raise RecipeError(f"{folder}: no such directory of site recipes")
    recipes: list[Recipe] = []
    sources: dict[str, Path] = {}
    host_owner: dict[str, Path] = {}
    for path in sorted(folder.glob("*.toml")):
        recipe = load_recipe(path)
        if recipe.name in sources:
            raise RecipeError(f"{path}: recipe name {recipe.name!r} is already used by {sources[recipe.name]}")
        sources[recipe.name] = path
        for host in recipe.hosts:
            if host in host_owner and host_owner[host] != path:
                raise RecipeError(f"{path}: host {host!r} is already claimed by {host_owner[host]}")
            host_owner[host] = path
        recipes.append(recipe)
    return tuple(recipes)


def load_recipe(path: str | Path) -> Recipe:
    """One recipe file; its name defaults to the file's stem."""
    path = Path(path)
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except OSError as exc:
        raise RecipeError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise RecipeError(f"{path}: not valid TOML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise RecipeError(f"{path}: not UTF-8: {exc}") from None
    try:
        return parse_recipe(data, default_name=path.stem)
    except RecipeError as exc:
        raise RecipeError(f"{path}: {exc}") from None


def parse_recipe(data: Mapping[str, Any], *, default_name: str) -> Recipe:
    """Validate one recipe's keys and values; the error message names the offending key."""
    unknown = sorted(set(data) - _KNOWN_KEYS)
    if unknown:
        raise RecipeError(f"unknown key(s) {', '.join(unknown)}; known keys: {', '.join(sorted(_KNOWN_KEYS))}")
    name = data.get("name", default_name)
    if not isinstance(name, str) or not _NAME.match(name):
        raise RecipeError(f"name: {name!r} must be lower-case letters, digits, '-' or '_'")
    if "hosts" not in data:
        raise RecipeError("hosts: missing; list the site's host names, e.g. hosts = [\"example.com\"]")
    hosts = tuple(_host(h) for h in _strings(data, "hosts"))
    if not hosts:
        raise RecipeError("hosts: empty; list at least one host name")
    selectors = {key: _selectors(data, key) for key in _SELECTOR_KEYS}
    if not selectors["content"]:
        raise RecipeError("content: missing; give at least one CSS selector for the article body")
    lazy = _strings(data, "lazy_attributes")
    for attribute in lazy:
        if not _ATTRIBUTE.match(attribute.lower()):
            raise RecipeError(f"lazy_attributes: {attribute!r} is not an attribute name")
    policy = data.get("referrer_policy", "")
    if not isinstance(policy, str) or policy.strip().lower() not in REFERRER_POLICIES:
        raise RecipeError(f"referrer_policy: {policy!r} is not one of {', '.join(sorted(p for p in REFERRER_POLICIES if p))}")
    full_content = data.get("full_content", False)
    if not isinstance(full_content, bool):
        raise RecipeError(f"full_content: {full_content!r} must be true or false")
    live_sample = data.get("live_sample")
    if live_sample is not None:
        if not isinstance(live_sample, str) or urlsplit(live_sample).scheme not in ("http", "https"):
            raise RecipeError(f"live_sample: {live_sample!r} must be an http(s) URL of one article")
        if not any(host_matches(urlsplit(live_sample).hostname or "", h) for h in hosts):
            raise RecipeError(f"live_sample: {live_sample!r} is not on any of the recipe's hosts")
    min_text = data.get("min_text_chars", DEFAULT_MIN_TEXT_CHARS)
    if not isinstance(min_text, int) or isinstance(min_text, bool) or min_text < 1:
        raise RecipeError(f"min_text_chars: {min_text!r} must be a positive integer")
    return Recipe(
        name=name,
        hosts=hosts,
        lazy_attributes=tuple(a.lower() for a in lazy),
        referrer_policy=policy.strip().lower(),
        full_content=full_content,
        live_sample=live_sample or None,
        min_text_chars=min_text,
        **selectors,
    )


def recipe_for(url: str, recipes: Sequence[Recipe]) -> Recipe | None:
    """The recipe whose host matches the URL's host or a parent domain of it; the most specific host wins."""
    try:
        host = (urlsplit(url).hostname or "").rstrip(".").lower()
    except ValueError:
        return None
    best: tuple[int, Recipe] | None = None
    for recipe in recipes:
        for pattern in recipe.hosts:
            if host_matches(host, pattern) and (best is None or len(pattern) > best[0]):
                best = (len(pattern), recipe)
    return best[1] if best else None


def host_matches(host: str, pattern: str) -> bool:
    """True when `host` is `pattern` or one of its subdomains ("www.woshipm.com" matches "woshipm.com")."""
    host = host.rstrip(".").lower()
    pattern = pattern.rstrip(".").lower()
    return bool(host) and (host == pattern or host.endswith("." + pattern))


def _strings(data: Mapping[str, Any], key: str) -> tuple[str, ...]:
    value = data.get(key, [])
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise RecipeError(f"{key}: must be a string or a list of strings, got {value!r}")
    return tuple(v.strip() for v in value if v.strip())


def _selectors(data: Mapping[str, Any], key: str) -> tuple[str, ...]:
    selectors = _strings(data, key)
    translator = GenericTranslator()
    for selector in selectors:
        try:
            translator.css_to_xpath(selector)
        except SelectorError as exc:
            raise RecipeError(f"{key}: {selector!r} is not a valid CSS selector: {exc}") from None
    return selectors


def _host(value: str) -> str:
    host = value.strip().rstrip(".").lower()
    if not _HOST.match(host):
        raise RecipeError(f"hosts: {value!r} is not a bare host name (no scheme, port, path or '*'; subdomains match anyway)")
    return host


__all__ = [
    "DEFAULT_SITES_DIR",
    "REFERRER_POLICIES",
    "Recipe",
    "RecipeError",
    "host_matches",
    "load_recipe",
    "load_recipes",
    "parse_recipe",
    "recipe_for",
]
