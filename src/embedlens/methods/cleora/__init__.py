"""Cleora: hypergraph embeddings by Markov propagation."""
