"""Seeded generator of a synthetic columnist-feed corpus (RSS 2.0 and Atom 1.0) for the crawl benchmark."""

from __future__ import annotations

import argparse
import json
import random
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

# Bumped whenever the output for a given seed changes, so a cached corpus is regenerated.
GENERATOR_VERSION = 4
MANIFEST = "manifest.json"
FEEDS_DIR = "feeds"

MIN_ITEMS, MAX_ITEMS = 20, 50
MIN_BODY, MAX_BODY = 2048, 8192  # bytes of UTF-8 body HTML
MIN_CJK_CHARS = 700  # well above the 500 characters under which a Chinese body reads as a summary
MIN_WORDS = 250  # and the 120 words under which an English one does
CHINESE_SHARE = 0.30  # of feeds, and so of items, written in Chinese
SHARED_SHARE = 0.10  # of item slots whose article also appears in a second feed
ATOM_SHARE = 0.5

# Everything is dated relative to this instant, never to the clock, so a seed gives the same bytes.
EPOCH = datetime(2024, 6, 1, 8, 0, tzinfo=UTC)
CST = timezone(timedelta(hours=8))

EN_SITES = ("columns.example.org", "growth-notes.example.com", "pm-weekly.example.net", "saas-letters.example.io")
ZH_SITES = ("pm-cn.example.cn", "chanpin.example.com.cn", "yunying.example.cn")
IMAGE_HOSTS = ("img.example-cdn.com", "static.example-img.cn", "pic.example.org")
TRACKING = (
    ("utm_source", ("rss", "feed", "newsletter", "wechat", "weibo", "rsshub")),
    ("utm_medium", ("rss", "email", "social", "referral")),
    ("utm_campaign", ("weekly", "daily-digest", "spring", "launch", "c42")),
    ("utm_content", ("link", "cta", "footer")),
    ("spm", ("a2c4g.11186623", "0.0.0.i1", "5176.28103460")),
    ("from", ("timeline", "singlemessage", "groupmessage")),
    ("fbclid", ("IwAR0x7", "IwAR2kq9", "IwZXh0bgNh")),
    ("gclid", ("Cj0KCQjw", "EAIaIQob")),
)

EN_WORDS = (
    "product", "manager", "user", "growth", "metric", "retention", "funnel", "pricing", "roadmap", "feature",
    "experiment", "cohort", "churn", "onboarding", "interview", "insight", "research", "market", "segment",
    "team", "design", "prototype", "launch", "release", "feedback", "backlog", "priority", "strategy", "vision",
    "platform", "marketplace", "seller", "buyer", "checkout", "conversion", "dashboard", "signal", "habit",
    "loop", "channel", "content", "community", "creator", "subscription", "revenue", "margin", "budget", "quarter",
    "builds", "ships", "measures", "tests", "learns", "explains", "shapes", "reduces", "improves", "questions",
    "quickly", "carefully", "often", "rarely", "simply", "clearly", "early", "late", "together", "again",
    "small", "large", "honest", "useful", "hidden", "obvious", "steady", "fragile", "lean", "noisy",
    "the", "a", "every", "our", "their", "this", "that", "with", "without", "before", "after", "because",
)
ZH_WORDS = (
    "产品经理", "用户", "需求", "增长", "运营", "数据", "分析", "体验", "设计", "迭代", "电商", "平台", "流量",
    "转化率", "策略", "团队", "市场", "内容", "社区", "商业化", "留存", "拉新", "复购", "私域", "直播", "短视频",
    "会员", "定价", "供应链", "商家", "消费者", "场景", "痛点", "闭环", "指标", "漏斗", "实验", "版本", "上线",
    "复盘", "方法论", "框架", "模型", "路径", "价值", "效率", "成本", "品牌", "渠道", "投放", "算法", "推荐",
    "我们", "他们", "这个", "那些", "其实", "因为", "所以", "但是", "如果", "同时", "首先", "最后", "已经",
    "需要", "可以", "应该", "通过", "提升", "降低", "优化", "理解", "思考", "发现", "建立", "验证", "衡量",
)
EN_AUTHORS = ("Ada Park", "Ben Ortiz", "Chloe Nakamura", "Dev Rao", "Elena Fischer", "Farid Haddad", "Grace Liu")
ZH_AUTHORS = ("林晓", "陈一鸣", "王思远", "赵小雨", "刘青", "周明轩", "孙可", "吴悦")
EN_CATEGORIES = ("Product", "Growth", "Design", "Research", "Strategy", "E-commerce", "SaaS", "Analytics")
ZH_CATEGORIES = ("产品设计", "用户研究", "增长", "运营", "电商", "数据分析", "职场", "商业模式")
EN_TITLES = (
    "How {a} teams {v} their {b}: {n} lessons",
    "Why your {a} {v} less than you think",
    "{n} ways to rethink {a} and {b}",
    "The quiet {a} behind every {b}",
    "A field guide to {a} for {b} people",
)
ZH_TITLES = (
    "{a}如何{b}：{n}个实战方法",
    "从{a}到{b}，{c}的{n}点思考",
    "{a}复盘：我们在{b}上踩过的{n}个坑",
    "为什么{a}总是做不好{b}？",
    "一文读懂{a}与{b}",
)


