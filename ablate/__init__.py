"""ablate: ablation studies of attention modules (Coordinate Attention, SE, CBAM) in efficient CNNs."""
# Before anything imports torch: OpenMP threads that sleep when idle instead of spinning
# (OMP_WAIT_POLICY=PASSIVE unless the user set a wait policy; ablate/threads.py says why).
from ablate import threads as _threads  # noqa: F401  (sets it on import)


def __getattr__(name: str) -> str:
    """``ablate.__version__``, read on first use (importing importlib.metadata would cost every command ~20-50 ms)."""
    if name != "__version__":
        raise AttributeError(f"module 'ablate' has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    global __version__
    try:  # one source of truth: pyproject.toml's version, as installed
        __version__ = version("ablate")
    except PackageNotFoundError:  # a source tree on sys.path that was never installed
        __version__ = "0+unknown"
    return __version__
