"""The `feedloom` command: thin click wrappers over library functions."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any, ClassVar

import click

from crawler.feedlist import FeedListError, load_feed_list
from crawler.tables import format_table

DB_HELP = "Database file (default: $FEEDLOOM_DB, else data/feeds.db)."


def db_option(func: Any) -> Any:
    return click.option("--db", "db_path", type=click.Path(dir_okay=False), default=None, help=DB_HELP)(func)


def resolve_db(db_path: str | None) -> str:
    from pipelines.store import default_db_path

    return db_path or default_db_path()


def open_store(db_path: str | None, *, create: bool = True) -> Any:
    from pipelines.store import Store, StoreError

    try:
        return Store.open(resolve_db(db_path), create=create)
    except StoreError as exc:
        raise click.ClickException(str(exc)) from None


class LazyGroup(click.Group):
    """Commands kept in their own modules are imported only when used: `feedloom parse` starts fast."""

    lazy_commands: ClassVar[dict[str, str]] = {
        "recipes": "crawler.cli_recipes:recipes",
        "export": "crawler.cli_export:export",
        "serve": "crawler.cli_browse:serve",
        "search": "crawler.cli_browse:search",
    }

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *self.lazy_commands])

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in self.lazy_commands:
            import importlib

            module_name, _, attr = self.lazy_commands[name].partition(":")
            command: click.Command = getattr(importlib.import_module(module_name), attr)
            return command
        return super().get_command(ctx, name)


@contextmanager
def opened_store(db_path: str | None, *, create: bool = True) -> Iterator[Any]:
    """The store for one command, closed whatever happens."""
    store = open_store(db_path, create=create)
    try:
        yield store
    finally:
        store.close()


def _print_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    """feedloom's version, then the SQLite that writes and searches the database (for bug reports)."""
    if not value or ctx.resilient_parsing:
        return
    from importlib.metadata import PackageNotFoundError, version

    from sqlite_utils.utils import sqlite3

    from pipelines.sqlitelib import describe

    try:
        ours = version("feedloom")
    except PackageNotFoundError:  # run from a checkout that was never installed
        ours = "unknown (not installed)"
    through = describe(sqlite3)
    click.echo(f"feedloom, version {ours}")
    click.echo(f"SQLite {sqlite3.sqlite_version}, through {through}")
    ctx.exit()


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--version", is_flag=True, expose_value=False, is_eager=True, callback=_print_version,
              help="Show the version, and the SQLite in use, and exit.")
def main() -> None:
    """feedloom: columnist feeds (RSS, Atom, JSON Feed) into a clean, deduplicated SQLite database."""


@main.command()
@click.argument("url")
@click.option("--name", help="A name for the feed (default: the feed's own title).")
@click.option("--category", "categories", multiple=True, help="A label added to every entry of this feed; repeatable.")
@click.option("--timezone", help="Time zone for the feed's dates that carry none (e.g. Asia/Shanghai or +08:00).")
@click.option("--full-content/--no-full-content", default=None,
              help="Always (or never) fetch each entry's article page; unset: fetch when the feed gives only summaries.")
@db_option
def add(url: str, name: str | None, categories: tuple[str, ...], timezone: str | None, full_content: bool | None,
        db_path: str | None) -> None:
    """Subscribe to the feed at URL."""
    from crawler.feedlist import valid_timezone
    from pipelines.metadata import normalize_url

    clean = normalize_url(url)
    if clean is None:
        raise click.ClickException(f"not an http(s) URL: {url!r}")
    if timezone is not None and not valid_timezone(timezone):
        raise click.BadParameter(f"{timezone!r} is neither a zone name like Asia/Shanghai nor an offset like +08:00",
                                 param_hint="--timezone")
    with opened_store(db_path) as store:
        feed_id, created = store.add_feed(clean, name=name, categories=categories, timezone=timezone,
                                          full_content=full_content)
    click.echo(f"{'added' if created else 'already subscribed, updated'} feed {feed_id}: {clean}")


@main.command("import")
@click.argument("file", type=click.Path(dir_okay=False))
@db_option
def import_(file: str, db_path: str | None) -> None:
    """Subscribe to every feed in FILE: OPML 2.0 or a TOML list ([[feeds]] with url, name, categories)."""
    from pipelines.metadata import normalize_url

    try:
        specs = load_feed_list(file)
    except FeedListError as exc:
        raise click.ClickException(str(exc)) from None
    added = updated = 0
    skipped: list[str] = []
    with opened_store(db_path) as store:
        for spec in specs:
            clean = normalize_url(spec.url)
            if clean is None:
                skipped.append(spec.url)
                continue
            _, created = store.add_feed(clean, name=spec.name, categories=spec.categories, timezone=spec.timezone,
                                        full_content=spec.full_content)
            added += created
            updated += not created
    click.echo(f"{file}: {added} feeds added, {updated} already subscribed")
    for url in skipped:
        click.echo(f"  skipped {url!r}: not an http(s) URL", err=True)