@dataclass(frozen=True)
class Article:
    """One article; when shared it appears, with different tracking parameters, in two feeds."""

    key: int
    chinese: bool
    site: str
    link: str  # canonical, without tracking parameters
    title: str
    author: str
    categories: tuple[str, ...]
    published: datetime
    summary: str
    body: str


@dataclass(frozen=True)
class Corpus:
    """What was generated: paths relative to the corpus root and the counts the benchmark checks against."""

    root: str
    seed: int
    feeds: int
    feed_paths: tuple[str, ...]  # URL paths, e.g. /feeds/007.xml
    items_per_feed: tuple[int, ...]
    items: int  # item slots over all feeds
    articles: int  # distinct articles (distinct canonical links)
    shared_items: int  # item slots whose article is also in another feed
    chinese_items: int
    atom_feeds: int
    bytes: int
    version: int = GENERATOR_VERSION

    @property
    def root_path(self) -> Path:
        return Path(self.root)

    def feed_urls(self, base_url: str) -> list[str]:
        return [base_url.rstrip("/") + path for path in self.feed_paths]


def generate_corpus(root: str | Path, feeds: int = 500, seed: int = 0) -> Corpus:
    """Write `feeds` feed files under ROOT/feeds/ plus ROOT/manifest.json; same seed, same bytes."""
    if feeds < 2:
        raise ValueError("the corpus needs at least two feeds, so some items can be shared")
    root = Path(root)
    rng = random.Random(f"feeds:{seed}")
    width = max(3, len(str(feeds - 1)))
    counts = [rng.randint(MIN_ITEMS, MAX_ITEMS) for _ in range(feeds)]
    chinese_feeds = set(rng.sample(range(feeds), round(feeds * CHINESE_SHARE)))
    atom_feeds = set(rng.sample(range(feeds), round(feeds * ATOM_SHARE)))
    # Each slot starts with an article of its own; shared pairs then point one slot at another's article.
    slots: list[tuple[int, int]] = [(f, i) for f in range(feeds) for i in range(counts[f])]
    owner: list[int] = list(range(len(slots)))  # slot index -> index of the slot whose article it carries
    pairs = _shared_pairs(rng, slots, round(len(slots) * SHARED_SHARE / 2))
    for source, target in pairs:
        owner[target] = source
    shared = {s for pair in pairs for s in pair}
    articles: dict[int, Article] = {}
    feed_dir = root / FEEDS_DIR
    feed_dir.mkdir(parents=True, exist_ok=True)
    paths: list[str] = []
    total_bytes = 0
    chinese_items = 0
    slot = 0
    for f in range(feeds):
        entries: list[tuple[Article, str, str]] = []
        for _ in range(counts[f]):
            key = owner[slot]
            if key not in articles:
                articles[key] = make_article(seed, key, chinese=slots[key][0] in chinese_feeds)
            article = articles[key]
            chinese_items += article.chinese
            entries.append((article, _item_link(seed, article, f), _item_guid(seed, article, f, slot in shared)))
            slot += 1
        entries.sort(key=lambda e: e[0].published, reverse=True)
        name = f"{f:0{width}d}.xml"
        text = (render_atom if f in atom_feeds else render_rss)(f, f in chinese_feeds, entries)
        data = text.encode("utf-8")
        (feed_dir / name).write_bytes(data)
        total_bytes += len(data)
        paths.append(f"/{FEEDS_DIR}/{name}")
    corpus = Corpus(
        root=str(root),
        seed=seed,
        feeds=feeds,
        feed_paths=tuple(paths),
        items_per_feed=tuple(counts),
        items=len(slots),
        articles=len(set(owner)),
        shared_items=len(shared),
        chinese_items=chinese_items,
        atom_feeds=len(atom_feeds),
        bytes=total_bytes,
    )
    (root / MANIFEST).write_text(json.dumps(asdict(corpus), indent=1), "utf-8")
    return corpus


