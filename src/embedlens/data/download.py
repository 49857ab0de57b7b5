"""Finding a MovieLens variant on disk, or downloading it once with a verified checksum.

Where a variant is looked for, in order:

1. ``data_dir`` given explicitly (``--data-dir``): ``<dir>/<variant>/``, ``<dir>/<variant>.zip``,
   or ``dir`` itself when it *is* the variant's folder or zip. Nothing is downloaded then.
2. The cache: ``$EMBEDLENS_DATA_DIR`` or the platform cache (``~/.cache/embedlens``), searched
   the same way; a missing variant is downloaded there, verified, extracted.

The cache is safe under concurrent use: one process at a time downloads and extracts a
variant (a lock file per variant; the others wait, then find it cached). The archive is
written to a temporary file and renamed into place only once its checksum matched; it is
extracted into a folder of its own and renamed into place only when complete, so a cached
folder is either complete or absent. A rejected archive (checksum, bad zip, a damaged or
oversized member) is deleted. A cached folder embedlens extracted that has lost a file is
detected and fetched again.

Downloads go to GroupLens, or to ``$EMBEDLENS_MOVIELENS_URL`` (a mirror holding the same
archives; proxies are taken from the usual ``HTTPS_PROXY``). A transfer that receives nothing
for :data:`STALL_SECONDS` is reported as stalled; a whole download is given at most
``$EMBEDLENS_DOWNLOAD_TIMEOUT`` seconds (default 3600).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import time
import zipfile
from pathlib import Path

import requests

from embedlens.core.errors import DataError, DatasetNotAvailableError, DownloadError, EmbedlensError
from embedlens.core.files import atomic_path, file_lock
from embedlens.core.progress import bar
from embedlens.data.registry import Variant

MIRROR_ENV = "EMBEDLENS_MOVIELENS_URL"
DEADLINE_ENV = "EMBEDLENS_DOWNLOAD_TIMEOUT"
DEFAULT_DEADLINE_SECONDS = 3600.0
#: Seconds without a byte before a transfer counts as stalled (and seconds to connect).
STALL_SECONDS = 60.0
#: A zip member may unpack to at most this many bytes (the largest MovieLens file is ~1 GB)
#: and at most this many times its compressed size (CSV compresses 3-8x): a 2 MB archive
#: claiming 1 GiB is refused instead of being read.
MAX_MEMBER_BYTES = 4 << 30
MAX_MEMBER_RATIO = 100
#: Files every copy of a layout has; a cached folder without one is incomplete.
REQUIRED_FILES = {"100k": ("u.data", "u.item", "u.user"), "dat": ("ratings.dat", "movies.dat"),
                  "csv": ("ratings.csv", "movies.csv")}
#: Written into a folder embedlens extracted, so only such a folder is ever replaced.
EXTRACTED_MARKER = ".embedlens-extracted"


def cache_dir() -> Path:
    """The download cache: ``$EMBEDLENS_DATA_DIR`` or the platform's user cache folder."""
    env = os.environ.get("EMBEDLENS_DATA_DIR")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("embedlens"))


def variant_url(variant: Variant) -> str:
    """Where the variant's archive is downloaded from (the mirror when one is set)."""
    base = os.environ.get(MIRROR_ENV) or variant.base_url
    return f"{base.rstrip('/')}/{variant.archive}"


def missing_files(variant: Variant, folder: Path) -> list[str]:
    """The layout's required files that ``folder`` lacks."""
    return [f for f in REQUIRED_FILES[variant.layout] if not (folder / f).is_file()]


def find_local(variant: Variant, directory: Path) -> Path | None:
    """The variant's extracted folder or zip inside ``directory`` (or ``directory`` itself)."""
    directory = Path(directory).expanduser()
    if directory.name in (variant.name, variant.folder) and directory.is_dir():
        return directory
    if directory.is_file() and directory.name == variant.archive:
        return directory
    for candidate in (directory / variant.folder, directory / variant.name):
        if candidate.is_dir() and any(candidate.iterdir()):
            return candidate
    archive = directory / variant.archive
    return archive if archive.is_file() else None


def locate(variant: Variant, data_dir: str | Path | None = None, download: bool = True) -> Path:
    """Path to the variant's folder or zip, downloading into the cache when allowed."""
    if data_dir is not None:
        found = find_local(variant, Path(data_dir))
        if found is None:
            raise DatasetNotAvailableError(
                f"{variant.name} is not in {data_dir}: expected {variant.archive} or an "
                f"extracted {variant.folder}/ folder there."
            )
        if found.is_dir() and missing_files(variant, found):
            raise DataError(f"{found} is not a complete {variant.name} copy: it has no "
                            f"{', '.join(missing_files(variant, found))}.")
        return found
    cache = cache_dir()
    found = _cached(variant, cache)
    if found is not None:
        return found
    if not download:
        raise DatasetNotAvailableError(_where_to_put(variant, cache))

    def waiting() -> None:
        from embedlens.core.progress import note

        note(f"Waiting for another embedlens process to finish fetching {variant.name} …")

    with file_lock(cache / f".{variant.name}.lock", waiting):
        found = _cached(variant, cache)  # it may have finished while we waited
        return found if found is not None else fetch(variant, cache)


