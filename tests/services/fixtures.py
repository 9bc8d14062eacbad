"""Session fixtures for tests that need a real external service.

The services are started outside pytest, by ``scripts/services/all.sh up`` (CI runs it as an
explicit step; pytest never starts daemons). That script writes
``${ABLATE_SERVICES_STATE:-/tmp/ablate-services}/status.json``::

    {"slurm":    {"ok": true, "env": {"SLURM_CONF": "/tmp/ablate-slurm/slurm.conf"}},
     "postgres": {"ok": true, "url": "postgresql://ablate:ablate@127.0.0.1:55432/ablate"},
     "latex":    {"ok": true},
     "chromium": {"ok": false, "reason": "..."}}

Each fixture reads its entry and skips the test with the recorded reason when the service is
missing, or when the file says "ok" but a quick liveness check fails (a stale file).

Fixtures (all session-scoped):
  slurm_cluster       -> dict of env vars (SLURM_CONF=...); also applied to os.environ for the
                         session so sbatch/sacct/submitit subprocesses find the cluster.
  postgres_url        -> "postgresql+psycopg2://ablate:ablate@127.0.0.1:55432/ablate" (the
                         status.json URL with the installed driver pinned; see sqlalchemy_pg_url)
  latex_available     -> path of pdflatex (pdftoppm is on PATH too)
  chromium_available  -> path of the chromium binary

Use them from any test directory with ``pytest_plugins = ["tests.services.fixtures"]`` in the
top-level ``tests/conftest.py``, or ``from tests.services.fixtures import slurm_cluster``.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

__all__ = [
    "STATUS_PATH",
    "service_entry",
    "sqlalchemy_pg_url",
    "slurm_cluster",
    "postgres_url",
    "latex_available",
    "chromium_available",
]

STATUS_PATH = Path(os.environ.get("ABLATE_SERVICES_STATE", "/tmp/ablate-services")) / "status.json"
HOW = "run `scripts/services/all.sh up` (as root) first"


def service_entry(name: str) -> dict[str, Any]:
    """The status.json entry of ``name`` if it is ok; otherwise skip the calling test."""
    if not STATUS_PATH.is_file():
        pytest.skip(f"{name}: no {STATUS_PATH}; {HOW}")
    try:
        data = json.loads(STATUS_PATH.read_text())
    except (OSError, ValueError) as exc:
        pytest.skip(f"{name}: cannot read {STATUS_PATH}: {exc}")
    entry = data.get(name)
    if not isinstance(entry, dict):
        pytest.skip(f"{name}: not listed in {STATUS_PATH}; {HOW}")
    if not entry.get("ok"):
        pytest.skip(f"{name} unavailable: {entry.get('reason', 'no reason recorded')}")
    return entry


@pytest.fixture(scope="session")
def slurm_cluster():
    entry = service_entry("slurm")
    env = {str(k): str(v) for k, v in (entry.get("env") or {}).items()}
    if "SLURM_CONF" not in env:
        pytest.skip(f"slurm: status.json has no SLURM_CONF in env: {entry}")
    if not Path(env["SLURM_CONF"]).is_file():
        pytest.skip(f"slurm: {env['SLURM_CONF']} does not exist; {HOW}")
    if shutil.which("sinfo") is None:
        pytest.skip("slurm: sinfo not on PATH")
    try:
        probe = subprocess.run(
            ["sinfo", "-h", "-N", "-o", "%t"], env={**os.environ, **env},
            capture_output=True, text=True, timeout=30,
        )
    except subprocess.TimeoutExpired:
        pytest.skip(f"slurm: status.json says up but sinfo timed out; {HOW}")
    if probe.returncode != 0 or not probe.stdout.strip():
        pytest.skip(f"slurm: status.json says up but sinfo fails ({probe.stderr.strip()[-200:]}); {HOW}")
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield env
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def sqlalchemy_pg_url(url: str) -> str:
    """Pin the DB driver in a plain ``postgresql://`` URL to the one that is installed.

    SQLAlchemy 2.1 made psycopg (v3) the default driver of ``postgresql://`` (2.0 used
    psycopg2), while the project's ``cluster`` extra installs psycopg2-binary; a plain URL then
    fails in Optuna with "Failed to import DB access module". Prefer psycopg2, then psycopg.
    """
    if not url.startswith("postgresql://"):
        return url
    import importlib.util

    for driver, module in (("psycopg2", "psycopg2"), ("psycopg", "psycopg")):
        if importlib.util.find_spec(module) is not None:
            return "postgresql+" + driver + "://" + url[len("postgresql://"):]
    return url


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """SQLAlchemy/Optuna URL of the test database, driver pinned (see sqlalchemy_pg_url)."""
    entry = service_entry("postgres")
    url = entry.get("url")
    if not url:
        pytest.skip(f"postgres: status.json has no url: {entry}")
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 5432), timeout=5):
            pass
    except OSError as exc:
        pytest.skip(f"postgres: status.json says up but {parts.hostname}:{parts.port} refuses ({exc}); {HOW}")
    return sqlalchemy_pg_url(url)


@pytest.fixture(scope="session")
def latex_available() -> str:
    service_entry("latex")
    pdflatex = shutil.which("pdflatex")
    if pdflatex is None or shutil.which("pdftoppm") is None:
        pytest.skip("latex: pdflatex or pdftoppm not on PATH; run scripts/services/latex.sh")
    return pdflatex


@pytest.fixture(scope="session")
def chromium_available() -> str:
    service_entry("chromium")
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("chromium: no chromium binary on PATH; run scripts/services/chromium.sh")
