"""`feedloom serve` for real: datasette on 127.0.0.1 over the demo crawl's database, checked through its JSON API."""

from __future__ import annotations

import json
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from crawler.cli_browse import load_metadata, search, serve
from pipelines.search import fold, parse_query

ROOT = Path(__file__).resolve().parent.parent
CANNED = ("latest_entries", "entries_per_columnist_per_month", "failing_feeds", "changed_entries", "merged_duplicates")


def crawl_demo(path: Path) -> Path:
    """Run the offline demo crawl (`feedloom demo`) into PATH."""
    subprocess.run(
        [sys.executable, "-m", "crawler.cli", "demo", "--db", str(path)],
        cwd=ROOT, check=True, capture_output=True, timeout=240,
    )
    return path


def copy_database(source: Path, target: Path) -> Path:
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)
    return target


def add_revision(path: Path) -> None:
    """The demo crawls each feed once, so nothing has changed yet: record one change the way the store does."""
    conn = sqlite3.connect(path, isolation_level=None)
    if conn.execute("SELECT count(*) FROM entry_revisions").fetchone()[0] == 0:
        entry_id, = conn.execute("SELECT id FROM entries ORDER BY published_at LIMIT 1").fetchone()
        conn.execute(
            "INSERT INTO entry_revisions (entry_id, content_hash, title, content_html, seen_at, replaced_at)"
            " SELECT id, content_hash, title, content_html, first_seen_at, '2030-01-01T00:00:00Z' FROM entries WHERE id = ?",
            [entry_id],
        )
        conn.execute(
            "UPDATE entries SET title = title || '（修订）', content_hash = 'revised', revision_count = revision_count + 1,"
            " last_changed_at = '2030-01-01T00:00:00Z' WHERE id = ?",
            [entry_id],
        )
    conn.close()


