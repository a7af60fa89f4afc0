"""Full-text search over entries: a trigram FTS5 index that finds Chinese and English words of any length."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlite_utils import Database
from sqlite_utils.utils import sqlite3

FTS_TABLE = "entries_fts"
SOURCE_VIEW = "entries_fts_source"
VOCAB_TABLE = "entries_fts_vocab"
INSTANCE_TABLE = "entries_fts_instance"
PENDING_TABLE = "entries_fts_pending"
TRIGGERS = ("entries_fts_insert", "entries_fts_delete", "entries_fts_update", "entries_fts_defer")

# Indexed columns of `entries` and their bm25 weights: a hit in the title counts most.
COLUMNS = ("title", "content_text", "author", "categories")
WEIGHTS = (10.0, 1.0, 5.0, 3.0)

# Every indexed value gets two trailing spaces, so that each one- or two-character substring of the
# text begins at least one trigram of the index. A short term is then found through the trigrams
# that begin with it (see "searching" below): 电商 at the end of a title begins the trigram "电商 ".
PAD = "  "
TRIGRAM = 3

Expand = Callable[[str], Sequence[str]]


def _values(prefix: str) -> str:
    return ", ".join(f"{prefix}{column} || '{PAD}'" for column in COLUMNS)


_COLUMN_LIST = ", ".join(COLUMNS)
_CHANGED = " OR ".join(f"old.{column} IS NOT new.{column}" for column in COLUMNS)

# External content: the index stores no copy of the text. It reads it through this view, which adds
# the padding, and the triggers hand it exactly the same padded values, so `rebuild`, `delete`,
# snippet() and highlight() all see one and the same text.
_SCHEMA = (
    f"""CREATE VIEW IF NOT EXISTS {SOURCE_VIEW} AS
        SELECT rowid AS entry_rowid, {', '.join(f"{c} || '{PAD}' AS {c}" for c in COLUMNS)} FROM entries""",
    f"""CREATE VIRTUAL TABLE IF NOT EXISTS {FTS_TABLE} USING fts5(
        {_COLUMN_LIST}, content='{SOURCE_VIEW}', content_rowid='entry_rowid', tokenize='trigram')""",
    f"CREATE VIRTUAL TABLE IF NOT EXISTS {VOCAB_TABLE} USING fts5vocab({FTS_TABLE}, 'row')",
    f"CREATE VIRTUAL TABLE IF NOT EXISTS {INSTANCE_TABLE} USING fts5vocab({FTS_TABLE}, 'instance')",
    # Entries written while indexing is deferred (see deferred_indexing), and the sentinel row 0 that
    # says it is. Empty outside such a transaction.
    f"CREATE TABLE IF NOT EXISTS {PENDING_TABLE} (entry_rowid INTEGER PRIMARY KEY)",
)

# An INSERT INTO entries whose trigger writes FTS5 runs inside a statement savepoint, and FTS5 writes
# its pending in-memory index to disk at each one: the trigger leaves a tiny segment per entry, and
# merging them costs more than the indexing itself. So a writer that inserts many entries in one
# transaction (the store) defers: the insert trigger then only notes the rowid, and one INSERT ...
# SELECT indexes all of them before the commit. Every other writer keeps the plain per-row triggers.
_DEFERRING = f"EXISTS (SELECT 1 FROM {PENDING_TABLE} WHERE entry_rowid = 0)"


def _not_pending(ref: str) -> str:
    # A pending row is not in the index yet: a 'delete' for it would corrupt an external-content
    # index, and its new values are what the flush reads anyway. Rowid 0 is the sentinel, never pending.
    return f"({ref}.rowid = 0 OR NOT EXISTS (SELECT 1 FROM {PENDING_TABLE} WHERE entry_rowid = {ref}.rowid))"


_TRIGGER_SQL = (
    f"""CREATE TRIGGER {TRIGGERS[0]} AFTER INSERT ON entries
        WHEN new.rowid = 0 OR NOT {_DEFERRING} BEGIN
        INSERT INTO {FTS_TABLE} (rowid, {_COLUMN_LIST}) VALUES (new.rowid, {_values('new.')});
    END""",
    # A pending row deleted is no longer pending: else a later insert that reused its rowid, indexed
    # at once by another writer, would be indexed a second time by the store's next flush.
    f"""CREATE TRIGGER {TRIGGERS[1]} AFTER DELETE ON entries BEGIN
        INSERT INTO {FTS_TABLE} ({FTS_TABLE}, rowid, {_COLUMN_LIST})
            SELECT 'delete', old.rowid, {_values('old.')} WHERE {_not_pending('old')};
        DELETE FROM {PENDING_TABLE} WHERE entry_rowid = old.rowid AND old.rowid <> 0;
    END""",
    # Crawls rewrite unchanged rows; the first half of WHEN spares the index that work.
    f"""CREATE TRIGGER {TRIGGERS[2]} AFTER UPDATE OF {_COLUMN_LIST} ON entries
        WHEN ({_CHANGED}) AND {_not_pending('old')} BEGIN
        INSERT INTO {FTS_TABLE} ({FTS_TABLE}, rowid, {_COLUMN_LIST}) VALUES ('delete', old.rowid, {_values('old.')});
        INSERT INTO {FTS_TABLE} (rowid, {_COLUMN_LIST}) VALUES (new.rowid, {_values('new.')});
    END""",
    # OR IGNORE: a pending row deleted and its rowid reused by a later insert stays one pending rowid.
    f"""CREATE TRIGGER {TRIGGERS[3]} AFTER INSERT ON entries
        WHEN new.rowid <> 0 AND {_DEFERRING} BEGIN
        INSERT OR IGNORE INTO {PENDING_TABLE} (entry_rowid) VALUES (new.rowid);
    END""",
)
# The triggers migration 002 installed; while all of them stand, the index is in step with entries.
_TRIGGERS_002 = TRIGGERS[:3]
# Dropped before the triggers are created: a trigger of an older version under the same name would stay.
_DROP_TRIGGERS = tuple(f"DROP TRIGGER IF EXISTS {name}" for name in TRIGGERS)

_DEFER = f"INSERT OR IGNORE INTO {PENDING_TABLE} (entry_rowid) VALUES (0)"
# `entry_rowid IN (subquery)` on the view is a rowid lookup in entries per pending row, not a scan;
# a pending row deleted since is simply not found.
_INDEX_PENDING = (
    f"INSERT INTO {FTS_TABLE} (rowid, {_COLUMN_LIST}) SELECT entry_rowid, {_COLUMN_LIST} FROM {SOURCE_VIEW}"
    f" WHERE entry_rowid IN (SELECT entry_rowid FROM {PENDING_TABLE} WHERE entry_rowid <> 0)"
)
_ANY_PENDING = f"SELECT 1 FROM {PENDING_TABLE} LIMIT 1"
_COUNT_PENDING = f"SELECT count(*) FROM {PENDING_TABLE} WHERE entry_rowid <> 0"
_STOP_DEFERRING = f"DELETE FROM {PENDING_TABLE} WHERE entry_rowid = 0"
_CLEAR_PENDING = f"DELETE FROM {PENDING_TABLE}"
_CLEAR_PENDING_ROWS = f"DELETE FROM {PENDING_TABLE} WHERE entry_rowid <> 0"

_RANK = f"bm25({', '.join(str(w) for w in WEIGHTS)})"

# FTS5 merges segments once AUTOMERGE of them stand at one level (its default is 4). Every batch of a
# crawl leaves a segment, so at 4 a crawl rewrites each entry's trigrams about three more times; at 8
# about twice. Indexing 16,634 crawled entries a batch at a time took 11.4 s of CPU instead of 16.4 s,
# and searches of 100,000 entries took as long as before (docs/benchmarks.md).
AUTOMERGE = 8
_SET_AUTOMERGE = f"INSERT INTO {FTS_TABLE} ({FTS_TABLE}, rank) VALUES ('automerge', {AUTOMERGE})"

# A crawl indexes its new entries INDEX_EVERY at a time rather than a batch (some 200) at a time, and
# FTS5 writes its in-memory index out every HASHSIZE bytes rather than every 1 MiB (its default):
# fewer, larger segments, each trigram written once for more entries. On the benchmark's
# 16,634 entries the store's thread spent 10.5-11.2 s of CPU instead of 13.1-13.8 s (600 and 2 MiB,
# session 14), then about 8% less again with 1200 and 4 MiB (session 21), with no more memory to
# measure at 500 feeds: the pending entries wait in the database, not in memory (docs/benchmarks.md).
INDEX_EVERY = 1200
HASHSIZE = 4 * 1024 * 1024
_SET_HASHSIZE = f"INSERT INTO {FTS_TABLE} ({FTS_TABLE}, rank) VALUES ('hashsize', {HASHSIZE})"


@contextmanager
def _transaction(db: Database) -> Iterator[None]:
    if db.conn.in_transaction:
        yield
        return
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise


def install_search(db: Database) -> None:
    """Create the search index, its vocabulary and triggers where missing, and fill it if anything was missing."""
    if not _install(db):
        flush_pending(db)  # what a crawl killed before its last flush left (deferred_indexing's index_every)


def upgrade_search(db: Database) -> None:
    """Move an index kept by migration 002's triggers to the current triggers, without re-reading the entries."""
    kept = {FTS_TABLE, SOURCE_VIEW, *_TRIGGERS_002}
    if _present(db, kept) == kept:
        # Those triggers kept the index in step, so only the triggers change; anything else missing
        # is left to install_search, which rebuilds.
        with _transaction(db):
            for sql in _SCHEMA:
                db.execute(sql)
            _create_triggers(db)
    install_search(db)


