"""Pure normalizers for an entry's metadata: dates, URLs, titles, authors, categories, language and length."""

from __future__ import annotations

import html
import ipaddress
import math
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from functools import cache, lru_cache
from types import MappingProxyType
from urllib.parse import quote, unquote_plus, urljoin, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil import parser as _dateutil_parser

from crawler.items import Entry, FeedContext, RawEntry

__all__ = [
    "MAX_FUTURE",
    "TRACKING_PARAMS",
    "TRACKING_PARAM_PREFIXES",
    "ZONE_ABBREVIATIONS",
    "author_from_channel_title",
    "count_words",
    "default_timezone",
    "detect_language",
    "normalize_categories",
    "normalize_date",
    "normalize_metadata",
    "normalize_title",
    "normalize_url",
    "reading_minutes",
    "split_author",
]

# ---------------------------------------------------------------------------
# Dates
# ---------------------------------------------------------------------------
#
# Decisions (a date is right or it is empty, never wrong):
# * Output is UTC `YYYY-MM-DDTHH:MM:SSZ`; fractions of a second are dropped.
# * A value without a zone is wall time in `default_tz` (UTC when None); a
#   default_tz we cannot resolve makes such values None rather than guessed.
# * Zone abbreviations come from ZONE_ABBREVIATIONS only; ambiguous ones
#   (IST, AST, ...) and unknown ones make the date None. `CST` is China
#   Standard Time (+08:00) when default_tz is +08:00 at that moment (a .cn
#   host or a zh feed), else US Central Standard Time (-06:00) as RFC 822 says.
# * `GMT+8` / `UTC+08:00` mean eight hours east (what people write), not the
#   POSIX inverse that dateutil applies.
# * The weekday of an RFC 822 date is ignored when it disagrees: feeds get it
#   wrong far more often than the day number.
# * Numeric d/m/y dates are read only when unambiguous (a part > 12, or
#   dd.mm.yyyy); `01/02/2022` is None.
# * Epoch numbers: seconds below 1e11, milliseconds below 1e14, then micro-
#   and nanoseconds. An 8-digit string is YYYYMMDD.
# * Relative forms ("3小时前", "2 days ago", "昨天 10:00") count back from `now`;
#   months and years ago are too vague and give None. A day word without a
#   time ("昨天", "yesterday") is `now` minus whole days.
# * Rejected: before or at the epoch itself (1970-01-01T00:00:00Z is the
#   classic "unset" value), more than MAX_FUTURE after `now`, impossible
#   calendar dates, year or year-month only, anything unparseable.
# * dateutil is the last resort, only for ASCII text naming a month and
#   holding a 4-digit year, and only when it fills no part of the date from
#   its default (checked by parsing against two different defaults).

MAX_FUTURE = timedelta(days=2)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MAX_EPOCH_SECONDS = 253_402_300_799  # 9999-12-31T23:59:59Z
_MAX_DATE_CHARS = 120

# Minutes east of UTC. CST is resolved by context (see above) and so is not here.
ZONE_ABBREVIATIONS: Mapping[str, int] = MappingProxyType(
    {
        "UT": 0, "UTC": 0, "GMT": 0, "Z": 0, "WET": 0, "WEST": 60, "BST": 60,
        "CET": 60, "CEST": 120, "MET": 60, "MEST": 120, "EET": 120, "EEST": 180, "MSK": 180,
        "EST": -300, "EDT": -240, "CDT": -300, "MST": -420, "MDT": -360, "PST": -480, "PDT": -420,
        "AKST": -540, "AKDT": -480, "HST": -600,
        "JST": 540, "KST": 540, "HKT": 480, "SGT": 480, "PHT": 480, "BJT": 480, "AWST": 480,
        "WIB": 420, "ICT": 420, "ACST": 570, "ACDT": 630, "AEST": 600, "AEDT": 660,
        "NZST": 720, "NZDT": 780,
        "中国标准时间": 480, "中國標準時間": 480, "北京时间": 480, "北京時間": 480, "台北標準時間": 480,
    }
)  # fmt: skip
_CST_CHINA = 480
_CST_US = -360

_MONTHS = ("january", "february", "march", "april", "may", "june", "july",
           "august", "september", "october", "november", "december")  # fmt: skip
_WEEKDAY_PREFIXES = frozenset(
    day[:n]
    for day in ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
    for n in range(2, len(day) + 1)
)

_OFFSET = r"[+-]\d{1,2}(?::?\d{2})?"
_ZONE = rf"(?P<zone>[Zz]|[+-]\d{{2}}(?::?\d{{2}})?|(?:GMT|UTC|UT)(?:\s*{_OFFSET})?)"
_ZONE_NAME = r"(?P<name>[A-Za-z]{1,5})"
_CLOCK = (
    r"(?P<H>\d{1,2}):(?P<M>\d{2})(?::(?P<S>\d{2})(?:[.,]\d+)?)?"
    r"(?:\s*(?P<ampm>[AaPp]\.?[Mm]\.?))?"
)
# Chinese clock: 10:00, 10:00:00, 10时30分, 10点, 10点半, with 上午/下午 before it.
_CN_CLOCK = (
    r"(?:(?P<cnampm>上午|下午|中午|晚上|凌晨|早上)\s*)?"
    r"(?P<H>\d{1,2})\s*(?:[:：]\s*(?P<M>\d{2})(?:\s*[:：]\s*(?P<S>\d{2})(?:[.,]\d+)?)?"
    r"|[时時点點]\s*(?:(?P<half>半)|(?P<M2>\d{1,2})\s*分(?:\s*(?P<S2>\d{1,2})\s*秒)?)?)"
    r"(?:\s*(?P<ampm>[AaPp]\.?[Mm]\.?))?"
)

