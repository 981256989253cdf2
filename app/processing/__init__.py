"""Pure numeric core: FITS I/O, stretches, filters, background, statistics, detection, reprojection, AVM."""
