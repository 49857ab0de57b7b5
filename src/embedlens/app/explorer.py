"""The explorer page's files (``explorer.html``, ``.js``, ``.css``, shipped in the package):
``embedlens serve`` sends the whole page, and ``report.html`` carries its movie sections
with the same script, answering from inline data instead of the API."""

from __future__ import annotations

import re
from importlib import resources


def explorer_part(name: str) -> str:
    """One of the explorer's files: explorer.html, explorer.js or explorer.css."""
    return resources.files("embedlens.app").joinpath(name).read_text("utf-8")


def explorer_page() -> str:
    """The explorer's HTML with its script and style inline (nothing is fetched from
    elsewhere)."""
    return (explorer_part("explorer.html")
            .replace("/*EXPLORER_CSS*/", explorer_part("explorer.css"))
            .replace("/*EXPLORER_JS*/", explorer_part("explorer.js")))


def explorer_section(name: str) -> str:
    """The markup of one section of the page (``neighbours``, ``map``), as marked in
    explorer.html."""
    found = re.search(rf"<!--section:{name}-->(.*?)<!--/section-->",
                      explorer_part("explorer.html"), re.S)
    if found is None:
        raise KeyError(f"explorer.html has no section {name!r}")
    return found.group(1)
