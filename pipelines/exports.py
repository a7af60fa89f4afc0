"""Exports of the database (JSON Lines, CSV, Parquet, a merged Atom feed, OPML), streamed row by row."""

from __future__ import annotations

import csv
import filecmp
import hashlib
import io
import json
import os
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO

from lxml import etree
from sqlite_utils import Database

FORMATS = ("jsonl", "csv", "parquet", "markdown", "atom", "opml")
FETCH_ROWS = 256  # rows fetched from SQLite at a time: enough to amortize the calls, small enough to stay flat
PARQUET_ROW_GROUP = 2048  # rows per Parquet row group; the only rows held in memory while writing Parquet
CSV_LIST_SEPARATOR = "; "
ATOM_NS = "http://www.w3.org/2005/Atom"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
PARQUET_MISSING = "Parquet export needs pyarrow: pip install 'feedloom[parquet]'"

_XML_ILLEGAL = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_LANG_TAG = re.compile(r"^[A-Za-z]{1,8}(-[A-Za-z0-9]{1,8})*$")
_INT32_COLUMNS = frozenset({"word_count", "reading_minutes", "revision_count", "consecutive_failures"})
# Labels of every feed an entry was seen in: they tell the user's own labels from the article's tags.
FEED_LABELS_SQL = (
    "(SELECT json_group_array(j.value) FROM entry_sightings s JOIN feeds lf ON lf.id = s.feed_id,"
    " json_each(CASE WHEN json_valid(lf.categories) THEN lf.categories ELSE '[]' END) j"
    " WHERE s.entry_id = e.id) AS _feed_labels"
)
FEED_NAME_SQL = "(SELECT coalesce(nullif(nf.name, ''), nf.title) FROM feeds nf WHERE nf.id = e.feed_id) AS _feed_name"


class ExportError(Exception):
    """A problem with an export the user can act on: a bad filter, a missing library, an unusable path."""


@dataclass(frozen=True)
class ExportFilter:
    """Which entries to export; every value reaches SQL as a bound parameter."""

    since: str | None = None  # published on or after this date / time
    until: str | None = None  # published on or before this date (whole day) / time
    feeds: tuple[str, ...] = ()  # feed ids or URLs: entries seen in any of them
    categories: tuple[str, ...] = ()  # entries carrying any of these categories
    author: str | None = None
    search: str | None = None
    limit: int | None = None

    def key(self) -> str:
        """A stable text for this selection (the Atom feed id is derived from it)."""
        return json.dumps(asdict(self), sort_keys=True, ensure_ascii=False)


# -- selecting ---------------------------------------------------------------


