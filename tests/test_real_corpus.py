"""The real-file corpus is what was recorded: package, version and sha256 of every file."""

from __future__ import annotations

import hashlib
from importlib.metadata import version

import pytest

from tests.support.real_data import CORPUS, ZIP_SHA256, cutout_zip


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_corpus_file_matches_its_record(name: str) -> None:
    real = CORPUS[name]
    digest = hashlib.sha256(real.path.read_bytes()).hexdigest()
    assert digest == real.sha256, (
        f"{name}: {real.package} {version(real.package)} ships another {real.relative} "
        f"than the one recorded from {real.version}"
    )


def test_candels_cutout_zip_matches_its_record() -> None:
    assert hashlib.sha256(cutout_zip().read_bytes()).hexdigest() == ZIP_SHA256