def tune_merging(db: Database) -> None:
    """Set the index's automerge to AUTOMERGE (kept in the index's own config table)."""
    with _transaction(db):
        db.execute(_SET_AUTOMERGE)


def upgrade_to_batched_indexing(db: Database) -> None:
    """Set the index's hashsize to HASHSIZE and replace the triggers (a deleted row leaves the pending
    rows), for entries that wait in the pending table from one transaction to the next."""
    with _transaction(db):
        tune_hashsize(db)
        if _present(db, {FTS_TABLE}):
            _create_triggers(db)


def tune_hashsize(db: Database) -> None:
    """Set the index's hashsize to HASHSIZE (kept in the index's own config table); nothing is rewritten."""
    with _transaction(db):
        if _present(db, {FTS_TABLE}):
            db.execute(_SET_HASHSIZE)


def _present(db: Database, names: set[str]) -> set[str]:
    marks = ", ".join("?" for _ in names)
    return {row[0] for row in db.execute(f"SELECT name FROM sqlite_master WHERE name IN ({marks})", list(names))}


def _create_triggers(db: Database) -> None:
    for sql in (*_DROP_TRIGGERS, *_TRIGGER_SQL):
        db.execute(sql)


def _install(db: Database) -> bool:
    wanted = {FTS_TABLE, SOURCE_VIEW, VOCAB_TABLE, INSTANCE_TABLE, PENDING_TABLE, *TRIGGERS}
    if _present(db, wanted) == wanted:
        return False
    with _transaction(db):
        for sql in _SCHEMA:
            db.execute(sql)
        _create_triggers(db)
        db.execute(f"INSERT INTO {FTS_TABLE} ({FTS_TABLE}, rank) VALUES ('rank', ?)", [_RANK])
        db.execute(_SET_AUTOMERGE)
        db.execute(_SET_HASHSIZE)
        # Something was missing (a trigger, above all), so the index may have missed writes: start it afresh.
        _rebuild(db)
    return True


