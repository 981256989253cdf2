"""Threads of one job: how many (ENGINE_JOB_THREADS, CPUs, cgroup quota, memory) and how they run."""

from __future__ import annotations

import os
import threading
from contextvars import ContextVar
from pathlib import Path

import pytest

from app.core import settings as settings_module
from app.core.settings import Settings, available_cpus
from app.processing.parallel import map_in_threads

_tag: ContextVar[str] = ContextVar("tag", default="none")


@pytest.mark.parametrize(
    ("cpu_max", "expected"), [("max 100000\n", None), ("100000 100000\n", 1), ("150000 100000", 1)]
)
def test_available_cpus_follows_the_cgroup_quota(tmp_path: Path, cpu_max: str, expected: int | None) -> None:
    quota = tmp_path / "cpu.max"
    quota.write_text(cpu_max)
    affinity = len(os.sched_getaffinity(0))
    assert available_cpus(quota) == (min(expected, affinity) if expected else affinity)
    assert available_cpus(tmp_path / "missing") == affinity


def test_job_threads_default_to_the_cpus_and_can_be_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ENGINE_JOB_THREADS", raising=False)
    quota = tmp_path / "cpu.max"
    quota.write_text("100000 100000")  # a container limited to one CPU
    monkeypatch.setattr(settings_module, "CGROUP_CPU_MAX_FILE", quota)
    assert Settings().engine_job_threads == 1
    quota.write_text("max 100000")
    assert Settings().engine_job_threads == min(settings_module.MAX_DEFAULT_JOB_THREADS, len(os.sched_getaffinity(0)))
    assert Settings(ENGINE_JOB_THREADS=3).engine_job_threads == 3


def test_map_in_threads_keeps_order_runs_in_parallel_and_sees_the_job_context() -> None:
    _tag.set("job-7")
    barrier = threading.Barrier(2, timeout=5)  # both parts must be running at once to pass it

    def part(i: int) -> tuple[int, str, str]:
        if i < 2:
            barrier.wait()
        return i * i, _tag.get(), threading.current_thread().name

    results = map_in_threads(part, [0, 1, 2, 3], threads=2)
    assert [r[0] for r in results] == [0, 1, 4, 9]
    assert {r[1] for r in results} == {"job-7"}
    assert all(r[2].startswith("job-part") for r in results)
    assert map_in_threads(lambda i: i + 1, [5], threads=4) == [6]  # one part runs inline
    assert threading.current_thread().name not in {r[2] for r in map_in_threads(part, [2, 3], threads=2)}


def test_map_in_threads_raises_the_first_error_after_every_part_ends() -> None:
    finished = []

    def part(i: int) -> int:
        if i == 0:
            raise ValueError("bad channel")
        finished.append(i)
        return i

    with pytest.raises(ValueError, match="bad channel"):
        map_in_threads(part, [0, 1, 2], threads=2)
    assert sorted(finished) == [1, 2]