def parse_bound(text: str, *, end: bool = False) -> tuple[str, str]:
    """A --since / --until value as (SQL operator, UTC ISO-8601 text) to compare published_at with.

    A bare date is a whole day: --until 2024-03-31 includes all of March 31 (UTC).
    """
    value = text.strip()
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            day = datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=UTC)
            if end:
                return "<", _iso(day + timedelta(days=1))
            return ">=", _iso(day)
        moment = datetime.fromisoformat(value.replace(" ", "T", 1))
    except ValueError:
        raise ExportError(f"not a date: {text!r} (use YYYY-MM-DD or ISO-8601 such as 2024-03-31T18:00:00+08:00)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return ("<=" if end else ">="), _iso(moment)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def resolve_feeds(db: Database, values: Sequence[str]) -> list[int]:
    """Feed ids for --feed values, each an id or a subscribed URL."""
    ids: list[int] = []
    for value in values:
        value = value.strip()
        number = int(value) if value.isdigit() else None
        row = db.execute("SELECT id FROM feeds WHERE id = ? OR url = ? ORDER BY id LIMIT 1", [number, value]).fetchone()
        if row is None:
            raise ExportError(f"no feed with id or URL {value!r} (see `feedloom feeds`)")
        ids.append(int(row[0]))
    return ids


def search_clause(db: Database, query: str) -> tuple[str, list[Any]]:
    """The WHERE clause for --search: the full-text index when pipelines.search exists, else LIKE on title and text."""
    try:
        from pipelines.search import search_entries  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        terms = query.split()
        if not terms:
            raise ExportError("--search needs at least one word") from None
        clauses, params = [], []
        for term in terms:
            pattern = "%" + re.sub(r"([\\%_])", r"\\\1", term) + "%"
            clauses.append("(e.title LIKE ? ESCAPE '\\' OR e.content_text LIKE ? ESCAPE '\\')")
            params += [pattern, pattern]
        return "(" + " AND ".join(clauses) + ")", params
    # The index answers in pages of ids; they wait in a temporary table so the export still streams.
    db.execute("CREATE TEMP TABLE IF NOT EXISTS _export_hits (id TEXT PRIMARY KEY)")
    db.execute("DELETE FROM temp._export_hits")
    offset, page = 0, 1000
    while True:
        try:
            hits = search_entries(db, query, limit=page, offset=offset)
        except Exception as exc:  # noqa: BLE001 - the search module's own errors (a bad query) are the user's to fix
            raise ExportError(f"--search {query!r}: {exc}") from None
        db.conn.executemany("INSERT OR IGNORE INTO temp._export_hits (id) VALUES (?)", [(hit["id"],) for hit in hits])
        if len(hits) < page:
            break
        offset += page
    return "e.id IN (SELECT id FROM temp._export_hits)", []


def entries_query(db: Database, filters: ExportFilter, extra_columns: Sequence[str] = ()) -> tuple[str, list[Any]]:
    """SQL and parameters selecting the filtered entries, newest first, in a stable order."""
    where: list[str] = []
    params: list[Any] = []
    if filters.since:
        op, value = parse_bound(filters.since)
        where.append(f"e.published_at {op} ?")
        params.append(value)
    if filters.until:
        op, value = parse_bound(filters.until, end=True)
        where.append(f"e.published_at {op} ?")
        params.append(value)
    if filters.feeds:
        ids = resolve_feeds(db, filters.feeds)
        marks = ", ".join("?" for _ in ids)
        where.append(
            f"(e.feed_id IN ({marks}) OR e.id IN (SELECT s.entry_id FROM entry_sightings s WHERE s.feed_id IN ({marks})))"
        )
        params += ids + ids
    if filters.categories:
        marks = ", ".join("?" for _ in filters.categories)
        where.append(
            "EXISTS (SELECT 1 FROM json_each(CASE WHEN json_valid(e.categories) THEN e.categories ELSE '[]' END)"
            f" WHERE value COLLATE NOCASE IN ({marks}))"
        )
        params += list(filters.categories)
    if filters.author:
        where.append("e.author = ? COLLATE NOCASE")
        params.append(filters.author)
    if filters.search is not None:
        clause, search_params = search_clause(db, filters.search)
        where.append(clause)
        params += search_params
    columns = ", ".join(["e.*", *extra_columns])
    sql = f"SELECT {columns} FROM entries e"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY e.published_at DESC, e.id"
    if filters.limit is not None:
        sql += " LIMIT ?"
        params.append(filters.limit)
    return sql, params


def iter_rows(db: Database, sql: str, params: Sequence[Any]) -> Iterator[dict[str, Any]]:
    """Rows of a query as dicts, fetched a few at a time from one cursor."""
    cursor = db.conn.execute(sql, list(params))
    names = [d[0] for d in cursor.description]
    try:
        while True:
            batch = cursor.fetchmany(FETCH_ROWS)
            if not batch:
                return
            for values in batch:
                yield dict(zip(names, values))
    finally:
        cursor.close()


def iter_entries(db: Database, filters: ExportFilter, extra_columns: Sequence[str] = ()) -> Iterator[dict[str, Any]]:
    """The selected entries, newest first, with `categories` as a list."""
    sql, params = entries_query(db, filters, extra_columns)
    for row in iter_rows(db, sql, params):
        row["categories"] = json_list(row.get("categories"))
        yield row


def entry_columns(db: Database) -> list[str]:
    return [row[1] for row in db.execute("PRAGMA table_info(entries)").fetchall()]


def json_list(text: Any) -> list[str]:
    """A JSON list column as a list of strings; anything unreadable is an empty list."""
    if not text:
        return []
    try:
        value = json.loads(text)
    except (TypeError, ValueError):
        return []
    return [str(item) for item in value if item is not None] if isinstance(value, list) else []


def xml_text(text: Any) -> str:
    """Text with the characters XML 1.0 forbids removed."""
    return _XML_ILLEGAL.sub("", str(text)) if text else ""


def rfc3339(value: Any) -> str | None:
    """A stored timestamp as RFC 3339 UTC text, or None when it is missing or unreadable."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(str(value).strip().replace(" ", "T", 1))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return _iso(moment)


@contextmanager
def atomic_output(path: str | Path) -> Iterator[BinaryIO]:
    """A binary file that appears at `path` only when complete, and is left untouched when its bytes are the same."""
    path = Path(path)
    if path.parent and not path.parent.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as handle:
            yield handle
        if path.is_file() and filecmp.cmp(tmp, path, shallow=False):
            tmp.unlink()
        else:
            os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


# -- JSON Lines --------------------------------------------------------------


def export_jsonl(db: Database, out: BinaryIO, filters: ExportFilter = ExportFilter()) -> int:
    """One JSON object per line with every stored column (categories as a list); returns the count."""
    count = 0
    for row in iter_entries(db, filters):
        out.write(json.dumps(row, ensure_ascii=False).encode("utf-8", "surrogatepass") + b"\n")
        count += 1
    return count


# -- CSV ---------------------------------------------------------------------


def neutralize_cell(value: Any) -> Any:
    """Keep a spreadsheet from reading a cell as a formula: a leading quote before = + - @ tab CR."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def export_csv(db: Database, out: BinaryIO, filters: ExportFilter = ExportFilter(), *, bom: bool = False) -> int:
    """A header row and one row per entry, categories joined with '; '; returns the count."""
    text = io.TextIOWrapper(out, encoding="utf-8", newline="", errors="surrogatepass")
    try:
        if bom:
            text.write("\ufeff")
        writer = csv.writer(text)
        columns = entry_columns(db)
        writer.writerow(columns)
        count = 0
        for row in iter_entries(db, filters):
            row["categories"] = CSV_LIST_SEPARATOR.join(row["categories"])
            writer.writerow([neutralize_cell(row.get(name)) for name in columns])
            count += 1
        text.flush()
    finally:
        text.detach()  # the caller owns `out`; closing the wrapper would close it
    return count


# -- Parquet -----------------------------------------------------------------


def _pyarrow() -> tuple[Any, Any]:
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError:
        raise ExportError(PARQUET_MISSING) from None
    return pyarrow, pyarrow.parquet


def parquet_schema(db: Database) -> Any:
    """The entries table as a typed Arrow schema: *_at as UTC timestamps (ms), categories as list<string>."""
    pa, _ = _pyarrow()
    fields = []
    for _, name, declared, *_rest in db.execute("PRAGMA table_info(entries)").fetchall():
        declared = (declared or "").upper()
        if name == "categories":
            kind = pa.list_(pa.string())
        elif name.endswith("_at"):
            kind = pa.timestamp("ms", tz="UTC")  # Parquet has no seconds unit; ms is what lands in the file
        elif "INT" in declared:
            kind = pa.int32() if name in _INT32_COLUMNS else pa.int64()
        elif any(word in declared for word in ("REAL", "FLOA", "DOUB")):
            kind = pa.float64()
        else:
            kind = pa.string()
        fields.append(pa.field(name, kind))
    return pa.schema(fields)


def _timestamp(value: Any) -> datetime | None:
    text = rfc3339(value)
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC) if text else None


