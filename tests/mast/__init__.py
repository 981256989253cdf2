"""Tests of the MAST proxy."""