@main.command()
@db_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def feeds(db_path: str | None, as_json: bool) -> None:
    """List subscribed feeds: id, name, url, categories, last status, entries."""
    with opened_store(db_path) as store:
        rows = store.feeds()
    for row in rows:
        row["categories"] = json.loads(row.get("categories") or "[]")
        row["name"] = row.get("name") or row.get("title") or ""
        status = row.get("last_status") or "never fetched"
        if row.get("last_error"):
            status = f"error: {row['last_error']}"
        if not row.get("active"):
            status = f"inactive: {row.get('deactivated_reason') or ''}"
        row["last status"] = status
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    if not rows:
        click.echo("no feeds yet: `feedloom add URL` or `feedloom import data/feeds.toml`")
        return
    click.echo(format_table(rows, ["id", "name", "url", "categories", "last status", "entries"]))


@main.command()
@db_option
@click.option("--all", "all_feeds", is_flag=True, help="Fetch every active feed, due or not.")
@click.option("--feed", "feed_ids", multiple=True, type=int, help="Fetch only this feed id; repeatable.")
@click.option("--allow-private", is_flag=True, help="Permit loopback and private addresses (local test servers).")
@click.option("--proxy", default="", help="Send every request through this HTTP proxy.")
@click.option("-v", "--verbose", count=True, help="Show Scrapy's log (-vv for debug).")
@click.option("--quiet", "-q", is_flag=True, help="No progress line, summary only.")
@click.option("--every", "every", default=None, metavar="DURATION",
              help="Keep running: crawl the due feeds every DURATION (e.g. 15m, 1h, 90s).")
@click.option("--wait-lock", default=10.0, show_default=True, metavar="SECONDS",
              help="How long to wait for another crawl on the same database before giving up.")
@click.option("-s", "--set", "overrides", multiple=True, metavar="NAME=VALUE",
              help="Override a setting (Scrapy's or FEEDLOOM_*), e.g. -s DOWNLOAD_TIMEOUT=10; repeatable.")
def crawl(db_path: str | None, all_feeds: bool, feed_ids: tuple[int, ...], allow_private: bool, proxy: str,
          verbose: int, quiet: bool, every: str | None, wait_lock: float, overrides: tuple[str, ...]) -> None:
    """Fetch the due feeds and store their entries."""
    if every is not None:
        _crawl_every(parse_duration(every), sys.argv[1:])
        return
    extra = parse_overrides(overrides)
    row = _crawl(resolve_db(db_path), all_feeds=all_feeds, feed_ids=feed_ids, allow_private=allow_private,
                 proxy=proxy, verbose=verbose, progress=not quiet, lock_wait_s=wait_lock, extra_settings=extra)
    if row.get("status") == "failed" or (row.get("feeds_failed") and row.get("feeds_failed") == row.get("feeds_due")):
        sys.exit(1)


def parse_overrides(pairs: tuple[str, ...]) -> dict[str, str]:
    from crawler import settings as defaults

    out = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        name = name.strip()
        if not sep or not name:
            raise click.BadParameter(f"{pair!r} is not NAME=VALUE", param_hint="--set")
        if not hasattr(defaults, name) and not name.isupper():
            raise click.BadParameter(f"{name!r} is not a setting name", param_hint="--set")
        out[name] = value
    return out


