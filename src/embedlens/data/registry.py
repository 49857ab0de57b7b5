"""The MovieLens variants embedlens knows: where to download them and what they contain."""

from __future__ import annotations

from dataclasses import dataclass

from embedlens.core.errors import unknown_name

GROUPLENS_URL = "https://files.grouplens.org/datasets/movielens"


@dataclass(frozen=True)
class Variant:
    """One MovieLens release.

    ``folder`` is the directory the official zip extracts to (ml-10m's is ``ml-10M100K``).
    ``layout`` selects the parser: ``"100k"`` (u.data/u.item/u.user), ``"dat"`` (``::``-separated
    .dat files of ml-1m and ml-10m) or ``"csv"`` (ml-20m and later).
    ``sha256``/``size`` pin the official archive where its checksum is published and stable;
    for the others the download is verified against the ``.md5`` file GroupLens publishes
    beside every archive (ml-latest changes over time, so no fixed hash can be pinned).
    """

    name: str
    folder: str
    layout: str
    sha256: str | None = None
    size: int | None = None
    base_url: str = GROUPLENS_URL

    @property
    def archive(self) -> str:
        """File name of the zip archive."""
        return f"{self.name}.zip"

    @property
    def url(self) -> str:
        """Download address of the zip archive."""
        return f"{self.base_url.rstrip('/')}/{self.archive}"


VARIANTS: dict[str, Variant] = {
    v.name: v
    for v in (
        Variant(
            "ml-100k",
            "ml-100k",
            "100k",
            "50d2a982c66986937beb9ffb3aa76efe955bf3d5c6b761f4e3a7cd717c6a3229",
            4924029,
        ),
        Variant(
            "ml-1m",
            "ml-1m",
            "dat",
            "a6898adb50b9ca05aa231689da44c217cb524e7ebd39d264c56e2832f2c54e20",
            5917549,
        ),
        Variant("ml-10m", "ml-10M100K", "dat"),
        Variant(
            "ml-20m",
            "ml-20m",
            "csv",
            "96f243c338a8665f6bcc89c53edf6ee39162a846940de6b7c8c48aeada765ff3",
            198702078,
        ),
        Variant(
            "ml-25m",
            "ml-25m",
            "csv",
            "8b21cfb7eb1706b4ec0aac894368d90acf26ebdfb6aced3ebd4ad5bd1eb9c6aa",
            261978986,
        ),
        Variant("ml-32m", "ml-32m", "csv"),
        Variant(
            "ml-latest-small",
            "ml-latest-small",
            "csv",
            "696d65a3dfceac7c45750ad32df2c259311949efec81f0f144fdfb91ebc9e436",
            978202,
        ),
        Variant("ml-latest", "ml-latest", "csv"),
    )
}

# Short names users type ("100k", "latest-small") map to the official ones.
_ALIASES = {name.removeprefix("ml-"): name for name in VARIANTS}


def get_variant(name: str) -> Variant:
    """Return the variant called ``name`` (``"ml-100k"`` or just ``"100k"``)."""
    key = name.strip().lower()
    key = _ALIASES.get(key, key)
    if key not in VARIANTS:
        raise unknown_name("MovieLens variant", name, list(VARIANTS))
    return VARIANTS[key]
