"""Tests for pipelines.search: query parsing, MATCH building, the trigram index and its triggers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlite_utils import Database
from sqlite_utils.utils import sqlite3  # the module the store uses: its errors are the ones to raise and catch

import pipelines.search
from pipelines.schema import migrate
from pipelines.search import (
    AUTOMERGE,
    FTS_TABLE,
    HASHSIZE,
    PENDING_TABLE,
    TRIGGERS,
    build_match,
    deferred_indexing,
    flush_pending,
    fold,
    index_pending,
    install_search,
    make_snippet,
    match_for,
    matching_rowids,
    parse_query,
    rebuild_search,
    search_entries,
    search_groups,
)
from pipelines.store import open_db

# Our own texts: the titles and bodies a product/e-commerce column might carry.
ENTRIES: dict[str, dict[str, Any]] = {
    "cross-border": {
        "title": "跨境电商的物流账本：东南亚仓配怎么算",
        "author": "周屿",
        "content_text": "做跨境电商的卖家都知道，东南亚的尾程配送比头程贵。本文拆开一张电商物流账单，看看钱花在哪里。",
        "categories": ["电商", "物流"],
    },
    "title-ends": {
        "title": "社区团购退潮之后的生鲜电商",
        "author": "顾南乔",
        "content_text": "补贴停下来以后，履约成本才露出真面目：冷链、损耗和最后一公里。",
        "categories": ["生鲜"],
    },
    "body-once": {
        "title": "表单设计的九个细节",
        "author": "程野",
        "content_text": "每多一个输入框，就多一分流失。下单页尤其如此，电商团队常常低估这一点。",
        "categories": ["交互设计"],
    },
    "ai-cn": {
        "title": "AI 客服在电商里的三个用法",
        "author": "陆听澜",
        "content_text": "智能客服上线三个月，我们把退货咨询交给了模型，把投诉留给了人。",
        "categories": ["AI"],
    },
    "checkout": {
        "title": "Checkout friction you cannot see in the funnel",
        "author": "Maren Okafor",
        "content_text": "Funnel charts show where people leave, not why. An AI assistant did not fix our checkout; "
        "asking three buyers did.",
        "categories": ["e-commerce", "analytics"],
    },
    "spec": {
        "title": "Writing the one-page spec",
        "author": "Maren Okafor",
        "content_text": "Problem, who has it, what we will not build. The spec fits on one page or it is two specs.",
        "categories": ["product"],
    },
    "syntax": {
        "title": 'Notes on C++ "quotes" (and brackets)',
        "author": "Ada Park",
        "content_text": "An OR-gate: 50%*2 -- column:value NEAR(a b) ^start + end.",
        "categories": ["code"],
    },
    "author-only": {
        "title": "需求池越攒越多",
        "author": "沈砚秋",
        "content_text": "给需求做一次断舍离：先问它解决谁的什么问题。",
        "categories": ["需求管理"],
    },
}


def insert(db: Database, key: str, **fields: Any) -> None:
    row = {"id": key, "url": f"https://example.org/{key}", "published_at": "2024-01-01T00:00:00Z", **fields}
    if isinstance(row.get("categories"), list):
        row["categories"] = json.dumps(row["categories"], ensure_ascii=False)
    columns = ", ".join(row)
    db.execute(f"INSERT INTO entries ({columns}) VALUES ({', '.join('?' for _ in row)})", list(row.values()))


@pytest.fixture()
def db(tmp_path: Path) -> Iterator[Database]:
    database = open_db(tmp_path / "feeds.db")
    for key, fields in ENTRIES.items():
        insert(database, key, **fields)
    yield database
    database.conn.close()


def ids(db: Database, query: str, **kwargs: Any) -> list[str]:
    return [row["id"] for row in search_entries(db, query, **kwargs)]


def oracle(db: Database, query: str) -> set[str]:
    """Entries where every group has a term that is a (case-folded) substring of one indexed column."""
    groups = parse_query(query)
    if not groups:
        return set()
    found = set()
    for row in db.execute("SELECT id, title, content_text, author, categories FROM entries").fetchall():
        columns = [fold(value) for value in row[1:] if value is not None]
        if all(any(fold(term) in column for term in group for column in columns) for group in groups):
            found.add(row[0])
    return found


# -- parsing -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "groups"),
    [
        ("电商", [["电商"]]),
        ("  AI   电商 ", [["AI"], ["电商"]]),
        ('"跨境 电商" 物流', [["跨境 电商"], ["物流"]]),
        ('"unclosed phrase', [["unclosed phrase"]]),
        ("电商 OR 物流 AI", [["电商", "物流"], ["AI"]]),
        ("a OR b OR c", [["a", "b", "c"]]),
        ("OR", [["OR"]]),
        ("OR 电商", [["OR"], ["电商"]]),
        ("电商 OR", [["电商"], ["OR"]]),
        ("电商 OR OR 物流", [["电商"], ["OR", "物流"]]),
        ("电商 or 物流", [["电商"], ["or"], ["物流"]]),
        ('"OR" 电商', [["OR"], ["电商"]]),
        ('"" "   " 电商 电商', [["电商"]]),
        ('ab"cd ef"', [["ab"], ["cd ef"]]),
        ("* - ( : ^", [["*"], ["-"], ["("], [":"], ["^"]]),
        ("", []),
        ("   ", []),
    ],
)
def test_parse_query(query: str, groups: list[list[str]]) -> None:
    assert parse_query(query) == groups


@pytest.mark.parametrize("query", ["\x00电商", "电\udcff商", "\ud800"])
def test_parse_query_drops_what_sqlite_cannot_take(query: str) -> None:
    for group in parse_query(query):
        for term in group:
            term.encode("utf-8")
            assert "\x00" not in term


# -- building MATCH ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("跨境电商", '"跨境电商"'),
        ("checkout funnel", '"checkout" AND "funnel"'),
        ('say "hi there"', '"say" AND "hi there"'),
        ("物流中心 OR checkout", '("物流中心" OR "checkout")'),
        ("NEAR(abc def)", '"NEAR(abc" AND "def)"'),
        ("col:value", '"col:value"'),
        ("-foo*", '"-foo*"'),
        ('abc"def ghi"', '"abc" AND "def ghi"'),
        ('say "it\'s"', '"say" AND "it\'s"'),
    ],
)
def test_build_match_quotes_every_term(query: str, expected: str) -> None:
    assert build_match(query) == expected


def test_build_match_expands_short_terms() -> None:
    expand = {"电商": ["电商的", '电商"'], "AI": ["ai "]}.get
    assert build_match("AI 电商", lambda t: expand(t) or []) == '"ai " AND ("电商的" OR "电商""")'


