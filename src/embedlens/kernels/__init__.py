"""Kernels: numeric building blocks (sparse products, top-K, ranking metrics, graphs, walks,
skip-gram pairs and PMI-SVD, user aggregation), numba where it pays."""
