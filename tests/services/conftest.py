"""Make the service fixtures (tests/services/fixtures.py) available to tests in this directory."""
from .fixtures import (  # noqa: F401
    chromium_available,
    latex_available,
    postgres_url,
    slurm_cluster,
)
