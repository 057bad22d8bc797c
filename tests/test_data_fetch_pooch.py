"""Downloads through pooch, against a real HTTP server on 127.0.0.1 (never the internet).

The server serves real zip archives of MovieLens-format files; the catalogue entry under test is
pointed at it. Checked: a good download is verified, unpacked and cached; a checksum mismatch is
one clear error and leaves nothing in the cache; an unreachable server falls back to the RecBole
copy for MovieLens-100K and is a clear error otherwise; a 404 is a clear error.
"""

from __future__ import annotations

import hashlib
import http.server
import socket
import threading
import zipfile
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pandas as pd
import pytest

from datalever.data import registry
from datalever.errors import DataleverError
from tests.test_data import write_1m, write_recbole, zip_folder


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # keep the test output clean
        pass


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path, list[str]]]:
    """An HTTP server on 127.0.0.1 serving ``root``; yields (base URL, root, requested paths)."""
    root = tmp_path / "www"
    root.mkdir()
    requested: list[str] = []

    class Handler(_Quiet):
        def do_GET(self) -> None:
            requested.append(self.path)
            super().do_GET()

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", root, requested
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "cache"
    monkeypatch.setenv("DATALEVER_CACHE", str(root))
    return root


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def _point_at(
    monkeypatch: pytest.MonkeyPatch, name: str, url: str, md5: str | None
) -> registry.DatasetInfo:
    info = registry.CATALOGUE[name]
    patched = registry.DatasetInfo(
        info.name, url, md5, info.description, info.formats, info.rating_scale
    )
    monkeypatch.setitem(registry.CATALOGUE, name, patched)
    return patched