_CANONICAL_RE = re.compile(r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})Z")
# The two forms most feeds use, read without the general parsers' tries (same results, tested):
# ISO-8601 with seconds and a zone, and RFC 822 with an English weekday and a numeric or GMT zone.
_ISO_ZONED_RE = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:Z|([+-])(0\d|1[0-4]):([0-5]\d))"
)
_RFC822_COMMON_RE = re.compile(
    r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), (\d{1,2}) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) (\d{4})"
    r" (\d{2}):(\d{2}):(\d{2}) (?:GMT|([+-])(0\d|1[0-4])([0-5]\d))"
)
_MONTH_ABBREVIATIONS: Mapping[str, int] = MappingProxyType({name[:3].title(): n for n, name in enumerate(_MONTHS, start=1)})
_DIGITS_RE = re.compile(r"\d+(?:\.\d+)?")
# a trailing "(CST)", "(中国标准时间)" or RFC 9557 "[Asia/Shanghai]"
_COMMENT_RE = re.compile(r"\s*(?:[(（]([^()（）]*)[)）]|\[([A-Za-z_]+(?:/[A-Za-z0-9_+-]+)+)\])$")
_ISO_RE = re.compile(
    r"(?:(?P<wd>[A-Za-z]{2,9})\.?,?\s*)?"
    r"(?P<y>\d{4})(?P<sep>[-/.])(?P<mo>\d{1,2})(?P=sep)(?P<d>\d{1,2})"
    rf"(?:(?:[Tt]\s*|\s+){_CLOCK})?"
    rf"(?:\s*{_ZONE})?(?:\s*{_ZONE_NAME})?"
)
_RFC822_RE = re.compile(
    r"(?:(?P<wd>[A-Za-z]{2,9})\.?,?\s*)?"
    r"(?P<d>\d{1,2})(?:st|nd|rd|th)?[\s-]+(?P<mon>[A-Za-z]{3,9})\.?,?[\s-]+(?P<y>\d{4}|\d{2})"
    rf"(?:,?\s+(?:at\s+)?{_CLOCK})?"
    rf"(?:\s*{_ZONE})?(?:\s*{_ZONE_NAME})?"
)
# "January 28, 2022 10:00 AM", "Fri Jan 28 2022 10:00:00 GMT+0800" (JavaScript)
_MDY_RE = re.compile(
    r"(?:(?P<wd>[A-Za-z]{2,9})\.?,?\s+)?"
    r"(?P<mon>[A-Za-z]{3,9})\.?\s+(?P<d>\d{1,2})(?:st|nd|rd|th)?,?\s+(?P<y>\d{4})"
    rf"(?:,?\s+(?:at\s+)?{_CLOCK})?"
    rf"(?:\s*{_ZONE})?(?:\s*{_ZONE_NAME})?"
)
# "Fri Jan 28 10:00:00 CST 2022": C asctime, Java Date.toString()
_ASCTIME_RE = re.compile(
    r"(?:(?P<wd>[A-Za-z]{2,9})\.?,?\s+)?"
    rf"(?P<mon>[A-Za-z]{{3,9}})\.?\s+(?P<d>\d{{1,2}}),?\s+{_CLOCK}"
    rf"(?:\s*{_ZONE})?(?:\s*{_ZONE_NAME})?\s+(?P<y>\d{{4}})"
)
_CN_DATE_RE = re.compile(
    r"(?P<y>\d{4})\s*年\s*(?P<mo>\d{1,2})\s*月\s*(?P<d>\d{1,2})\s*[日号號]?"
    r"(?:\s*[(（]?(?:星期|周|週|礼拜|禮拜)[一二三四五六日天][)）]?)?"
    rf"(?:\s*{_CN_CLOCK})?(?:\s*{_ZONE})?"
)
_CN_MONTH_DAY_RE = re.compile(
    rf"(?P<mo>\d{{1,2}})\s*月\s*(?P<d>\d{{1,2}})\s*[日号號]?(?:\s*{_CN_CLOCK})?"
)
_DASH_MONTH_DAY_RE = re.compile(rf"(?P<mo>\d{{1,2}})-(?P<d>\d{{1,2}})\s+{_CN_CLOCK}")
_NUMERIC_DMY_RE = re.compile(
    r"(?P<a>\d{1,2})(?P<sep>[-/.])(?P<b>\d{1,2})(?P=sep)(?P<y>\d{4})"
    rf"(?:,?\s+{_CLOCK})?(?:\s*{_ZONE})?(?:\s*{_ZONE_NAME})?"
)
_JUST_NOW_RE = re.compile(
    r"刚刚|刚才|剛剛|剛才|just now|right now|now|moments? ago|a moment ago|(?:a )?few seconds ago|seconds ago",
    re.IGNORECASE,
)
_CN_NUMBER = r"\d{1,4}|[零一二两兩三四五六七八九十]{1,3}|半"
_AGO_CN_RE = re.compile(
    rf"(?P<n>{_CN_NUMBER})\s*(?:个|個)?\s*(?P<unit>秒钟|秒鐘|秒|分钟|分鐘|分|小时|小時|钟头|鐘頭|天|日|周|週|星期|礼拜|禮拜)\s*(?:之)?前"
)
_AGO_EN_RE = re.compile(
    r"(?:about\s+|around\s+|almost\s+|over\s+|nearly\s+)?"
    r"(?P<n>\d{1,4}|an?|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve)\s*"
    r"(?P<unit>s|secs?|seconds?|m|mins?|minutes?|h|hrs?|hours?|d|days?|w|wks?|weeks?)\s+ago",
    re.IGNORECASE,
)
_DAY_WORD_RE = re.compile(
    rf"(?P<day>今天|今日|昨天|昨日|前天|today|yesterday)(?:,?\s*(?:at\s+)?{_CN_CLOCK})?",
    re.IGNORECASE,
)
_MONTH_WORD_RE = re.compile(
    r"\b(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\b\.?", re.IGNORECASE
)
_YEAR4_RE = re.compile(r"(?<!\d)\d{4}(?!\d)")
_GMT_OFFSET_RE = re.compile(r"\b(?:GMT|UTC|UT)\s*(?=[+-]\d)")
_OFFSET_TOKEN_RE = re.compile(r"(?:GMT|UTC|UT)?\s*([+-])(\d{1,2})(?::?(\d{2}))?")

