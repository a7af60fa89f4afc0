"""Tests for `feedloom recipes check / regenerate` (crawler.cli_recipes), offline and against a local server."""

from __future__ import annotations

import json
import shutil
import socket
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from crawler.cli_recipes import (
    DEFAULT_PAGES_DIR,
    GENERIC_DIR,
    compare_snapshot,
    recipes,
)
from crawler.recipes import load_recipes
from tests.scripted_server import Route, ScriptedServer

PARAGRAPH = "<p>" + "This paragraph is part of a column that the local test server pretends to publish. " * 4 + "</p>"


def article(paragraphs: int = 6, author: str | None = "Local Writer", body_class: str = "post-body") -> bytes:
    byline = f'<a class="byline" href="/u/1">{author}</a>' if author else ""
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>A local column</title></head><body>'
        f'<h1 class="headline">A local column</h1>{byline}<div class="{body_class}">{PARAGRAPH * paragraphs}</div></body></html>'
    ).encode()


def local_recipe(sites: Path, live_sample: str | None) -> None:
    sample = f'live_sample = "{live_sample}"\n' if live_sample else ""
    (sites / "local.toml").write_text(
        'hosts = ["127.0.0.1"]\ncontent = [".post-body"]\ntitle = [".headline"]\nauthor = [".byline"]\n'
        f"author_url = [\".byline\"]\nmin_text_chars = 400\n{sample}",
        encoding="utf-8",
    )


def run(*args: str) -> Result:
    return CliRunner().invoke(recipes, list(args), catch_exceptions=False)


@pytest.fixture()
def dirs(tmp_path: Path) -> tuple[Path, Path]:
    """A sites dir and a pages dir holding one recipe, "local", and its saved page with regenerated expectations."""
    sites, pages = tmp_path / "sites", tmp_path / "pages"
    sites.mkdir()
    (pages / "local").mkdir(parents=True)
    local_recipe(sites, None)
    (pages / "local" / "page.html").write_bytes(article())
    (pages / "local" / "page.expected.json").write_text('{"url": "http://127.0.0.1/saved.html"}', encoding="utf-8")
    assert run("regenerate", "--sites-dir", str(sites), "--pages-dir", str(pages)).exit_code == 0
    return sites, pages


def test_check_passes_on_the_shipped_recipes_and_pages() -> None:
    result = run("check")
    lines = result.output.splitlines()
    assert result.exit_code == 0, result.output
    assert [line.split()[1] for line in lines] == [r.name for r in load_recipes()] + [GENERIC_DIR]
    assert all(line.startswith("ok ") for line in lines)


def test_check_reports_a_field_that_changed(dirs: tuple[Path, Path]) -> None:
    sites, pages = dirs
    expected_file = pages / "local" / "page.expected.json"
    expected = json.loads(expected_file.read_text(encoding="utf-8"))
    expected_file.write_text(json.dumps({**expected, "author": "Somebody Else"}), encoding="utf-8")
    result = run("check", "--sites-dir", str(sites), "--pages-dir", str(pages))
    assert result.exit_code == 1
    assert result.output.startswith("FAIL   local")
    assert "page.html: author: expected 'Somebody Else', got 'Local Writer'" in result.output


def test_check_fails_when_a_recipe_no_longer_finds_its_body(dirs: tuple[Path, Path]) -> None:
    sites, pages = dirs
    (pages / "local" / "page.html").write_bytes(article(body_class="renamed"))
    result = run("check", "--sites-dir", str(sites), "--pages-dir", str(pages))
    assert result.exit_code == 1 and "method: expected 'recipe:local', got 'fallback:readability'" in result.output


def test_check_fails_a_recipe_without_saved_pages(dirs: tuple[Path, Path]) -> None:
    sites, pages = dirs
    shutil.rmtree(pages / "local")
    result = run("check", "--sites-dir", str(sites), "--pages-dir", str(pages))
    assert result.exit_code == 1 and "no saved page in" in result.output


def test_check_fails_a_page_without_expected_json(dirs: tuple[Path, Path]) -> None:
    sites, pages = dirs
    (pages / "local" / "second.html").write_bytes(article())
    result = run("check", "--sites-dir", str(sites), "--pages-dir", str(pages))
    assert result.exit_code == 1 and "second.html: no second.expected.json" in result.output


def test_check_fails_a_page_whose_url_the_recipe_does_not_match(dirs: tuple[Path, Path]) -> None:
    sites, pages = dirs
    expected_file = pages / "local" / "page.expected.json"
    expected = json.loads(expected_file.read_text(encoding="utf-8"))
    expected_file.write_text(json.dumps({**expected, "url": "http://elsewhere.example/p"}), encoding="utf-8")
    result = run("check", "--sites-dir", str(sites), "--pages-dir", str(pages))
    assert result.exit_code == 1 and "is not matched by this recipe's hosts" in result.output


def test_text_length_may_drift_ten_percent() -> None:
    base = {"text_length": 1000}
    assert compare_snapshot(base, {"text_length": 1099}) == []
    assert compare_snapshot(base, {"text_length": 901}) == []
    assert compare_snapshot(base, {"text_length": 1101}) == ["text_length: expected 1000 (±10%), got 1101"]


def test_unknown_recipe_name_is_a_usage_error() -> None:
    result = run("check", "no-such-site")
    assert result.exit_code == 1 and "no recipe named no-such-site" in result.output