@pytest.mark.parametrize("query", ["", "  ", '""', "电商"])
def test_build_match_none_when_nothing_can_match(query: str) -> None:
    assert build_match(query) is None


def test_build_match_drops_an_alternative_that_cannot_match() -> None:
    assert build_match("xy OR checkout") == '"checkout"'


# -- the index in a database ---------------------------------------------------------


def test_migration_installs_the_index(db: Database) -> None:
    names = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
    assert {FTS_TABLE, "entries_fts_source", "entries_fts_vocab", "entries_fts_insert"} <= names
    assert db.execute("SELECT name FROM _migrations WHERE name = '002_search'").fetchone()


def test_install_search_is_idempotent(db: Database) -> None:
    before = ids(db, "电商")
    install_search(db)
    install_search(db)
    assert ids(db, "电商") == before
    assert db.execute(f"SELECT count(*) FROM {FTS_TABLE}").fetchone()[0] == len(ENTRIES)


def test_install_search_repairs_a_dropped_trigger(db: Database) -> None:
    db.execute("DROP TRIGGER entries_fts_insert")
    insert(db, "late", title="迟到的跨境电商周报", content_text="补录")
    assert "late" not in ids(db, "跨境电商")
    install_search(db)
    assert "late" in ids(db, "跨境电商")


def test_rebuild_search_restores_an_emptied_index(db: Database) -> None:
    db.execute(f"INSERT INTO {FTS_TABLE} ({FTS_TABLE}) VALUES ('delete-all')")
    assert ids(db, "跨境电商") == []
    rebuild_search(db)
    assert set(ids(db, "跨境电商")) == {"cross-border"}


def test_install_search_on_a_bare_database() -> None:
    db = Database(memory=True)
    columns = ("url", "title", "author", "published_at", "categories", "content_text")
    db["entries"].create({"id": str, **{name: str for name in columns}}, pk="id")
    db["entries"].insert({"id": "x", "title": "私域复购的三个误会"})
    install_search(db)
    assert ids(db, "复购") == ["x"]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("电商", {"cross-border", "title-ends", "body-once", "ai-cn"}),
        ("跨境电商", {"cross-border"}),
        ("checkout", {"checkout"}),
        ("CHECKOUT", {"checkout"}),
        ("AI 电商", {"ai-cn"}),
        ("AI checkout", {"checkout"}),
        ("砚秋", {"author-only"}),
        ("物流", {"cross-border"}),
        ("冷链 OR funnel", {"title-ends", "checkout"}),
        ('"one page"', {"spec"}),
        ('"page one"', set()),
        ('"one-page spec"', {"spec"}),
        ("商", {"cross-border", "title-ends", "body-once", "ai-cn"}),
        ("C++", {"syntax"}),
        ('"quotes"', {"syntax"}),
        ("50%*2", {"syntax"}),
        ("NEAR(a", {"syntax"}),
        ("column:value", {"syntax"}),
        ("OR-gate", {"syntax"}),
        ("不存在的词", set()),
        ("跨境电商 物流", {"cross-border"}),
        ("跨境电商 冷链", set()),
        ("电商 OR checkout", {"cross-border", "title-ends", "body-once", "ai-cn", "checkout"}),
        ("Maren spec", {"spec"}),
    ],
)
def test_search_finds(db: Database, query: str, expected: set[str]) -> None:
    assert set(ids(db, query)) == expected == oracle(db, query)


