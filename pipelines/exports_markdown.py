"""Markdown posts with YAML front matter, one file per entry, for static blogs; re-runs rewrite only what changed."""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import re

# Python's own sqlite3 for the private manifest, whatever sqlite-utils uses: pysqlite3's build keeps
# a private database in memory, and the manifest must stay on disk (docs/search.md, "Which SQLite").
import sqlite3
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from sqlite_utils import Database

from pipelines.exports import (
    FEED_LABELS_SQL,
    FEED_NAME_SQL,
    ExportError,
    ExportFilter,
    iter_entries,
    json_list,
    rfc3339,
)

STYLES = ("plain", "hexo", "hugo", "jekyll")
BODIES = ("html", "markdown")
MANIFEST_NAME = ".feedloom-manifest.jsonl"
MANIFEST_VERSION = 1
DEFAULT_FOLDER = "exports/posts"
# Room for a jekyll date prefix, a collision suffix and ".md" inside ext4's 255-byte name limit.
SLUG_MAX_BYTES = 150
MARKDOWN_MISSING = "--body markdown needs markdownify: pip install markdownify"

_POST_DIRS = {"plain": "", "hexo": "source/_posts", "hugo": "content/posts", "jekyll": "_posts"}
_WINDOWS_RESERVED = frozenset(
    ["con", "prn", "aux", "nul"] + [f"com{i}" for i in range(10)] + [f"lpt{i}" for i in range(10)]
)
# Combining overlays that draw a slash or backslash through a letter.
_SLASH_MARKS = frozenset("\u0337\u0338\u20e5")
_YAML_ESCAPE = re.compile('[\\\\"\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff\ufeff\ufffe\uffff]')
_YAML_NAMED = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t", "\r": "\\r", "\x00": "\\0"}
_BODY_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff\ufffe\uffff]")
_CJK_LANG = re.compile(r"^(zh|ja|ko)\b", re.I)


@dataclass(frozen=True)
class MarkdownOptions:
    style: str = "plain"  # plain, hexo, hugo, jekyll
    body: str = "html"  # html: the stored cleaned HTML; markdown: converted with markdownify
    prune: bool = False  # delete our unedited files of entries outside the selection


@dataclass
class MarkdownReport:
    written: int = 0  # new files
    updated: int = 0  # files rewritten because their entry changed
    unchanged: int = 0
    pruned: int = 0
    kept_edited: list[str] = field(default_factory=list)  # files the user edited, left as they are

    @property
    def total(self) -> int:
        return self.written + self.updated + self.unchanged + len(self.kept_edited)


# -- names -------------------------------------------------------------------


def slugify(text: str | None, max_bytes: int = SLUG_MAX_BYTES) -> str:
    """A file-name-safe slug: letters (Chinese kept), digits and single hyphens, at most max_bytes of UTF-8.

    NFKC first, so full-width and compatibility forms of '/', '\\' and '.' become the ASCII ones, which,
    like every other punctuation, symbol, space or control character, turn into a hyphen.
    """
    text = unicodedata.normalize("NFKC", text or "").lower()
    chars: list[str] = []
    for ch in text:
        kind = unicodedata.category(ch)[0]
        if kind in "LN" or (kind == "M" and chars and chars[-1] != "-" and ch not in _SLASH_MARKS):
            chars.append(ch)
        else:
            chars.append("-")
    slug = re.sub("-{2,}", "-", "".join(chars)).strip("-")
    encoded = slug.encode("utf-8")
    if len(encoded) > max_bytes:
        slug = encoded[:max_bytes].decode("utf-8", "ignore")
        while slug and unicodedata.category(slug[-1])[0] == "M":
            slug = slug[:-1]  # a mark cut from its letter would dangle
        slug = slug.strip("-")
    return slug


def short_id(entry_id: str) -> str:
    return hashlib.blake2b(entry_id.encode("utf-8", "surrogatepass"), digest_size=4).hexdigest()


def post_date(row: dict[str, Any]) -> str | None:
    return rfc3339(row.get("published_at")) or rfc3339(row.get("first_seen_at"))


def post_filename(slug: str, row: dict[str, Any], style: str) -> str:
    if style == "jekyll":
        return f"{(post_date(row) or '1970-01-01')[:10]}-{slug}.md"
    return f"{slug}.md"


