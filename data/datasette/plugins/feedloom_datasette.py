"""Datasette plugin for feedloom: Chinese-capable search, a month facet, no Referer for images, reading CSS."""

from __future__ import annotations

import hashlib
import html
import json
import sqlite3
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from datasette import hookimpl
from datasette.facets import DateFacet
from datasette.filters import FilterArguments
from datasette.utils import escape_sqlite, path_with_added_args, path_with_removed_args, tilde_encode
from datasette.utils.asgi import Response

try:
    from pipelines.search import COLUMNS, FTS_TABLE, match_for, matching_rowids, search_entries
except ImportError:  # datasette run from outside the feedloom checkout or virtualenv
    sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
    from pipelines.search import COLUMNS, FTS_TABLE, match_for, matching_rowids, search_entries

# A valid MATCH expression that matches nothing: an empty phrase.
NO_MATCH = '""'
CSS_PATH = "/-/feedloom.css"
CSS = """
/* Entry bodies are sanitized HTML (datasette-render-html); keep them readable. */
td.col-content_html { min-width: 24em; max-width: 48em; }
td.col-content_html img { max-width: 100%; height: auto; }
body.table td.col-content_html { min-width: 32em; font-size: 0.9em; }
body.table td.col-content_html > :nth-child(n+2) { display: none; }
body.table td.col-content_html img { max-height: 8em; }
body.table td.col-title { min-width: 14em; font-weight: 600; }
body.table td.col-author, body.table td.col-published_at { min-width: 6em; }
body.table td.col-content_text, body.table td.col-summary, body.table td.col-author_bio { min-width: 30em; }
body.table td.col-categories { min-width: 12em; }
body.table td.col-url, body.table td.col-guid { min-width: 12em; max-width: 18em; overflow-wrap: anywhere; }
body.row td.col-content_html { line-height: 1.6; font-size: 1.05em; }
/* Column descriptions: a compact scrolling grid; each column's menu shows its own too. */
dl.column-descriptions {
  display: grid; grid-template-columns: max-content 1fr max-content 1fr; gap: 0.1em 0.8em;
  font-size: 0.8em; max-height: 7.5em; overflow-y: auto; border: 1px solid #ddd; padding: 0.4em 0.6em;
}
dl.column-descriptions dd { padding-left: 0; margin: 0; white-space: normal; line-height: 1.3em; }
/* A row's page as a record: one line per column (see ROW_SCRIPT). */
table.feedloom-record { border-collapse: collapse; }
table.feedloom-record th {
  text-align: right; vertical-align: top; padding: 0.3em 1em 0.3em 0; color: #666; font-weight: normal;
  white-space: nowrap;
}
table.feedloom-record td { padding: 0.3em 0; border-bottom: 1px solid #eee; max-width: 52em; overflow-wrap: anywhere; }
mark { background: #fde68a; }
"""
# Datasette shows a row as a one-row table, dozens of columns wide; turn it into one line per column.
ROW_SCRIPT = """
(function () {
  var table = document.querySelector("table.rows-and-columns");
  if (!table) { return; }
  var names = Array.prototype.map.call(table.querySelectorAll("thead th"), function (th) {
    return th.textContent.trim();
  });
  var row = table.querySelector("tbody tr");
  if (!row || !names.length) { return; }
  var record = document.createElement("table");
  record.className = "feedloom-record";
  Array.prototype.slice.call(row.children).forEach(function (cell, index) {
    var line = document.createElement("tr");
    var name = document.createElement("th");
    name.textContent = names[index] || "";
    line.appendChild(name);
    line.appendChild(cell);
    record.appendChild(line);
  });
  table.parentNode.replaceChild(record, table);
})();
"""


def match_function(conn: sqlite3.Connection) -> Callable[[Any], str]:
    """`feedloom_match(q)`: the query as one FTS5 MATCH expression, short terms expanded (build_match)."""

    def feedloom_match(query: Any) -> str:
        # A SQL function that raises shows the user an error page; a query that matches nothing does not.
        try:
            return match_for(conn, str(query or "")) or NO_MATCH
        except Exception:
            return NO_MATCH

    return feedloom_match


