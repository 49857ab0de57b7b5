"""EGES: graph embeddings with side information, and cold-start vectors."""
