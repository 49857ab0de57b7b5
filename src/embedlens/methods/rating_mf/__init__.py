"""Rating regression (embeddings with biases)."""
