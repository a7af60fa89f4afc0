"""`feedloom recipes`: check site recipes against their saved pages, and against one live page per site."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import lxml.html
from lxml import etree

from crawler.parsers.article import (
    ArticleFields,
    ExtractError,
    extract_article,
    visible_text,
)
from crawler.recipes import Recipe, RecipeError, load_recipes, recipe_for

DEFAULT_PAGES_DIR = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "sites"
# Saved pages in this folder have no recipe: they check the generic fallback.
GENERIC_DIR = "_generic"
EXPECTED_SUFFIX = ".expected.json"
# Saved-page text may drift this much (a fixed whitespace rule, a kept caption) before it counts.
TEXT_LENGTH_TOLERANCE = 0.10
# A live page with less text than this share of the saved page's is a sharp drop.
LIVE_DROP_RATIO = 0.5
TEXT_EDGE_CHARS = 40
# Compared exactly between a saved page's expected JSON and a fresh extraction.
EXACT_KEYS = (
    "method",
    "title",
    "author",
    "author_url",
    "author_bio",
    "author_avatar",
    "categories",
    "published",
    "cover_image",
    "language",
    "text_start",
    "text_end",
)

Fetch = Callable[..., tuple[bytes, dict[str, str], str]]


@dataclass(frozen=True)
class SiteReport:
    """One line of `recipes check`: a recipe (or the generic fallback) and what is wrong with it."""

    name: str
    status: str  # "ok", "FAIL" (saved pages), "DRIFT" (live page), "ERROR" (live page unreachable)
    details: tuple[str, ...]

    def line(self, width: int = 12) -> str:
        return f"{self.status:<6} {self.name:<{width}} {'; '.join(self.details)}".rstrip()


def snapshot(fields: ArticleFields, url: str) -> dict[str, Any]:
    """The expected-JSON form of one extraction: every field but the body, which is summarized."""
    text = visible_text(fields.content_html)
    return {
        "url": url,
        "method": fields.method,
        "title": fields.title,
        "author": fields.author,
        "author_url": fields.author_url,
        "author_bio": fields.author_bio,
        "author_avatar": fields.author_avatar,
        "categories": list(fields.categories),
        "published": fields.published,
        "cover_image": fields.cover_image,
        "language": fields.language,
        "text_length": fields.text_length,
        "text_start": text[:TEXT_EDGE_CHARS],
        "text_end": text[-TEXT_EDGE_CHARS:],
    }


def compare_snapshot(expected: dict[str, Any], actual: dict[str, Any]) -> list[str]:
    """What differs, one phrase per field: exact fields exactly, the text length within ±10%."""
    problems = [
        f"{key}: expected {expected.get(key)!r}, got {actual.get(key)!r}"
        for key in EXACT_KEYS
        if expected.get(key) != actual.get(key)
    ]
    want, got = expected.get("text_length"), actual.get("text_length")
    if not isinstance(want, int) or not isinstance(got, int) or abs(got - want) > want * TEXT_LENGTH_TOLERANCE:
        problems.append(f"text_length: expected {want!r} (±{TEXT_LENGTH_TOLERANCE:.0%}), got {got!r}")
    return problems


def saved_pages(pages_dir: Path, name: str) -> list[Path]:
    """The saved pages of one recipe: <pages_dir>/<name>/*.html."""
    return sorted((pages_dir / name).glob("*.html"))


def expected_path(page: Path) -> Path:
    return page.with_name(page.stem + EXPECTED_SUFFIX)


def page_url(page: Path) -> str | None:
    """The URL a saved page was (or pretends to be) fetched from: its expected JSON's, else its canonical link."""
    expected = expected_path(page)
    if expected.exists():
        try:
            url = json.loads(expected.read_text(encoding="utf-8")).get("url")
        except (ValueError, AttributeError):
            url = None
        if isinstance(url, str) and url:
            return url
    try:
        root = lxml.html.document_fromstring(page.read_bytes())
    except (ValueError, etree.ParserError):
        return None
    for found in root.xpath("//link[@rel='canonical']/@href | //meta[@property='og:url']/@content"):
        if str(found).startswith(("http://", "https://")):
            return str(found)
    return None


def extract_saved_page(page: Path, recipes: Sequence[Recipe]) -> tuple[str, Recipe | None, ArticleFields]:
    """Extract one saved page the way the crawl would: the recipe is picked by the page's URL."""
    url = page_url(page)
    if url is None:
        raise ExtractError(f"no URL for {page.name}: give {expected_path(page).name} a \"url\" or the page a canonical link")
    recipe = recipe_for(url, recipes)
    return url, recipe, extract_article(page.read_bytes(), url, {"content-type": "text/html"}, recipe)


def check_saved_pages(name: str, pages_dir: Path, recipes: Sequence[Recipe]) -> tuple[list[str], int | None]:
    """Problems with one recipe's saved pages (name GENERIC_DIR: pages no recipe matches), and their shortest text."""
    pages = saved_pages(pages_dir, name)
    if not pages:
        return [f"no saved page in {pages_dir / name}"], None
    generic = name == GENERIC_DIR
    problems: list[str] = []
    lengths: list[int] = []
    for page in pages:
        expected_file = expected_path(page)
        try:
            expected = json.loads(expected_file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            problems.append(f"{page.name}: no {expected_file.name} (run `feedloom recipes regenerate {name}`)")
            continue
        except ValueError as exc:
            problems.append(f"{expected_file.name}: not JSON: {exc}")
            continue
        try:
            url, recipe, fields = extract_saved_page(page, recipes)
        except ExtractError as exc:
            problems.append(f"{page.name}: {exc}")
            continue
        if generic and recipe is not None:
            problems.append(f"{page.name}: {url} is matched by recipe {recipe.name!r}; a generic page needs a host no recipe has")
        elif not generic and (recipe is None or recipe.name != name):
            problems.append(f"{page.name}: {url} is not matched by this recipe's hosts")
        elif recipe is not None and fields.text_length < recipe.min_text_chars:
            problems.append(f"{page.name}: {fields.text_length} characters of text, under min_text_chars {recipe.min_text_chars}")
        problems.extend(f"{page.name}: {p}" for p in compare_snapshot(expected, snapshot(fields, url)))
        lengths.append(fields.text_length)
    return problems, min(lengths) if lengths else None


def check_live(recipe: Recipe, saved_length: int | None, *, allow_private: bool = False, fetch: Fetch | None = None) -> tuple[str, str]:
    """Fetch the recipe's live sample and say whether the recipe still reads it: ("ok"|"DRIFT"|"ERROR"|"skipped", detail)."""
    if not recipe.live_sample:
        return "skipped", "live: no live_sample"
    from crawler.fetch import FetchError, fetch_url

    try:
        body, headers, final_url = (fetch or fetch_url)(recipe.live_sample, allow_private=allow_private)
    except FetchError as exc:
        return "ERROR", f"live: {exc} ({recipe.live_sample})"
    except OSError as exc:  # a fetcher other than ours may let socket errors through
        return "ERROR", f"live: {exc} ({recipe.live_sample})"
    try:
        fields = extract_article(body, final_url, headers, recipe)
    except ExtractError as exc:
        return "DRIFT", f"live: empty body: {exc}"
    drift = []
    if fields.method != f"recipe:{recipe.name}":
        drift.append("no content selector matched (the generic fallback read the page)")
    if not fields.author:
        drift.append("no author")
    if fields.text_length < recipe.min_text_chars:
        drift.append(f"{fields.text_length} characters of text, under min_text_chars {recipe.min_text_chars}")
    elif saved_length and fields.text_length < saved_length * LIVE_DROP_RATIO:
        drift.append(f"{fields.text_length} characters of text, under {LIVE_DROP_RATIO:.0%} of the saved page's {saved_length}")
    if drift:
        return "DRIFT", "live: " + "; ".join(drift)
    return "ok", f"live: {fields.text_length} chars by {fields.author}"


def check_sites(
    recipes: Sequence[Recipe],
    pages_dir: Path | None,
    *,
    names: Sequence[str] = (),
    live: bool = False,
    allow_private: bool = False,
    fetch: Fetch | None = None,
) -> list[SiteReport]:
    """One report per recipe (and one for the generic fallback's pages, when there are any).

    pages_dir None: no saved pages to check (an installed copy), the live pages alone.
    """
    chosen = [r for r in recipes if not names or r.name in names]
    reports = []
    for recipe in chosen:
        if pages_dir is None:
            problems, saved_length, details = [], None, ["no saved pages checked"]
        else:
            problems, saved_length = check_saved_pages(recipe.name, pages_dir, recipes)
            count = len(saved_pages(pages_dir, recipe.name))
            details = problems or [f"{count} saved page{'s' if count != 1 else ''} ok"]
        status = "FAIL" if problems else "ok"
        if live:
            live_status, live_detail = check_live(recipe, saved_length, allow_private=allow_private, fetch=fetch)
            details.append(live_detail)
            if status == "ok" and live_status in ("DRIFT", "ERROR"):
                status = live_status
        reports.append(SiteReport(recipe.name, status, tuple(details)))
    if pages_dir is not None and (not names or GENERIC_DIR in names) and saved_pages(pages_dir, GENERIC_DIR):
        problems, _ = check_saved_pages(GENERIC_DIR, pages_dir, recipes)
        count = len(saved_pages(pages_dir, GENERIC_DIR))
        reports.append(SiteReport(GENERIC_DIR, "FAIL" if problems else "ok", tuple(problems or [f"{count} saved page{'s' if count != 1 else ''} ok"])))
    return reports


def regenerate_expected(pages_dir: Path, recipes: Sequence[Recipe], names: Sequence[str] = ()) -> list[tuple[Path, str | None]]:
    """Rewrite every <page>.expected.json from the current extraction: (file, error or None) per page."""
    folders = [p for p in sorted(pages_dir.iterdir()) if p.is_dir()] if pages_dir.is_dir() else []
    results: list[tuple[Path, str | None]] = []
    for folder in folders:
        if names and folder.name not in names:
            continue
        for page in saved_pages(pages_dir, folder.name):
            try:
                url, _, fields = extract_saved_page(page, recipes)
            except ExtractError as exc:
                results.append((page, str(exc)))
                continue
            text = json.dumps(snapshot(fields, url), ensure_ascii=False, indent=2) + "\n"
            expected_path(page).write_text(text, encoding="utf-8")
            results.append((expected_path(page), None))
    return results


# --- the commands ----------------------------------------------------------------------------------

SITES_HELP = "Folder of recipe files (default: data/sites)."
PAGES_HELP = "Folder of saved pages, one sub-folder per recipe (default: tests/fixtures/sites)."


def _load(sites_dir: str | None) -> tuple[Recipe, ...]:
    try:
        return load_recipes(sites_dir)
    except RecipeError as exc:
        raise click.ClickException(str(exc)) from None


def _check_names(names: Sequence[str], recipes: Sequence[Recipe]) -> None:
    known = {r.name for r in recipes} | {GENERIC_DIR}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise click.ClickException(f"no recipe named {', '.join(unknown)} (known: {', '.join(sorted(known))})")


@click.group("recipes")
def recipes() -> None:
    """Site recipes (data/sites/*.toml): how article pages are read, and whether that still works."""


@recipes.command("check")
@click.argument("names", nargs=-1)
@click.option("--live", is_flag=True, help="Also fetch each recipe's live_sample page and report drift.")
@click.option("--sites-dir", type=click.Path(file_okay=False), default=None, help=SITES_HELP)
@click.option("--pages-dir", type=click.Path(file_okay=False), default=None, help=PAGES_HELP)
@click.option("--allow-private", is_flag=True, help="Let --live fetch loopback and private addresses (local test servers).")
def check(names: tuple[str, ...], live: bool, sites_dir: str | None, pages_dir: str | None, allow_private: bool) -> None:
    """Re-extract every saved page and compare it with its expected JSON; with --live, check one current page per site.

    Prints one line per recipe and exits with status 1 when any recipe fails,
    drifted or could not be fetched.
    """
    loaded = _load(sites_dir)
    _check_names(names, loaded)
    pages: Path | None = Path(pages_dir) if pages_dir else DEFAULT_PAGES_DIR
    if pages_dir is None and not DEFAULT_PAGES_DIR.is_dir():
        # An installed copy: the saved pages come with the checkout only. --live still checks the sites.
        if not live:
            raise click.ClickException(
                f"no saved pages at {DEFAULT_PAGES_DIR}: they come with feedloom's checkout, not with an"
                " installed copy; give --pages-dir FOLDER, or --live to check the live sites alone"
            )
        pages = None
    reports = check_sites(loaded, pages, names=names, live=live, allow_private=allow_private)
    width = max([len(r.name) for r in reports] + [8])
    for report in reports:
        click.echo(report.line(width))
    if any(r.status != "ok" for r in reports):
        raise SystemExit(1)


@recipes.command("regenerate")
@click.argument("names", nargs=-1)
@click.option("--sites-dir", type=click.Path(file_okay=False), default=None, help=SITES_HELP)
@click.option("--pages-dir", type=click.Path(file_okay=False), default=None, help=PAGES_HELP)
def regenerate(names: tuple[str, ...], sites_dir: str | None, pages_dir: str | None) -> None:
    """Rewrite the expected JSON beside every saved page (or those of NAMES) from the current extraction.

    An explicit step: run it after changing a recipe or adding a page, then
    read the diff before committing it.
    """
    loaded = _load(sites_dir)
    _check_names(names, loaded)
    results = regenerate_expected(Path(pages_dir) if pages_dir else DEFAULT_PAGES_DIR, loaded, names)
    for path, error in results:
        click.echo(f"error  {path}: {error}" if error else f"wrote  {path}")
    if any(error for _, error in results):
        raise SystemExit(1)


if __name__ == "__main__":
    recipes()