def _cached(variant: Variant, cache: Path) -> Path | None:
    """A complete cached folder, else a cached (verified) archive, else None. A folder
    embedlens extracted that has lost a file is removed, so the variant is fetched again."""
    for folder in dict.fromkeys((cache / variant.folder, cache / variant.name)):
        if not folder.is_dir() or folder.is_symlink():
            continue
        lacking = missing_files(variant, folder)
        if not lacking:
            return folder
        if (folder / EXTRACTED_MARKER).is_file():
            _remove_aside(folder)
        else:
            raise DataError(f"{folder} is an incomplete {variant.name} copy (no "
                            f"{', '.join(lacking)}) that embedlens did not make; complete it "
                            "or remove it.")
    archive = cache / variant.archive
    return archive if archive.is_file() else None


def state(variant: Variant, data_dir: str | Path | None = None) -> str:
    """``"local"`` (found in data_dir), ``"cached"`` or ``"not downloaded"``."""
    if data_dir is not None and find_local(variant, Path(data_dir)) is not None:
        return "local"
    cache = cache_dir()
    folders = (cache / variant.folder, cache / variant.name)
    complete = any(f.is_dir() and not missing_files(variant, f) for f in folders)
    return "cached" if complete or (cache / variant.archive).is_file() else "not downloaded"


def fetch(variant: Variant, dest: Path) -> Path:
    """Download ``variant``'s zip into ``dest``, verify it, extract it; return the folder.

    A checksum mismatch, a broken or stalled transfer raise :class:`DownloadError` and leave
    no file behind; no network raises :class:`DatasetNotAvailableError` saying where to put
    the zip. Callers that may race hold the variant's lock (:func:`locate` does).
    """
    dest.mkdir(parents=True, exist_ok=True)
    url = variant_url(variant)
    deadline = time.monotonic() + _deadline_seconds()
    expected = f"sha256:{variant.sha256}" if variant.sha256 else _published_md5(
        variant, url, dest)
    archive = dest / variant.archive
    download(url, archive, expected, variant.size, deadline, _where_to_put(variant, dest))
    return extract(archive, dest, variant)


def _deadline_seconds() -> float:
    raw = os.environ.get(DEADLINE_ENV)
    if not raw:
        return DEFAULT_DEADLINE_SECONDS
    try:
        seconds = float(raw)
    except ValueError:
        seconds = -1.0
    if not seconds > 0:
        raise DataError(f"{DEADLINE_ENV} must be a positive number of seconds, got {raw!r}.")
    return seconds


def download(url: str, target: Path, expected: str, size: int | None, deadline: float,
             where: str) -> Path:
    """Stream ``url`` into ``target`` (atomically) while hashing it; ``expected`` is
    ``"sha256:<hex>"`` or ``"md5:<hex>"``. Nothing is kept unless the digest matches."""
    algorithm, digest = expected.split(":", 1)
    hasher = hashlib.new(algorithm)
    got = 0
    with atomic_path(target) as tmp:
        try:
            with requests.get(url, stream=True, timeout=(STALL_SECONDS, STALL_SECONDS),
                              headers={"Accept-Encoding": "identity"}) as resp:
                resp.raise_for_status()
                total = int(resp.headers.get("Content-Length") or 0) or size
                with open(tmp, "wb") as fh, bar(f"download {target.name}", total, "B") as pb:
                    # read1 returns what has arrived, so the deadline is checked while a
                    # slow server trickles, not only after a whole megabyte came in
                    while chunk := _read_some(resp):
                        fh.write(chunk)
                        hasher.update(chunk)
                        got += len(chunk)
                        pb.update(len(chunk))
                        if time.monotonic() > deadline:
                            raise DownloadError(
                                f"Download of {url} did not finish within "
                                f"{_deadline_seconds():g} s (set {DEADLINE_ENV} to allow "
                                f"more); {got / 2**20:.1f} MB received, nothing kept.")
        except requests.HTTPError as exc:
            status = exc.response.status_code if exc.response is not None else "?"
            raise DownloadError(f"{url} answered HTTP {status}; nothing was kept. {where}") \
                from None
        except requests.RequestException as exc:
            raise _transfer_error(exc, url, got, where) from None
        if total and got != total:
            raise DownloadError(f"Download of {url} was interrupted ({got:,} of {total:,} "
                                "bytes); no partial file was kept. Try again.")
        if hasher.hexdigest() != digest.lower():
            raise DownloadError(
                f"Checksum mismatch for {target.name} from {url}: the file is corrupt or not "
                f"the official release and was not kept ({algorithm} {hasher.hexdigest()}, "
                f"expected {digest}).")
    return target


def _read_some(resp: requests.Response) -> bytes:
    """Up to 1 MiB of the body, as soon as any has arrived (urllib3 errors as requests')."""
    import urllib3

    try:
        return resp.raw.read1(1 << 20)
    except urllib3.exceptions.ReadTimeoutError as exc:
        raise requests.ReadTimeout(str(exc)) from None
    except (urllib3.exceptions.ProtocolError, urllib3.exceptions.IncompleteRead) as exc:
        raise requests.exceptions.ChunkedEncodingError(str(exc)) from None


