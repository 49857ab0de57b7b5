"""Core: what every layer shares (errors, progress, random streams, typed parameters, the
table schema, ids and interaction matrices, the embeddings container, atomic files)."""
