"""Composite recipe suggestions (``POST /discovery/suggest-recipes``)."""