def _integer(value: Any) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def export_parquet(db: Database, out: BinaryIO | str | Path, filters: ExportFilter = ExportFilter()) -> int:
    """A typed Parquet file, written one row group at a time as the rows stream; returns the count."""
    pa, pq = _pyarrow()
    schema = parquet_schema(db)
    converters: dict[str, Any] = {}
    for item in schema:
        if pa.types.is_timestamp(item.type):
            converters[item.name] = _timestamp
        elif pa.types.is_integer(item.type):
            converters[item.name] = _integer
        elif pa.types.is_string(item.type):
            converters[item.name] = lambda v: None if v is None else str(v)
    names = schema.names
    count = 0
    batch: dict[str, list[Any]] = {name: [] for name in names}
    with pq.ParquetWriter(out, schema, compression="zstd") as writer:
        for row in iter_entries(db, filters):
            for name in names:
                value = row.get(name)
                convert = converters.get(name)
                batch[name].append(convert(value) if convert else value)
            count += 1
            if count % PARQUET_ROW_GROUP == 0:
                writer.write_table(pa.Table.from_pydict(batch, schema=schema), row_group_size=PARQUET_ROW_GROUP)
                batch = {name: [] for name in names}
        if batch[names[0]] or count == 0:
            writer.write_table(pa.Table.from_pydict(batch, schema=schema), row_group_size=PARQUET_ROW_GROUP)
    return count