def load_corpus(root: str | Path) -> Corpus | None:
    """The corpus described by ROOT/manifest.json, or None when there is none or it is stale."""
    path = Path(root) / MANIFEST
    try:
        data = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return None
    if data.get("version") != GENERATOR_VERSION:
        return None
    data["feed_paths"] = tuple(data["feed_paths"])
    data["items_per_feed"] = tuple(data["items_per_feed"])
    return Corpus(**data)


def ensure_corpus(root: str | Path, feeds: int = 500, seed: int = 0) -> Corpus:
    """Reuse the corpus at ROOT when it was generated with the same size, seed and generator; else write it."""
    found = load_corpus(root)
    if (
        found is not None
        and (found.feeds, found.seed) == (feeds, seed)
        and all((Path(root) / p.lstrip("/")).is_file() for p in found.feed_paths)
    ):
        return found
    return generate_corpus(root, feeds, seed)


def _shared_pairs(rng: random.Random, slots: Sequence[tuple[int, int]], wanted: int) -> list[tuple[int, int]]:
    """`wanted` disjoint (source, target) slot pairs, each from two different feeds."""
    order = list(range(len(slots)))
    rng.shuffle(order)
    pairs: list[tuple[int, int]] = []
    i = 0
    while len(pairs) < wanted and i + 1 < len(order):
        a, b = order[i], order[i + 1]
        if slots[a][0] != slots[b][0]:
            pairs.append((a, b))
            i += 2
        else:
            i += 1
    return pairs


def make_article(seed: int, key: int, *, chinese: bool) -> Article:
    """One article, drawn from its own random stream so it does not depend on generation order."""
    rng = random.Random(f"article:{seed}:{key}")
    site = rng.choice(ZH_SITES if chinese else EN_SITES)
    section = rng.choice(("p", "posts", "article", "columns"))
    link = f"https://{site}/{section}/{100000 + key}.html"
    if chinese:
        title = rng.choice(ZH_TITLES).format(
            a=rng.choice(ZH_WORDS[:52]), b=rng.choice(ZH_WORDS[:52]), c=rng.choice(ZH_WORDS[:52]), n=rng.randint(3, 12)
        )
        author = rng.choice(ZH_AUTHORS)
        categories = tuple(rng.sample(ZH_CATEGORIES, rng.randint(1, 3)))
    else:
        title = rng.choice(EN_TITLES).format(
            a=rng.choice(EN_WORDS[:50]), b=rng.choice(EN_WORDS[:50]), v=rng.choice(EN_WORDS[50:60]), n=rng.randint(3, 12)
        )
        author = rng.choice(EN_AUTHORS)
        categories = tuple(rng.sample(EN_CATEGORIES, rng.randint(1, 3)))
    published = EPOCH - timedelta(minutes=rng.randint(0, 365 * 24 * 60))
    body = _body(rng, chinese, site, rng.randint(MIN_BODY, MAX_BODY))
    summary = _sentence(rng, chinese) + _sentence(rng, chinese)
    return Article(key, chinese, site, link, title, author, categories, published, summary, body)


def _sentence(rng: random.Random, chinese: bool) -> str:
    if chinese:
        words = [rng.choice(ZH_WORDS) for _ in range(rng.randint(5, 12))]
        if len(words) > 6:
            words.insert(rng.randint(3, len(words) - 2), "，")
        return "".join(words) + "。"
    words = [rng.choice(EN_WORDS) for _ in range(rng.randint(8, 18))]
    return " ".join(words).capitalize() + ". "


def _paragraph_text(rng: random.Random, chinese: bool, sentences: int) -> str:
    return "".join(_sentence(rng, chinese) for _ in range(sentences)).strip()


def _tracked(rng: random.Random, url: str, count: int) -> str:
    params = rng.sample(TRACKING, count)
    query = "&".join(f"{name}={rng.choice(values)}" for name, values in params)
    return f"{url}{'&' if '?' in url else '?'}{query}" if query else url