def parse_duration(text: str) -> float:
    """'15m' -> 900.0; units s, m, h, d; a bare number is seconds."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    value = text.strip().lower()
    try:
        seconds = float(value[:-1]) * units[value[-1]] if value and value[-1] in units else float(value)
    except ValueError:
        raise click.BadParameter(f"{text!r} is not a duration like 15m, 1h or 90s", param_hint="--every") from None
    if seconds < 10:
        raise click.BadParameter("the interval must be at least 10s", param_hint="--every")
    return seconds


def _crawl_every(seconds: float, argv: list[str]) -> None:
    """Run one crawl per interval, each in its own process (Scrapy's reactor starts once per process)."""
    import subprocess

    args = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg == "--every":
            skip = True
            continue
        if arg.startswith("--every="):
            continue
        args.append(arg)
    click.echo(f"crawling the due feeds every {seconds:g}s; Ctrl-C to stop")
    try:
        while True:
            started = time.monotonic()
            subprocess.run([sys.executable, "-m", "crawler.cli", *args], check=False)
            time.sleep(max(1.0, seconds - (time.monotonic() - started)))
    except KeyboardInterrupt:
        click.echo("stopped")


def _crawl(db: str, **kwargs: Any) -> dict[str, Any]:
    from crawler.runner import CrawlConfigError, CrawlLocked, CrawlOptions, run_crawl

    started = time.monotonic()
    try:
        row = run_crawl(CrawlOptions(db_path=db, **kwargs))
    except (CrawlLocked, CrawlConfigError) as exc:
        raise click.ClickException(str(exc)) from None
    print_summary(row, time.monotonic() - started, db)
    return row


def print_summary(row: dict[str, Any], seconds: float, db: str) -> None:
    if not row:
        click.echo("the crawl did not start (see -v for Scrapy's log)", err=True)
        return
    due = row.get("feeds_due") or 0
    if not due:
        click.echo("no feeds due: nothing to fetch (use --all to fetch every feed now)")
        return
    counted = (
        f"{row.get('feeds_fetched') or 0} fetched, "
        f"{row.get('feeds_not_modified') or 0} not modified, {row.get('feeds_failed') or 0} failed"
    )
    if row.get("status") == "interrupted" and row.get("feeds_fetched") is None:
        click.echo(
            f"stopped at once after {seconds:.1f}s, before the crawl could count what it did: "
            "what it stored stays, and the next crawl fetches the rest"
        )
        return
    if row.get("status") == "interrupted":
        answered = sum(row.get(k) or 0 for k in ("feeds_fetched", "feeds_not_modified", "feeds_failed"))
        rest = "; the rest stay due" if answered < due else ""
        click.echo(f"stopped after {seconds:.1f}s, {answered} of {due} feeds done: {counted}{rest}")
    else:
        click.echo(f"crawled {due} feeds in {seconds:.1f}s: {counted}")
    click.echo(
        f"entries: {row.get('entries_new') or 0} new, {row.get('entries_updated') or 0} updated, "
        f"{row.get('entries_merged') or 0} merged as duplicates, {row.get('entries_unchanged') or 0} unchanged"
    )
    if row.get("pages_fetched") or row.get("pages_failed"):
        click.echo(
            f"article pages: {row.get('pages_fetched') or 0} entries completed from their pages, "
            f"{row.get('pages_failed') or 0} could not be (kept with the feed's content)"
        )
    errors = json.loads(row.get("errors") or "[]")
    for err in errors:
        click.echo(f"  error: {err['feed']}: {err['error']}")
    for message in row.get("internal_errors") or []:
        click.echo(f"  internal error: {message}", err=True)


@main.command()
@db_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def status(db_path: str | None, as_json: bool) -> None:
    """Feed health: last success, last error, failures, next check, entries per week; totals."""
    with opened_store(db_path, create=False) as store:
        rows = store.feed_health()
        last_crawl = next(store.db.query("SELECT * FROM crawls ORDER BY id DESC LIMIT 1"), None)
    totals = {name: sum(1 for r in rows if r["health"] == name) for name in ("healthy", "failing", "deactivated", "new")}
    if as_json:
        click.echo(json.dumps({"feeds": rows, "totals": totals, "last_crawl": last_crawl}, ensure_ascii=False, indent=2))
        return
    if rows:
        for row in rows:
            row["error"] = row.get("last_error") or row.get("deactivated_reason") or ""
            row["per week"] = f"{row['entries_per_week']:.1f}"
            row["failures"] = row.get("consecutive_failures") or 0
        click.echo(format_table(rows, ["id", "name", "health", "last_success_at", "failures", "next_check_at", "per week", "error"], 40))
    click.echo(
        f"\n{len(rows)} feeds: {totals['healthy']} healthy, {totals['failing']} failing, "
        f"{totals['deactivated']} deactivated, {totals['new']} not fetched yet"
    )
    if last_crawl:
        click.echo(
            f"last crawl #{last_crawl['id']} {last_crawl['status']} at {last_crawl['started_at']}: "
            f"{last_crawl['entries_new'] or 0} new, {last_crawl['entries_updated'] or 0} updated, "
            f"{last_crawl['feeds_failed'] or 0} feeds failed"
        )


@main.command()
@db_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def columnists(db_path: str | None, as_json: bool) -> None:
    """List columnists: name, site, posts, first and latest post, profile."""
    with opened_store(db_path, create=False) as store:
        rows = store.columnists()
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    if not rows:
        click.echo("no columnists yet: they appear as entries with authors are crawled")
        return
    for row in rows:
        row["posts"] = row["post_count"]
        row["first post"] = (row.get("first_post_at") or "")[:10]
        row["latest post"] = (row.get("latest_post_at") or "")[:10]
    click.echo(format_table(rows, ["name", "site", "posts", "first post", "latest post", "profile_url"]))


@main.command()
@click.argument("entry_ids", nargs=-1, required=True)
@click.option("--reason", default="deleted by the user", help="Recorded in the tombstone.")
@db_option
def delete(entry_ids: tuple[str, ...], reason: str, db_path: str | None) -> None:
    """Delete entries by id; a tombstone keeps later crawls from bringing them back."""
    missing = []
    with opened_store(db_path, create=False) as store:
        for entry_id in entry_ids:
            gone = store.delete_entry(entry_id, reason)
            if gone is None:
                missing.append(entry_id)
            else:
                click.echo(f"deleted {gone['id']}: {gone['title'] or gone['url']}")
    if missing:
        raise click.ClickException(f"no entry with id {', '.join(missing)}")


@main.command()
@click.argument("source")
@click.option("--base-url", help="Resolve relative links against this URL (default: the feed's URL or its own link).")
@click.option("--allow-private", is_flag=True, help="Permit fetching from loopback and private addresses.")
def parse(source: str, base_url: str | None, allow_private: bool) -> None:
    """Print the entries of a feed FILE or URL as JSON lines, exactly as they would be stored."""
    from crawler.outcome import feed_context
    from crawler.parsers import FeedError, parse_feed
    from crawler.timeutil import to_iso, utc_now
    from pipelines.stages import normalize_entry

    try:
        if source.startswith(("http://", "https://")):
            body, headers, url = _fetch_for_parse(source, allow_private)
        else:
            path = Path(source)
            body, headers, url = path.read_bytes(), {}, base_url or ""
        parsed = parse_feed(body, base_url or url, headers)
    except OSError as exc:
        raise click.ClickException(f"{source}: cannot read ({exc.strerror or exc})") from None
    except FeedError as exc:
        raise click.ClickException(f"{source}: {exc}") from None
    base = base_url or url or parsed.link or ""
    feed = {"id": None, "url": base, "categories": "[]"}
    ctx = feed_context(feed, parsed, to_iso(utc_now()))
    out = sys.stdout
    for raw in parsed.entries:
        entry = normalize_entry(raw, ctx)
        record = asdict(entry)
        record.pop("extra", None)
        record["categories"] = list(entry.categories)
        out.write(json.dumps(record, ensure_ascii=False) + "\n")
    for warning in parsed.warnings:
        click.echo(f"{source}: warning: {warning}", err=True)


def _fetch_for_parse(url: str, allow_private: bool) -> tuple[bytes, dict[str, str], str]:
    from crawler.fetch import FetchError, fetch_url

    try:
        return fetch_url(url, allow_private=allow_private)
    except FetchError as exc:
        raise click.ClickException(f"{url}: {exc}") from None


@main.command()
@db_option
@click.option("--site", type=click.Path(file_okay=False), default=None, help="The demo site folder (default: data/demo).")
@click.option("-v", "--verbose", count=True, help="Show Scrapy's log.")
def demo(db_path: str | None, site: str | None, verbose: int) -> None:
    """Crawl the bundled offline demo site into the database and show what was stored."""
    from crawler.testserver import FixtureServer
    from pipelines.resources import data_dir

    root = Path(site) if site else data_dir() / "demo"
    if not (root / "feeds.toml").exists():
        raise click.ClickException(f"{root}: no feeds.toml here; is this the demo site?")
    db = resolve_db(db_path)
    with opened_store(db) as store:
        for spec in load_feed_list(root / "feeds.toml"):
            store.add_feed(spec.url, name=spec.name, categories=spec.categories)
    with FixtureServer(root) as server:
        click.echo(f"demo site served at {server.url} (as an HTTP proxy for its hosts)")
        _crawl(db, all_feeds=True, allow_private=True, proxy=server.url, verbose=verbose, progress=True)
    with opened_store(db) as store:
        total = store.db.execute("SELECT count(*) FROM entries").fetchone()[0]
    click.echo(f"\n{total} entries in {db}")
    click.echo(f"list feeds:   feedloom feeds --db {db}")
    click.echo(f"browse them:  feedloom serve --db {db}")
    data = data_dir()
    if data.is_relative_to(Path.cwd()):
        data = data.relative_to(Path.cwd())  # data/ in a checkout, where `make demo` runs
    click.echo(f"   (or plain: datasette {db} -m {data / 'metadata.yml'} --plugins-dir {data / 'datasette' / 'plugins'})")


if __name__ == "__main__":
    main()