@pytest.mark.parametrize(
    "query",
    ['"', '""', "*", "-", "OR", "AND", "NOT", "(", ")", ":", "^", "电商 -", '电商"', "(电商 OR", "NEAR(", "-电商*",
     'title:电商', "电商 AND NOT 物流", "\x00", "\udcff", "电" * 300],
)
def test_search_never_raises(db: Database, query: str) -> None:
    assert set(ids(db, query)) == oracle(db, query)


def test_title_hits_rank_first(db: Database) -> None:
    found = ids(db, "电商")
    # 电商 in the title (and body) before 电商 only once in the body.
    assert found.index("cross-border") < found.index("body-once")
    assert found.index("title-ends") < found.index("body-once")


def test_author_hits_rank_above_body_hits(db: Database) -> None:
    insert(db, "mentions", title="访谈纪要", content_text="这次我们请到了沈砚秋聊需求管理。")
    assert ids(db, "沈砚秋") == ["author-only", "mentions"]


def test_results_carry_fields_and_snippet(db: Database) -> None:
    (row,) = search_entries(db, "尾程配送", marks=("<", ">"))
    assert set(row) == {"id", "title", "url", "author", "published_at", "snippet", "rank"}
    assert row["id"] == "cross-border" and row["author"] == "周屿"
    assert "<尾程配送>" in row["snippet"].replace("><", "")
    assert row["rank"] < 0


def test_limit_and_offset_page_through(db: Database) -> None:
    every = ids(db, "电商")
    assert ids(db, "电商", limit=2) == every[:2]
    assert ids(db, "电商", limit=2, offset=2) == every[2:4]
    assert ids(db, "电商", limit=0) == []


def test_update_keeps_the_index_in_step(db: Database) -> None:
    db.execute("UPDATE entries SET title = '履约成本拆解', content_text = '冷链与损耗' WHERE id = 'cross-border'")
    assert "cross-border" not in ids(db, "跨境电商")
    assert "cross-border" in ids(db, "履约成本")
    assert set(ids(db, "电商")) == oracle(db, "电商")


def test_update_of_other_columns_leaves_the_index_alone(db: Database) -> None:
    db.execute("UPDATE entries SET last_seen_at = '2025-01-01T00:00:00Z', title = title WHERE id = 'spec'")
    assert ids(db, "one-page") == ["spec"]
    db.execute(f"INSERT INTO {FTS_TABLE} ({FTS_TABLE}, rank) VALUES ('integrity-check', 1)")


def test_delete_removes_from_the_index(db: Database) -> None:
    db.execute("DELETE FROM entries WHERE id = 'title-ends'")
    assert "title-ends" not in ids(db, "电商")
    assert ids(db, "冷链") == []


def test_null_columns_are_indexed_as_empty(db: Database) -> None:
    insert(db, "bare", title="只有标题的直播带货", content_text=None, author=None, categories=None)
    assert ids(db, "直播带货") == ["bare"]
    db.execute("UPDATE entries SET content_text = '补上了正文：直播' WHERE id = 'bare'")
    db.execute("DELETE FROM entries WHERE id = 'bare'")
    assert ids(db, "直播") == []
    db.execute(f"INSERT INTO {FTS_TABLE} ({FTS_TABLE}, rank) VALUES ('integrity-check', 1)")


def test_store_delete_entry_keeps_the_index_in_step(tmp_path: Path) -> None:
    from pipelines.store import Store

    store = Store.open(tmp_path / "feeds.db")
    insert(store.db, "gone", title="会被删掉的跨境电商周报", content_text="")
    assert ids(store.db, "跨境电商") == ["gone"]
    store.delete_entry("gone")
    assert ids(store.db, "跨境电商") == []
    store.close()


def test_match_for_uses_the_index_vocabulary(db: Database) -> None:
    match = match_for(db, "电商")
    assert match is not None and '"电商 "' in match  # the padding: a title ends in 电商
    assert match_for(db, "zz") is None


