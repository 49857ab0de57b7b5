"""Text embeddings of movies through an offline sentence encoder."""
