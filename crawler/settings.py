"""Every knob of the crawl. Scrapy's own settings first, then ours, all prefixed FEEDLOOM_."""

from __future__ import annotations

from scrapy.settings.default_settings import (
    DOWNLOADER_MIDDLEWARES_BASE as _SCRAPY_DOWNLOADER_MIDDLEWARES,
)
from scrapy.settings.default_settings import EXTENSIONS_BASE as _SCRAPY_EXTENSIONS

BOT_NAME = "feedloom"
SPIDER_MODULES = ["crawler.spiders"]
NEWSPIDER_MODULE = "crawler.spiders"

# An honest User-Agent: who we are and where to read about us.
USER_AGENT = "feedloom/0.1 (+https://github.com/feedloom/feedloom; feed aggregator)"
# Polite by default: robots.txt, a few requests per site at a time, a small delay.
ROBOTSTXT_OBEY = True
CONCURRENT_REQUESTS = 32
CONCURRENT_REQUESTS_PER_DOMAIN = 4
DOWNLOAD_DELAY = 0
AUTOTHROTTLE_ENABLED = False
# Feeds are small: a 1 GiB limit and a 3-minute timeout were made for trusted sites.
# The size cap holds on the wire and again after gzip/deflate/br/zstd decompression (HttpCompressionMiddleware).
DOWNLOAD_MAXSIZE = 16 * 1024 * 1024
DOWNLOAD_WARNSIZE = 4 * 1024 * 1024
# A deadline for the whole response, body included: a server dripping one byte a second cannot extend it.
DOWNLOAD_TIMEOUT = 30
# At most 10 redirects; a loop ends as a recorded error ("max redirections reached").
REDIRECT_MAX_TIMES = 10
# Failures are recorded and retried on the feed's own backoff schedule, not hammered now.
RETRY_ENABLED = False
COOKIES_ENABLED = False
# With cookies off, Scrapy's cookie middleware only says "not configured", yet importing it imports
# tldextract and requests: 56 ms and 5 MB on every crawl. The base list drops it (naming it as None in
# DOWNLOADER_MIDDLEWARES would import it too). Set COOKIES_ENABLED and put it back in
# DOWNLOADER_MIDDLEWARES (at 700) to use cookies.
DOWNLOADER_MIDDLEWARES_BASE = {
    k: v for k, v in _SCRAPY_DOWNLOADER_MIDDLEWARES.items() if not k.endswith(".CookiesMiddleware")
}
# Only http and https; file:, data:, s3:, ftp: never reach a feed URL. Scrapy's http(s) handler, with
# room to keep its connections alive (crawler/download.py).
DOWNLOAD_HANDLERS = {
    "file": None, "data": None, "s3": None, "ftp": None,
    "http": "crawler.download.KeepAliveDownloadHandler", "https": "crawler.download.KeepAliveDownloadHandler",
}
# Every status reaches the spider, which records it on the feed.
HTTPERROR_ALLOW_ALL = True
# Responses being parsed at once, by size: more only holds more entries in memory, not more speed.
SCRAPER_SLOT_MAX_ACTIVE_SIZE = 2_000_000
TELNETCONSOLE_ENABLED = False
# Scrapy re-reads a callback's source on every response to warn about `return` in generators: pure cost here.
WARN_ON_GENERATOR_RETURN_VALUE = False
LOG_LEVEL = "INFO"
# No DEBUG record per stored entry unless something will show it (`feedloom crawl -vv`).
LOG_FORMATTER = "crawler.logformatter.FeedLogFormatter"
REQUEST_FINGERPRINTER_IMPLEMENTATION = "2.7"
TWISTED_REACTOR = "twisted.internet.asyncioreactor.AsyncioSelectorReactor"
FEED_EXPORT_ENCODING = "utf-8"

DOWNLOADER_MIDDLEWARES = {
    # Before RobotsTxtMiddleware (100): a refused URL never causes a robots.txt request either.
    "crawler.middlewares.AddressGuardMiddleware": 90,
    # Turns Scrapy's silent cancel of an over-size body into an error that says so.
    "crawler.middlewares.SizeLimitMessageMiddleware": 95,
    "crawler.middlewares.ProxyMiddleware": 100,
    "crawler.middlewares.ConditionalGetMiddleware": 120,
    # After DefaultHeadersMiddleware (400), which would put configured credentials back on a hop.
    "crawler.middlewares.CrossOriginCredentialsMiddleware": 450,
}