def test_index_is_consistent_after_writes(db: Database) -> None:
    db.execute("UPDATE entries SET author = '林晚晴' WHERE id = 'ai-cn'")
    db.execute("DELETE FROM entries WHERE id = 'spec'")
    insert(db, "new", title="新来的", content_text="正文")
    db.execute(f"INSERT INTO {FTS_TABLE} ({FTS_TABLE}, rank) VALUES ('integrity-check', 1)")
    assert ids(db, "晚晴") == ["ai-cn"]


ALPHABET = "电商跨境物流AIaiCheckoutfunel冷链砚秋 OR\"*-():^+"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(query=st.text(alphabet=ALPHABET, max_size=14))
def test_search_matches_substring_oracle(db: Database, query: str) -> None:
    try:
        found = set(ids(db, query, limit=100))
    except sqlite3.Error as exc:  # pragma: no cover - the failure message is the point
        pytest.fail(f"{query!r} raised {exc}")
    assert found == oracle(db, query)
    assert len(matching_rowids(db, query)) == len(found)


def test_insert_or_replace_keeps_the_index_in_step(db: Database) -> None:
    # open_db's connection has recursive_triggers on (sqlite-utils' default), so REPLACE fires the delete trigger.
    db.execute(
        "INSERT OR REPLACE INTO entries (id, title, content_text) VALUES ('spec', '重写过的规格说明', '')"
    )
    assert ids(db, "one-page") == []
    assert ids(db, "规格说明") == ["spec"]
    db.execute(f"INSERT INTO {FTS_TABLE} ({FTS_TABLE}, rank) VALUES ('integrity-check', 1)")


def test_matching_rowids_are_the_search_results(db: Database) -> None:
    for query in ("电商", "跨境电商 物流", "AI 电商", "冷链 OR funnel", "checkout"):
        rowids = set(matching_rowids(db, query))
        found = {row[0] for row in db.execute(f"SELECT rowid FROM entries WHERE id IN ({', '.join('?' * len(ids(db, query)))})", ids(db, query))} if ids(db, query) else set()
        assert rowids == found


@pytest.mark.parametrize(
    ("query", "columns", "expected"),
    [
        ("电商", ["title"], {"title-ends", "ai-cn", "cross-border"}),
        ("电商", ["content_text"], {"cross-border", "body-once"}),
        ("电商", ["categories"], {"cross-border"}),
        ("Okafor", ["author"], {"checkout", "spec"}),
        ("Okafor", ["title", "content_text"], set()),
        ("跨境电商 物流", ["title"], {"cross-border"}),
    ],
)
def test_search_in_some_columns(db: Database, query: str, columns: list[str], expected: set[str]) -> None:
    assert set(ids(db, query, columns=columns)) == expected
    assert len(matching_rowids(db, query, columns=columns)) == len(expected)


def test_search_in_an_unknown_column_is_refused(db: Database) -> None:
    with pytest.raises(ValueError, match="not an indexed column"):
        search_entries(db, "电商", columns=["summary"])


def test_too_common_short_terms_are_ignored(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pipelines.search, "MAX_SHORT_TERM_HITS", 3)
    assert search_groups(db, "电商 物流 e") == [["物流"]]  # 电商 occurs 6 times, e more often
    assert ids(db, "电商") == []
    assert set(ids(db, "电商 物流")) == {"cross-border"}


def test_search_works_on_a_plain_connection(tmp_path: Path, db: Database) -> None:
    conn = sqlite3.connect(tmp_path / "feeds.db")
    assert {row["id"] for row in search_entries(conn, "电商")} == oracle(db, "电商")
    conn.close()


def test_html_snippet_is_escaped(db: Database) -> None:
    insert(db, "html", title="讲 HTML 的一篇", content_text="把 <script>alert(1)</script> 写进电商详情页的后果")
    (row,) = search_entries(db, "script 电商", marks=("<mark>", "</mark>"), escape=__import__("html").escape)
    assert "&lt;<mark>script</mark>&gt;" in row["snippet"]
    assert "<mark>电商</mark>" in row["snippet"]


@pytest.mark.parametrize(
    ("text", "terms", "expected"),
    [
        ("跨境电商的物流", ["电商"], "跨境[电商]的物流"),
        ("Checkout and CHECKOUT", ["checkout"], "[Checkout] and [CHECKOUT]"),
        ("跨境电商", ["电商", "跨境电商"], "[跨境电商]"),
        ("没有命中的正文", ["电商"], "没有命中的正文"),
        ("", ["电商"], ""),
        ("a  b\n\nc 电商", ["电商"], "a b c [电商]"),
        ("前" * 100 + "电商" + "后" * 100, ["电商"], "…" + "前" * 16 + "[电商]" + "后" * 46 + "…"),
    ],
)
def test_make_snippet(text: str, terms: list[str], expected: str) -> None:
    assert make_snippet(text, terms) == expected


