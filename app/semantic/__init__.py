"""Semantic search over file metadata (E17-E20)."""
