"""ablate: ablation studies of attention modules (Coordinate Attention, SE, CBAM) in efficient CNNs."""
from importlib.metadata import PackageNotFoundError, version as _version

# Before anything imports torch: OpenMP threads that sleep when idle instead of spinning
# (OMP_WAIT_POLICY=PASSIVE unless the user set a wait policy; ablate/threads.py says why).
from ablate import threads as _threads  # noqa: F401  (sets it on import)

try:  # one source of truth: pyproject.toml's version, as installed
    __version__ = _version("ablate")
except PackageNotFoundError:  # a source tree on sys.path that was never installed
    __version__ = "0+unknown"