def _transfer_error(exc: requests.RequestException, url: str, got: int, where: str
                    ) -> EmbedlensError:
    """One error per way a transfer fails: stalled, unreachable, or cut off."""
    text = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, requests.ConnectTimeout) or (
            isinstance(exc, requests.ConnectionError) and got == 0 and "timed out" not in text
            and not isinstance(exc, requests.ReadTimeout)):
        return DatasetNotAvailableError(f"Could not reach {url} ({type(exc).__name__}). "
                                        + where)
    if isinstance(exc, requests.Timeout) or "Read timed out" in text:
        return DownloadError(f"Download of {url} stalled: no data for {STALL_SECONDS:g} s "
                             f"after {got / 2**20:.1f} MB; nothing was kept. Try again, or set "
                             f"{MIRROR_ENV} to a mirror.")
    return DownloadError(f"Download of {url} was interrupted or failed ({type(exc).__name__}) "
                         f"after {got / 2**20:.1f} MB; no partial file was kept. Try again.")


def check_members(zf: zipfile.ZipFile, name: str, error: type[EmbedlensError]) -> None:
    """Refuse an archive with an unsafe path or a member that would unpack too large."""
    for info in zf.infolist():
        parts = Path(info.filename).parts
        if info.filename.startswith(("/", "\\")) or ".." in parts or ":" in info.filename:
            raise error(f"{name} holds an unsafe path {info.filename!r}; refused.")
        if info.file_size > MAX_MEMBER_BYTES or (
                info.file_size > 1 << 20
                and info.file_size > MAX_MEMBER_RATIO * max(1, info.compress_size)):
            raise error(f"{name}: member {info.filename} claims {info.file_size:,} bytes from "
                        f"{info.compress_size:,} compressed; refused as not a MovieLens "
                        "archive.")


def extract(archive: Path, dest: Path, variant: Variant | None = None) -> Path:
    """Extract ``archive`` into ``dest`` atomically: into a folder of its own first, renamed
    into place only when complete. A damaged archive is deleted."""
    work = Path(tempfile.mkdtemp(prefix=f".{archive.stem}.extract-", dir=dest))
    try:
        try:
            with zipfile.ZipFile(archive) as zf:
                check_members(zf, archive.name, DownloadError)
                zf.extractall(work)  # checks each member's CRC-32 as it reads it
        except (zipfile.BadZipFile, EOFError, OSError) as exc:
            archive.unlink(missing_ok=True)
            raise DownloadError(f"{archive.name} is damaged ({exc}); removed it. Fetch it "
                                "again.") from None
        except DownloadError:
            archive.unlink(missing_ok=True)
            raise
        top = list(work.iterdir())
        if len(top) == 1 and top[0].is_dir():
            src = top[0]
            target = dest / src.name
        else:
            src = work
            target = dest / archive.stem
        if variant is not None and missing_files(variant, src):
            archive.unlink(missing_ok=True)
            raise DownloadError(f"{archive.name} lacks {', '.join(missing_files(variant, src))}; "
                                "removed it.")
        (src / EXTRACTED_MARKER).write_text("extracted by embedlens\n")
        if target.exists():
            if not (target / EXTRACTED_MARKER).is_file():
                raise DataError(f"{target} already exists and was not made by embedlens; "
                                "move it away to extract the download.")
            _remove_aside(target)
        src.rename(target)
        return target
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _remove_aside(folder: Path) -> None:
    """Delete an embedlens-made folder: renamed away first, so readers never see it half
    deleted."""
    doomed = folder.with_name(f".{folder.name}.removing-{os.getpid()}-{time.time_ns()}")
    folder.rename(doomed)
    shutil.rmtree(doomed, ignore_errors=True)


def _published_md5(variant: Variant, url: str, dest: Path) -> str:
    """The digest GroupLens publishes as ``<archive>.md5``, for variants without a pinned sha256."""
    try:
        resp = requests.get(url + ".md5", timeout=(STALL_SECONDS, STALL_SECONDS))
        resp.raise_for_status()
    except requests.HTTPError as exc:
        raise DownloadError(f"Could not fetch the checksum {url}.md5: {exc}") from None
    except requests.RequestException as exc:
        raise _transfer_error(exc, url + ".md5", 0, _where_to_put(variant, dest)) from None
    words = resp.text.split()
    digest = words[0].strip().lower() if words else ""
    if len(digest) != 32 or any(c not in "0123456789abcdef" for c in digest):
        raise DownloadError(f"{url}.md5 does not hold an MD5 digest: {resp.text[:80]!r}")
    return f"md5:{digest}"


def _where_to_put(variant: Variant, cache: Path) -> str:
    return (
        f"Offline or behind a proxy? Download {variant.url} elsewhere and put "
        f"{variant.archive} (or its extracted {variant.folder}/ folder) in {cache}, pass "
        f"--data-dir / data_dir= pointing at the folder that holds it, or set {MIRROR_ENV} "
        "to a mirror."
    )