# -- deferred indexing (the store's batches) ---------------------------------------


def index_contents(db: Database) -> list[tuple[Any, ...]]:
    """Every occurrence the index holds: what two equal indexes share, whatever their segments."""
    return db.execute("SELECT term, doc, col, offset FROM entries_fts_instance ORDER BY 1, 2, 3, 4").fetchall()


def assert_index_is_a_rebuild(db: Database) -> None:
    # For external content, 'integrity-check' with rank 1 also compares the index with the text it reads.
    db.execute(f"INSERT INTO {FTS_TABLE} ({FTS_TABLE}, rank) VALUES ('integrity-check', 1)")
    before = index_contents(db)
    rebuild_search(db)
    assert index_contents(db) == before


def pending(db: Database) -> list[int]:
    return [row[0] for row in db.execute(f"SELECT entry_rowid FROM {PENDING_TABLE}")]



def write_deferred(db: Database, *statements: str) -> None:
    """Run statements in one transaction that defers indexing, as the store's batches do."""
    db.execute("BEGIN IMMEDIATE")
    try:
        with deferred_indexing(db):
            for sql in statements:
                db.execute(sql)
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise


def test_deferred_writes_leave_the_index_a_rebuild_would_make(db: Database) -> None:
    insert(db, "to-update", title="准备改写", content_text="")  # indexed before the batch: not pending
    write_deferred(
        db,
        "INSERT INTO entries (id, title, content_text) VALUES ('new', '直播电商的退货率', '主播说的和仓库发的不一样')",
        "INSERT INTO entries (id, title, content_text) VALUES ('new-then-changed', '草稿标题', '')",
        "UPDATE entries SET title = '私域运营的复购账', content_text = '会员日' WHERE id = 'new-then-changed'",
        "INSERT INTO entries (id, title, content_text) VALUES ('new-then-gone', '不该留下的跨境电商草稿', '')",
        "DELETE FROM entries WHERE id = 'new-then-gone'",
        "UPDATE entries SET title = '改写后的供应链笔记' WHERE id = 'to-update'",
        "DELETE FROM entries WHERE id = 'spec'",
    )
    assert pending(db) == []
    assert ids(db, "直播电商") == ["new"]
    assert ids(db, "复购账") == ["new-then-changed"] and ids(db, "草稿标题") == []
    assert ids(db, "跨境电商") == ["cross-border"]
    assert ids(db, "供应链") == ["to-update"] and ids(db, "准备改写") == []
    assert ids(db, "one-page") == []
    assert_index_is_a_rebuild(db)


def test_entries_are_found_only_once_the_deferring_block_ends(db: Database) -> None:
    db.execute("BEGIN IMMEDIATE")
    with deferred_indexing(db):
        insert(db, "late", title="会员体系的三层漏斗", content_text="")
        assert ids(db, "会员体系") == []
        assert len(pending(db)) == 2  # the sentinel and the new row
    assert ids(db, "会员体系") == ["late"]
    db.execute("COMMIT")
    assert pending(db) == []


def test_a_rolled_back_deferring_transaction_leaves_nothing_pending(db: Database) -> None:
    with pytest.raises(RuntimeError):
        db.execute("BEGIN IMMEDIATE")
        try:
            with deferred_indexing(db):
                insert(db, "lost", title="写到一半的复盘", content_text="")
                raise RuntimeError("the batch failed")
        except BaseException:
            db.execute("ROLLBACK")
            raise
    assert pending(db) == []
    insert(db, "after", title="写到一半的复盘之后", content_text="")  # indexed by the plain trigger again
    assert ids(db, "写到一半") == ["after"]
    assert_index_is_a_rebuild(db)


def test_deferred_indexing_needs_a_transaction(db: Database) -> None:
    with pytest.raises(ValueError, match="transaction"), deferred_indexing(db):
        pass  # pragma: no cover - never reached
    assert pending(db) == []


def test_a_pending_rowid_reused_after_a_delete_is_indexed_once(db: Database) -> None:
    # Without AUTOINCREMENT, deleting the newest row hands its rowid to the next insert.
    write_deferred(
        db,
        "INSERT INTO entries (id, title) VALUES ('first', '先到的标题')",
        "DELETE FROM entries WHERE id = 'first'",
        "INSERT INTO entries (id, title) VALUES ('second', '后到的标题')",
    )
    assert ids(db, "后到的") == ["second"] and ids(db, "先到的") == []
    assert_index_is_a_rebuild(db)


