"""Storage of FITS files and products: local disk or S3, behind one interface."""

from app.storage.provider import StorageProvider

__all__ = ["StorageProvider"]
