"""Region statistics, source detection, FITS tables and spectra (``/analysis/*``)."""