@pytest.mark.parametrize("rowid", [0, -7])
def test_explicit_rowids_next_to_the_sentinel_stay_in_step(db: Database, rowid: int) -> None:
    write_deferred(
        db,
        f"INSERT INTO entries (rowid, id, title) VALUES ({rowid}, 'odd', '手写行号的旧文')",
        "UPDATE entries SET title = '手写行号的新文' WHERE id = 'odd'",
    )
    assert ids(db, "新文") == ["odd"] and ids(db, "旧文") == []
    write_deferred(db, "DELETE FROM entries WHERE id = 'odd'")
    assert ids(db, "手写行号") == []
    assert_index_is_a_rebuild(db)


def test_the_flush_looks_pending_rows_up_by_rowid(db: Database) -> None:
    statements: list[str] = []
    db.execute("BEGIN IMMEDIATE")
    db.execute(f"INSERT INTO {PENDING_TABLE} (entry_rowid) VALUES (0)")
    for n in range(3):
        insert(db, f"x{n}", title=f"随便一篇{n}")
    db.conn.set_trace_callback(statements.append)
    assert index_pending(db) == 3
    db.conn.set_trace_callback(None)
    db.execute("COMMIT")
    assert sorted(ids(db, "随便一篇")) == ["x0", "x1", "x2"]
    # One statement indexes them all, reading the pending rows by rowid.
    (flush,) = [sql for sql in statements if sql.startswith(f"INSERT INTO {FTS_TABLE}")]
    plan = " | ".join(row[3] for row in db.execute("EXPLAIN QUERY PLAN " + flush))
    assert "SEARCH entries USING INTEGER PRIMARY KEY (rowid=?)" in plan
    assert "SCAN entries" not in plan.replace(f"SCAN {PENDING_TABLE}", "")


def write_elsewhere(path: Path, *statements: str) -> None:
    """Plain statements on a connection of their own, no deferral: datasette, sqlite-utils, users' scripts."""
    conn = sqlite3.connect(path, isolation_level=None)
    for sql in statements:
        conn.execute(sql)
    conn.close()


def test_writes_on_another_connection_keep_the_index_in_step(tmp_path: Path, db: Database) -> None:
    write_elsewhere(
        tmp_path / "feeds.db",
        "INSERT INTO entries (id, title, content_text) VALUES ('outside', '外部脚本写入的品牌词', '')",
        "UPDATE entries SET title = '外部脚本改过的标题' WHERE id = 'checkout'",
        "DELETE FROM entries WHERE id = 'title-ends'",
    )
    assert ids(db, "品牌词") == ["outside"]
    assert ids(db, "外部脚本改过") == ["checkout"] and ids(db, "friction") == []
    assert ids(db, "冷链") == []
    assert pending(db) == []
    assert_index_is_a_rebuild(db)


def test_install_search_indexes_what_was_left_pending(db: Database) -> None:
    # Only a hand-written sentinel outside a transaction can leave the table non-empty.
    db.execute(f"INSERT INTO {PENDING_TABLE} (entry_rowid) VALUES (0)")
    insert(db, "stranded", title="搁浅的社群运营笔记", content_text="")
    assert ids(db, "社群运营") == []
    install_search(db)
    assert ids(db, "社群运营") == ["stranded"]
    assert pending(db) == []
    assert_index_is_a_rebuild(db)


def test_rebuild_search_clears_what_was_pending(db: Database) -> None:
    db.execute(f"INSERT INTO {PENDING_TABLE} (entry_rowid) VALUES (0)")
    insert(db, "stranded", title="搁浅的社群运营笔记", content_text="")
    db.execute(f"DELETE FROM {PENDING_TABLE} WHERE entry_rowid = 0")
    rebuild_search(db)
    assert pending(db) == []  # a later flush would otherwise index it twice
    assert ids(db, "社群运营") == ["stranded"]
    assert_index_is_a_rebuild(db)