def candidate_paths(row: dict[str, Any], style: str) -> Iterator[str]:
    """Relative paths to try, in order, for a new post: its slug, then the slug with the entry's short id."""
    slug = slugify(row.get("title"))
    sid = short_id(str(row["id"]))
    if not slug:
        slug = f"entry-{sid}"
    elif slug in _WINDOWS_RESERVED:
        slug = f"{slug}-{sid}"  # Windows refuses CON.md as it refuses CON
    folder = _POST_DIRS[style]
    prefix = f"{folder}/" if folder else ""
    for name in itertools.chain([slug, f"{slug}-{sid}"], (f"{slug}-{sid}-{n}" for n in range(2, 100))):
        yield prefix + post_filename(name, row, style)


def safe_relpath(root: Path, rel: str) -> Path | None:
    """`root / rel` when rel is a plain relative path that cannot leave root; else None."""
    pure = PurePosixPath(rel)
    if not rel or "\x00" in rel or "\\" in rel or pure.is_absolute() or any(p in ("", ".", "..") for p in pure.parts):
        return None
    if re.match(r"^[A-Za-z]:", rel):
        return None  # a Windows drive
    return root.joinpath(*pure.parts)


# -- front matter ------------------------------------------------------------


def yaml_quote(value: str) -> str:
    """A YAML double-quoted scalar: no title, whatever it holds, can end the string or the front matter."""

    def escape(match: re.Match[str]) -> str:
        ch = match.group()
        if ch in _YAML_NAMED:
            return _YAML_NAMED[ch]
        code = ord(ch)
        return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"

    return '"' + _YAML_ESCAPE.sub(escape, value) + '"'


def render_front_matter(fields: Sequence[tuple[str, Any]]) -> str:
    lines = []
    for name, value in fields:
        if isinstance(value, bool):
            lines.append(f"{name}: {'true' if value else 'false'}")
        elif isinstance(value, (list, tuple)):
            if value:
                lines.append(f"{name}:")
                lines.extend(f"  - {yaml_quote(str(item))}" for item in value)
            else:
                lines.append(f"{name}: []")
        else:
            lines.append(f"{name}: {yaml_quote('' if value is None else str(value))}")
    return "\n".join(lines) + "\n"


def _styled_date(iso: str | None, style: str) -> str:
    """An RFC 3339 UTC time (as rfc3339() gives it) in the form the style's generator reads."""
    if not iso:
        return ""
    if style == "hexo":
        return f"{iso[:10]} {iso[11:19]}"
    if style == "jekyll":
        return f"{iso[:10]} {iso[11:19]} +0000"
    return iso


def _unique(items: Sequence[str]) -> list[str]:
    seen: set[str] = set()
    out = []
    for item in items:
        if item and item not in seen:
            seen.add(item)
            out.append(item)
    return out


def post_fields(row: dict[str, Any], style: str) -> list[tuple[str, Any]]:
    """The front matter of one post, in order, with each generator's names for its fields."""
    categories = _unique(row["categories"])
    labels = set(json_list(row.get("_feed_labels")))
    tags = [c for c in categories if c not in labels]
    cover = row.get("cover_image") or ""
    author = row.get("author") or row.get("_feed_name") or ""
    date_iso = post_date(row)
    updated_iso = rfc3339(row.get("updated_at")) or date_iso
    date = _styled_date(date_iso, style)
    updated = _styled_date(updated_iso, style)
    fields: list[tuple[str, Any]] = []
    if style == "jekyll":
        fields.append(("layout", "post"))
    fields += [("title", row.get("title") or ""), ("categories", categories), ("tags", tags)]
    fields += [("headimg", cover), ("author", author), ("comments", False), ("date", date)]
    if style == "hexo":
        # Hexo overwrites a post's `source` with its file path, so the original URL goes under another name.
        fields += [("updated", updated), ("thumbnail", cover), ("source_url", row.get("url") or "")]
        fields.append(("disableNunjucks", True))
    elif style == "hugo":
        fields += [("lastmod", updated), ("thumbnail", cover), ("source", row.get("url") or "")]
        fields += [("draft", False), ("images", [cover] if cover else [])]
        if _CJK_LANG.match(str(row.get("language") or "")):
            fields.append(("isCJKLanguage", True))
    elif style == "jekyll":
        fields += [("last_modified_at", updated), ("thumbnail", cover), ("source", row.get("url") or "")]
        fields.append(("render_with_liquid", False))
    else:
        fields += [("updated", updated), ("thumbnail", cover), ("source", row.get("url") or "")]
    return fields


def _markdownify() -> Any:
    try:
        from markdownify import markdownify  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        raise ExportError(MARKDOWN_MISSING) from None
    return markdownify


def render_body(html: str | None, style: str, body: str) -> str:
    text = _BODY_ILLEGAL.sub("", html or "").strip()
    if body == "markdown" and text:
        text = _markdownify()(text, heading_style="ATX").strip()
    if style == "hugo":
        # Hugo would run `{{< >}}` / `{{% %}}` as shortcodes; an entity shows the same text and runs nothing.
        text = text.replace("{{<", "{{&lt;").replace("{{%", "{{&#37;")
    return text + "\n" if text else ""


