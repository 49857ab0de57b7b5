"""The real download path, against a local HTTP server on 127.0.0.1 serving a zip built here."""

from __future__ import annotations

import dataclasses
import hashlib
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from embedlens.data import load_movielens, registry
from embedlens.data.download import cache_dir, fetch
from embedlens.errors import DatasetNotAvailableError, DownloadError


def _ml1m_zip(tmp_path):
    path = tmp_path / "ml-1m.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("ml-1m/ratings.dat", "1::10::5::978300760\n2::10::4::978301968\n")
        zf.writestr("ml-1m/movies.dat", "10::Heat (1995)::Action|Crime\n")
    return path.read_bytes()


class _Server:
    """Serves /<mode>/ml-1m.zip: ok (full file), cut (connection dropped half way)."""

    def __init__(self, payload: bytes):
        self.payload = payload
        self.hits: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                server.hits.append(self.path)
                body = server.payload
                if self.path.endswith(".md5"):
                    digest = hashlib.md5(body).hexdigest()
                    out = f"{digest}  ml-1m.zip\n".encode()
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(out)))
                    self.end_headers()
                    self.wfile.write(out)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.path.startswith("/cut/"):
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.connection.close()
                    return
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server(tmp_path):
    srv = _Server(_ml1m_zip(tmp_path))
    yield srv
    srv.close()


def _variant(server, mode="ok", sha=None):
    real = hashlib.sha256(server.payload).hexdigest()
    return dataclasses.replace(
        registry.VARIANTS["ml-1m"],
        base_url=f"{server.url}/{mode}",
        sha256=real if sha is None else sha,
        size=len(server.payload),
    )


def test_good_checksum_downloads_once_and_loads(server, monkeypatch):
    monkeypatch.setitem(registry.VARIANTS, "ml-1m", _variant(server))
    ds = load_movielens("ml-1m")
    assert ds.n_interactions == 2
    assert (cache_dir() / "ml-1m.zip").is_file()
    assert (cache_dir() / "ml-1m" / "ratings.dat").is_file()
    again = load_movielens("ml-1m")
    assert again.n_interactions == 2
    assert server.hits == ["/ok/ml-1m.zip"]  # the second load came from the cache


def test_bad_checksum_is_rejected_and_not_kept(server, tmp_path):
    variant = _variant(server, sha="0" * 64)
    with pytest.raises(DownloadError, match="Checksum mismatch"):
        fetch(variant, tmp_path / "cache")
    assert list((tmp_path / "cache").iterdir()) == []


def test_interrupted_download_leaves_nothing(server, tmp_path):
    with pytest.raises(DownloadError, match="interrupted"):
        fetch(_variant(server, mode="cut"), tmp_path / "cache")
    assert list((tmp_path / "cache").iterdir()) == []


def test_unpinned_variant_verified_by_published_md5(server, tmp_path):
    variant = dataclasses.replace(_variant(server), sha256=None, size=None)
    folder = fetch(variant, tmp_path / "cache")
    assert (folder / "movies.dat").is_file()
    assert server.hits == ["/ok/ml-1m.zip.md5", "/ok/ml-1m.zip"]


def test_offline_says_where_to_put_the_zip(monkeypatch):
    # port 9 on loopback: nothing listens, the connection is refused at once
    offline = dataclasses.replace(registry.VARIANTS["ml-1m"], base_url="http://127.0.0.1:9")
    monkeypatch.setitem(registry.VARIANTS, "ml-1m", offline)
    with pytest.raises(DatasetNotAvailableError) as err:
        load_movielens("ml-1m")
    assert "ml-1m.zip" in str(err.value) and str(cache_dir()) in str(err.value)


def test_no_download_flag(monkeypatch):
    with pytest.raises(DatasetNotAvailableError, match="Offline"):
        load_movielens("ml-1m", download=False)
