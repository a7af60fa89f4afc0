"""The `feedloom serve` and `feedloom search` commands: thin click wrappers over datasette and pipelines.search."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import click

from crawler.cli import db_option, open_store, opened_store, resolve_db
from pipelines.resources import data_dir

DATA = data_dir()
METADATA = DATA / "metadata.yml"
PLUGINS = DATA / "datasette" / "plugins"
METADATA_DB_NAME = "feeds"  # the database key in data/metadata.yml: datasette names a database by its file
# Long plain-text cells (content_text, summary) are cut on table pages; a row's own page shows them whole.
DATASETTE_SETTINGS = {"truncate_cells_html": "120", "facet_time_limit_ms": "1000", "sql_time_limit_ms": "3000"}


def load_metadata(db_name: str) -> dict[str, Any]:
    """data/metadata.yml, with its database block under the name datasette gives this database."""
    import yaml
    from datasette.utils import tilde_encode

    metadata: dict[str, Any] = yaml.safe_load(METADATA.read_text(encoding="utf-8"))
    databases = metadata.get("databases") or {}
    if db_name != METADATA_DB_NAME and METADATA_DB_NAME in databases:
        databases[db_name] = databases.pop(METADATA_DB_NAME)
        for block in (metadata, databases[db_name]):
            if "description_html" in block:
                block["description_html"] = block["description_html"].replace(
                    f'href="/{METADATA_DB_NAME}', f'href="/{tilde_encode(db_name)}'
                )
    return metadata


def datasette_args(db: str, metadata_path: str, host: str, port: int) -> list[str]:
    args = ["serve", db, "-m", metadata_path, "--plugins-dir", str(PLUGINS), "--host", host, "--port", str(port)]
    for name, value in DATASETTE_SETTINGS.items():
        args += ["--setting", name, value]
    return args


@click.command()
@db_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("-p", "--port", default=8001, show_default=True, type=click.IntRange(1, 65535), help="Port to listen on.")
def serve(db_path: str | None, host: str, port: int) -> None:
    """Browse and search the database in datasette, with feedloom's titles, facets, queries and search."""
    from datasette.cli import cli as datasette_cli

    db = resolve_db(db_path)
    open_store(db, create=False).close()  # a clear error for a missing file; applies pending migrations
    from datasette.utils import tilde_encode

    name = Path(db).stem  # how datasette names it
    url = f"http://{host}:{port}/{tilde_encode(name)}"
    with tempfile.TemporaryDirectory(prefix="feedloom-serve-") as tmp:
        metadata_path = Path(tmp) / "metadata.json"
        metadata_path.write_text(json.dumps(load_metadata(name), ensure_ascii=False), encoding="utf-8")
        click.echo(f"serving {db} at {url}  (entries: {url}/entries, search: {url}/search)")
        click.echo("press Ctrl-C to stop")
        datasette_cli.main(args=datasette_args(db, str(metadata_path), host, port), prog_name="datasette",
                           standalone_mode=False)


@click.command()
@click.argument("query")
@db_option
@click.option("-n", "--limit", default=20, show_default=True, type=click.IntRange(1, 1000), help="Results to show.")
@click.option("--offset", default=0, type=click.IntRange(0), help="Skip this many results first.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list instead of text.")
def search(query: str, db_path: str | None, limit: int, offset: int, as_json: bool) -> None:
    """Search titles, bodies, authors and categories, best match first.

    Chinese works with words of any length (电商, 跨境电商); words are separated by spaces and all must
    match; "double quotes" keep a phrase together; OR between two words accepts either.
    """
    from pipelines.search import search_entries

    marks = ("[", "]") if as_json else ("\x1b[1m", "\x1b[0m")
    with opened_store(db_path, create=False) as store:
        rows = search_entries(store.db, query, limit=limit, offset=offset, marks=marks)
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    if not rows:
        click.echo(f"no entries match {query!r}")
        return
    for number, row in enumerate(rows, start=offset + 1):
        byline = " · ".join(part for part in (row["author"], (row["published_at"] or "")[:10], row["url"]) if part)
        click.echo(f"{number}. {row['title'] or '(untitled)'}")
        click.echo(f"   {byline}")
        if row["snippet"]:
            click.echo(f"   {row['snippet']}")
