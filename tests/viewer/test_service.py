"""The viewer service's parsing of AVM metadata."""

from __future__ import annotations

from app.viewer.service import parse_avm_metadata


def test_parse_avm_metadata() -> None:
    raw = '{"target_name": "M16", "filter": "F444W", "other": "x", "instrument": null}'
    assert parse_avm_metadata(raw) == {"target_name": "M16", "filter": "F444W"}
    assert parse_avm_metadata("") is None
    assert parse_avm_metadata("{oops") is None
    assert parse_avm_metadata("[1, 2]") is None
