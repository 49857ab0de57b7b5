"""Tools for testing methods: a planted synthetic log and the contract every method passes
(``MethodContract``, for pytest; importing it needs pytest installed)."""

from embedlens.testing.planted import planted_log

__all__ = ["MethodContract", "planted_log"]


def __getattr__(name: str):
    if name == "MethodContract":  # only where pytest is installed
        from embedlens.testing.contract import MethodContract

        return MethodContract
    raise AttributeError(f"module 'embedlens.testing' has no attribute {name!r}")
