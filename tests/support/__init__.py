"""Shared test machinery: the FITS factory, real servers (uvicorn, moto S3) and helpers."""
