"""Region statistics, source detection, FITS tables and spectra (E11-E15)."""
