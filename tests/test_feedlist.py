"""Feed lists: OPML and TOML, told apart by content."""

from __future__ import annotations

import pytest

from crawler.feedlist import FeedListError, FeedSpec, load_feed_list

OPML = """<?xml version="1.0" encoding="UTF-8"?>
<opml version="2.0"><head><title>订阅</title></head><body>
  <outline text="产品">
    <outline type="rss" text="人人都是产品经理" xmlUrl="https://www.woshipm.com/feed" category="中文"/>
  </outline>
  <outline type="rss" title="Blog" xmlUrl="https://blog.example.org/atom.xml"/>
</body></opml>"""

TOML = """
[[feeds]]
url = "https://www.woshipm.com/feed"
name = "人人都是产品经理"
categories = ["产品"]

[[feeds]]
url = "https://rsshub.app/woshipm/popular/daily"
"""


def test_opml(tmp_path):
    path = tmp_path / "list.opml"
    path.write_text(OPML, encoding="utf-8")
    assert load_feed_list(path) == [
        FeedSpec("https://www.woshipm.com/feed", "人人都是产品经理", ("产品", "中文")),
        FeedSpec("https://blog.example.org/atom.xml", "Blog", ()),
    ]


def test_toml(tmp_path):
    path = tmp_path / "feeds.txt"  # told apart by content, not by name
    path.write_text(TOML, encoding="utf-8")
    specs = load_feed_list(path)
    assert specs[0] == FeedSpec("https://www.woshipm.com/feed", "人人都是产品经理", ("产品",))
    assert specs[1].name is None


@pytest.mark.parametrize(
    "content, message",
    [
        ("not = [toml", "neither OPML nor a TOML feed list"),
        ("[[feeds]]\nname = 'x'\n", "has no url"),
        ("<html><body></body></html>", "not an OPML document"),
        ("title = 'x'\n", "needs [[feeds]]"),
    ],
)
def test_bad_lists_name_the_file(tmp_path, content, message):
    path = tmp_path / "bad.list"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(FeedListError) as err:
        load_feed_list(path)
    assert "bad.list" in str(err.value) and message in str(err.value)


def test_shipped_feed_list_loads():
    specs = load_feed_list("data/feeds.toml")
    urls = [s.url for s in specs]
    assert any("woshipm.com" in u for u in urls)
    assert any("rsshub" in u and "woshipm" in u for u in urls)


def test_toml_timezone_and_full_content(tmp_path):
    path = tmp_path / "feeds.toml"
    path.write_text('[[feeds]]\nurl = "https://e.cn/feed"\ntimezone = "Asia/Shanghai"\nfull_content = false\n', encoding="utf-8")
    (spec,) = load_feed_list(path)
    assert spec.timezone == "Asia/Shanghai" and spec.full_content is False
    path.write_text('[[feeds]]\nurl = "https://e.cn/feed"\ntimezone = "Mars/Olympus"\n', encoding="utf-8")
    with pytest.raises(FeedListError, match="unknown timezone"):
        load_feed_list(path)