def search_functions(conn: sqlite3.Connection) -> tuple[Callable[..., str], Callable[..., str]]:
    """`feedloom_rowids(q, columns)` and `feedloom_search(q, limit)`: JSON from pipelines.search."""
    # One page runs its filter for the rows, the count and every facet: remember the answer until
    # another connection writes (data_version changes).
    cache: dict[tuple[Any, ...], str] = {}

    def remembered(key: tuple[Any, ...], compute: Callable[[], Any]) -> str:
        key = (conn.execute("PRAGMA data_version").fetchone()[0], *key)
        if key not in cache:
            if len(cache) > 64:
                cache.clear()
            try:
                cache[key] = json.dumps(compute(), ensure_ascii=False)
            except sqlite3.OperationalError as exc:
                # Over datasette's time limit: the page's own query is interrupted too and says so.
                if "interrupt" not in str(exc):
                    raise
                return "[]"
        return cache[key]

    def feedloom_rowids(query: Any, columns: Any = None) -> str:
        names = [c for c in str(columns or "").split(",") if c] or None
        return remembered(("rowids", query, columns), lambda: matching_rowids(conn, str(query or ""), columns=names))

    def feedloom_search(query: Any, limit: Any = 50) -> str:
        def compute() -> list[dict[str, Any]]:
            rows = search_entries(conn, str(query or ""), limit=int(limit or 50), marks=("<mark>", "</mark>"),
                                  escape=html.escape)
            for row in rows:
                title = html.escape(row["title"] or "(untitled)")
                row["entry"] = f'<a href="entries/{html.escape(tilde_encode(row["id"]))}">{title}</a>'
            return rows

        return remembered(("search", query, limit), compute)

    return feedloom_rowids, feedloom_search


# trylast: run after datasette's own prepare_connection, so our escape_fts replaces its.
@hookimpl(trylast=True)
def prepare_connection(conn: sqlite3.Connection, database: str, datasette: Any) -> None:
    try:
        found = conn.execute("SELECT 1 FROM sqlite_master WHERE name = ?", [FTS_TABLE]).fetchone()
    except sqlite3.Error:
        return
    if not found:
        return
    match = match_function(conn)
    rowids, search = search_functions(conn)
    conn.create_function("feedloom_match", 1, match)
    # For hand-written SQL against entries_fts: datasette's escape_fts() with our query rules.
    conn.create_function("escape_fts", 1, match)
    conn.create_function("feedloom_rowids", 1, rowids)
    conn.create_function("feedloom_rowids", 2, rowids)
    conn.create_function("feedloom_search", 1, search)
    conn.create_function("feedloom_search", 2, search)


# trylast: our extra_context (supports_search) must come after datasette's own search filter, which
# finds no FTS table for `entries` (the index reads a view) and would switch the search box off.
@hookimpl(trylast=True)
def filters_from_request(request: Any, database: str, table: str, datasette: Any) -> Any:
    """The search box on `entries`: `?_search=` and `?_search_<column>=` with feedloom's search rules."""
    if table != "entries":
        return None

    async def inner() -> FilterArguments | None:
        db = datasette.get_database(database)
        if FTS_TABLE not in await db.table_names():
            return None
        searches = [("", request.args.get("_search") or "")]
        searches += [
            (key[len("_search_"):], request.args.get(key) or "")
            for key in request.args
            if key.startswith("_search_") and key[len("_search_"):] in COLUMNS
        ]
        where, params, described = [], {}, []
        for index, (column, query) in enumerate(searches):
            if not query.strip():
                continue
            where.append(
                f"rowid in (select value from json_each(feedloom_rowids(:feedloom_q{index}, :feedloom_c{index})))"
            )
            params.update({f"feedloom_q{index}": query, f"feedloom_c{index}": column})
            described.append(f'search {"column " + column + " " if column else ""}matches "{query}"')
        context = {"supports_search": True, "search": searches[0][1] or (searches[1][1] if len(searches) > 1 else "")}
        return FilterArguments(where, params, described, context)

    return inner