# The triggers as migration 002 created them, before deferred indexing: a database made then.
OLD_TRIGGERS = (
    """CREATE TRIGGER entries_fts_insert AFTER INSERT ON entries BEGIN
        INSERT INTO entries_fts (rowid, title, content_text, author, categories) VALUES (new.rowid,
        new.title || '  ', new.content_text || '  ', new.author || '  ', new.categories || '  ');
    END""",
    """CREATE TRIGGER entries_fts_delete AFTER DELETE ON entries BEGIN
        INSERT INTO entries_fts (entries_fts, rowid, title, content_text, author, categories) VALUES ('delete',
        old.rowid, old.title || '  ', old.content_text || '  ', old.author || '  ', old.categories || '  ');
    END""",
    """CREATE TRIGGER entries_fts_update AFTER UPDATE OF title, content_text, author, categories ON entries
        WHEN old.title IS NOT new.title OR old.content_text IS NOT new.content_text
          OR old.author IS NOT new.author OR old.categories IS NOT new.categories BEGIN
        INSERT INTO entries_fts (entries_fts, rowid, title, content_text, author, categories) VALUES ('delete',
        old.rowid, old.title || '  ', old.content_text || '  ', old.author || '  ', old.categories || '  ');
        INSERT INTO entries_fts (rowid, title, content_text, author, categories) VALUES (new.rowid,
        new.title || '  ', new.content_text || '  ', new.author || '  ', new.categories || '  ');
    END""",
)


def make_old_database(path: Path) -> None:
    database = open_db(path)
    for name in TRIGGERS:
        database.execute(f"DROP TRIGGER {name}")
    database.execute(f"DROP TABLE {PENDING_TABLE}")
    for sql in OLD_TRIGGERS:
        database.execute(sql)
    database.execute("DELETE FROM _migrations WHERE name = '004_deferred_search'")
    for key, fields in ENTRIES.items():
        insert(database, key, **fields)
    database.execute("UPDATE entries SET title = '被旧触发器改过的规格' WHERE id = 'spec'")
    database.execute("DELETE FROM entries WHERE id = 'syntax'")
    database.conn.close()


