"""requirements.lock and pyproject.toml agree with each other and with the installed environment."""

from __future__ import annotations

import re
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.specifiers import SpecifierSet
from packaging.version import Version

REPO = Path(__file__).resolve().parents[1]


def _pins() -> dict[str, str]:
    pins = {}
    for line in (REPO / "requirements.lock").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, version = line.split("==")
            pins[re.sub(r"[-_.]+", "-", name).lower()] = version
    return pins


def _floor() -> Version:
    requires = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["requires-python"]
    match = re.fullmatch(r">=\s*([\d.]+)", requires)
    assert match, f"requires-python should be a plain floor, got {requires!r}"
    return Version(match.group(1))


def test_every_locked_package_is_installed_at_its_pin_and_runs_on_the_floor() -> None:
    """A package pinned but not installed would be a leftover of an older set (`make lock` writes none)."""
    floor = _floor()
    installed = {re.sub(r"[-_.]+", "-", d.metadata["Name"]).lower(): d for d in metadata.distributions()}
    for name, version in _pins().items():
        assert name in installed, f"{name} is in requirements.lock but not installed by `make install`"
        dist = installed[name]
        assert dist.version == version, f"{name}: lock {version}, installed {dist.version}"
        requires = dist.metadata.get("Requires-Python")
        if requires:
            assert floor in SpecifierSet(requires), f"{name}=={version} needs Python {requires}, floor is {floor}"


def test_the_dev_set_has_no_moto_server_extra() -> None:
    dev = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]["dev"]
    assert any(req.startswith("moto[s3]") for req in dev)
    assert not any("server" in req for req in dev if req.startswith("moto"))
    pins = _pins()
    for heavy in ("cfn-lint", "sympy", "networkx", "onnxruntime", "protobuf", "flatbuffers"):
        assert heavy not in pins
    for needed in ("flask", "flask-cors", "moto"):
        assert needed in pins