_EN_NUMBERS: Mapping[str, int] = MappingProxyType(
    {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
     "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12}
)  # fmt: skip
_CN_DIGITS: Mapping[str, int] = MappingProxyType(
    {"零": 0, "一": 1, "二": 2, "两": 2, "兩": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
)
_UNIT_SECONDS: Mapping[str, int] = MappingProxyType(
    {"秒": 1, "分": 60, "小": 3600, "时": 3600, "時": 3600, "钟": 3600, "鐘": 3600,
     "天": 86400, "日": 86400, "周": 604800, "週": 604800, "星": 604800, "礼": 604800, "禮": 604800,
     "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
)  # fmt: skip
_DAYS_BACK: Mapping[str, int] = MappingProxyType(
    {"今天": 0, "今日": 0, "today": 0, "昨天": 1, "昨日": 1, "yesterday": 1, "前天": 2}
)

DateParser = Callable[[str, tzinfo | None, datetime], datetime | None]


def normalize_date(
    value: str | float | None,
    *,
    default_tz: str | None = None,
    now: str | datetime | None = None,
) -> str | None:
    """A date as UTC `YYYY-MM-DDTHH:MM:SSZ`, or None when it cannot be read with certainty.

    `default_tz` (IANA name or "+08:00") places values that carry no zone;
    `now` (ISO-8601 or datetime, default: the current time) anchors relative
    forms and the far-future limit.
    """
    if value is None or isinstance(value, bool):
        return None
    now_utc = _now_utc(now)
    moment: datetime | None
    if isinstance(value, (int, float)):
        moment = _from_epoch(value)
    elif isinstance(value, str):
        moment = _parse_date_text(value, default_tz, now_utc)
    else:
        return None
    if moment is None:
        return None
    moment = moment.astimezone(UTC)
    if moment <= _EPOCH or moment > now_utc + MAX_FUTURE:
        return None
    return moment.replace(tzinfo=None).isoformat(timespec="seconds") + "Z"


def default_timezone(feed_url: str | None, language: str | None) -> str | None:
    """The zone for a feed's zone-less dates: +08:00 for Chinese hosts or languages, else None (UTC)."""
    lang = (language or "").strip().lower()
    if lang.startswith("zh"):
        return "+08:00"
    return _host_timezone(feed_url) if feed_url else None


@lru_cache(maxsize=256)
def _host_timezone(feed_url: str) -> str | None:
    # every entry of a feed asks about the same URL
    try:
        host = (urlsplit(feed_url.strip()).hostname or "").rstrip(".")
    except ValueError:
        return None
    # China, Hong Kong, Macau and Taiwan all keep +08:00 without DST.
    if host.endswith((".cn", ".hk", ".mo", ".tw", ".中国", ".中國", ".xn--fiqs8s", ".xn--fiqz9s")):
        return "+08:00"
    return None


def _now_utc(now: str | datetime | None) -> datetime:
    if isinstance(now, datetime):
        return now.replace(tzinfo=UTC) if now.tzinfo is None else now.astimezone(UTC)
    if now is None or not now.strip():
        return datetime.now(UTC)
    return _parse_now(now.strip())


@lru_cache(maxsize=64)
def _parse_now(text: str) -> datetime:
    moment = datetime.fromisoformat(text)  # a bad `now` is a caller's bug: let ValueError through
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


@cache
def _fixed_tz(minutes: int) -> timezone:
    return UTC if minutes == 0 else timezone(timedelta(minutes=minutes))


@lru_cache(maxsize=256)
def _resolve_tz(spec: str | None) -> tzinfo | None:
    """The tzinfo a default_tz names (UTC for None), or None when it names nothing we know."""
    text = (spec or "").strip()
    if not text or text.upper() in ("UTC", "GMT", "Z", "UT"):
        return UTC
    try:
        m = _OFFSET_TOKEN_RE.fullmatch(text)
        return _offset_tz(m) if m else ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return None


def _offset_tz(m: re.Match[str]) -> tzinfo:
    hours, minutes = int(m.group(2)), int(m.group(3) or 0)
    if hours > 14 or minutes > 59:
        raise ValueError("offset out of range")
    total = hours * 60 + minutes
    return _fixed_tz(-total if m.group(1) == "-" else total)


def _zone_by_name(name: str, naive: datetime, deftz: tzinfo | None) -> tzinfo | None:
    """A tzinfo for an abbreviation, or None when we do not know it."""
    key = name.strip().upper()
    if key == "CST":
        china = deftz is not None and deftz.utcoffset(naive) == timedelta(minutes=_CST_CHINA)
        return _fixed_tz(_CST_CHINA if china else _CST_US)
    minutes = ZONE_ABBREVIATIONS.get(key)
    return None if minutes is None else _fixed_tz(minutes)


def _apply_zone(naive: datetime, m: re.Match[str], deftz: tzinfo | None) -> datetime:
    """Attach the zone the match carries; raise ValueError for an unknown one; stay naive without one."""
    groups = m.groupdict()
    zone = groups.get("zone")
    if zone:
        if zone in ("Z", "z"):
            return naive.replace(tzinfo=UTC)
        om = _OFFSET_TOKEN_RE.fullmatch(zone)
        return naive.replace(tzinfo=_offset_tz(om) if om else UTC)
    name = groups.get("name")
    if name:
        tz = _zone_by_name(name, naive, deftz)
        if tz is None:
            raise ValueError(f"unknown time zone {name!r}")
        return naive.replace(tzinfo=tz)
    return naive


def _clock(m: re.Match[str]) -> tuple[int, int, int]:
    """Hour, minute, second from a _CLOCK / _CN_CLOCK match (0:00:00 when it has none)."""
    g = m.groupdict()
    if g.get("H") is None:
        return 0, 0, 0
    hour = int(g["H"])
    minute = int(g.get("M") or g.get("M2") or (30 if g.get("half") else 0))
    second = int(g.get("S") or g.get("S2") or 0)
    cn, en = g.get("cnampm"), g.get("ampm")
    if en:
        if not 1 <= hour <= 12:
            raise ValueError("hour out of range for am/pm")
        hour = hour % 12 + (12 if en[0] in "pP" else 0)
    elif cn in ("下午", "晚上"):
        hour = hour + 12 if hour < 12 else hour
    elif cn == "中午":
        hour = hour + 12 if hour < 11 else hour
    elif cn in ("上午", "早上", "凌晨"):
        if hour > 12:
            raise ValueError("hour out of range for 上午")
        hour = 0 if hour == 12 else hour
    return hour, minute, min(second, 59)  # a leap second becomes :59


def _ymd(y: int, mo: int, d: int, clock: tuple[int, int, int]) -> datetime:
    return datetime(y, mo, d, *clock)  # ValueError for Feb 30, month 13, hour 24


def _check_weekday(token: str | None) -> None:
    if token and token.lower() not in _WEEKDAY_PREFIXES:
        raise ValueError(f"not a weekday: {token!r}")


def _month_number(token: str) -> int:
    low = token.lower()
    for number, full in enumerate(_MONTHS, start=1):
        if (len(low) >= 3 and full.startswith(low)) or (low == "sept" and number == 9):
            return number
    raise ValueError(f"not a month: {token!r}")


def _from_epoch(value: float) -> datetime | None:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value <= 0:
        return None
    seconds: int | float = value
    for divisor in (1_000, 1_000_000, 1_000_000_000):
        if seconds < 1e11:
            break
        # integer division keeps large ints exact
        seconds = value // divisor if isinstance(value, int) else value / divisor
    whole = math.floor(seconds)
    if whole > _MAX_EPOCH_SECONDS:
        return None
    return _EPOCH + timedelta(seconds=whole)


def _parse_date_text(text: str, default_tz: str | None, now: datetime) -> datetime | None:
    s = " ".join(text.split())
    if not s or len(s) > _MAX_DATE_CHARS:
        return None
    m = _CANONICAL_RE.fullmatch(s)
    if m:  # our own output: the fast path that makes normalize_date idempotent and cheap
        try:
            y, mo, d, hh, mi, ss = (int(g) for g in m.groups())
            return datetime(y, mo, d, hh, mi, ss, tzinfo=UTC)
        except ValueError:
            pass  # a leap second or Feb 30, never our own output: read as any zoned ISO date
    m = _ISO_ZONED_RE.fullmatch(s)
    if m:
        try:
            return datetime.fromisoformat(s)  # in C; a leap second or Feb 30 raises, and _common_date decides
        except ValueError:
            return _common_date(m)
    m = _RFC822_COMMON_RE.fullmatch(s)
    if m:
        return _common_date(m)
    deftz = _resolve_tz(default_tz)
    comment = None
    cm = _COMMENT_RE.search(s) if s[-1] in ")）]" else None
    if cm:
        comment = (cm.group(1) or cm.group(2) or "").strip()
        s = s[: cm.start()].strip()
        if not s:
            return None
    try:
        moment: datetime | None = None
        for parse in _DATE_PARSERS:
            moment = parse(s, deftz, now)
            if moment is not None:
                break
        if moment is None:
            return None
        if moment.tzinfo is None and comment:
            zone = _zone_by_name(comment, moment, deftz) or (_resolve_tz(comment) if "/" in comment else None)
            if zone is not None:
                moment = moment.replace(tzinfo=zone)
            elif cm is not None and cm.group(2):
                return None  # "[Mars/Olympus]": a zone was named and we cannot honour it
        if moment.tzinfo is None:
            if deftz is None:
                return None
            moment = moment.replace(tzinfo=deftz)
        return moment
    except (ValueError, OverflowError, LookupError):
        return None


def _common_date(m: re.Match[str]) -> datetime | None:
    """What _parse_iso or _parse_rfc822 makes of an _ISO_ZONED_RE or _RFC822_COMMON_RE match."""
    if m.re is _ISO_ZONED_RE:
        y, mo, d, hh, mi, ss, sign, zh, zm = m.groups()
        month = int(mo)
    else:
        d, mon, y, hh, mi, ss, sign, zh, zm = m.groups()
        month = _MONTH_ABBREVIATIONS[mon]
    minutes = 0 if sign is None else int(zh) * 60 + int(zm)
    try:
        return datetime(int(y), month, int(d), int(hh), int(mi), min(int(ss), 59), tzinfo=_fixed_tz(-minutes if sign == "-" else minutes))
    except ValueError:  # Feb 30, hour 24: the general parsers reject these too
        return None


def _parse_digits(s: str, deftz: tzinfo | None, now: datetime) -> datetime | None:
    if not _DIGITS_RE.fullmatch(s):
        return None
    if len(s) == 8:  # YYYYMMDD, the ISO 8601 basic date
        return datetime(int(s[:4]), int(s[4:6]), int(s[6:]))
    head = s.split(".", 1)[0]
    if len(head) < 9 or len(head) > 19:
        raise ValueError("not a date")
    moment = _from_epoch(int(s) if "." not in s else float(s))
    if moment is None:
        raise ValueError("epoch out of range")
    return moment


def _parse_iso(s: str, deftz: tzinfo | None, now: datetime) -> datetime | None:
    m = _ISO_RE.fullmatch(s)
    if not m:
        return None
    _check_weekday(m.group("wd"))
    naive = _ymd(int(m.group("y")), int(m.group("mo")), int(m.group("d")), _clock(m))
    return _apply_zone(naive, m, deftz)


def _parse_rfc822(s: str, deftz: tzinfo | None, now: datetime) -> datetime | None:
    m = _RFC822_RE.fullmatch(s)
    if not m:
        return None
    _check_weekday(m.group("wd"))
    year = int(m.group("y"))
    if len(m.group("y")) == 2:  # RFC 2822 section 4.3
        year += 2000 if year < 50 else 1900
    naive = _ymd(year, _month_number(m.group("mon")), int(m.group("d")), _clock(m))
    return _apply_zone(naive, m, deftz)


def _parse_english(s: str, deftz: tzinfo | None, now: datetime) -> datetime | None:
    m = _MDY_RE.fullmatch(s) or _ASCTIME_RE.fullmatch(s)
    if not m:
        return None
    _check_weekday(m.group("wd"))
    naive = _ymd(int(m.group("y")), _month_number(m.group("mon")), int(m.group("d")), _clock(m))
    return _apply_zone(naive, m, deftz)


def _parse_chinese(s: str, deftz: tzinfo | None, now: datetime) -> datetime | None:
    m = _CN_DATE_RE.fullmatch(s)
    if not m:
        return None
    naive = _ymd(int(m.group("y")), int(m.group("mo")), int(m.group("d")), _clock(m))
    return _apply_zone(naive, m, deftz)


def _parse_numeric_dmy(s: str, deftz: tzinfo | None, now: datetime) -> datetime | None:
    m = _NUMERIC_DMY_RE.fullmatch(s)
    if not m:
        return None
    a, b = int(m.group("a")), int(m.group("b"))
    if m.group("sep") == "." or a > 12:
        day, month = a, b
    elif b > 12 or a == b:
        day, month = b, a
    else:
        raise ValueError("ambiguous day and month")
    naive = _ymd(int(m.group("y")), month, day, _clock(m))
    return _apply_zone(naive, m, deftz)


def _local_now(now: datetime, deftz: tzinfo | None) -> datetime:
    if deftz is None:
        raise ValueError("no usable default time zone for a local time")
    return now.astimezone(deftz).replace(tzinfo=None)


def _parse_month_day(s: str, deftz: tzinfo | None, now: datetime) -> datetime | None:
    """`1月28日 10:00` or `01-28 10:00`: this year, or last year if that would be in the future."""
    m = _CN_MONTH_DAY_RE.fullmatch(s) or _DASH_MONTH_DAY_RE.fullmatch(s)
    if not m:
        return None
    local_now = _local_now(now, deftz)
    clock = _clock(m)
    month, day = int(m.group("mo")), int(m.group("d"))
    for year in (local_now.year, local_now.year - 1):
        try:
            candidate = _ymd(year, month, day, clock)
        except ValueError:
            continue  # 29 February outside a leap year
        if candidate <= local_now + MAX_FUTURE:
            return candidate
    raise ValueError("no such month and day")


def _parse_relative(s: str, deftz: tzinfo | None, now: datetime) -> datetime | None:
    if _JUST_NOW_RE.fullmatch(s):
        return now
    m = _AGO_CN_RE.fullmatch(s)
    if m:
        amount = _chinese_number(m.group("n"))
        return now - timedelta(seconds=amount * _UNIT_SECONDS[m.group("unit")[0]])
    m = _AGO_EN_RE.fullmatch(s)
    if m:
        n = m.group("n").lower()
        count = _EN_NUMBERS[n] if n in _EN_NUMBERS else int(n)
        return now - timedelta(seconds=count * _UNIT_SECONDS[m.group("unit")[0].lower()])
    m = _DAY_WORD_RE.fullmatch(s)
    if m:
        days_back = _DAYS_BACK[m.group("day").lower()]
        if m.group("H") is None:
            return now - timedelta(days=days_back)
        local_day = _local_now(now, deftz) - timedelta(days=days_back)
        return _ymd(local_day.year, local_day.month, local_day.day, _clock(m))
    return None


def _chinese_number(token: str) -> float:
    if token == "半":
        return 0.5
    if token.isdigit():
        return int(token)
    if "十" in token:
        tens, _, ones = token.partition("十")
        if len(tens) > 1 or len(ones) > 1:
            raise ValueError(f"not a number: {token!r}")
        return (_CN_DIGITS[tens] if tens else 1) * 10 + (_CN_DIGITS[ones] if ones else 0)
    if len(token) != 1:
        raise ValueError(f"not a number: {token!r}")
    return _CN_DIGITS[token]


def _parse_with_dateutil(s: str, deftz: tzinfo | None, now: datetime) -> datetime | None:
    """The last resort for English month-name dates, checked so that it never fills in a guess."""
    if not s.isascii() or not _MONTH_WORD_RE.search(s) or not _YEAR4_RE.search(s):
        return None
    s = _GMT_OFFSET_RE.sub("", s)  # dateutil reads "GMT+8" the POSIX way, as eight hours west
    unknown: list[str] = []
    reference = now.replace(tzinfo=None)

    def tzinfos(name: str | None, offset: int | None) -> tzinfo | None:
        if offset is not None:
            if abs(offset) > 14 * 3600 or offset % 60:
                unknown.append(str(offset))
                return None
            return _fixed_tz(offset // 60)
        if name is None:
            return None
        zone = _zone_by_name(name, reference, deftz)
        if zone is None:
            unknown.append(name)
        return zone

    try:
        first: datetime = _dateutil_parser.parse(s, default=datetime(1904, 1, 1), tzinfos=tzinfos)
        second: datetime = _dateutil_parser.parse(s, default=datetime(1908, 2, 2), tzinfos=tzinfos)
    except (ValueError, OverflowError, TypeError, LookupError):
        return None
    if unknown or (first.year, first.month, first.day) != (second.year, second.month, second.day):
        raise ValueError("dateutil had to guess")
    return first


_DATE_PARSERS: tuple[DateParser, ...] = (
    _parse_digits,
    _parse_iso,
    _parse_rfc822,
    _parse_english,
    _parse_chinese,
    _parse_numeric_dmy,
    _parse_relative,
    _parse_month_day,
    _parse_with_dateutil,
)

# ---------------------------------------------------------------------------
# URLs
# ---------------------------------------------------------------------------
#
# Decisions: only absolute http/https URLs survive; schemes are judged after
# decoding entities and removing whitespace and control characters, so
# `java&#x09;script:` and ` javascript:` are rejected. Hosts are lower-cased
# and IDNA-encoded to ASCII (punycode), with a trailing dot dropped; user
# info is dropped (credentials do not belong in a stored link, and
# `trusted.com@evil.com` misleads). Default ports and fragments go (even
# `#!/...`). Percent-encoding is made canonical: unreserved characters
# decoded, hex upper-cased, a stray `%` encoded as `%25`, everything outside
# RFC 3986's allowed set encoded as UTF-8. Dot segments are resolved. Query
# parameters keep their order; tracking ones are removed, and a double-escaped
# separator (`&amp;utm_medium=`) is read as `&`.

# Query parameters that only say where a click came from (compared lower-case).
# `from`, `scene`, `share_token` and `isappinstalled` are the share markers of
# Chinese apps (WeChat, Weibo, Toutiao, ...); an API that really needs `from`
# is not an article link.
TRACKING_PARAMS: frozenset[str] = frozenset(
    {
        "spm", "from", "scene", "share_token", "isappinstalled", "sharer_sharetime", "sharer_shareid",
        "clicktime", "enterid", "fbclid", "gclid", "gclsrc", "dclid", "gbraid", "wbraid", "yclid",
        "msclkid", "twclid", "ttclid", "li_fat_id", "igshid", "igsh", "mc_cid", "mc_eid",
        "_hsenc", "_hsmi", "__hstc", "__hssc", "__hsfp", "hsctatracking", "ref_src", "ref_url",
        "_ga", "_gl", "mkt_tok", "oly_anon_id", "oly_enc_id", "vero_id", "vero_conv", "wickedid",
        "srsltid", "xtor", "wt_mc", "wt.mc_id", "pk_campaign", "pk_kwd", "pk_source", "pk_medium",
        "hmsr", "hmpl", "hmcu", "hmkw", "hmci",
    }
)  # fmt: skip
TRACKING_PARAM_PREFIXES: tuple[str, ...] = ("utm_", "mtm_")

_ALLOWED_SCHEMES = ("http", "https")
_DEFAULT_PORTS: Mapping[str, str] = MappingProxyType({"http": "80", "https": "443"})
_MAX_URL_CHARS = 8192
_SCHEME_RE = re.compile(r"([a-zA-Z][a-zA-Z0-9+.\-]*):")
_URL_PARTS_RE = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*):(?://([^/?#]*))?([^?#]*)(?:\?([^#]*))?(?:#.*)?", re.DOTALL)
_TAB_NEWLINE_RE = re.compile(r"[\t\n\r]")
# What may hide inside a scheme without a browser minding: whitespace, controls, invisible marks.
_INVISIBLE_RE = re.compile(r"[\x00-\x20\x7f-\xa0\u00ad\u1680\u180e\u2000-\u200f\u2028-\u202f\u205f-\u2064\u3000\ufeff]")
_URL_EDGE_CHARS = "".join(map(chr, range(0x21))) + "\x7f\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u200b\u2028\u2029\u202f\u205f\u3000\ufeff"
_LONE_PERCENT_RE = re.compile(r"%(?![0-9A-Fa-f]{2})")
_PERCENT_RE = re.compile(r"%[0-9A-Fa-f]{2}")
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_PATH_SAFE = "/:@!$&'()*+,;=-._~%"
_QUERY_SAFE = _PATH_SAFE + "?"
# What quote() leaves alone with each `safe`: its always-safe characters plus those.
_QUOTE_LEAVES: Mapping[str, re.Pattern[str]] = MappingProxyType(
    {safe: re.compile(f"[A-Za-z0-9_.~{re.escape(safe)}-]*") for safe in (_PATH_SAFE, _QUERY_SAFE)}
)
_HOST_RE = re.compile(r"[a-z0-9_-]{1,63}(?:\.[a-z0-9_-]{1,63})*")


def normalize_url(url: str | None, base: str | None = None) -> str | None:
    """The canonical absolute http(s) form of `url` (resolved against `base`), or None."""
    if not isinstance(url, str):
        return None
    if "\t" in url or "\n" in url or "\r" in url:  # rare: three memchr scans cost less than the regex
        url = _TAB_NEWLINE_RE.sub("", url)
    s = url.strip(_URL_EDGE_CHARS)
    if not s or len(s) > _MAX_URL_CHARS:
        return None
    if s.startswith(("http://", "https://")):
        # the probe below could only find the scheme it starts with: nothing to reject, nothing to join
        try:
            return _normalize_absolute(s)
        except (ValueError, UnicodeError):
            return None
    probe = _INVISIBLE_RE.sub("", html.unescape(s) if "&" in s else s)
    m = _SCHEME_RE.match(probe)
    if m and m.group(1).lower() not in _ALLOWED_SCHEMES:
        return None
    if _SCHEME_RE.match(s) is None:
        if base is None:
            return None
        absolute_base = _normalize_base(base)
        if absolute_base is None:
            return None
        try:
            s = urljoin(absolute_base, s)
        except ValueError:
            return None
    try:
        return _normalize_absolute(s)
    except (ValueError, UnicodeError):
        return None


@lru_cache(maxsize=256)
def _normalize_base(base: str) -> str | None:
    # entries of one feed share their base: normalize it once
    return normalize_url(base)


def _normalize_absolute(s: str) -> str | None:
    parts = _URL_PARTS_RE.fullmatch(s)  # RFC 3986 appendix B; cheaper than urlsplit on this hot path
    if parts is None:
        return None
    scheme, netloc, raw_path, raw_query = parts.groups()
    scheme = scheme.lower()
    if scheme not in _ALLOWED_SCHEMES or netloc is None or "\\" in netloc:
        return None
    hostport = netloc.rpartition("@")[2]
    split = _split_host_port(hostport)
    if split is None:
        return None
    host, port = split
    if port == _DEFAULT_PORTS[scheme]:
        port = ""
    path = _remove_dot_segments(_normalize_component(raw_path, _PATH_SAFE)) or "/"
    query = _normalize_query(raw_query or "")
    return f"{scheme}://{host}{':' + port if port else ''}{path}{'?' + query if query else ''}"


@lru_cache(maxsize=1024)
def _split_host_port(hostport: str) -> tuple[str, str] | None:
    # a feed's links share a handful of hosts: IDNA and the host checks run once for each
    if hostport.startswith("["):
        end = hostport.find("]")
        if end < 0:
            return None
        try:
            host = f"[{ipaddress.IPv6Address(hostport[1:end]).compressed}]"
        except ValueError:
            return None
        rest = hostport[end + 1 :]
        if rest and not rest.startswith(":"):
            return None
        port = rest[1:]
    else:
        host, _, port = hostport.partition(":") if hostport.count(":") == 1 else (hostport, "", "")
        if ":" in host:
            return None
        normal = _normalize_host(host)
        if normal is None:
            return None
        host = normal
    if port:
        if not (port.isascii() and port.isdigit()) or int(port) > 65535:
            return None
        port = str(int(port))
    return host, port


def _normalize_host(host: str) -> str | None:
    host = host.rstrip(".")
    if not host:
        return None
    if not host.isascii():
        host = host.encode("idna").decode("ascii").rstrip(".")  # nameprep lower-cases and maps 。 to .
    host = host.lower()
    if len(host) > 253 or not _HOST_RE.fullmatch(host):
        return None
    return host


def _percent_canonical(m: re.Match[str]) -> str:
    char = chr(int(m.group(0)[1:], 16))
    return char if char in _UNRESERVED else m.group(0).upper()


def _normalize_component(text: str, safe: str) -> str:
    if "%" in text:
        text = _LONE_PERCENT_RE.sub("%25", text)
        text = _PERCENT_RE.sub(_percent_canonical, text)
    if _QUOTE_LEAVES[safe].fullmatch(text):  # most paths and parameters: quote() would give them back as they are
        return text
    return quote(text, safe=safe)  # raises UnicodeEncodeError on lone surrogates


def _remove_dot_segments(path: str) -> str:
    if "/." not in path:
        return path
    segments = path.split("/")
    out: list[str] = []
    for segment in segments[1:]:
        if segment == "..":
            if out:
                out.pop()
        elif segment != ".":
            out.append(segment)
    result = "/" + "/".join(out)
    if segments[-1] in (".", "..") and not result.endswith("/"):
        result += "/"
    return result


@lru_cache(maxsize=1024)
def _is_tracking(key: str) -> bool:
    name = unquote_plus(key).strip().lower()
    return name in TRACKING_PARAMS or name.startswith(TRACKING_PARAM_PREFIXES)


def _normalize_query(query: str) -> str:
    if not query:
        return ""
    kept: list[str] = []
    for part in query.split("&"):
        while part[:4].lower() == "amp;":
            part = part[4:]
        if not part or _is_tracking(part.partition("=")[0]):
            continue
        kept.append(_normalize_component(part, _QUERY_SAFE))
    return "&".join(kept)


# ---------------------------------------------------------------------------
# Titles, authors, categories
# ---------------------------------------------------------------------------
#
# Decisions: entities are decoded until none are left and tags stripped until
# none are left, which is what makes normalize_title idempotent (so a title
# that was escaped twice, `&amp;amp;`, comes out as `&`). Plain-text titles
# decode only `;`-terminated entities (AT&T, R&D, `this&not` stay as typed);
# HTML titles decode the way a browser does. A text title is treated as HTML
# only when it holds a well-known inline tag. Whitespace of any kind folds to
# one space; control characters, soft hyphens, zero-width spaces, word
# joiners and BOMs are removed (ZWJ/ZWNJ stay: emoji and several scripts
# need them).

_MARKUP_RE = re.compile(
    r"<!--|<\s*/?\s*(?:a|abbr|b|big|br|cite|code|del|div|em|font|h[1-6]|i|img|ins|mark|p|q|s|small|span"
    r"|strike|strong|sub|sup|time|u|wbr"
    # and what only an injection puts in a title: a "text" title holding these is markup all the same
    r"|script|style|iframe|object|embed|applet|svg|math|form|input|button|textarea|select|meta|link|base)\b[^<>]*>",
    re.IGNORECASE,
)
_TAG_RE = re.compile(
    r"<!--.*?-->|<(script|style)\b[^>]*>.*?</\1\s*>|</?([A-Za-z][A-Za-z0-9:-]*)\b[^<>]*>|<![^<>]*>|<\?[^<>]*>"
    r"|<!--.*\Z",  # a comment never closed runs to the end, as in a browser
    re.IGNORECASE | re.DOTALL,
)
_BLOCK_TAGS = frozenset(
    {"br", "p", "div", "li", "ul", "ol", "tr", "td", "th", "h1", "h2", "h3", "h4", "h5", "h6",
     "blockquote", "section", "article", "header", "footer", "table", "hr", "dd", "dt"}
)  # fmt: skip
_ENTITY_RE = re.compile(r"&(?:#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});")
_CONTROL_RE = re.compile("[\x00-\x08\x0e-\x1f\x7f-\x9f\u00ad\u200b\u2060\ufeff\ud800-\udfff]")

_PLACEHOLDER_NAMES = frozenset(
    {"unknown", "none", "null", "undefined", "n/a", "na", "-", "--", "?", "未知", "未知作者", "匿名用户"}
)
_PLACEHOLDER_MAILBOXES = frozenset(
    {"noreply", "no-reply", "no_reply", "donotreply", "do-not-reply", "do_not_reply", "nobody", "unknown"}
)
_EMAIL = r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+"
_ANGLE_EMAIL_RE = re.compile(rf"<\s*(?:mailto:)?({_EMAIL})\s*>", re.IGNORECASE)
_EMAIL_RE = re.compile(rf"(?:mailto:)?({_EMAIL})", re.IGNORECASE)
_BYLINE_PREFIX_RE = re.compile(r"^(?:by\s+|作者\s*[:：]\s*|文\s*[/／|｜]\s*)", re.IGNORECASE)
_NAME_EDGE_CHARS = " \"'“”‘’「」『』,;:|/·-–—"
_CHANNEL_AUTHOR_RES = (
    # RSSHub and friends: "孟永辉的文章-人人都是产品经理", "X 的专栏 - 知乎", "X的个人空间"
    re.compile(
        r"(?P<name>.+?)\s*的\s*(?:文章|全部文章|最新文章|专栏|專欄|博客|部落格|个人主页|個人主頁|主页|主頁"
        r"|个人空间|個人空間|投稿|作品|动态|動態|微博|公众号文章)(?:\s*[-–—|｜_·:：]\s*.*|\s+.*)?"
    ),
    re.compile(
        r"(?:posts|articles|stories|essays|writing)\s+by\s+(?P<name>.+?)(?:\s+[-–—|｜·:]\s+.*)?",
        re.IGNORECASE,
    ),
)
_SITE_SEPARATOR_RE = re.compile(r"\s+[-–—|｜]\s+|[|｜]")
_MAX_NAME_CHARS = 60
_PAREN_CHARS = frozenset("()（）")
_EMPTY_PARENS_RE = re.compile(r"[(（]\s*[)）]|<\s*>")


def normalize_title(value: str | None, *, is_html: bool = False) -> str:
    """Plain one-line text: tags stripped, entities decoded, whitespace folded, controls removed."""
    if not value:
        return ""
    if "<" not in value and "&" not in value:  # nothing to strip or decode: one cleaning is final
        return " ".join(_CONTROL_RE.sub("", value).split())
    text = value
    while True:
        before = text
        if is_html or _MARKUP_RE.search(text):
            text = _strip_tags(text)
        if "&" in text:
            text = html.unescape(text) if is_html else _ENTITY_RE.sub(_unescape_one, text)
        text = " ".join(_CONTROL_RE.sub("", text).split())
        if text == before:  # every changing round shortens the text, so this ends
            return text


def _unescape_one(m: re.Match[str]) -> str:
    return html.unescape(m.group(0))


def _tag_replacement(m: re.Match[str]) -> str:
    name = m.group(2)
    # comments, scripts and declarations vanish ("sa<!-- x -->fe" reads "safe"); block tags separate words
    return " " if name is not None and name.lower() in _BLOCK_TAGS else ""


def _strip_tags(text: str) -> str:
    return _TAG_RE.sub(_tag_replacement, text) if "<" in text else text


def split_author(value: str | None) -> tuple[str | None, str | None]:
    """(name, email) from an author string: "Name", "a@b.c (Name)", "Name <a@b.c>", "a@b.c", "(Name)"."""
    if not value:
        return None, None
    return _split_author(value)


@lru_cache(maxsize=1024)
def _split_author(value: str) -> tuple[str | None, str | None]:
    # a feed's entries name the same few columnists over and over
    text = _ENTITY_RE.sub(_unescape_one, value) if "&" in value else value
    email: str | None = None
    m = _ANGLE_EMAIL_RE.search(text)
    if m:
        email = m.group(1)
        text = f"{text[: m.start()]} {text[m.end() :]}"
    text = normalize_title(text)
    if email is None:
        m = _EMAIL_RE.search(text)
        if m:
            email = m.group(1)
            text = f"{text[: m.start()]} {text[m.end() :]}"
    return _clean_name(text), _clean_email(email)


def _clean_name(text: str) -> str | None:
    name = " ".join(_EMPTY_PARENS_RE.sub(" ", text).split()).strip(_NAME_EDGE_CHARS)
    while len(name) >= 2 and name[0] in "(（" and name[-1] in ")）" and not _PAREN_CHARS & set(name[1:-1]):
        name = name[1:-1].strip(_NAME_EDGE_CHARS)
    name = _BYLINE_PREFIX_RE.sub("", name).strip(_NAME_EDGE_CHARS)
    if not name or name.casefold() in _PLACEHOLDER_NAMES:
        return None
    return name


def _clean_email(email: str | None) -> str | None:
    if not email:
        return None
    local, _, domain = email.rpartition("@")
    if local.lower() in _PLACEHOLDER_MAILBOXES:
        return None
    return f"{local}@{domain.lower()}"


def author_from_channel_title(title: str | None) -> str | None:
    """The columnist a channel title names ("孟永辉的文章-人人都是产品经理" -> "孟永辉"), or None."""
    text = normalize_title(title)
    if not text:
        return None
    for pattern in _CHANNEL_AUTHOR_RES:
        m = pattern.fullmatch(text)
        if m:
            # "人人都是产品经理 - 孟永辉的文章": the site comes first, the name last
            name = _SITE_SEPARATOR_RE.split(m.group("name"))[-1].strip(_NAME_EDGE_CHARS)
            if name and len(name) <= _MAX_NAME_CHARS and name.casefold() not in _PLACEHOLDER_NAMES:
                return name
    return None


def normalize_categories(*groups: Iterable[str | None]) -> tuple[str, ...]:
    """All labels in order, cleaned like titles, without empties or case-insensitive repeats.

    A label is never split on commas: RSS gives one category per element, and
    a comma inside one ("Cars, Trucks") is usually part of the label.
    """
    seen: set[str] = set()
    out: list[str] = []
    for group in groups:
        values: Iterable[str | None] = (group,) if isinstance(group, str) else (group or ())
        for value in values:
            label, key = _label_and_key(value) if isinstance(value, str) else ("", "")
            if label and key not in seen:
                seen.add(key)
                out.append(label)
    return tuple(out)


@lru_cache(maxsize=4096)
def _label_and_key(value: str) -> tuple[str, str]:
    # the feed's own and the user's labels come again with every entry, and most entries share a few
    label = normalize_title(value)
    return label, label.casefold()


# ---------------------------------------------------------------------------
# Language and length
# ---------------------------------------------------------------------------
#
# Decisions: the declared tag is lower-cased with `_` -> `-` and dropped when
# it is not tag-shaped. Only a sample of the text (LANGUAGE_SAMPLE_CHARS) is
# looked at. Text is CJK when CJK characters are at least 30% of the letters;
# Hangul-dominant -> ko, kana at least 10% of Han+kana (and 2 or more) -> ja,
# else zh. A declared non-CJK language is replaced by the text's CJK language
# only with 5 or more CJK characters of evidence; a declared ja stays ja over
# short kana-less text (a kanji-only title). English is inferred (with no
# declaration, or over a declared zh/ja/ko) only when the text is plainly
# English: ASCII words with several distinct English function words.

LANGUAGE_SAMPLE_CHARS = 4000
_HAN = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ebef\U00030000-\U0003134f"
_KANA = "\u3041-\u309f\u30a0-\u30fa\u30fc-\u30ff\u31f0-\u31ff\uff66-\uff9f"
_HANGUL = "\u1100-\u11ff\u3130-\u318f\uac00-\ud7af"
_CJK = _HAN + _KANA + _HANGUL
# Runs, not single characters: far fewer match objects on CJK text.
_SCRIPT_RUN_RE = re.compile(f"([{_HAN}]+)|([{_KANA}]+)|([{_HANGUL}]+)|([A-Za-z\u00c0-\u024f]+)")
_CJK_RUN_RE = re.compile(f"[{_CJK}]+")
_WORD_RE = re.compile(rf"[^\W_{_CJK}]+(?:['’][^\W_{_CJK}]+)*")
_ASCII_WORD_RE = re.compile(r"[a-z]+")
_THREE_ASCII_LETTERS_RE = re.compile(r"[A-Za-z](?:[^A-Za-z]*[A-Za-z]){2}")
# ASCII text as bytes for counting _WORD_RE's words with bytes.count: letters and digits -> "a",
# the apostrophe stays, everything else (the underscore too) -> " ".
_ASCII_WORD_MAP = bytes(
    ord("a") if chr(i).isalnum() else ord("'") if chr(i) == "'" else ord(" ") for i in range(128)
) + b" " * 128
_LANG_TAG_RE = re.compile(r"[a-z]{2,3}(?:-[a-z0-9]{1,8})*")
_LANG_ALIASES: Mapping[str, str] = MappingProxyType(
    {"english": "en", "chinese": "zh", "中文": "zh", "简体中文": "zh-cn", "繁體中文": "zh-tw",
     "japanese": "ja", "日本語": "ja", "korean": "ko", "한국어": "ko"}
)  # fmt: skip
_ZH_FAMILY = frozenset({"zh", "yue", "wuu", "cmn", "lzh", "hak", "nan", "gan", "hsn"})
_CJK_PRIMARY = _ZH_FAMILY | {"ja", "ko"}
_EN_MARKERS = frozenset({"the", "and", "of", "is", "that", "with", "this", "for", "are", "was", "you", "have", "it"})
_MIN_CJK_TO_OVERRIDE = 5
_MIN_HAN_JA_TO_ZH = 50


@lru_cache(maxsize=256)
def _normalize_language_tag(tag: str | None) -> str | None:
    if not tag:
        return None
    text = tag.strip().lower().replace("_", "-")
    text = _LANG_ALIASES.get(text, text)
    return text if _LANG_TAG_RE.fullmatch(text) else None


def _script_language(sample: str) -> tuple[str | None, int]:
    """("zh" | "ja" | "ko" | "latin" | None, number of CJK characters) for a text sample."""
    if sample.isascii():
        # No CJK, and no Latin letters but A-Z: three of them are all the answer needs.
        return ("latin" if _THREE_ASCII_LETTERS_RE.search(sample) else None), 0
    counts = [0, 0, 0, 0, 0]
    for m in _SCRIPT_RUN_RE.finditer(sample):
        counts[m.lastindex or 0] += m.end() - m.start()
    _, han, kana, hangul, latin = counts
    cjk = han + kana + hangul
    if cjk and cjk * 10 >= (cjk + latin) * 3:
        if hangul * 2 >= cjk:
            return "ko", cjk
        if kana >= 2 and kana * 10 >= han + kana:
            return "ja", cjk
        return ("zh", cjk) if han else (None, cjk)
    if latin >= 3:
        return "latin", cjk
    return None, cjk


def _looks_english(sample: str) -> bool:
    words = _ASCII_WORD_RE.findall(sample.lower())
    if len(words) < 5:
        return False
    markers = [w for w in words if w in _EN_MARKERS]
    distinct = set(markers)
    return ("the" in distinct or "and" in distinct) and len(distinct) >= 3 and len(markers) * 10 >= len(words)


def detect_language(declared: str | None, text: str) -> str | None:
    """The declared language tag, normalized, unless the text's script plainly says otherwise."""
    tag = _normalize_language_tag(declared)
    sample = text[:LANGUAGE_SAMPLE_CHARS] if text else ""
    script, cjk = _script_language(sample)
    primary = tag.split("-", 1)[0] if tag else None
    if script is None:
        return tag
    if script == "latin":
        if (primary is None or primary in _CJK_PRIMARY) and _looks_english(sample):
            return "en"
        return tag
    if primary is None:
        return script
    if primary == script or (script == "zh" and primary in _ZH_FAMILY):
        return tag
    if primary not in _CJK_PRIMARY and cjk < _MIN_CJK_TO_OVERRIDE:
        return tag
    if primary == "ja" and script == "zh" and cjk < _MIN_HAN_JA_TO_ZH:
        return tag
    return script


def _word_counts(text: str) -> tuple[int, int]:
    if not text:
        return 0, 0
    if text.isascii():
        # _WORD_RE's words counted without a string per word: a run of "a" starts a word unless
        # one apostrophe joins it to the run before ("don't" is one word, "x ''y" two).
        mapped = b" " + text.encode("ascii").translate(_ASCII_WORD_MAP)
        words = mapped.count(b" a")
        # Two- and three-byte counts scan slowly (their last byte, "a", is everywhere); an apostrophe
        # is looked for at memchr speed, and most texts have none.
        if b"'" in mapped:
            words += mapped.count(b" 'a") + mapped.count(b"''a")
        return 0, words
    # A CJK run is no part of any word, and neither is a space: words are counted in what is left
    # once each run is one space, a fraction of CJK text, and the runs' characters from the lengths.
    rest, runs = _CJK_RUN_RE.subn(" ", text)
    return len(text) - len(rest) + runs, len(_WORD_RE.findall(rest))


def count_words(text: str) -> int:
    """Words in `text`: each CJK character (Han, kana, Hangul) counts one, as does each other word."""
    cjk, words = _word_counts(text)
    return cjk + words


def reading_minutes(text: str) -> int:
    """Minutes to read `text` at 400 CJK characters or 220 other words a minute; at least 1 if non-empty."""
    return text_stats(text)[1]


def text_stats(text: str) -> tuple[int, int]:
    """(count_words, reading_minutes) of `text`, counting once."""
    if not text or not text.strip():
        return 0, 0
    cjk, words = _word_counts(text)
    # ceil(cjk/400 + words/220) in integers, so that float rounding never adds a minute
    return cjk + words, max(1, -(-(cjk * 220 + words * 400) // 88_000))


# ---------------------------------------------------------------------------
# The metadata stage
# ---------------------------------------------------------------------------


def normalize_metadata(raw: RawEntry, ctx: FeedContext) -> Entry:
    """The metadata stage: a RawEntry as an Entry with normalized dates, URL, title, author, categories."""
    base = raw.base_url or ctx.feed_url
    url = normalize_url(raw.link, base)
    if url is None and raw.guid_is_permalink:
        url = normalize_url(raw.guid, base)

    name, email = split_author(raw.author)
    if raw.author_email:
        email = split_author(raw.author_email)[1] or email
    if name is None and ctx.feed_author:
        name, feed_email = split_author(ctx.feed_author)
        email = email or (feed_email if name else None)
    if name is None:
        name = author_from_channel_title(ctx.feed_title)

    tz = ctx.timezone or default_timezone(ctx.feed_url, raw.language or ctx.feed_language)
    now = ctx.fetched_at or None
    published = normalize_date(raw.published, default_tz=tz, now=now)
    # Atom entries often repeat the date; with a fixed `now` the answer is the same
    updated = published if now and raw.updated == raw.published else normalize_date(raw.updated, default_tz=tz, now=now)
    published_raw: str | None = None
    for given, parsed in ((raw.published, published), (raw.updated, updated)):
        if given and given.strip():
            if parsed is None:
                published_raw = given.strip()
            break

    cover: str | None = None
    for candidate in raw.image_urls:
        cover = normalize_url(candidate, base)
        if cover is not None:
            break

    guid = raw.guid.strip() if raw.guid else None
    return Entry(
        id="",
        url=url,
        guid=guid or None,
        title=normalize_title(raw.title, is_html=raw.title_type == "html"),
        author=name,
        author_email=email,
        author_bio=None,
        published_at=published or updated,
        updated_at=updated,
        published_raw=published_raw,
        categories=normalize_categories(ctx.feed_categories, raw.categories),
        summary=raw.summary,
        content_html=raw.content or raw.summary or "",
        content_text="",
        cover_image=cover,
        language=_normalize_language_tag(raw.language) or _normalize_language_tag(ctx.feed_language),
        word_count=0,
        reading_minutes=0,
        content_hash="",
        identity="",
        feed_guid=raw.guid,
        feed_link=raw.link,
    )
