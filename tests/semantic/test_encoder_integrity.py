"""The packaged model's files are checked against their recorded sha256 before use."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.semantic.encoder import ModelIntegrityError, default_model_dir, verify_packaged_model


def test_the_packaged_model_matches_its_recorded_hashes() -> None:
    verify_packaged_model()


def test_a_changed_file_is_refused(tmp_path: Path) -> None:
    source = default_model_dir()
    (tmp_path / "model.safetensors").symlink_to(source / "model.safetensors")
    tokenizer = (source / "tokenizer.json").read_bytes()
    (tmp_path / "tokenizer.json").write_bytes(tokenizer.replace(b"[UNK]", b"[UNX]", 1))
    with pytest.raises(ModelIntegrityError, match=r"tokenizer\.json"):
        verify_packaged_model(tmp_path)