def _rebuild(db: Database) -> None:
    db.execute(f"INSERT INTO {FTS_TABLE} ({FTS_TABLE}) VALUES ('rebuild')")
    # The rebuild indexed the pending rows too; a later flush must not add them twice.
    db.execute(_CLEAR_PENDING_ROWS)


def rebuild_search(db: Database) -> None:
    """Re-read every entry into the index (after a bulk load without triggers, or a table rebuild)."""
    if _install(db):
        return
    with _transaction(db):
        _rebuild(db)


@contextmanager
def deferred_indexing(db: Database, index_every: int = 0) -> Iterator[None]:
    """Within the caller's transaction, index the entries it inserts all at once at the end of the block.

    Much cheaper than a row at a time (see _DEFERRING). The index misses those entries until the
    block ends; if it raises, nothing is indexed and the caller must roll the transaction back.

    With `index_every`, the entries stay pending past the block, and past the commit, until that
    many wait: cheaper still (see INDEX_EVERY). The caller then owes a `flush_pending` when done.
    Until then a search misses them; the triggers keep other writers right in the meantime.
    """
    if not db.conn.in_transaction:
        raise ValueError("deferred_indexing needs a transaction: the sentinel must not outlive it")
    db.execute(_DEFER)
    yield
    if _index_due(index_every, db.execute(_COUNT_PENDING).fetchone()[0]):
        index_pending(db)
    else:
        db.execute(_STOP_DEFERRING)


def _index_due(index_every: int, waiting: int) -> bool:
    """Whether a deferred_indexing block ending with `waiting` entries pending indexes them now."""
    return not index_every or waiting >= index_every