def test_the_migration_moves_old_triggers_without_a_rebuild(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    make_old_database(path)
    conn = sqlite3.connect(path, isolation_level=None)
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    database = Database(conn)
    assert migrate(database) == ["004_deferred_search"]
    conn.set_trace_callback(None)
    assert not [sql for sql in statements if "rebuild" in sql]
    names = {row[0] for row in database.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")}
    assert set(TRIGGERS) <= names
    assert "WHEN" in database.execute("SELECT sql FROM sqlite_master WHERE name = 'entries_fts_insert'").fetchone()[0]
    assert ids(database, "跨境电商") == ["cross-border"]
    assert ids(database, "旧触发器") == ["spec"] and ids(database, "C++") == []
    write_deferred(database, "INSERT INTO entries (id, title) VALUES ('after', '升级之后的跨境电商')")
    assert set(ids(database, "跨境电商")) == {"cross-border", "after"}
    assert pending(database) == []
    assert_index_is_a_rebuild(database)
    assert migrate(database) == []
    conn.close()


def migrate_again(database: Database, path: Path, name: str) -> Database:
    """Forget that migration `name` ran, reopen the file and migrate: only it runs, and it rewrites no index."""
    database.execute("DELETE FROM _migrations WHERE name = ?", [name])
    database.conn.close()
    conn = sqlite3.connect(path, isolation_level=None)
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    database = Database(conn)
    assert migrate(database) == [name]
    assert not [sql for sql in statements if "rebuild" in sql or "optimize" in sql]
    conn.set_trace_callback(None)
    return database


def automerge(database: Database) -> int | None:
    row = database.execute("SELECT v FROM entries_fts_config WHERE k = 'automerge'").fetchone()
    return row and row[0]


def test_a_new_index_merges_segments_eight_at_a_time(tmp_path: Path) -> None:
    database = open_db(tmp_path / "new.db")
    assert automerge(database) == AUTOMERGE == 8


def test_the_migration_sets_automerge_on_an_older_index_without_rewriting_it(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    database = open_db(path)
    for key, fields in ENTRIES.items():
        insert(database, key, **fields)
    database.execute("DELETE FROM entries_fts_config WHERE k = 'automerge'")  # as FTS5's default of 4 left it
    database = migrate_again(database, path, "006_search_automerge")
    assert automerge(database) == 8
    assert ids(database, "跨境电商") == ["cross-border"]


# -- a crawl's entries indexed INDEX_EVERY at a time -------------------------------------------


def write_batched(db: Database, index_every: int, *statements: str) -> None:
    """One of a crawl's transactions: its new entries wait for the index until index_every of them do."""
    db.execute("BEGIN IMMEDIATE")
    with deferred_indexing(db, index_every):
        for sql in statements:
            db.execute(sql)
    db.execute("COMMIT")


def test_entries_wait_across_transactions_until_enough_of_them_do(db: Database) -> None:
    write_batched(db, 3, "INSERT INTO entries (id, title) VALUES ('b1', '第一批的增长复盘')")
    assert ids(db, "增长复盘") == [] and len(pending(db)) == 1  # committed, waiting; no sentinel left
    write_batched(db, 3, "INSERT INTO entries (id, title) VALUES ('b2', '第二批的增长复盘')")
    assert ids(db, "增长复盘") == [] and len(pending(db)) == 2
    write_batched(
        db, 3,
        "INSERT INTO entries (id, title) VALUES ('b3', '第三批的增长复盘')",
        "UPDATE entries SET title = '第一批改过的增长复盘' WHERE id = 'b1'",  # pending: read at the flush
    )
    assert sorted(ids(db, "增长复盘")) == ["b1", "b2", "b3"] and ids(db, "第一批的") == []
    assert pending(db) == []
    assert_index_is_a_rebuild(db)


def test_flush_pending_indexes_the_rest(db: Database) -> None:
    write_batched(db, 100, "INSERT INTO entries (id, title) VALUES ('rest', '最后一批的渠道笔记')")
    assert ids(db, "渠道笔记") == []
    assert flush_pending(db) == 1
    assert ids(db, "渠道笔记") == ["rest"] and pending(db) == []
    assert flush_pending(db) == 0  # nothing waiting: no transaction either
    assert_index_is_a_rebuild(db)


def test_other_writers_keep_the_index_right_while_entries_wait(tmp_path: Path, db: Database) -> None:
    write_batched(
        db, 100,
        "INSERT INTO entries (id, title) VALUES ('waits', '等待索引的会员笔记')",
        "INSERT INTO entries (id, title) VALUES ('newest', '等待中被删掉的新文')",
    )
    # between two of the crawl's transactions; the newest rowid, freed, goes to the plain insert
    write_elsewhere(
        tmp_path / "feeds.db",
        "UPDATE entries SET title = '等待中改过的会员笔记' WHERE id = 'waits'",
        "DELETE FROM entries WHERE id = 'newest'",
        "INSERT INTO entries (id, title) VALUES ('outside', '外部写入占用旧行号')",
    )
    assert ids(db, "外部写入") == ["outside"]
    assert len(pending(db)) == 1  # the deleted row left the pending rows
    flush_pending(db)
    assert ids(db, "会员笔记") == ["waits"] and ids(db, "等待索引") == []
    assert ids(db, "外部写入") == ["outside"] and ids(db, "被删掉") == []
    assert_index_is_a_rebuild(db)


def hashsize(database: Database) -> int | None:
    row = database.execute("SELECT v FROM entries_fts_config WHERE k = 'hashsize'").fetchone()
    return row and row[0]


def test_a_new_index_writes_its_segments_every_four_mib(tmp_path: Path) -> None:
    assert hashsize(open_db(tmp_path / "new.db")) == HASHSIZE == 4 * 1024 * 1024


def test_the_hashsize_migration_moves_an_index_of_two_mib_to_four_without_rewriting_it(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    database = open_db(path)
    for key, fields in ENTRIES.items():
        insert(database, key, **fields)
    database.execute("UPDATE entries_fts_config SET v = ? WHERE k = 'hashsize'", [2 * 1024 * 1024])  # as 007 left it
    database = migrate_again(database, path, "008_search_hashsize")
    assert hashsize(database) == HASHSIZE
    assert ids(database, "跨境电商") == ["cross-border"]
    assert_index_is_a_rebuild(database)


def test_the_migration_moves_an_older_index_to_batched_indexing_without_rewriting_it(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    database = open_db(path)
    for key, fields in ENTRIES.items():
        insert(database, key, **fields)
    database.execute("DELETE FROM entries_fts_config WHERE k = 'hashsize'")
    database.execute("DROP TRIGGER entries_fts_delete")
    database.execute(  # migration 004's delete trigger: it left a deleted pending row pending
        f"""CREATE TRIGGER entries_fts_delete AFTER DELETE ON entries WHEN (old.rowid = 0 OR NOT EXISTS
            (SELECT 1 FROM {PENDING_TABLE} WHERE entry_rowid = old.rowid)) BEGIN
            INSERT INTO {FTS_TABLE} ({FTS_TABLE}, rowid, title, content_text, author, categories)
            VALUES ('delete', old.rowid, old.title || '  ', old.content_text || '  ', old.author || '  ', old.categories || '  ');
        END"""
    )
    database = migrate_again(database, path, "007_search_batches")
    assert hashsize(database) == HASHSIZE
    write_batched(database, 100, "INSERT INTO entries (id, title) VALUES ('gone', '删掉的待索引文章')")
    database.execute("DELETE FROM entries WHERE id = 'gone'")
    assert pending(database) == []
    assert ids(database, "跨境电商") == ["cross-border"]
    assert_index_is_a_rebuild(database)
    database.conn.close()
