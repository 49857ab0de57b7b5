"""Preparation: filters, splitters, named protocols, and the lean incidence of large logs."""

from embedlens.prep.filters import KCoreFilter, MinCountFilter, RatingFilter
from embedlens.prep.protocols import DEFAULT_PROTOCOL, PROTOCOLS, Protocol, Split, get_protocol
from embedlens.prep.splitters import GlobalTimeSplitter, RandomSplitter, UserTimeSplitter

__all__ = [
    "DEFAULT_PROTOCOL",
    "PROTOCOLS",
    "GlobalTimeSplitter",
    "KCoreFilter",
    "MinCountFilter",
    "Protocol",
    "RandomSplitter",
    "RatingFilter",
    "Split",
    "UserTimeSplitter",
    "get_protocol",
]