def _image_url(rng: random.Random) -> str:
    host = rng.choice(IMAGE_HOSTS)
    return f"https://{host}/uploads/2024/{rng.randint(1, 12):02d}/{rng.getrandbits(48):012x}.{rng.choice(('jpg', 'png', 'webp'))}"


# A 1x1 transparent GIF, the usual lazy-loading placeholder.
_PLACEHOLDER = "data:image/gif;base64,R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7"


def _block(rng: random.Random, chinese: bool, site: str) -> str:
    """One piece of body HTML: a paragraph with links, an image, a lazy image, a list or a quote."""
    roll = rng.random()
    if roll < 0.45:
        text = escape(_paragraph_text(rng, chinese, rng.randint(2, 4)))
        if rng.random() < 0.6:
            href = _tracked(rng, f"https://{site}/p/{rng.randint(1000, 99999)}.html", rng.randint(1, 3))
            anchor = escape(_sentence(rng, chinese).strip(" 。."))[:40]
            # Chinese has no spaces: cut anywhere; English at a word boundary.
            cut = len(text) // 2 if chinese else text.rfind(" ", 0, len(text) // 2) + 1
            text = f'{text[:cut]}<a href={quoteattr(href)} target="_blank">{anchor}</a>{text[cut:]}'
        if rng.random() < 0.3:
            text = f"<strong>{escape(rng.choice(ZH_WORDS if chinese else EN_WORDS))}</strong> " + text
        return f"<p>{text}</p>"
    if roll < 0.55:
        return f'<p><img src="{_image_url(rng)}" alt="{escape(rng.choice(ZH_WORDS if chinese else EN_WORDS))}" width="800" height="450"></p>'
    if roll < 0.70:
        lazy = _image_url(rng)
        return (
            f'<figure><img class="lazyload" src="{_PLACEHOLDER}" data-src="{lazy}" data-original="{lazy}">'
            f"<figcaption>{escape(_sentence(rng, chinese).strip())}</figcaption></figure>"
        )
    if roll < 0.82:
        items = "".join(f"<li>{escape(_sentence(rng, chinese).strip())}</li>" for _ in range(rng.randint(2, 5)))
        return f"<ul>{items}</ul>"
    if roll < 0.90:
        return f"<blockquote><p>{escape(_paragraph_text(rng, chinese, 2))}</p></blockquote>"
    return f"<h3>{escape(_sentence(rng, chinese).strip(' 。.'))[:60]}</h3>"


def _body(rng: random.Random, chinese: bool, site: str, target: int) -> str:
    parts = [f"<p>{escape(_paragraph_text(rng, chinese, 2))}</p>"]
    size = len(parts[0].encode("utf-8"))
    units = _text_units(parts[0], chinese)
    least = MIN_CJK_CHARS if chinese else MIN_WORDS
    # A full article, not a summary: a body with many images and lists, or in Chinese (3 bytes a
    # character), is grown until its text is long enough that no crawler takes it for a summary.
    while size < target or units < least:
        if rng.random() < 0.18:
            part = f"<h2>{escape(_sentence(rng, chinese).strip(' 。.'))[:60]}</h2>"
        else:
            part = _block(rng, chinese, site)
        grown = size + 1 + len(part.encode("utf-8"))  # the "\n" separator counts too
        if grown > MAX_BODY:
            break
        parts.append(part)
        size = grown
        units += _text_units(part, chinese)
    return "\n".join(parts)


_TAG = re.compile(r"<[^>]*>")


def _text_units(html: str, chinese: bool) -> int:
    """Characters of Chinese text, or words of English text, outside the tags."""
    text = _TAG.sub(" ", html)
    if chinese:
        return sum(1 for c in text if "\u4e00" <= c <= "\u9fff")
    return len(text.split())


def _item_link(seed: int, article: Article, feed: int) -> str:
    """The article's link as this feed gives it: often with tracking parameters that differ per feed."""
    rng = random.Random(f"link:{seed}:{article.key}:{feed}")
    return _tracked(rng, article.link, rng.choice((0, 1, 2, 2, 3)))


def _item_guid(seed: int, article: Article, feed: int, shared: bool) -> str:
    # A feed carrying another site's article gives it a guid of its own: only the link says it is the same.
    if shared and random.Random(f"guid:{seed}:{article.key}:{feed}").random() < 0.5:
        return f"tag:aggregator.example,2024:feed{feed}:{article.key}"
    return article.link


