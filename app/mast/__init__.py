"""MAST proxy: searches, product lists and download jobs (P3-P19)."""