@pytest.fixture(scope="session")
def browse_db(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the demo crawl's database: tests/conftest.py's `demo_db` when there is one, else crawled here."""
    try:
        source = Path(request.getfixturevalue("demo_db"))
    except pytest.FixtureLookupError:
        source = crawl_demo(tmp_path_factory.mktemp("demo") / "demo.db")
    # Not named feeds.db on purpose: `feedloom serve` must apply the metadata to any database name.
    path = copy_database(source, tmp_path_factory.mktemp("browse") / "demo-copy.db")
    add_revision(path)
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def get(url: str) -> tuple[int, dict[str, str], bytes]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


@pytest.fixture(scope="session")
def server(browse_db: Path) -> Iterator[str]:
    """`feedloom serve --db ... --port N` in a subprocess; yields the database's base URL."""
    port = free_port()
    code = "import sys; from crawler.cli_browse import serve; serve(sys.argv[1:], prog_name='feedloom serve')"
    process = subprocess.Popen(
        [sys.executable, "-c", code, "--db", str(browse_db), "--port", str(port)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if get(base + "/-/versions.json")[0] == 200:
                    break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"datasette did not start: {process.communicate(timeout=5)[0]}")
            time.sleep(0.2)
        yield f"{base}/{browse_db.stem}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()


def api(url: str) -> Any:
    status, _, body = get(url)
    assert status == 200, body[:500]
    return json.loads(body)


def table_search(server: str, query: str) -> list[dict[str, Any]]:
    params = urllib.parse.urlencode({"_search": query, "_shape": "objects", "_size": "max"})
    return list(api(f"{server}/entries.json?{params}")["rows"])


def oracle(path: Path, query: str) -> set[str]:
    """Entries where every group of the query has a term that is a substring of an indexed column."""
    groups = parse_query(query)
    if not groups:
        return set()
    conn = sqlite3.connect(path)
    rows = conn.execute("SELECT id, title, content_text, author, categories FROM entries").fetchall()
    conn.close()
    found = set()
    for row in rows:
        columns = [fold(value) for value in row[1:] if value is not None]
        if all(any(fold(term) in column for term in group for column in columns) for group in groups):
            found.add(row[0])
    return found


# -- search ----------------------------------------------------------------------


@pytest.mark.parametrize("query", ["电商", "跨境电商", "checkout", "Roadmap", "B端 审批", "生鲜 OR checkout"])
def test_search_box_finds(server: str, browse_db: Path, query: str) -> None:
    found = {row["id"] for row in table_search(server, query)}
    assert found, f"the demo crawl has entries for {query!r}"
    assert found == oracle(browse_db, query)


@pytest.mark.parametrize("query", ["AI 电商", "电", "不存在的词语"])
def test_search_box_matches_substrings(server: str, browse_db: Path, query: str) -> None:
    assert {row["id"] for row in table_search(server, query)} == oracle(browse_db, query)


@pytest.mark.parametrize("query", ['"', '电商"', "*", "电商*", "-", "-电商", "OR", "电商 OR", "(", "(电商", ":", "title:电商",
                                   "NEAR(电商", "AND", "NOT 电商", "^", '"" OR ""'])
def test_search_box_never_errors(server: str, browse_db: Path, query: str) -> None:
    params = urllib.parse.urlencode({"_search": query})
    status, _, body = get(f"{server}/entries?{params}")
    assert status == 200, body[:300]
    assert {row["id"] for row in table_search(server, query)} == oracle(browse_db, query)


def test_search_box_searches_one_column(server: str, browse_db: Path) -> None:
    params = urllib.parse.urlencode({"_search_title": "电商", "_shape": "objects", "_size": "max"})
    rows = api(f"{server}/entries.json?{params}")["rows"]
    assert rows and all("电商" in row["title"] for row in rows)


@pytest.mark.parametrize("query", ["电商", "跨境电商", "checkout", "B端 审批", '"', "OR", "-"])
def test_search_query_is_ranked(server: str, browse_db: Path, query: str) -> None:
    params = urllib.parse.urlencode({"q": query, "_shape": "objects"})
    rows = api(f"{server}/search.json?{params}")["rows"]
    assert {row["id"] for row in rows} == oracle(browse_db, query)
    ranks = [row["rank"] for row in rows]
    assert ranks == sorted(ranks)


def test_search_query_agrees_with_feedloom_search(server: str, browse_db: Path) -> None:
    params = urllib.parse.urlencode({"q": "电商", "_shape": "objects"})
    web = [row["id"] for row in api(f"{server}/search.json?{params}")["rows"]]
    result = CliRunner().invoke(search, ["电商", "--db", str(browse_db), "--json", "--limit", "50"])
    assert result.exit_code == 0, result.output
    assert [row["id"] for row in json.loads(result.output)] == web


def test_search_query_escapes_html(server: str) -> None:
    params = urllib.parse.urlencode({"q": "电商", "_shape": "objects"})
    rows = api(f"{server}/search.json?{params}")["rows"]
    assert rows[0]["entry"].startswith('<a href="entries/')
    assert "<mark>" in "".join(row["snippet"] for row in rows)


# -- facets, canned queries, pages ---------------------------------------------------------


def test_entries_facets(server: str, browse_db: Path) -> None:
    facets = api(f"{server}/entries.json?_size=1")["facet_results"]
    assert {"feed_id", "author", "categories", "published_at"} <= set(facets)
    assert facets["categories"]["type"] == "array"
    assert facets["published_at"]["type"] == "month"
    conn = sqlite3.connect(browse_db)
    total = conn.execute("SELECT count(*) FROM entries WHERE published_at IS NOT NULL").fetchone()[0]
    conn.close()
    months = facets["published_at"]["results"]
    assert sum(value["count"] for value in months) == total
    assert all(len(value["value"]) == 7 for value in months)
    assert {value["value"] for value in facets["categories"]["results"]} >= {"电商"}


def test_month_facet_filters(server: str) -> None:
    month = api(f"{server}/entries.json?_size=1")["facet_results"]["published_at"]["results"][0]
    assert get(month["toggle_url"])[0] == 200
    params = urllib.parse.urlencode({"published_at__startswith": month["value"], "_shape": "objects", "_size": "max"})
    rows = api(f"{server}/entries.json?{params}")["rows"]
    assert len(rows) == month["count"]


def test_entries_sorted_newest_first(server: str) -> None:
    rows = api(f"{server}/entries.json?_shape=objects&_size=max")["rows"]
    dates = [row["published_at"] for row in rows if row["published_at"]]
    assert dates == sorted(dates, reverse=True)


@pytest.mark.parametrize("name", CANNED)
def test_canned_query_returns_rows(server: str, name: str) -> None:
    data = api(f"{server}/{name}.json?_shape=objects")
    assert data["rows"], name
    assert not data.get("error")


def test_merged_duplicates_say_why(server: str) -> None:
    rows = api(f"{server}/merged_duplicates.json?_shape=objects")["rows"]
    assert all(row["merge_reason"] for row in rows)
    assert all(row["merged_from_feed"] and row["title"] for row in rows)


def test_failing_feeds_show_the_error(server: str) -> None:
    rows = api(f"{server}/failing_feeds.json?_shape=objects")["rows"]
    assert all(row["error"] for row in rows)


def test_pages_load_and_send_no_referrer(server: str) -> None:
    entry_id = api(f"{server}/entries.json?_shape=objects&_size=1")["rows"][0]["id"]
    for path in ("", "/entries", f"/entries/{entry_id}", "/search?q=电商", "/latest_entries", "/feeds"):
        status, headers, _ = get(server + urllib.parse.quote(path, safe="/?=&"))
        assert status == 200, path
        assert {k.lower(): v for k, v in headers.items()}["referrer-policy"] == "no-referrer"


def test_entry_body_is_rendered_as_html(server: str, browse_db: Path) -> None:
    conn = sqlite3.connect(browse_db)
    (entry_id,) = conn.execute("SELECT id FROM entries WHERE content_html LIKE '%<p>%' LIMIT 1").fetchone()
    conn.close()
    status, _, body = get(f"{server}/entries/{entry_id}")
    page = body.decode()
    assert status == 200
    assert 'class="col-content_html' in page
    assert "&lt;p&gt;" not in page.split('class="col-content_html', 1)[1].split("</td>", 1)[0]


def test_metadata_describes_every_table(server: str, browse_db: Path) -> None:
    metadata = api(f"{server.rsplit('/', 1)[0]}/-/metadata.json")
    tables = metadata["databases"][browse_db.stem]["tables"]
    for name in ("feeds", "entries", "entry_sightings", "entry_revisions", "columnists", "crawls", "feed_fetches", "tombstones"):
        assert tables[name]["title"] and tables[name]["description"], name
    conn = sqlite3.connect(browse_db)
    columns = [row[1] for row in conn.execute("PRAGMA table_info(entries)")]
    conn.close()
    described = set(tables["entries"]["columns"])
    core = {"id", "url", "title", "author", "published_at", "categories", "content_html", "content_text", "feed_id"}
    assert core <= described and core <= set(columns)


# -- the commands themselves ----------------------------------------------------------


def test_load_metadata_follows_the_database_name() -> None:
    plain = yaml.safe_load((ROOT / "data" / "metadata.yml").read_text(encoding="utf-8"))
    renamed = load_metadata("my-feeds")
    assert renamed["databases"]["my-feeds"]["tables"] == plain["databases"]["feeds"]["tables"]
    assert 'href="/my-feeds/entries"' in renamed["databases"]["my-feeds"]["description_html"]
    assert load_metadata("feeds") == plain


@pytest.mark.parametrize("command", [serve, search])
def test_missing_database_is_a_clear_error(tmp_path: Path, command: Any) -> None:
    args = ["--db", str(tmp_path / "nope.db")] + (["电商"] if command is search else [])
    result = CliRunner().invoke(command, args)
    assert result.exit_code == 1
    assert "no database" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "nope.db").exists()


def test_feedloom_search_prints_ranked_results(browse_db: Path) -> None:
    result = CliRunner().invoke(search, ["电商", "--db", str(browse_db), "--limit", "2"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("1. ") and "\n2. " in result.output and "\n3. " not in result.output
    assert "\x1b[" not in result.output  # no terminal, no highlighting codes


def test_feedloom_search_json(browse_db: Path) -> None:
    result = CliRunner().invoke(search, ["跨境电商", "--db", str(browse_db), "--json"])
    rows = json.loads(result.output)
    assert {row["id"] for row in rows} == oracle(browse_db, "跨境电商")
    assert set(rows[0]) == {"id", "title", "url", "author", "published_at", "snippet", "rank"}


def test_feedloom_search_no_match(browse_db: Path) -> None:
    result = CliRunner().invoke(search, ['"', "--db", str(browse_db)])
    assert result.exit_code == 0 and result.output.startswith("no entries match")


def test_plain_datasette_command_works(tmp_path: Path, browse_db: Path) -> None:
    """The documented `datasette data/feeds.db -m data/metadata.yml --plugins-dir data/datasette/plugins`."""
    db = copy_database(browse_db, tmp_path / "feeds.db")
    command = [sys.executable, "-m", "datasette", "serve", str(db), "-m", "data/metadata.yml",
               "--plugins-dir", "data/datasette/plugins"]
    for query in ("电商", '"'):
        path = "/feeds/entries.json?" + urllib.parse.urlencode({"_search": query, "_shape": "objects", "_size": "max"})
        out = subprocess.run([*command, "--get", path], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
        assert out.returncode == 0, out.stderr
        assert {row["id"] for row in json.loads(out.stdout)["rows"]} == oracle(db, query)
    out = subprocess.run([*command, "--get", "/feeds/merged_duplicates.json?_shape=objects"], cwd=ROOT,
                         capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["rows"]
