"""Deployment files: compose services, ports, volume, healthchecks; each image its own deps."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def _compose() -> dict:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


def test_compose_services_ports_volumes_healthchecks() -> None:
    services = _compose()["services"]
    proxy, engine = services["mast-proxy"], services["processing-engine"]
    assert proxy["container_name"] == "jwst-mast-proxy"
    assert engine["container_name"] == "jwst-processing"
    assert proxy["ports"] == ["127.0.0.1:8002:8000"]
    assert engine["ports"] == ["127.0.0.1:8000:8000"]
    for service in (proxy, engine):
        assert "jwst-data:/app/data" in service["volumes"]
        assert "/health" in " ".join(service["healthcheck"]["test"])
        assert service["environment"]["STORAGE_BASE_PATH"] == "/app/data"
    assert proxy["environment"]["MAST_DOWNLOAD_DIR"] == "/app/data/mast"
    assert proxy["build"]["dockerfile"] == "Dockerfile.mast"
    assert engine["build"]["dockerfile"] == "Dockerfile.engine"
    assert (proxy["mem_limit"], engine["mem_limit"]) == ("512m", "4g")
    assert services["seaweedfs-s3"]["profiles"] == ["s3"]


def test_cluster_profile_runs_the_engine_image_on_the_shared_volume() -> None:
    services = _compose()["services"]
    scheduler = services["dask-scheduler"]
    workers = [services["dask-worker-1"], services["dask-worker-2"]]
    assert scheduler["profiles"] == ["cluster"]
    assert scheduler["command"][:2] == ["dask", "scheduler"]
    for worker in workers:
        assert worker["profiles"] == ["cluster"]
        assert worker["build"]["dockerfile"] == "Dockerfile.engine"
        assert worker["command"][:3] == ["dask", "worker", "tcp://dask-scheduler:8786"]
        assert "jwst-data:/app/data" in worker["volumes"]
        assert worker["environment"]["STORAGE_BASE_PATH"] == "/app/data"
    assert services["processing-engine"]["environment"]["DASK_SCHEDULER_ADDRESS"] == "${DASK_SCHEDULER_ADDRESS:-}"


def _install_lines(dockerfile: str) -> str:
    text = (REPO / dockerfile).read_text()
    return " ".join(line for line in text.splitlines() if "pip install" in line)


def test_each_image_installs_its_own_set() -> None:
    mast = _install_lines("Dockerfile.mast")
    engine = _install_lines("Dockerfile.engine")
    assert re.search(r"pip install (-c \S+ )?\.(\s|$)", mast)
    assert "[engine" not in mast
    assert '".[engine]"' in engine
    assert "--workers 2" in (REPO / "Dockerfile.mast").read_text()
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    light = " ".join(project["dependencies"])
    for heavy in ("scipy", "reproject", "photutils", "pillow", "numpy"):
        assert heavy not in light
        assert heavy in " ".join(project["optional-dependencies"]["engine"])


def test_images_install_dependencies_before_copying_the_code() -> None:
    for dockerfile in ("Dockerfile.engine", "Dockerfile.mast"):
        lines = (REPO / dockerfile).read_text().splitlines()
        base = next(line for line in lines if line.startswith("FROM "))
        assert re.fullmatch(r"FROM python:3\.11\.\d+-slim-\w+", base), base  # pinned to a patch release
        install = next(i for i, line in enumerate(lines) if "pip install" in line)
        copy_code = next(i for i, line in enumerate(lines) if line.startswith("COPY app"))
        assert install < copy_code, dockerfile  # a code change keeps the dependency layer
        text = "\n".join(lines)
        assert "rm -rf app build ./*.egg-info" in text  # no build leftovers in the image
        for unused in ("SENTENCE_TRANSFORMERS_HOME", "MPLCONFIGDIR"):
            assert unused not in text
    ignored = set((REPO / ".dockerignore").read_text().split())
    assert {".git", ".venv", "tests", "*.egg-info", "build"} <= ignored


def test_fresh_host_needs_no_host_directory() -> None:
    """Data lives in named volumes: Docker creates them from the image's /app/data (uid 1000), not as root."""
    compose = _compose()
    assert compose["volumes"]["jwst-data"]["name"] == "jwst-data"
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            assert not source.startswith((".", "/")), f"{name} bind-mounts {source}"
            assert source in compose["volumes"], f"{name} mounts the undeclared volume {source}"
    for dockerfile in ("Dockerfile.engine", "Dockerfile.mast"):
        text = (REPO / dockerfile).read_text()
        assert "--uid 1000" in text
        assert "chown -R jwst /app/data" in text
        assert "USER jwst" in text


def test_backend_can_join_and_s3_profile_creates_its_bucket() -> None:
    compose = _compose()
    assert compose["networks"]["default"]["name"] == "jwst-engine"
    for name in ("mast-proxy", "processing-engine"):
        env = compose["services"][name]["environment"]
        assert env["STORAGE_PROVIDER"] == "${STORAGE_PROVIDER:-local}"
        assert env["S3_CREATE_BUCKET"] == "${S3_CREATE_BUCKET:-true}"
        assert env["S3_ENDPOINT"] == "${S3_ENDPOINT:-http://seaweedfs-s3:8333}"
    readme = (REPO / "README.md").read_text()
    for needle in ("external: true", "jwst-engine", "chown -R 1000:1000", "STORAGE_PROVIDER=s3"):
        assert needle in readme


def test_engine_job_budgets_fit_the_compose_memory_limit() -> None:
    """With the compose limit and worker count, the derived budgets leave the API its headroom."""
    from app.core.settings import API_HEADROOM_MB, MIB, job_memory_budget_mb

    engine = _compose()["services"]["processing-engine"]
    assert "ENGINE_JOB_MEMORY_MB" not in engine["environment"]  # derived from the container's limit
    limit_mb = int(engine["mem_limit"].rstrip("g")) * 1024
    workers = int(engine["environment"]["ENGINE_WORKERS"].split(":-")[1].rstrip("}"))
    budget = job_memory_budget_mb(limit_mb * MIB, workers)
    assert workers * budget + API_HEADROOM_MB <= limit_mb