# -- Atom --------------------------------------------------------------------


def atom_entry_id(entry_id: str) -> str:
    """The Atom id of an entry: a URN on its database id, stable whatever feed or URL it came through."""
    return "urn:feedloom:entry:" + re.sub(r"[^A-Za-z0-9._~-]", lambda m: f"%{ord(m.group()):02X}", entry_id)


def atom_feed_id(filters: ExportFilter) -> str:
    digest = hashlib.blake2b(filters.key().encode("utf-8"), digest_size=8).hexdigest()
    return f"urn:feedloom:export:{digest}"


def _sub(parent: etree._Element, tag: str, text: Any = None, **attrs: str) -> etree._Element:
    node = etree.SubElement(parent, tag, {k: xml_text(v) for k, v in attrs.items()})
    if text is not None:
        node.text = xml_text(text)
    return node


def atom_entry(row: dict[str, Any]) -> etree._Element:
    """One entry element. Its tags carry no namespace: written inside <feed xmlns=Atom>, they are Atom's."""
    first_seen = rfc3339(row.get("first_seen_at")) or "1970-01-01T00:00:00Z"
    published = rfc3339(row.get("published_at"))
    updated = rfc3339(row.get("updated_at")) or published or first_seen
    node = etree.Element("entry")
    language = str(row.get("language") or "")
    if _LANG_TAG.match(language):
        node.set(XML_LANG, language)
    _sub(node, "title", row.get("title") or "", type="text")
    if row.get("url"):
        _sub(node, "link", rel="alternate", type="text/html", href=row["url"])
    _sub(node, "id", atom_entry_id(str(row["id"])))
    _sub(node, "updated", updated)
    if published:
        _sub(node, "published", published)
    author = row.get("author") or row.get("_feed_name")
    if author:
        person = _sub(node, "author")
        _sub(person, "name", author)
        if row.get("author_email"):
            _sub(person, "email", row["author_email"])
    for category in row["categories"]:
        if xml_text(category):
            _sub(node, "category", term=category)
    if row.get("summary"):
        _sub(node, "summary", row["summary"], type="text")
    _sub(node, "content", row.get("content_html") or "", type="html")
    return node


