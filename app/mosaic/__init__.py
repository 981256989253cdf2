"""WCS mosaics and footprints (E9, E10)."""