# Items of one response go through the pipelines one at a time, in order (the feed's fetch record after its
# entries). Scrapy's default of 100 starts 100 asyncio tasks per response, for pipelines that never wait.
CONCURRENT_ITEMS = 1
# Every entry a feed yields passes through each spider middleware: keep only those that do something
# here. No Referer header on article pages (a reader's feed list is nobody's business); a feed crawl
# has no depth to limit; the meta-copy check is a development aid.
SPIDER_MIDDLEWARES = {
    "scrapy.spidermiddlewares.referer.RefererMiddleware": None,
    "scrapy.spidermiddlewares.depth.DepthMiddleware": None,
    "scrapy.spidermiddlewares.metacopy.MetaCopyDetectionMiddleware": None,
}

ITEM_PIPELINES = {
    "pipelines.stages.MetadataPipeline": 100,
    "pipelines.stages.HtmlPipeline": 200,
    "pipelines.stages.DedupePipeline": 300,
    "pipelines.store.StorePipeline": 400,
}

EXTENSIONS = {
    "crawler.progress.Progress": 500,
}
# Scrapy's RemoteControl extension is off unless configured, yet importing it imports aiohttp: a fifth
# of a second on every crawl. Naming it in EXTENSIONS (even as None) imports it, so the base list drops it.
EXTENSIONS_BASE = {k: v for k, v in _SCRAPY_EXTENSIONS.items() if not k.endswith(".RemoteControl")}

# --- feedloom's own settings -------------------------------------------------

# The database; `--db` and $FEEDLOOM_DB override it.
FEEDLOOM_DB = "data/feeds.db"
# Entries written per transaction (and at most two more batches waiting for the writer thread).
FEEDLOOM_BATCH_SIZE = 200
# Fetch every active feed, not only the due ones (`feedloom crawl --all`).
FEEDLOOM_ALL_FEEDS = False
# Fetch only these feed ids (`feedloom crawl --feed ID`).
FEEDLOOM_FEED_IDS: list[int] = []
# Permit loopback and private addresses (`--allow-private`); tests and the demo need it.
FEEDLOOM_ALLOW_PRIVATE = False
# Host names (exactly as in URLs) that may resolve to internal addresses without --allow-private:
# an intranet feed server; the security tests use "localhost" as their "public" first hop.
# Every other host, including each redirect hop to another name, is still checked.
FEEDLOOM_ALLOWED_HOSTS: list[str] = []
# Send every request through this HTTP proxy (the offline demo serves its sites this way).
FEEDLOOM_PROXY = ""
# Seconds `scrapy crawl feeds` (and a scrapyd job) waits for another crawl of the same database.
FEEDLOOM_LOCK_WAIT = 10.0
# Set by `feedloom crawl`, which takes the database's crawl lock before Scrapy starts.
FEEDLOOM_LOCK_HELD = False
# Article pages fetched per feed in one crawl, at most; the rest are fetched by later crawls.
FEEDLOOM_MAX_PAGES_PER_FEED = 200
# Site recipes for article pages (one TOML file per site); empty means data/sites/.
FEEDLOOM_SITES_DIR = ""
# Default rules for cleaning entry HTML (widgets, bio markers, lazy images).
FEEDLOOM_HTML_RULES = ""
# Worker processes that parse and normalize feeds beside the crawl process: a number, or "auto"
# (one per CPU core but one, at least 1 and at most 4, when 20 or more feeds are due on a machine with
# 1 GiB of memory; none otherwise). 0 does
# everything in the crawl process, which custom item pipelines replacing ours need.
FEEDLOOM_WORKERS = "auto"
# glibc malloc arenas for the crawl process's threads (reactor, store writer, DNS): glibc allows 8 per
# core, and the memory each one holds on to adds up. 0 leaves glibc's default.
FEEDLOOM_MALLOC_ARENAS = 2
# Show a progress line on a terminal.
FEEDLOOM_PROGRESS = True
# Scheduling: bounds of the adaptive check interval, and the failure backoff, in seconds.
FEEDLOOM_MIN_INTERVAL = 15 * 60
FEEDLOOM_MAX_INTERVAL = 24 * 3600
FEEDLOOM_DEFAULT_INTERVAL = 60 * 60
FEEDLOOM_BACKOFF_BASE = 5 * 60
FEEDLOOM_BACKOFF_CAP = 24 * 3600

# Every DNS answer is checked: a name resolving to a private address is refused like the address itself.
TWISTED_DNS_RESOLVER = "crawler.resolver.GuardedResolver"