def may_index(db: Database, index_every: int, incoming: int) -> bool:
    """Whether a `deferred_indexing(db, index_every)` block that notes at most `incoming` new entries
    may index (and so write the search index) before it ends; asked before its transaction begins."""
    return not index_every or _index_due(index_every, db.execute(_COUNT_PENDING).fetchone()[0] + incoming)


def flush_pending(db: Database) -> int:
    """Index every entry still pending (left by `deferred_indexing(index_every=...)`, or by a crawl that
    was killed); returns how many were indexed."""
    if not db.execute(_ANY_PENDING).fetchone():
        return 0
    with _transaction(db):
        return index_pending(db)


def index_pending(db: Database) -> int:
    """Index the entries noted while indexing was deferred and stop deferring; returns how many were indexed."""
    # One statement, during which the store's thread holds no Python lock. Single-row INSERTs fed by a
    # SELECT build the same segments and need no statement journal (a temporary file here; memory
    # under pysqlite3's SQLite, 8-19 MB), but take the lock back twice per entry, and the crawl ran
    # slower with them (docs/benchmarks.md, "Measured in session 18").
    cursor = db.execute(_INDEX_PENDING)
    db.execute(_CLEAR_PENDING)
    return max(cursor.rowcount, 0)


# -- queries -------------------------------------------------------------------

_TOKEN = re.compile(r'"([^"]*)(?:"|$)|([^\s"]+)')


def _clean(query: str) -> str:
    # Lone surrogates (undecodable bytes from a shell) and NULs cannot reach SQLite as text.
    return query.encode("utf-8", "replace").decode("utf-8").replace("\x00", " ")


def parse_query(query: str) -> list[list[str]]:
    """Split a query into groups of alternatives; every group must match, any term of a group may.

    Words are separated by spaces; "double quotes" keep a phrase (spaces included) together;
    an uppercase OR between two terms makes them alternatives. Every other character is literal.
    """
    tokens: list[tuple[str, bool]] = []
    for quoted, bare in _TOKEN.findall(_clean(query)):
        if bare:
            tokens.append((bare, False))
        elif quoted.strip():
            tokens.append((" ".join(quoted.split()), True))
    groups: list[list[str]] = []
    join_next = False
    for index, (text, quoted) in enumerate(tokens):
        following = tokens[index + 1] if index + 1 < len(tokens) else None
        is_operator = (
            text == "OR" and not quoted and bool(groups) and not join_next
            and following is not None and following != ("OR", False)
        )
        if is_operator:
            join_next = True
            continue
        if join_next:
            if text not in groups[-1]:
                groups[-1].append(text)
        elif [text] not in groups:
            groups.append([text])
        join_next = False
    return groups


def fold(term: str) -> str:
    """Lower-case the way the trigram tokenizer folds, one character for one character."""
    return "".join(low if len(low := char.lower()) == 1 else char for char in term)


