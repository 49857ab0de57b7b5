"""Files on disk: atomic writes, checked reads, folders embedlens owns, and locks."""
