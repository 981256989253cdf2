"""Composite recipe suggestions (E16)."""
