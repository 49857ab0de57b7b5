"""embedlens: movie and user embeddings from interaction logs, evaluated on one protocol."""

__version__ = "0.1.0"