def _phrase(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def build_match(query: str, expand: Expand | None = None) -> str | None:
    """Turn a user's query into an FTS5 MATCH expression, or None when no entry can match it.

    Each term is quoted, so FTS5 syntax in the query (", *, -, :, parentheses, NOT) is only text.
    Terms of three characters or more are exact substrings for the trigram index. Shorter terms
    cannot be trigram phrases; `expand` lists the indexed trigrams that begin with one, and the
    term becomes their alternatives. Without `expand` a short term matches nothing.
    """
    groups: list[str] = []
    for alternatives in parse_query(query):
        parts: list[str] = []
        for term in alternatives:
            if len(term) >= TRIGRAM:
                parts.append(_phrase(term))
            elif expand is not None and (trigrams := list(expand(term))):
                parts.append(_any([_phrase(t) for t in trigrams]))
        if not parts:
            return None
        groups.append(_any(parts))
    return " AND ".join(groups) or None


def _any(parts: Sequence[str]) -> str:
    return parts[0] if len(parts) == 1 else "(" + " OR ".join(parts) + ")"


def expand_short_term(db: Database | sqlite3.Connection, term: str) -> list[str]:
    """The trigrams in the index that begin with a one- or two-character term (case-folded)."""
    rows = db.execute(f"SELECT term FROM {VOCAB_TABLE} WHERE term >= ? AND term < ?", list(_term_range(term))).fetchall()
    return [row[0] for row in rows]


def match_for(db: Database | sqlite3.Connection, query: str) -> str | None:
    """build_match with the database's own vocabulary for short terms."""
    return build_match(query, lambda term: expand_short_term(db, term))


# -- searching ---------------------------------------------------------------------
#
# A MATCH with a short term expanded into its trigrams is exact, but bm25 then works through
# hundreds of phrases for every matching row (seconds for a common word on 100,000 entries). So
# search_entries uses that expansion only where a MATCH is required (build_match, datasette's
# escape_fts) and otherwise finds short terms in `entries_fts_instance`: one row per occurrence of
# each trigram, read for the trigram range that begins with the term. Its cost follows the term's
# occurrences, and it tells in which column each one is, which is what ranks them.

# A short term that occurs more often than this is ignored like a stop word: reading its
# occurrences would take seconds, and it would match almost every entry anyway ("e", "的").
MAX_SHORT_TERM_HITS = 500_000
# Column weights for short-term occurrences, in step with WEIGHTS.
_WEIGHT_SQL = "CASE col " + " ".join(f"WHEN '{c}' THEN {w}" for c, w in zip(COLUMNS, WEIGHTS)) + " ELSE 1.0 END"

Params = list[Any]


def _term_range(term: str) -> tuple[str, str]:
    low = fold(term)
    return low, low + "\U0010ffff"


def short_term_hits(db: Database | sqlite3.Connection, term: str) -> int:
    """How often a short term occurs in the index: the vocabulary's counts, cheap next to reading the occurrences."""
    row = db.execute(f"SELECT sum(cnt) FROM {VOCAB_TABLE} WHERE term >= ? AND term < ?", list(_term_range(term))).fetchone()
    return int(row[0] or 0)


def search_groups(db: Database | sqlite3.Connection, query: str) -> list[list[str]]:
    """parse_query, less the short terms too common to search (MAX_SHORT_TERM_HITS)."""
    groups = []
    for group in parse_query(query):
        kept = [t for t in group if len(t) >= TRIGRAM or short_term_hits(db, t) <= MAX_SHORT_TERM_HITS]
        if kept:
            groups.append(kept)
    return groups


def _check_columns(columns: Sequence[str] | None) -> list[str]:
    unknown = set(columns or ()) - set(COLUMNS)
    if unknown:
        raise ValueError(f"not an indexed column: {', '.join(sorted(unknown))}")
    return list(columns or ())


def _alternative(term: str, columns: list[str]) -> tuple[str, Params]:
    """SQL giving (doc, weight) rows for the entries that contain one term."""
    if len(term) >= TRIGRAM:
        scope = "{" + " ".join(columns) + "} : " if columns else ""
        sql = f"SELECT rowid AS doc, 1.0 AS weight FROM {FTS_TABLE} WHERE {FTS_TABLE} MATCH ?"
        return sql, [scope + _phrase(term)]
    sql = f"SELECT doc, {_WEIGHT_SQL} AS weight FROM {INSTANCE_TABLE} WHERE term >= ? AND term < ?"
    params: Params = list(_term_range(term))
    if columns:
        sql += f" AND col IN ({', '.join('?' for _ in columns)})"
        params += columns
    return sql, params


def _union(group: list[str], columns: list[str]) -> tuple[str, Params]:
    parts = [_alternative(term, columns) for term in group]
    return " UNION ALL ".join(sql for sql, _ in parts), [p for _, params in parts for p in params]


def _candidates(groups: list[list[str]], columns: list[str], *, ranked: bool) -> tuple[str, Params]:
    """SQL for the matching rowids, with a rank (lower is better) when `ranked`."""
    long_groups = [g for g in groups if all(len(t) >= TRIGRAM for t in g)]
    short_groups = [g for g in groups if g not in long_groups]
    params: Params = []
    if long_groups:
        # bm25 over the long terms ranks; each short group narrows the rows FTS5 hands out in rank order.
        scope = "{" + " ".join(columns) + "} : " if columns else ""
        match = " AND ".join(scope + _any([_phrase(t) for t in g]) for g in long_groups)
        sql = f"SELECT rowid{', rank' if ranked else ''} FROM {FTS_TABLE} WHERE {FTS_TABLE} MATCH ?"
        params.append(match)
        for group in short_groups:
            union, union_params = _union(group, columns)
            # `+rowid`: a bare rowid IN (...) would be handed to FTS5, which then runs the MATCH once per
            # listed rowid and can no longer return rows in rank order.
            sql += f" AND +rowid IN (SELECT doc FROM ({union}))"
            params += union_params
        return (sql + " ORDER BY rank" if ranked else sql), params
    if not ranked:
        parts = [_union(group, columns) for group in short_groups]
        sql = " INTERSECT ".join(f"SELECT doc FROM ({union})" for union, _ in parts)
        return f"SELECT DISTINCT doc AS rowid FROM ({sql})", [p for _, ps in parts for p in ps]
    # Only short terms: score each group by its weighted occurrences, saturating like bm25 does,
    # so that one hit in the title outweighs a few in the body.
    joins = []
    for index, group in enumerate(short_groups):
        union, union_params = _union(group, columns)
        joins.append(f"(SELECT doc, sum(weight) AS s FROM ({union}) GROUP BY doc) AS g{index}")
        params += union_params
    sql = "SELECT g0.doc AS rowid, -(" + " + ".join(f"g{i}.s / (g{i}.s + 2.0)" for i in range(len(joins))) + ") AS rank"
    sql += " FROM " + joins[0] + "".join(f" JOIN {join} ON g{i}.doc = g0.doc" for i, join in enumerate(joins[1:], 1))
    return sql + " ORDER BY rank, rowid DESC", params


def matching_rowids(
    db: Database | sqlite3.Connection, query: str, *, columns: Sequence[str] | None = None
) -> list[int]:
    """The rowids of every entry that matches the query, in no particular order."""
    groups = search_groups(db, query)
    if not groups:
        return []
    sql, params = _candidates(groups, _check_columns(columns), ranked=False)
    return [row[0] for row in db.execute(sql, params).fetchall()]


def search_entries(
    db: Database | sqlite3.Connection,
    query: str,
    *,
    limit: int = 20,
    offset: int = 0,
    marks: tuple[str, str] = ("[", "]"),
    columns: Sequence[str] | None = None,
    escape: Callable[[str], str] | None = None,
) -> list[dict[str, Any]]:
    """Entries matching the query, best first: id, title, url, author, published_at, snippet, rank.

    rank is lower for better matches and compares only results of the same query. The snippet is
    the body around the first match with `marks` around each term; `escape` (html.escape) makes it HTML.
    `columns` limits the search to some of COLUMNS.
    """
    groups = search_groups(db, query)
    if not groups or limit <= 0:
        return []
    sql, params = _candidates(groups, _check_columns(columns), ranked=True)
    hits = db.execute(f"{sql} LIMIT ? OFFSET ?", [*params, limit, max(offset, 0)]).fetchall()
    if not hits:
        return []
    marks_sql = ", ".join("?" for _ in hits)
    rows = {
        row[0]: row[1:]
        for row in db.execute(
            f"SELECT rowid, id, title, url, author, published_at, content_text FROM entries WHERE rowid IN ({marks_sql})",
            [rowid for rowid, _ in hits],
        ).fetchall()
    }
    terms = [term for group in groups for term in group]
    results = []
    for rowid, rank in hits:
        if rowid not in rows:  # pragma: no cover - an index out of step; skip rather than fail
            continue
        entry_id, title, url, author, published_at, text = rows[rowid]
        results.append({
            "id": entry_id, "title": title, "url": url, "author": author, "published_at": published_at,
            "snippet": make_snippet(text or "", terms, marks, escape=escape), "rank": rank,
        })
    return results


def make_snippet(
    text: str,
    terms: Sequence[str],
    marks: tuple[str, str] = ("[", "]"),
    *,
    width: int = 64,
    escape: Callable[[str], str] | None = None,
) -> str:
    """About `width` characters of text around the first term found, every term in it marked.

    Terms are found case-insensitively; `escape` (e.g. html.escape) is applied to the text, not the marks.
    """
    text = " ".join(text.split())
    escape = escape or (lambda s: s)
    folded = fold(text)
    needles = sorted({fold(t) for t in terms if t}, key=len, reverse=True)
    positions = [p for p in (folded.find(n) for n in needles) if p >= 0]
    start = max(0, min(positions) - width // 4) if positions else 0
    end = min(len(text), start + width)
    out: list[str] = ["…"] if start > 0 else []
    index = start
    while index < end:
        needle = next((n for n in needles if folded.startswith(n, index)), None)
        if needle is None:
            nxt = min([p for p in (folded.find(n, index, end) for n in needles) if p >= 0], default=end)
            out.append(escape(text[index:nxt]))
            index = nxt
            continue
        out.append(marks[0] + escape(text[index:index + len(needle)]) + marks[1])
        index += len(needle)
    if index < len(text):
        out.append("…")
    return "".join(out)