def export_atom(
    db: Database,
    out: BinaryIO,
    filters: ExportFilter = ExportFilter(),
    *,
    title: str = "feedloom",
    self_url: str = "feed.atom",
) -> int:
    """One Atom 1.0 feed of the selection, written incrementally; returns the count.

    The feed's `updated` is the newest entry's, so an unchanged database gives the same bytes.
    """
    extra = [FEED_NAME_SQL]
    sql, params = entries_query(db, filters, extra)
    newest = db.execute(
        f"SELECT max(coalesce(updated_at, published_at, first_seen_at)) FROM ({sql})", params
    ).fetchone()[0]
    count = 0
    with etree.xmlfile(out, encoding="utf-8") as xf:
        xf.write_declaration()
        with xf.element(f"{{{ATOM_NS}}}feed", nsmap={None: ATOM_NS}):
            head = etree.Element("head")  # a holder: only its children are written
            _sub(head, "title", title, type="text")
            _sub(head, "id", atom_feed_id(filters))
            _sub(head, "updated", rfc3339(newest) or "1970-01-01T00:00:00Z")
            _sub(head, "link", rel="self", type="application/atom+xml", href=self_url)
            _sub(_sub(head, "author"), "name", title)
            _sub(head, "generator", "feedloom")
            xf.write("\n")
            for child in head:
                xf.write(child, pretty_print=True)
            for row in iter_rows(db, sql, params):
                row["categories"] = json_list(row.get("categories"))
                xf.write(atom_entry(row), pretty_print=True)
                count += 1
    return count


# -- OPML --------------------------------------------------------------------


def feeds_query(db: Database, filters: ExportFilter) -> tuple[str, list[Any]]:
    """SQL selecting the subscribed feeds by --feed and --category (the other filters are about entries)."""
    unused = [name for name in ("since", "until", "author", "search") if getattr(filters, name) is not None]
    if unused:
        raise ExportError(f"--{unused[0]} filters entries; the OPML export lists feeds (use --feed, --category, --limit)")
    where: list[str] = []
    params: list[Any] = []
    if filters.feeds:
        ids = resolve_feeds(db, filters.feeds)
        where.append(f"f.id IN ({', '.join('?' for _ in ids)})")
        params += ids
    if filters.categories:
        marks = ", ".join("?" for _ in filters.categories)
        where.append(
            "EXISTS (SELECT 1 FROM json_each(CASE WHEN json_valid(f.categories) THEN f.categories ELSE '[]' END)"
            f" WHERE value COLLATE NOCASE IN ({marks}))"
        )
        params += list(filters.categories)
    sql = "SELECT f.* FROM feeds f"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY f.id"
    if filters.limit is not None:
        sql += " LIMIT ?"
        params.append(filters.limit)
    return sql, params


def opml_category(labels: Sequence[str]) -> str:
    """OPML's comma-separated category attribute; a comma inside a label would split it, so it becomes a space."""
    cleaned = [" ".join(label.replace(",", " ").split()) for label in labels]
    return ",".join(label for label in cleaned if label)


def export_opml(db: Database, out: BinaryIO, filters: ExportFilter = ExportFilter(), *, title: str = "feedloom feeds") -> int:
    """The feed list as OPML 2.0, readable by `feedloom import`; returns the number of feeds."""
    sql, params = feeds_query(db, filters)
    count = 0
    with etree.xmlfile(out, encoding="utf-8") as xf:
        xf.write_declaration()
        with xf.element("opml", version="2.0"):
            xf.write("\n")
            head = etree.Element("head")
            _sub(head, "title", title)
            xf.write(head, pretty_print=True)
            with xf.element("body"):
                xf.write("\n")
                for row in iter_rows(db, sql, params):
                    name = row.get("name") or row.get("title") or row["url"]
                    attrs = {"type": "rss", "text": name, "title": name, "xmlUrl": row["url"]}
                    if row.get("site_url"):
                        attrs["htmlUrl"] = row["site_url"]
                    if row.get("language"):
                        attrs["language"] = row["language"]
                    category = opml_category(json_list(row.get("categories")))
                    if category:
                        attrs["category"] = category
                    outline = etree.Element("outline", {k: xml_text(v) for k, v in attrs.items()})
                    xf.write(outline, pretty_print=True)
                    count += 1
            xf.write("\n")
    return count
