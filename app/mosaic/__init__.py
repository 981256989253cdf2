"""WCS mosaics and footprints (``POST /mosaic/generate``, ``POST /mosaic/footprint``)."""
