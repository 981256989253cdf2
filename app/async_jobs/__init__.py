"""Asynchronous composites and mosaics: submit, watch, cancel, fetch the result."""
