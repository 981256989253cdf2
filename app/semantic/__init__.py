"""Semantic search over file metadata (``/semantic/*``)."""
