"""EASE as d-dimensional user and item vectors: its eigen-factorisation, truncated."""
