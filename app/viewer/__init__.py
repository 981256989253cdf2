"""Viewer reads: thumbnail, preview, histogram, pixel data and cube info."""
