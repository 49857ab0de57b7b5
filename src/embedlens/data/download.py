"""Finding a MovieLens variant on disk, or downloading it once with a verified checksum.

Where a variant is looked for, in order:

1. ``data_dir`` given explicitly (``--data-dir``): ``<dir>/<variant>/``, ``<dir>/<variant>.zip``,
   or ``dir`` itself when it *is* the variant's folder or zip. Nothing is downloaded then.
2. The cache: ``$EMBEDLENS_DATA_DIR`` or the platform cache (``~/.cache/embedlens``), searched
   the same way; a missing variant is downloaded there from GroupLens, verified, extracted.
"""

from __future__ import annotations

import os
import shutil
import zipfile
from pathlib import Path

import pooch
import requests

from embedlens.data.registry import Variant
from embedlens.errors import DatasetNotAvailableError, DownloadError
from embedlens.progress import is_quiet


def cache_dir() -> Path:
    """The download cache: ``$EMBEDLENS_DATA_DIR`` or the platform's user cache folder."""
    env = os.environ.get("EMBEDLENS_DATA_DIR")
    return Path(env).expanduser() if env else Path(pooch.os_cache("embedlens"))


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
        return found
    cache = cache_dir()
    found = find_local(variant, cache)
    if found is not None:
        return found
    if not download:
        raise DatasetNotAvailableError(_where_to_put(variant, cache))
    return fetch(variant, cache)


def state(variant: Variant, data_dir: str | Path | None = None) -> str:
    """``"local"`` (found in data_dir), ``"cached"`` or ``"not downloaded"``."""
    if data_dir is not None and find_local(variant, Path(data_dir)) is not None:
        return "local"
    return "cached" if find_local(variant, cache_dir()) is not None else "not downloaded"


def fetch(variant: Variant, dest: Path) -> Path:
    """Download ``variant``'s zip into ``dest``, verify it, extract it; return the folder.

    A checksum mismatch or a broken transfer raises :class:`DownloadError` and leaves no file
    behind; no network raises :class:`DatasetNotAvailableError` saying where to put the zip.
    """
    dest.mkdir(parents=True, exist_ok=True)
    known_hash = f"sha256:{variant.sha256}" if variant.sha256 else _published_md5(variant, dest)
    try:
        archive = pooch.retrieve(
            variant.url,
            known_hash=known_hash,
            fname=variant.archive,
            path=dest,
            progressbar=not is_quiet(),
        )
    except requests.ConnectionError as exc:
        raise DatasetNotAvailableError(
            f"Could not reach {variant.url} ({type(exc).__name__}). " + _where_to_put(variant, dest)
        ) from exc
    except requests.RequestException as exc:
        raise DownloadError(
            f"Download of {variant.url} was interrupted or failed ({exc}); no partial file was "
            "kept. Try again. " + _where_to_put(variant, dest)
        ) from exc
    except ValueError as exc:  # pooch's hash mismatch; it has already removed the temp file
        raise DownloadError(
            f"Checksum mismatch for {variant.archive} from {variant.url}: the file is corrupt or "
            f"not the official release and was not kept. ({exc})"
        ) from exc
    if variant.size is not None and Path(archive).stat().st_size != variant.size:
        Path(archive).unlink(missing_ok=True)
        raise DownloadError(f"{variant.archive} has the wrong size; the file was not kept.")
    return extract(Path(archive), dest)


def extract(archive: Path, dest: Path) -> Path:
    """Extract ``archive`` into ``dest`` atomically (a half-extracted folder never appears)."""
    tmp = dest / f".{archive.stem}.extracting"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        with zipfile.ZipFile(archive) as zf:
            root = tmp.resolve()
            for member in zf.namelist():
                if not (root / member).resolve().is_relative_to(root):
                    raise DownloadError(f"{archive.name} holds an unsafe path {member!r}.")
            zf.extractall(tmp)
    except zipfile.BadZipFile as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        archive.unlink(missing_ok=True)
        raise DownloadError(f"{archive.name} is not a valid zip file ({exc}); removed it.") from exc
    top = [p for p in tmp.iterdir()]
    src = top[0] if len(top) == 1 and top[0].is_dir() else tmp
    target = dest / (src.name if src is not tmp else archive.stem)
    shutil.rmtree(target, ignore_errors=True)
    src.rename(target)
    shutil.rmtree(tmp, ignore_errors=True)
    return target


def _published_md5(variant: Variant, dest: Path) -> str:
    """The digest GroupLens publishes as ``<archive>.md5``, for variants without a pinned sha256."""
    try:
        resp = requests.get(variant.url + ".md5", timeout=30)
        resp.raise_for_status()
    except requests.ConnectionError as exc:
        raise DatasetNotAvailableError(
            f"Could not reach {variant.url}.md5. " + _where_to_put(variant, dest)
        ) from exc
    except requests.RequestException as exc:
        raise DownloadError(f"Could not fetch the checksum {variant.url}.md5: {exc}") from exc
    digest = resp.text.split()[0].strip().lower() if resp.text.split() else ""
    if len(digest) != 32 or any(c not in "0123456789abcdef" for c in digest):
        raise DownloadError(f"{variant.url}.md5 does not hold an MD5 digest: {resp.text[:80]!r}")
    return f"md5:{digest}"


def _where_to_put(variant: Variant, cache: Path) -> str:
    return (
        f"Offline? Download {variant.url} elsewhere and put {variant.archive} (or its extracted "
        f"{variant.folder}/ folder) in {cache}, or pass --data-dir / data_dir= pointing at the "
        "folder that holds it."
    )
