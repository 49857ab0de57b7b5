"""The two-tower retrieval model."""
