"""ablate: ablation studies of attention modules (Coordinate Attention, SE, CBAM) in efficient CNNs."""
from importlib.metadata import PackageNotFoundError, version as _version

try:  # one source of truth: pyproject.toml's version, as installed
    __version__ = _version("ablate")
except PackageNotFoundError:  # a source tree on sys.path that was never installed
    __version__ = "0+unknown"
