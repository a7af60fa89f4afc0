"""Tests for crawler.recipes: loading and validating recipe files, matching a URL to its recipe."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import pytest

from crawler.recipes import (
    DEFAULT_SITES_DIR,
    Recipe,
    RecipeError,
    host_matches,
    load_recipe,
    load_recipes,
    recipe_for,
)

MINIMAL = 'hosts = ["example.com"]\ncontent = [".post"]\n'


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def test_shipped_recipes_load() -> None:
    names = {r.name for r in load_recipes()}
    assert {"woshipm", "substack", "medium", "ruanyifeng"} <= names


def test_shipped_recipes_have_a_live_sample_and_a_floor() -> None:
    for recipe in load_recipes():
        assert recipe.live_sample and recipe_for(recipe.live_sample, [recipe]) == recipe
        assert recipe.min_text_chars >= 100


def test_woshipm_recipe_refuses_hot_linking_and_always_fetches_pages() -> None:
    woshipm = next(r for r in load_recipes() if r.name == "woshipm")
    assert (woshipm.referrer_policy, woshipm.full_content) == ("no-referrer", True)
    assert "data-original" in woshipm.lazy_attributes and ".support-author" in woshipm.remove


def test_default_directory_is_data_sites() -> None:
    assert DEFAULT_SITES_DIR == Path(__file__).resolve().parent.parent / "data" / "sites"
    assert load_recipes() == load_recipes(DEFAULT_SITES_DIR)


def test_minimal_recipe_gets_defaults_and_the_file_stem_as_name(tmp_path: Path) -> None:
    recipe = load_recipe(write(tmp_path, "my-site.toml", MINIMAL))
    assert recipe == Recipe(name="my-site", hosts=("example.com",), content=(".post",))
    assert (recipe.referrer_policy, recipe.full_content, recipe.live_sample, recipe.min_text_chars) == ("", False, None, 200)


def test_a_single_string_is_a_one_item_list(tmp_path: Path) -> None:
    recipe = load_recipe(write(tmp_path, "s.toml", 'hosts = "Example.COM."\ncontent = ".post"\nremove = ".ad"\n'))
    assert (recipe.hosts, recipe.content, recipe.remove) == (("example.com",), (".post",), (".ad",))


def test_recipes_are_frozen(tmp_path: Path) -> None:
    recipe = load_recipe(write(tmp_path, "s.toml", MINIMAL))
    with pytest.raises(dataclasses.FrozenInstanceError):
        recipe.name = "other"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("hosts = [", "not valid TOML"),
        ('content = [".post"]\n', "hosts: missing"),
        ('hosts = []\ncontent = [".post"]\n', "hosts: empty"),
        ('hosts = ["example.com"]\n', "content: missing"),
        (MINIMAL + 'titel = ["h1"]\n', "unknown key(s) titel"),
        (MINIMAL + 'remove = ["div["]\n', "remove: 'div[' is not a valid CSS selector"),
        (MINIMAL + "author = [1]\n", "author: must be a string or a list of strings"),
        ('hosts = ["https://example.com/"]\ncontent = [".post"]\n', "not a bare host name"),
        ('hosts = ["*.example.com"]\ncontent = [".post"]\n', "not a bare host name"),
        (MINIMAL + 'referrer_policy = "none"\n', "referrer_policy"),
        (MINIMAL + 'full_content = "yes"\n', "full_content"),
        (MINIMAL + 'live_sample = "ftp://example.com/a"\n', "live_sample"),
        (MINIMAL + 'live_sample = "https://elsewhere.org/a"\n', "not on any of the recipe's hosts"),
        (MINIMAL + "min_text_chars = 0\n", "min_text_chars"),
        (MINIMAL + "min_text_chars = true\n", "min_text_chars"),
        (MINIMAL + 'lazy_attributes = ["data src"]\n', "lazy_attributes"),
        (MINIMAL + 'name = "Has Spaces"\n', "name"),
    ],
)
def test_broken_recipe_raises_recipe_error_naming_the_file(tmp_path: Path, text: str, message: str) -> None:
    write(tmp_path, "good.toml", 'hosts = ["good.example"]\ncontent = [".post"]\n')
    write(tmp_path, "broken.toml", text)
    with pytest.raises(RecipeError) as caught:
        load_recipes(tmp_path)
    assert "broken.toml" in str(caught.value) and message in str(caught.value)


def test_non_utf8_recipe_file_is_a_recipe_error(tmp_path: Path) -> None:
    (tmp_path / "latin.toml").write_bytes(b'hosts = ["example.com"]\ncontent = [".caf\xe9"]\n')
    with pytest.raises(RecipeError, match="latin.toml"):
        load_recipes(tmp_path)


def test_two_recipes_claiming_one_host_is_an_error(tmp_path: Path) -> None:
    write(tmp_path, "a.toml", MINIMAL)
    write(tmp_path, "b.toml", MINIMAL)
    with pytest.raises(RecipeError, match=r"b\.toml: host 'example.com' is already claimed by .*a\.toml"):
        load_recipes(tmp_path)


def test_two_recipes_with_one_name_is_an_error(tmp_path: Path) -> None:
    write(tmp_path, "a.toml", MINIMAL + 'name = "same"\n')
    write(tmp_path, "b.toml", 'hosts = ["other.example"]\ncontent = [".p"]\nname = "same"\n')
    with pytest.raises(RecipeError, match="b.toml: recipe name 'same'"):
        load_recipes(tmp_path)


def test_missing_directory_is_a_recipe_error(tmp_path: Path) -> None:
    with pytest.raises(RecipeError, match="no such directory"):
        load_recipes(tmp_path / "nope")


def test_other_files_are_ignored(tmp_path: Path) -> None:
    write(tmp_path, "a.toml", MINIMAL)
    write(tmp_path, "README.md", "not a recipe")
    assert [r.name for r in load_recipes(tmp_path)] == ["a"]


SITES = (
    Recipe(name="woshipm", hosts=("woshipm.com",), content=(".c",)),
    Recipe(name="substack", hosts=("substack.com",), content=(".c",)),
    Recipe(name="special", hosts=("special.substack.com",), content=(".c",)),
)


@pytest.mark.parametrize(
    ("url", "name"),
    [
        ("https://www.woshipm.com/pd/1.html", "woshipm"),
        ("http://woshipm.com/pd/1.html", "woshipm"),
        ("https://WWW.WoshiPM.com./pd/1.html", "woshipm"),
        ("https://m.www.woshipm.com:8443/x", "woshipm"),
        ("https://someone.substack.com/p/post", "substack"),
        ("https://special.substack.com/p/post", "special"),  # the most specific host wins
        ("https://a.special.substack.com/p/post", "special"),
        ("https://notwoshipm.com/pd/1.html", None),
        ("https://woshipm.com.evil.example/pd/1.html", None),
        ("https://example.com/?u=https://www.woshipm.com/", None),
        ("woshipm.com/pd/1.html", None),  # no scheme: no host
        ("", None),
        ("http://[::1/broken", None),
    ],
)
def test_recipe_for_matches_host_and_subdomains(url: str, name: str | None) -> None:
    found = recipe_for(url, SITES)
    assert (found.name if found else None) == name


def test_recipe_for_with_no_recipes() -> None:
    assert recipe_for("https://www.woshipm.com/", ()) is None


@pytest.mark.parametrize(
    ("host", "pattern", "expected"),
    [("a.com", "a.com", True), ("x.a.com", "a.com", True), ("xa.com", "a.com", False), ("", "a.com", False), ("A.COM.", "a.com", True)],
)
def test_host_matches(host: str, pattern: str, expected: bool) -> None:
    assert host_matches(host, pattern) is expected


def test_recipes_module_is_pure() -> None:
    source = (Path(__file__).resolve().parent.parent / "crawler" / "recipes.py").read_text(encoding="utf-8")
    tree = ast.parse(source)
    imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {(n.module or "").split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert not imported & {"scrapy", "sqlite3", "sqlite_utils", "twisted"}
