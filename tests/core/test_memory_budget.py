"""The per-job memory budget follows the container's memory limit unless ENGINE_JOB_MEMORY_MB is set."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.core import settings as settings_module
from app.core.settings import API_HEADROOM_MB, MIB, Settings, container_memory_limit_bytes, job_memory_budget_mb

GIB = 1024 * MIB


@pytest.fixture
def cgroup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """Fake cgroup v2 and v1 limit files, used instead of the host's."""
    v2, v1 = tmp_path / "memory.max", tmp_path / "memory.limit_in_bytes"
    monkeypatch.setattr(settings_module, "CGROUP_MEMORY_LIMIT_FILES", (v2, v1))
    monkeypatch.delenv("ENGINE_JOB_MEMORY_MB", raising=False)
    monkeypatch.delenv("ENGINE_WORKERS", raising=False)
    return v2, v1


def test_compose_engine_budgets_fit_its_4g_limit(cgroup: tuple[Path, Path]) -> None:
    cgroup[0].write_text(f"{4 * GIB}\n")
    settings = Settings(ENGINE_WORKERS=2)
    assert settings.engine_job_memory_mb == (4096 - API_HEADROOM_MB) // 2 == 1848
    assert settings.engine_workers * settings.engine_job_memory_mb + API_HEADROOM_MB <= 4096


@pytest.mark.parametrize(("limit_mb", "workers"), [(512, 1), (4096, 2), (4096, 4), (6000, 3), (64_000, 2), (1000, 8)])
def test_budgets_never_add_up_to_more_than_the_container(
    cgroup: tuple[Path, Path], limit_mb: int, workers: int
) -> None:
    cgroup[0].write_text(str(limit_mb * MIB))
    budget = Settings(ENGINE_WORKERS=workers).engine_job_memory_mb
    assert 1 <= budget <= 3072
    assert workers * budget + API_HEADROOM_MB <= max(limit_mb, API_HEADROOM_MB + workers)


def test_no_limit_keeps_the_default(cgroup: tuple[Path, Path]) -> None:
    cgroup[0].write_text("max\n")
    assert Settings().engine_job_memory_mb == 3072
    cgroup[0].unlink()
    cgroup[1].write_text("9223372036854771712\n")  # cgroup v1 without a limit
    assert Settings().engine_job_memory_mb == 3072
    cgroup[1].unlink()  # no cgroup files at all (not in a container, or another OS)
    assert Settings().engine_job_memory_mb == 3072


def test_cgroup_v1_limit_is_read(cgroup: tuple[Path, Path]) -> None:
    cgroup[1].write_text(str(2 * GIB))
    assert container_memory_limit_bytes() == 2 * GIB
    assert Settings(ENGINE_WORKERS=1).engine_job_memory_mb == 2048 - API_HEADROOM_MB


def test_explicit_setting_wins(cgroup: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    cgroup[0].write_text(str(4 * GIB))
    assert Settings(ENGINE_JOB_MEMORY_MB=3072).engine_job_memory_mb == 3072
    monkeypatch.setenv("ENGINE_JOB_MEMORY_MB", "900")
    assert Settings().engine_job_memory_mb == 900


def test_unreadable_values_are_skipped(tmp_path: Path) -> None:
    bad, good = tmp_path / "bad", tmp_path / "good"
    bad.write_text("not a number")
    good.write_text(str(GIB))
    assert container_memory_limit_bytes((bad, good)) == GIB
    assert job_memory_budget_mb(None, 4) == 3072
    assert job_memory_budget_mb(100 * MIB, 2) == 1  # a limit below the headroom still gives a positive budget