def _feed_title(feed: int, chinese: bool) -> str:
    return f"专栏精选 · 第{feed}号" if chinese else f"Columnist digest #{feed}"


def render_rss(feed: int, chinese: bool, entries: Sequence[tuple[Article, str, str]]) -> str:
    site = (ZH_SITES if chinese else EN_SITES)[feed % 3]
    built = max((a.published for a, _, _ in entries), default=EPOCH)
    tz = CST if chinese else UTC
    out = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        (
            '<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/"'
            ' xmlns:dc="http://purl.org/dc/elements/1.1/">'
        ),
        "<channel>",
        f"<title>{escape(_feed_title(feed, chinese))}</title>",
        f"<link>https://{site}/</link>",
        f"<description>{'产品与运营专栏文章' if chinese else 'Essays on product, growth and design'}</description>",
        f"<language>{'zh-cn' if chinese else 'en'}</language>",
        f"<lastBuildDate>{format_datetime(built.astimezone(tz))}</lastBuildDate>",
        "<generator>feedloom-bench</generator>",
    ]
    for article, link, guid in entries:
        permalink = "true" if guid == article.link else "false"
        cats = "".join(f"<category>{escape(c)}</category>" for c in article.categories)
        out.append(
            "<item>"
            f"<title>{escape(article.title)}</title>"
            f"<link>{escape(link)}</link>"
            f'<guid isPermaLink="{permalink}">{escape(guid)}</guid>'
            f"<pubDate>{format_datetime(article.published.astimezone(tz))}</pubDate>"
            f"<dc:creator>{escape(article.author)}</dc:creator>{cats}"
            f"<description>{escape(article.summary)}</description>"
            f"<content:encoded><![CDATA[{article.body}]]></content:encoded>"
            "</item>"
        )
    out.append("</channel></rss>\n")
    return "\n".join(out)


def render_atom(feed: int, chinese: bool, entries: Sequence[tuple[Article, str, str]]) -> str:
    site = (ZH_SITES if chinese else EN_SITES)[feed % 3]
    updated = max((a.published for a, _, _ in entries), default=EPOCH)
    tz = CST if chinese else UTC
    out = [
        '<?xml version="1.0" encoding="utf-8"?>',
        f'<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="{"zh-CN" if chinese else "en"}">',
        f"<id>tag:{site},2024:feed:{feed}</id>",
        f"<title>{escape(_feed_title(feed, chinese))}</title>",
        f"<subtitle>{'产品与运营专栏文章' if chinese else 'Essays on product, growth and design'}</subtitle>",
        f'<link rel="alternate" type="text/html" href="https://{site}/"/>',
        f"<updated>{updated.astimezone(tz).isoformat()}</updated>",
        "<generator>feedloom-bench</generator>",
    ]
    for article, link, guid in entries:
        cats = "".join(f"<category term={quoteattr(c)}/>" for c in article.categories)
        stamp = article.published.astimezone(tz).isoformat()
        out.append(
            "<entry>"
            f"<id>{escape(guid)}</id>"
            f'<title type="text">{escape(article.title)}</title>'
            f'<link rel="alternate" type="text/html" href={quoteattr(link)}/>'
            f"<published>{stamp}</published><updated>{stamp}</updated>"
            f"<author><name>{escape(article.author)}</name></author>{cats}"
            f'<summary type="text">{escape(article.summary)}</summary>'
            f'<content type="html">{escape(article.body)}</content>'
            "</entry>"
        )
    out.append("</feed>\n")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    """Write a corpus by hand: python -m bench.generate OUT [--feeds N] [--seed S]."""
    parser = argparse.ArgumentParser(prog="python -m bench.generate", description=main.__doc__)
    parser.add_argument("out", type=Path, help="folder to write feeds/ and manifest.json into")
    parser.add_argument("--feeds", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    corpus = generate_corpus(args.out, args.feeds, args.seed)
    print(
        f"{corpus.feeds} feeds ({corpus.atom_feeds} Atom), {corpus.items} items, {corpus.articles} distinct articles, "
        f"{corpus.shared_items} shared items, {corpus.chinese_items} Chinese items, {corpus.bytes / 1e6:.1f} MB"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