def render_post(row: dict[str, Any], style: str = "plain", body: str = "html") -> str:
    """The whole file: front matter between --- lines, a blank line, the body."""
    return "---\n" + render_front_matter(post_fields(row, style)) + "---\n\n" + render_body(row.get("content_html"), style, body)


# -- writing -----------------------------------------------------------------


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _file_digest(path: Path) -> str | None:
    try:
        with open(path, "rb") as handle:
            return hashlib.file_digest(handle, "sha256").hexdigest()  # in chunks: the manifest may be large
    except OSError:
        return None


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


class Manifest:
    """What the export wrote into a folder: entry id -> file path and hash of the bytes written.

    Saved as JSON Lines (a header line, then one line per post, sorted by id: readable, and diffable
    when the blog lives in git). During a run it lives in a private temporary SQLite file, so a
    folder of a million posts costs no more memory than one of ten.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.path = root / MANIFEST_NAME
        self.style: str | None = None
        self.conn = sqlite3.connect("")  # "": a private on-disk database, deleted when closed
        self.conn.execute(
            "CREATE TABLE posts (id TEXT PRIMARY KEY, path TEXT NOT NULL, key TEXT NOT NULL,"
            " sha256 TEXT NOT NULL, seen INTEGER NOT NULL DEFAULT 0)"
        )
        # Case-folded paths, so two posts never differ only by case on macOS or Windows.
        self.conn.execute("CREATE INDEX posts_key ON posts (key)")
        self._load()

    def _load(self) -> None:
        if not self.path.exists():
            return
        batch: list[tuple[str, str, str, str]] = []
        try:
            with open(self.path, encoding="utf-8") as handle:
                header = json.loads(handle.readline() or "null")
                if not isinstance(header, dict) or header.get("feedloom_manifest") != MANIFEST_VERSION:
                    raise ValueError("not a feedloom manifest, or another version")
                self.style = header.get("style")
                for line in handle:
                    item = json.loads(line) if line.strip() else None
                    # A hand-edited manifest must not steer a write outside the folder.
                    if (isinstance(item, dict) and isinstance(item.get("id"), str) and isinstance(item.get("path"), str)
                            and safe_relpath(self.root, item["path"]) is not None):
                        batch.append((item["id"], item["path"], item["path"].casefold(), str(item.get("sha256") or "")))
                    if len(batch) >= 1000:
                        self._insert(batch)
            self._insert(batch)
        except (OSError, ValueError) as exc:
            raise ExportError(f"{self.path}: unreadable manifest ({exc}); move it away to start afresh") from None

    def _insert(self, batch: list[tuple[str, str, str, str]]) -> None:
        self.conn.executemany("INSERT OR REPLACE INTO posts (id, path, key, sha256) VALUES (?, ?, ?, ?)", batch)
        batch.clear()

    def get(self, entry_id: str) -> tuple[str, str] | None:
        row = self.conn.execute("SELECT path, sha256 FROM posts WHERE id = ?", [entry_id]).fetchone()
        return (row[0], row[1]) if row else None

    def put(self, entry_id: str, path: str, sha256: str) -> None:
        self.conn.execute(
            "INSERT INTO posts (id, path, key, sha256, seen) VALUES (?, ?, ?, ?, 1)"
            " ON CONFLICT (id) DO UPDATE SET path = excluded.path, key = excluded.key, sha256 = excluded.sha256, seen = 1",
            [entry_id, path, path.casefold(), sha256],
        )

    def mark_seen(self, entry_id: str) -> None:
        self.conn.execute("UPDATE posts SET seen = 1 WHERE id = ?", [entry_id])

    def taken(self, path: str) -> bool:
        return self.conn.execute("SELECT 1 FROM posts WHERE key = ? LIMIT 1", [path.casefold()]).fetchone() is not None

    def unseen(self) -> Iterator[tuple[str, str, str]]:
        """Posts of entries this run did not select, a page at a time (the caller may delete them)."""
        last = ""
        while True:
            rows = self.conn.execute(
                "SELECT id, path, sha256 FROM posts WHERE seen = 0 AND id > ? ORDER BY id LIMIT 500", [last]
            ).fetchall()
            if not rows:
                return
            yield from rows
            last = rows[-1][0]

    def delete(self, entry_id: str) -> None:
        self.conn.execute("DELETE FROM posts WHERE id = ?", [entry_id])

    def save(self) -> None:
        """Write the manifest, streaming; an unchanged manifest is left untouched."""
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        digest = hashlib.sha256()
        try:
            with open(tmp, "wb") as out:
                for line in self._lines():
                    data = line.encode("utf-8", "surrogatepass")
                    digest.update(data)
                    out.write(data)
            if _file_digest(self.path) == digest.hexdigest():
                tmp.unlink()
            else:
                os.replace(tmp, self.path)
        finally:
            if tmp.exists():
                tmp.unlink()

    def _lines(self) -> Iterator[str]:
        yield json.dumps({"feedloom_manifest": MANIFEST_VERSION, "style": self.style}, ensure_ascii=False) + "\n"
        for entry_id, path, sha256 in self.conn.execute("SELECT id, path, sha256 FROM posts ORDER BY id"):
            yield json.dumps({"id": entry_id, "path": path, "sha256": sha256}, ensure_ascii=False) + "\n"

    def close(self) -> None:
        self.conn.close()


def export_markdown(
    db: Database,
    folder: str | Path,
    filters: ExportFilter = ExportFilter(),
    options: MarkdownOptions = MarkdownOptions(),
) -> MarkdownReport:
    """Write one post per selected entry under `folder`, keeping the manifest of what it wrote.

    A post whose entry is unchanged is not touched; one the user edited is kept; a new post never
    takes the name of a file already there; files not in the manifest are never removed.
    """
    if options.style not in STYLES:
        raise ExportError(f"unknown style {options.style!r}: choose one of {', '.join(STYLES)}")
    if options.body not in BODIES:
        raise ExportError(f"unknown body {options.body!r}: choose html or markdown")
    if options.body == "markdown":
        _markdownify()
    root = Path(folder)
    if root.exists() and not root.is_dir():
        raise ExportError(f"{root}: not a folder (markdown export writes one file per entry into a folder)")
    root.mkdir(parents=True, exist_ok=True)
    manifest = Manifest(root)
    try:
        if manifest.style not in (None, options.style):
            raise ExportError(f"{root} holds a --style {manifest.style} export; use that style or another folder")
        manifest.style = options.style
        report = MarkdownReport()
        try:
            for row in iter_entries(db, filters, [FEED_LABELS_SQL, FEED_NAME_SQL]):
                _export_post(root, manifest, row, options, report)
            if options.prune:
                report.pruned = _prune(root, manifest)
        finally:
            manifest.save()
    finally:
        manifest.close()
    return report


def _export_post(root: Path, manifest: Manifest, row: dict[str, Any], options: MarkdownOptions, report: MarkdownReport) -> None:
    entry_id = str(row["id"])
    data = render_post(row, options.style, options.body).encode("utf-8", "surrogatepass")
    digest = _digest(data)
    known = manifest.get(entry_id)
    if known is not None:
        rel, old_digest = known
        path = root.joinpath(*PurePosixPath(rel).parts)  # the manifest holds only safe paths
        if old_digest == digest and path.is_file():
            report.unchanged += 1
            manifest.mark_seen(entry_id)
            return
        on_disk = _file_digest(path)
        if on_disk == digest:
            report.unchanged += 1
        elif on_disk is not None and on_disk != old_digest:
            report.kept_edited.append(rel)
            manifest.mark_seen(entry_id)
            return
        else:
            _write(path, data)
            report.updated += 1
        manifest.put(entry_id, rel, digest)
        return
    rel, already_there = _new_path(root, row, options.style, manifest, data_digest=digest)
    if already_there:
        report.unchanged += 1  # written by an earlier run that stopped before saving the manifest
    else:
        _write(root.joinpath(*PurePosixPath(rel).parts), data)
        report.written += 1
    manifest.put(entry_id, rel, digest)


def _new_path(root: Path, row: dict[str, Any], style: str, manifest: Manifest, *, data_digest: str) -> tuple[str, bool]:
    """A free name for a new post, and whether a file with exactly its bytes is there already."""
    for rel in candidate_paths(row, style):
        if manifest.taken(rel):
            continue
        path = safe_relpath(root, rel)
        if path is None:
            continue
        if not path.exists():
            return rel, False
        if _file_digest(path) == data_digest:
            return rel, True
    raise ExportError(f"no free file name for entry {row['id']} under {root}")


def _prune(root: Path, manifest: Manifest) -> int:
    pruned = 0
    for entry_id, rel, old_digest in manifest.unseen():
        path = root.joinpath(*PurePosixPath(rel).parts)
        on_disk = _file_digest(path)
        if on_disk == old_digest:
            path.unlink()
            pruned += 1
        if on_disk is None or on_disk == old_digest:
            manifest.delete(entry_id)
        # An edited file stays, and stays in the manifest so no new post takes its name.
    return pruned