def _closed_port() -> int:
    """A port on 127.0.0.1 nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_download_is_verified_unpacked_and_cached(tmp_path, cache, server, monkeypatch):
    base, root, requested = server
    archive = zip_folder(write_1m(tmp_path / "src"), root / "ml-1m.zip", "ml-1m")
    md5 = hashlib.md5(archive.read_bytes()).hexdigest()
    _point_at(monkeypatch, "movielens-1m", f"{base}/ml-1m.zip", md5)

    folder = registry.fetch_dataset("movielens-1m", progress=False)

    assert folder == cache / "movielens-1m"
    assert (folder / "ml-1m" / "ratings.dat").exists()
    assert registry.cached_source("movielens-1m") == "grouplens"
    marker = (folder / registry.MARKER).read_text()
    assert f"{base}/ml-1m.zip" in marker and md5 in marker
    # No archive, download folder or temporary file is left beside the dataset.
    assert [p.name for p in cache.iterdir()] == ["movielens-1m"]
    c = registry.load_dataset("movielens-1m", fetch=False)
    assert (c.name, len(c), c.rating_scale) == ("movielens-1m", 4, (1.0, 5.0))
    again = registry.load_dataset("ml-1m")
    assert again.checksum() == c.checksum()
    pd.testing.assert_frame_equal(again.contributors, c.contributors)
    # The cache answers the second fetch: the server was asked once.
    registry.fetch_dataset("movielens-1m", progress=False)
    assert requested == ["/ml-1m.zip"]


def test_download_with_progress_bar(tmp_path, cache, server, monkeypatch, capsys):
    base, root, _ = server
    archive = zip_folder(write_1m(tmp_path / "src"), root / "ml-1m.zip", "ml-1m")
    md5 = hashlib.md5(archive.read_bytes()).hexdigest()
    _point_at(monkeypatch, "movielens-1m", f"{base}/ml-1m.zip", md5)
    registry.fetch_dataset("movielens-1m", progress=True)
    err = capsys.readouterr().err
    assert f"downloading {base}/ml-1m.zip" in err
    assert registry.is_fetched("movielens-1m")


def test_checksum_mismatch_is_clear_and_leaves_nothing(tmp_path, cache, server, monkeypatch):
    base, root, requested = server
    zip_folder(write_1m(tmp_path / "src"), root / "ml-1m.zip", "ml-1m")
    _point_at(monkeypatch, "movielens-1m", f"{base}/ml-1m.zip", "0" * 32)
    with pytest.raises(DataleverError) as err:
        registry.fetch_dataset("movielens-1m", progress=False)
    assert "does not match the published checksum " + "0" * 32 in err.value.problem
    assert "--path" in err.value.fix
    assert requested == ["/ml-1m.zip"]  # it was downloaded, then refused
    assert _files(cache) == [] and list(cache.iterdir()) == []
    assert not registry.is_fetched("movielens-1m")


def test_unpinned_entry_downloads_without_a_checksum(tmp_path, cache, server, monkeypatch):
    base, root, _ = server
    src = tmp_path / "src"
    src.mkdir()
    (src / "ratings.csv").write_text("userId,movieId,rating,timestamp\n1,2,3.5,10\n2,2,4,11\n")
    zip_folder(src, root / "ml-latest-small.zip", "ml-latest-small")
    _point_at(monkeypatch, "movielens-latest-small", f"{base}/ml-latest-small.zip", None)
    registry.fetch_dataset("movielens-latest-small", progress=False)
    c = registry.load_dataset("movielens-latest-small", fetch=False)
    assert (len(c), c.n_contributors) == (2, 2)


def test_zip_slip_and_bomb_guards_still_apply_to_downloads(tmp_path, cache, server, monkeypatch):
    base, root, _ = server
    evil = root / "ml-latest-small.zip"
    with zipfile.ZipFile(evil, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("ml-latest-small/ratings.csv", b"0" * (4 << 20))
    _point_at(monkeypatch, "movielens-latest-small", f"{base}/ml-latest-small.zip", None)
    monkeypatch.setenv("DATALEVER_MAX_DECOMPRESSED_BYTES", str(1 << 20))
    with pytest.raises(DataleverError, match="decompresses to more than 1,048,576 bytes"):
        registry.fetch_dataset("movielens-latest-small", progress=False)
    assert _files(cache) == []

    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr("../../escaped.csv", "userId,movieId,rating\n1,2,3\n")
    monkeypatch.delenv("DATALEVER_MAX_DECOMPRESSED_BYTES")
    with pytest.raises(DataleverError):
        registry.fetch_dataset("movielens-latest-small", progress=False)
    assert not (tmp_path / "escaped.csv").exists() and not (cache.parent / "escaped.csv").exists()
    assert _files(cache) == []


def test_missing_file_on_the_server_is_a_clear_error(cache, server, monkeypatch):
    base, _, _ = server
    _point_at(monkeypatch, "movielens-25m", f"{base}/ml-25m.zip", "0" * 32)
    with pytest.raises(DataleverError) as err:
        registry.fetch_dataset("movielens-25m", progress=False)
    assert "Could not download movielens-25m" in err.value.problem
    assert "HTTP 404" in err.value.problem
    assert "--path" in err.value.fix
    assert _files(cache) == []


def test_unreachable_server_without_fallback_is_a_clear_error(cache, monkeypatch):
    url = f"http://127.0.0.1:{_closed_port()}/ml-25m.zip"
    _point_at(monkeypatch, "movielens-25m", url, "0" * 32)
    with pytest.raises(DataleverError) as err:
        registry.fetch_dataset("movielens-25m", progress=False)
    assert "Could not download movielens-25m" in err.value.problem
    assert "cannot connect" in err.value.problem
    assert "datalever data fetch movielens-25m --path FILE" in err.value.fix
    assert _files(cache) == [] and list(cache.iterdir()) == []


def test_unreachable_server_falls_back_to_recbole_for_100k(cache, monkeypatch, capsys):
    url = f"http://127.0.0.1:{_closed_port()}/ml-100k.zip"
    _point_at(monkeypatch, "movielens-100k", url, "0" * 32)
    calls = []

    def recbole_from_a_local_wheel(info, progress):
        # Stands in for pip only: the files are the RecBole atomic files the wheel carries.
        calls.append(info.name)
        staging = registry._staging_dir(info)
        write_recbole(staging, "ml-100k")
        return registry._install(staging, info, "recbole", {})

    monkeypatch.setattr(registry, "_fetch_recbole", recbole_from_a_local_wheel)
    registry.fetch_dataset("movielens-100k", progress=True)
    assert calls == ["movielens-100k"]
    assert "GroupLens unreachable (cannot connect); trying PyPI" in capsys.readouterr().err
    assert registry.cached_source("movielens-100k") == "recbole"
    assert [p.name for p in cache.iterdir()] == ["movielens-100k"]
    # "auto" now uses the cache.
    registry.fetch_dataset("movielens-100k", progress=False)
    assert calls == ["movielens-100k"]
    assert registry.load_dataset("movielens-100k").rating_scale == (1.0, 5.0)


def test_local_zip_is_verified_with_the_same_checksum(tmp_path, cache):
    archive = zip_folder(write_1m(tmp_path / "src"), tmp_path / "ml-1m.zip", "ml-1m")
    with pytest.raises(DataleverError, match=r"has MD5 [0-9a-f]{32}, but the published"):
        registry.fetch_dataset("movielens-1m", path=archive, progress=False)
    assert archive.exists() and _files(cache) == []
