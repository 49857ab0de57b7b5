"""The real download path, against a local HTTP server on 127.0.0.1 serving a zip built here."""

from __future__ import annotations

import dataclasses
import hashlib
import threading
import time
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from embedlens.core.errors import DataError, DatasetNotAvailableError, DownloadError
from embedlens.data import download, load_movielens, registry
from embedlens.data.download import EXTRACTED_MARKER, cache_dir, fetch


def _ml1m_zip(tmp_path):
    path = tmp_path / "ml-1m.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("ml-1m/ratings.dat", "1::10::5::978300760\n2::10::4::978301968\n")
        zf.writestr("ml-1m/movies.dat", "10::Heat (1995)::Action|Crime\n")
    return path.read_bytes()


class _Server:
    """Serves /<mode>/ml-1m.zip: ok (full file), cut (connection dropped half way), stall
    (half, then silence), slow (a few bytes at a time)."""

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
                if self.path.startswith("/stall/"):
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    time.sleep(3)
                    return
                if self.path.startswith("/slow/"):
                    for start in range(0, len(body), 8):
                        self.wfile.write(body[start : start + 8])
                        self.wfile.flush()
                        time.sleep(0.05)
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
    with pytest.raises(DatasetNotAvailableError, match="Offline or behind a proxy"):
        load_movielens("ml-1m", download=False)


def test_concurrent_first_downloads_fetch_once_and_all_load(server, monkeypatch):
    monkeypatch.setitem(registry.VARIANTS, "ml-1m", _variant(server))
    results, errors = [], []

    def load():
        try:
            results.append(load_movielens("ml-1m").n_interactions)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=load) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and results == [2] * 8
    assert server.hits == ["/ok/ml-1m.zip"]
    folder = cache_dir() / "ml-1m"
    assert (folder / "ratings.dat").is_file() and (folder / EXTRACTED_MARKER).is_file()
    assert not [p for p in cache_dir().iterdir() if ".extract-" in p.name]


def test_an_incomplete_cached_folder_is_detected_and_fetched_again(server, monkeypatch):
    monkeypatch.setitem(registry.VARIANTS, "ml-1m", _variant(server))
    load_movielens("ml-1m")
    (cache_dir() / "ml-1m" / "ratings.dat").unlink()
    assert load_movielens("ml-1m").n_interactions == 2  # from the verified archive
    (cache_dir() / "ml-1m.zip").unlink()
    assert load_movielens("ml-1m").n_interactions == 2  # downloaded again
    assert server.hits == ["/ok/ml-1m.zip", "/ok/ml-1m.zip"]
    assert (cache_dir() / "ml-1m" / "ratings.dat").is_file()


def test_an_incomplete_folder_embedlens_did_not_make_is_left_alone(server, monkeypatch):
    monkeypatch.setitem(registry.VARIANTS, "ml-1m", _variant(server))
    mine = cache_dir() / "ml-1m"
    mine.mkdir(parents=True)
    (mine / "notes.txt").write_text("mine")
    with pytest.raises(DataError, match="did not make"):
        load_movielens("ml-1m")
    assert (mine / "notes.txt").read_text() == "mine"


def _zip_bytes(members: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    import io

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def test_a_member_with_a_bad_crc_is_rejected_and_the_archive_deleted(tmp_path):
    payload = bytearray(_zip_bytes({"ml-1m/ratings.dat": b"1::10::5::978300760\n" * 50,
                                    "ml-1m/movies.dat": b"10::Heat (1995)::Action\n"},
                                   zipfile.ZIP_STORED))
    info = zipfile.ZipFile(__import__("io").BytesIO(bytes(payload))).getinfo(
        "ml-1m/ratings.dat")
    # a stored member's data follows its 30-byte local header, name and extra field
    payload[info.header_offset + 30 + len(info.filename) + len(info.extra) + 5] ^= 0x01
    srv = _Server(bytes(payload))
    try:
        with pytest.raises(DownloadError, match="damaged"):
            fetch(_variant(srv), tmp_path / "cache")
    finally:
        srv.close()
    assert list((tmp_path / "cache").iterdir()) == []


def test_a_member_that_unpacks_far_too_large_is_refused(tmp_path):
    bomb = _zip_bytes({"ml-1m/ratings.dat": b"0" * (8 << 20), "ml-1m/movies.dat": b"x"})
    srv = _Server(bomb)
    try:
        with pytest.raises(DownloadError, match="refused"):
            fetch(_variant(srv), tmp_path / "cache")
    finally:
        srv.close()
    assert list((tmp_path / "cache").iterdir()) == []


def test_a_stall_is_reported_as_a_stall(server, tmp_path, monkeypatch):
    monkeypatch.setattr(download, "STALL_SECONDS", 0.5)
    with pytest.raises(DownloadError, match="stalled"):
        fetch(_variant(server, mode="stall"), tmp_path / "cache")
    assert list((tmp_path / "cache").iterdir()) == []


def test_an_overall_deadline_stops_a_trickling_download(server, tmp_path, monkeypatch):
    monkeypatch.setenv("EMBEDLENS_DOWNLOAD_TIMEOUT", "0.3")
    with pytest.raises(DownloadError, match="did not finish within 0.3 s"):
        fetch(_variant(server, mode="slow"), tmp_path / "cache")
    assert list((tmp_path / "cache").iterdir()) == []


def test_a_mirror_replaces_grouplens(server, monkeypatch):
    unreachable = dataclasses.replace(_variant(server), base_url="http://127.0.0.1:9")
    monkeypatch.setitem(registry.VARIANTS, "ml-1m", unreachable)
    monkeypatch.setenv("EMBEDLENS_MOVIELENS_URL", f"{server.url}/ok/")
    assert load_movielens("ml-1m").n_interactions == 2
    assert server.hits == ["/ok/ml-1m.zip"]
