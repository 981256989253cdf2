"""jwst-engine: the MAST proxy and the processing engine behind the JWST data application."""

__version__ = "0.1.0"