def test_broken_recipe_file_is_reported_by_name(tmp_path: Path) -> None:
    (tmp_path / "bad.toml").write_text("hosts = [", encoding="utf-8")
    result = run("check", "--sites-dir", str(tmp_path))
    assert result.exit_code == 1 and "bad.toml: not valid TOML" in result.output


def test_regenerate_writes_expected_json_from_the_canonical_link(tmp_path: Path) -> None:
    pages = tmp_path / "pages"
    shutil.copytree(DEFAULT_PAGES_DIR / "woshipm", pages / "woshipm", ignore=shutil.ignore_patterns("*.json"))
    result = run("regenerate", "woshipm", "--pages-dir", str(pages))
    assert result.exit_code == 0 and result.output.startswith("wrote ")
    written = json.loads((pages / "woshipm" / "page.expected.json").read_text(encoding="utf-8"))
    shipped = json.loads((DEFAULT_PAGES_DIR / "woshipm" / "page.expected.json").read_text(encoding="utf-8"))
    assert written == shipped
    assert run("check", "woshipm", "--pages-dir", str(pages)).exit_code == 0


def test_regenerate_reports_a_page_it_cannot_place(tmp_path: Path) -> None:
    (tmp_path / "local").mkdir()
    (tmp_path / "local" / "page.html").write_bytes(article())  # no canonical link, no expected JSON
    result = run("regenerate", "--pages-dir", str(tmp_path))
    assert result.exit_code == 1 and "no URL for page.html" in result.output


# --- --live, against a server on 127.0.0.1 ---------------------------------------------------------


@pytest.mark.parametrize(
    ("route", "status", "detail"),
    [
        (Route(body=article(paragraphs=8), headers={"Content-Type": "text/html"}), "ok", "live: "),
        (Route(body=article(body_class="redesigned"), headers={"Content-Type": "text/html"}), "DRIFT", "no content selector matched"),
        (Route(body=article(author=None), headers={"Content-Type": "text/html"}), "DRIFT", "no author"),
        (Route(body=article(paragraphs=2), headers={"Content-Type": "text/html"}), "DRIFT", "under 50% of the saved page's"),
        (Route(body=article(paragraphs=1), headers={"Content-Type": "text/html"}), "DRIFT", "under min_text_chars 400"),
        (Route(body=b"", headers={"Content-Type": "text/html"}), "DRIFT", "live: empty body"),
        (Route(status=404, body=b"gone"), "ERROR", "live: HTTP 404"),
    ],
    ids=["ok", "selector-gone", "no-author", "sharp-drop", "below-floor", "empty", "http-404"],
)
def test_live_check_reports_drift_per_site(dirs: tuple[Path, Path], route: Route, status: str, detail: str) -> None:
    sites, pages = dirs
    with ScriptedServer() as server:
        server.route("/post.html", route)
        local_recipe(sites, f"{server.url}/post.html")
        result = run("check", "--live", "--allow-private", "--sites-dir", str(sites), "--pages-dir", str(pages))
        assert len(server.hits_for("/post.html")) == 1
    assert result.output.startswith(f"{status:<6} local"), result.output
    assert detail in result.output and "Traceback" not in result.output
    assert result.exit_code == (0 if status == "ok" else 1)


def test_live_check_reports_an_unreachable_site_without_a_traceback(dirs: tuple[Path, Path]) -> None:
    sites, pages = dirs
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    local_recipe(sites, f"http://127.0.0.1:{port}/post.html")
    result = run("check", "--live", "--allow-private", "--sites-dir", str(sites), "--pages-dir", str(pages))
    assert result.exit_code == 1 and result.output.startswith("ERROR  local") and "Traceback" not in result.output


def test_live_check_refuses_loopback_unless_allowed(dirs: tuple[Path, Path]) -> None:
    sites, pages = dirs
    with ScriptedServer() as server:
        server.route("/post.html", Route(body=article()))
        local_recipe(sites, f"{server.url}/post.html")
        result = run("check", "--live", "--sites-dir", str(sites), "--pages-dir", str(pages))
        assert server.hits_for("/post.html") == []
    assert result.exit_code == 1 and "loopback" in result.output


def test_live_check_skips_a_recipe_without_live_sample(dirs: tuple[Path, Path]) -> None:
    sites, pages = dirs
    result = run("check", "--live", "--sites-dir", str(sites), "--pages-dir", str(pages))
    assert result.exit_code == 0 and "live: no live_sample" in result.output


# --- an installed copy: no saved pages beside the code ---------------------------------------------


def test_check_without_saved_pages_says_where_they_come_from(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("crawler.cli_recipes.DEFAULT_PAGES_DIR", tmp_path / "missing")
    result = CliRunner().invoke(recipes, ["check"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert f"no saved pages at {tmp_path / 'missing'}" in result.output and "--pages-dir" in result.output


def test_live_check_without_saved_pages_checks_the_live_sites_alone(
    dirs: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sites, _ = dirs
    monkeypatch.setattr("crawler.cli_recipes.DEFAULT_PAGES_DIR", tmp_path / "missing")
    with ScriptedServer() as server:
        server.route("/post.html", Route(body=article(paragraphs=8), headers={"Content-Type": "text/html"}))
        local_recipe(sites, f"{server.url}/post.html")
        result = run("check", "--live", "--allow-private", "--sites-dir", str(sites))
        assert len(server.hits_for("/post.html")) == 1
    assert result.exit_code == 0, result.output
    assert result.output.startswith("ok     local") and "no saved pages checked; live: " in result.output
