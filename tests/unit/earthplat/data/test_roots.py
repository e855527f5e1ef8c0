"""Source roots: which local files a server's sources may read (``earthplat.data.sources.roots``),
and the STAC and local sources that check them. The catalogues are a few lines of STAC JSON
written here; no raster is read (a source checks a file before anything opens it)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from earthplat.data.sources.local import LocalSource
from earthplat.data.sources.roots import (
    SourceRootError,
    check_href,
    check_under_roots,
    local_path,
    parse_roots,
)
from earthplat.data.sources.stac import StacSource
from earthplat.data.window import window_around

LON, LAT = 9.0, 45.0
COLLECTION = "s1-test"


def write_catalog(root: Path, href: str, *, item_dir: str = "it") -> Path:
    """``root/catalog.json`` linking one Sentinel-1 item (in ``item_dir``, relative to ``root``)
    whose asset is ``href``."""
    d = 0.01
    item = {
        "type": "Feature",
        "stac_version": "1.0.0",
        "stac_extensions": [],
        "id": "it",
        "collection": COLLECTION,
        "geometry": {
            "type": "Polygon",
            "coordinates": [
                [
                    [LON - d, LAT - d],
                    [LON + d, LAT - d],
                    [LON + d, LAT + d],
                    [LON - d, LAT + d],
                    [LON - d, LAT - d],
                ]
            ],
        },
        "bbox": [LON - d, LAT - d, LON + d, LAT + d],
        "properties": {"datetime": "2019-09-15T00:00:00Z"},
        "links": [],
        "assets": {
            "image": {
                "href": href,
                "type": "image/tiff; application=geotiff",
                "roles": ["data"],
                "eo:bands": [{"name": "VV"}, {"name": "VH"}],
            }
        },
    }
    root.mkdir(parents=True, exist_ok=True)
    (root / item_dir).resolve().mkdir(parents=True, exist_ok=True)
    (root / item_dir / "it.json").write_text(json.dumps(item))
    catalog = {
        "type": "Catalog",
        "stac_version": "1.0.0",
        "id": "cat",
        "description": "one item",
        "links": [
            {"rel": "root", "href": "./catalog.json", "type": "application/json"},
            {"rel": "item", "href": f"./{item_dir}/it.json", "type": "application/json"},
        ],
    }
    (root / "catalog.json").write_text(json.dumps(catalog))
    return root / "catalog.json"


def window():
    return window_around(
        LON, LAT, name="w", start="2019-09-01", end="2019-10-01", size=32, resolution=10
    )


@pytest.fixture
def tree(tmp_path: Path) -> tuple[Path, Path]:
    """(an allowed root, a folder outside it), each holding a file ``x.tif``."""
    root, outside = tmp_path / "root", tmp_path / "outside"
    for d in (root, outside):
        d.mkdir()
        (d / "x.tif").write_bytes(b"")
    return root, outside


# --- local_path -------------------------------------------------------------------------------
def test_local_path_plain_paths_and_file_urls_resolve(tmp_path: Path):
    (tmp_path / "a b").mkdir()
    assert local_path(str(tmp_path / "a b" / "x.tif")) == tmp_path / "a b" / "x.tif"
    assert local_path(f"file://{tmp_path}/a%20b/x.tif") == tmp_path / "a b" / "x.tif"
    assert local_path(f"file://{tmp_path}/a b/../x.tif") == tmp_path / "x.tif"
    assert local_path("x.tif") == Path.cwd().resolve() / "x.tif"


@pytest.mark.parametrize(
    "href",
    [
        "https://example.com/a.tif",
        "http://example.com/catalog.json",
        "s3://bucket/a.tif",
        "gs://bucket/a.tif",
        "/vsicurl/https://example.com/a.tif",
        "/vsicurl?list_dir=no&url=https://example.com/a.tif",
        "/vsis3/bucket/a.tif",
        "/vsizip//vsicurl/https://example.com/a.zip/b.tif",
        "zip+https://example.com/a.zip!b.tif",
        "/vsimem/a.tif",
    ],
)
def test_remote_hrefs_are_not_local(href: str):
    assert local_path(href) is None
    check_href(href, [])  # nothing is local, so no root is needed


@pytest.mark.parametrize(
    "href",
    [
        "/etc/passwd",
        "file:///etc/passwd",
        "file://localhost/etc/passwd",
        "/vsicurl/file:///etc/passwd",
        "/vsizip//etc/passwd/b.tif",
        "/vsizip/{/etc/passwd}/b.tif",
        "zip:///etc/passwd!b.tif",
    ],
)
def test_local_hrefs_in_every_spelling_are_checked(href: str, tree):
    root, _ = tree
    path = local_path(href)
    assert path is not None and path.is_relative_to("/etc")
    with pytest.raises(SourceRootError, match="outside the folders"):
        check_href(href, [root])


@pytest.mark.parametrize("href", ["foo://x/a.tif", "/vsisubfile/0_10,/etc/passwd", "/vsixyz/a"])
def test_unknown_schemes_and_virtual_file_systems_are_refused(href: str):
    with pytest.raises(SourceRootError, match=r"neither a local path|virtual file system"):
        local_path(href)


# --- check_under_roots ------------------------------------------------------------------------
def test_a_file_under_a_root_passes_resolved(tree):
    root, _ = tree
    assert check_under_roots(root / "sub" / ".." / "x.tif", [root]) == root / "x.tif"
    assert check_under_roots(root, [root]) == root
    check_href(f"file://{root}/x.tif", [root])


def test_dotdot_out_of_a_root_is_refused_naming_path_and_roots(tree):
    root, outside = tree
    sneaky = f"{root}/../outside/x.tif"
    with pytest.raises(SourceRootError) as e:
        check_under_roots(sneaky, [root])
    assert sneaky in str(e.value) and str(outside / "x.tif") in str(e.value)
    assert str(root) in str(e.value) and e.value.roots == [root]


def test_a_symlink_out_of_a_root_is_refused(tree):
    root, outside = tree
    (root / "link.tif").symlink_to(outside / "x.tif")
    (root / "dir").symlink_to(outside)
    for path in (root / "link.tif", root / "dir" / "x.tif", root / "dir" / "new.tif"):
        with pytest.raises(SourceRootError, match="resolved: "):
            check_under_roots(path, [root])


def test_a_root_given_through_a_symlink_is_its_target(tree, tmp_path: Path):
    root, _ = tree
    (tmp_path / "alias").symlink_to(root)
    assert check_under_roots(root / "x.tif", [tmp_path / "alias"]) == root / "x.tif"
    assert check_under_roots(tmp_path / "alias" / "x.tif", [root]) == root / "x.tif"


def test_a_sibling_with_the_root_as_prefix_is_outside(tmp_path: Path):
    (tmp_path / "data").mkdir()
    with pytest.raises(SourceRootError):
        check_under_roots(tmp_path / "data-other" / "x.tif", [tmp_path / "data"])


def test_no_roots_refuse_everything_and_none_restricts_nothing(tree):
    root, _ = tree
    with pytest.raises(SourceRootError, match="none are allowed"):
        check_under_roots(root / "x.tif", [])
    check_href("/etc/passwd", None)


# --- parse_roots ------------------------------------------------------------------------------
def test_parse_roots_splits_on_pathsep_and_commas(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    value = f"{tmp_path}/a{os.pathsep}{tmp_path}/b, ~/c ,,{os.pathsep}"
    assert parse_roots(value) == [tmp_path / "a", tmp_path / "b", tmp_path / "c"]
    assert parse_roots("  ") == []


# --- the sources ------------------------------------------------------------------------------
def test_stac_catalogue_outside_the_roots_is_refused_at_construction(tree):
    root, outside = tree
    cat = write_catalog(outside / "cat", str(outside / "x.tif"))
    for url in (str(cat), f"file://{cat}", str(outside / "cat"), "/etc"):
        with pytest.raises(SourceRootError):
            StacSource(url=url, modality="sentinel1", allowed_roots=[root])
    StacSource(url=str(cat), modality="sentinel1")  # no roots: the CLI reads anything


def test_stac_asset_outside_the_roots_is_refused_before_it_is_read(tree):
    root, outside = tree
    escape = "../../../outside/x.tif"  # from root/cat/it/it.json
    for href in ("/etc/passwd", str(outside / "x.tif"), escape):
        cat = write_catalog(root / "cat", href)
        source = StacSource(url=str(cat), modality="sentinel1", allowed_roots=[root])
        with pytest.raises(SourceRootError, match=r"STAC item it of .*outside the folders"):
            source.search(window())
        # unrestricted, the same item maps (the CLI reads what its user may read)
        (item,) = StacSource(url=str(cat), modality="sentinel1").search(window())
        assert set(item.assets) == {"VV", "VH"}


def test_stac_asset_under_the_roots_and_remote_assets_pass(tree):
    root, _ = tree
    for href in ("../../x.tif", str(root / "x.tif"), "https://example.com/a.tif"):
        cat = write_catalog(root / "cat", href)
        source = StacSource(url=str(cat), modality="sentinel1", allowed_roots=[root])
        (item,) = source.search(window())
        assert item.assets["VV"].href in (str(root / "x.tif"), href)


def test_stac_links_out_of_the_roots_are_not_followed(tree):
    root, outside = tree
    cat = write_catalog(root / "cat", str(root / "x.tif"), item_dir="../../outside/it")
    assert (outside / "it" / "it.json").is_file()
    source = StacSource(url=str(cat), modality="sentinel1", allowed_roots=[root])
    with pytest.raises(SourceRootError, match=re.escape(str(outside / "it" / "it.json"))):
        source.search(window())


def test_local_source_files_outside_the_roots_are_refused(tree):
    root, outside = tree
    (root / "link.tif").symlink_to(outside / "x.tif")
    for paths, quality in (
        ([str(outside / "x.tif")], None),
        ([str(root / "*.tif")], None),  # the glob matches the symlink
        ([str(root / "x.tif")], str(outside / "x.tif")),
    ):
        source = LocalSource(paths, "sentinel1", quality=quality, allowed_roots=[root])
        with pytest.raises(SourceRootError):
            source.items()
