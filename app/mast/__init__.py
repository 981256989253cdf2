"""MAST proxy: searches, product lists and download jobs (``/mast/*``)."""