@hookimpl
def asgi_wrapper(datasette: Any) -> Callable[[Any], Any]:
    """Send `Referrer-Policy: no-referrer` with every page: image hosts that block hotlinking then serve."""

    def wrap(app: Any) -> Any:
        async def with_policy(scope: dict[str, Any], receive: Any, send: Callable[[dict[str, Any]], Awaitable[None]]) -> None:
            if scope.get("type") != "http":
                await app(scope, receive, send)
                return

            async def send_with_policy(event: dict[str, Any]) -> None:
                if event.get("type") == "http.response.start":
                    headers = [h for h in event.get("headers", []) if h[0].lower() != b"referrer-policy"]
                    event = {**event, "headers": [*headers, (b"referrer-policy", b"no-referrer")]}
                await send(event)

            await app(scope, receive, send_with_policy)

        return with_policy

    return wrap


@hookimpl
def register_routes(datasette: Any) -> list[tuple[str, Any]]:
    async def css(request: Any) -> Response:
        return Response(CSS, content_type="text/css; charset=utf-8", headers={"cache-control": "max-age=3600"})

    return [(r"^/-/feedloom\.css$", css)]


@hookimpl
def extra_body_script(view_name: str) -> str:
    return ROW_SCRIPT if view_name == "row" else ""


@hookimpl
def extra_css_urls(datasette: Any) -> list[str]:
    # The hash changes the URL whenever the CSS changes, so browsers never keep a stale copy.
    return [datasette.urls.path(CSS_PATH) + "?" + hashlib.sha256(CSS.encode()).hexdigest()[:8]]


class MonthFacet(DateFacet):  # type: ignore[misc]
    """Facet a date-time text column (UTC ISO-8601) by its YYYY-MM prefix: `_facet_month=published_at`."""

    type = "month"

    async def suggest(self) -> list[dict[str, Any]]:
        return []

    async def facet_results(self) -> tuple[list[dict[str, Any]], list[str]]:
        results: list[dict[str, Any]] = []
        timed_out: list[str] = []
        args = dict(self.get_querystring_pairs())
        size = self.get_facet_size()
        for source_and_config in self.get_configs():
            config = source_and_config["config"]
            column = config.get("column") or config["simple"]
            col = escape_sqlite(column)
            sql = f"""
                select substr({col}, 1, 7) as value, count(*) as count from ({self.sql})
                where {col} glob '[0-9][0-9][0-9][0-9]-[0-9][0-9]*'
                group by value order by value desc limit {size + 1}
            """
            try:
                rows = await self.ds.execute(
                    self.database, sql, self.params, truncate=False,
                    custom_time_limit=self.ds.setting("facet_time_limit_ms"),
                )
            except Exception as exc:  # datasette's QueryInterrupted: the facet took too long
                if type(exc).__name__ != "QueryInterrupted":
                    raise
                timed_out.append(column)
                continue
            values = []
            key = f"{column}__startswith"
            for row in rows.rows[:size]:
                selected = args.get(key) == row["value"]
                if selected:
                    path = path_with_removed_args(self.request, {key: row["value"]})
                else:
                    path = path_with_added_args(self.request, {key: row["value"]})
                values.append({
                    "value": row["value"], "label": row["value"], "count": row["count"],
                    "toggle_url": self.ds.absolute_url(self.request, path), "selected": selected,
                })
            results.append({
                "name": column, "type": self.type, "results": values,
                "hideable": source_and_config["source"] != "metadata",
                "toggle_url": path_with_removed_args(self.request, {"_facet_month": column}),
                "truncated": len(rows) > size,
            })
        return results, timed_out


@hookimpl
def register_facet_classes() -> list[type]:
    return [MonthFacet]
