"""Storage key validation: the contract's 403 rules, including encoded and backslash forms."""

from __future__ import annotations

import pytest

from app.core.exceptions import AccessDeniedError, InvalidRequestError
from app.storage.helpers import display_name, normalize_key


@pytest.mark.parametrize(
    "key",
    [
        "/etc/passwd",
        "../secret.fits",
        "mast/../../etc/passwd",
        "mast/..",
        "..",
        "%2e%2e/secret.fits",
        "mast/%2E%2E/%2e%2e/x",
        "%252e%252e/x",
        "%2Fetc%2Fpasswd",
        "..\\..\\windows",
        "C:\\data\\x.fits",
        "c:/x.fits",
        "\\\\server\\share",
        "mast/x\x00.fits",
        "~/x.fits",
        "mast/%00x.fits",
    ],
)
def test_hostile_keys_are_refused(key: str) -> None:
    with pytest.raises(AccessDeniedError) as refused:
        normalize_key(key)
    assert refused.value.detail == "Access denied: invalid path"


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("mast/jw1/a_i2d.fits", "mast/jw1/a_i2d.fits"),
        ("./mast//jw1/./a.fits", "mast/jw1/a.fits"),
        (
            "mosaic/jwst-mosaic-20260308T120000-1a2b3c4d_i2d.fits",
            "mosaic/jwst-mosaic-20260308T120000-1a2b3c4d_i2d.fits",
        ),
        ("a..b/c...fits", "a..b/c...fits"),
    ],
)
def test_good_keys_are_normalised(key: str, expected: str) -> None:
    assert normalize_key(key) == expected


@pytest.mark.parametrize("key", ["", "   ", "./", "x" * 2000])
def test_empty_or_long_keys_are_bad_requests(key: str) -> None:
    with pytest.raises(InvalidRequestError):
        normalize_key(key)


def test_display_name_is_basename_without_control_characters() -> None:
    assert display_name("mast/obs/file\n.fits") == "file?.fits"
