"""The `feedloom export` command: a thin click wrapper over pipelines.exports."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import click

from crawler.cli import db_option, open_store
from pipelines import exports
from pipelines.exports import FORMATS, ExportError, ExportFilter
from pipelines.exports_markdown import BODIES, DEFAULT_FOLDER, STYLES, MarkdownOptions, export_markdown

# Options that mean something for one format only, with their defaults.
_FORMAT_OPTIONS: dict[str, tuple[str, Any]] = {
    "style": ("markdown", "plain"),
    "body": ("markdown", "html"),
    "prune": ("markdown", False),
    "bom": ("csv", False),
    "title": ("atom", None),
    "self_url": ("atom", None),
}


@click.command()
@click.option("--format", "fmt", type=click.Choice(FORMATS), required=True, help="What to write.")
@click.option(
    "-o", "--output", default=None,
    help="File to write ('-' or none: standard output). For markdown, the folder (default exports/posts).",
)
@click.option("--since", help="Entries published on or after this date (YYYY-MM-DD, or ISO-8601 with a time).")
@click.option("--until", help="Entries published on or before this date (a bare date includes the whole day, UTC).")
@click.option("--feed", "feeds", multiple=True, help="Entries seen in this feed (id or URL); repeatable, any of them.")
@click.option("--category", "categories", multiple=True, help="Entries with this category (any case); repeatable, any of them.")
@click.option("--author", help="Entries by this author (exact name, any case).")
@click.option("--search", help="Entries matching this full-text query.")
@click.option("--limit", type=click.IntRange(min=0), help="At most this many entries (the newest).")
@click.option("--style", type=click.Choice(STYLES), default="plain", show_default=True,
              help="markdown: front matter names and file layout for this generator.")
@click.option("--body", type=click.Choice(BODIES), default="html", show_default=True,
              help="markdown: post body as the cleaned HTML, or converted to Markdown (needs markdownify).")
@click.option("--prune", is_flag=True, help="markdown: delete our unedited posts of entries outside this selection.")
@click.option("--bom", is_flag=True, help="csv: start with a UTF-8 byte order mark, for Excel.")
@click.option("--title", help="atom: the feed's title (default: feedloom).")
@click.option("--self-url", help="atom: the feed's own URL, for its rel=self link (default: the output file's name).")
@db_option
def export(
    fmt: str, output: str | None, since: str | None, until: str | None, feeds: tuple[str, ...],
    categories: tuple[str, ...], author: str | None, search: str | None, limit: int | None, style: str, body: str,
    prune: bool, bom: bool, title: str | None, self_url: str | None, db_path: str | None,
) -> None:
    """Export the entries as JSON Lines, CSV, Parquet, Markdown posts or one Atom feed; or the feed list as OPML.

    Entries come newest first; running it again on an unchanged database writes the same bytes.
    """
    given = {"style": style, "body": body, "prune": prune, "bom": bom, "title": title, "self_url": self_url}
    for name, (owner, default) in _FORMAT_OPTIONS.items():
        if given[name] != default and owner != fmt:
            raise click.UsageError(f"--{name.replace('_', '-')} applies to --format {owner} only")
    filters = ExportFilter(
        since=since, until=until, feeds=feeds, categories=categories, author=author, search=search, limit=limit
    )
    store = open_store(db_path, create=False)
    try:
        if fmt == "markdown":
            _markdown(store.db, output, filters, style, body, prune)
            return
        writers: dict[str, Callable[[BinaryIO], int]] = {
            "jsonl": lambda out: exports.export_jsonl(store.db, out, filters),
            "csv": lambda out: exports.export_csv(store.db, out, filters, bom=bom),
            "parquet": lambda out: exports.export_parquet(store.db, out, filters),
            "atom": lambda out: exports.export_atom(
                store.db, out, filters, title=title or "feedloom",
                self_url=self_url or (Path(output).name if output not in (None, "-") else "feed.atom"),
            ),
            "opml": lambda out: exports.export_opml(store.db, out, filters),
        }
        what = "feeds" if fmt == "opml" else "entries"
        if output in (None, "-"):
            stdout = sys.stdout.buffer
            if fmt == "parquet" and stdout.isatty():
                raise click.UsageError("Parquet is binary: write it to a file with -o FILE.parquet")
            try:
                count = writers[fmt](stdout)
                stdout.flush()
            except BrokenPipeError:
                # The reader (head, less) stopped reading: done, not an error. Python's documented remedy:
                # point stdout at devnull so the flush at exit does not raise again.
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
                return
            click.echo(f"exported {count} {what} as {fmt}", err=True)
        else:
            with exports.atomic_output(output) as out:
                count = writers[fmt](out)
            click.echo(f"exported {count} {what} as {fmt} to {output}", err=True)
    except ExportError as exc:
        raise click.ClickException(str(exc)) from None
    except OSError as exc:
        where = exc.filename or output or "output"
        raise click.ClickException(f"{where}: cannot write ({exc.strerror or exc})") from None
    finally:
        store.close()


def _markdown(db: Any, output: str | None, filters: ExportFilter, style: str, body: str, prune: bool) -> None:
    if output == "-":
        raise click.UsageError("markdown writes one file per entry: give a folder with -o DIR")
    folder = output or DEFAULT_FOLDER
    report = export_markdown(db, folder, filters, MarkdownOptions(style=style, body=body, prune=prune))
    click.echo(
        f"{folder}: {report.written} new, {report.updated} updated, {report.unchanged} unchanged"
        + (f", {report.pruned} pruned" if prune else ""),
        err=True,
    )
    for path in report.kept_edited:
        click.echo(f"  kept {path}: edited since the last export", err=True)
