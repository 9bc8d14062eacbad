"""Caches that let commands which train nothing answer at once (no torch, no Hydra, no scipy).

Three things cost seconds in a command that trains nothing: composing a run's config with
Hydra (~0.1 s a run, so 60 runs of a sweep took 4-6 s), importing torch to validate runs that
are already final, and importing scipy/pandas to rebuild a table nothing has changed.
Each cache here remembers one of those results under a *slot* (what was asked) together with
the *stamp* of everything the result depends on; an entry is used only when its stamp matches
now, so a cache can be stale only in what it costs, never in what it answers:

- ``compose``: a run's resolved config (``ablate.config.compose_containers``), stamped with
  every file under ``conf/``, Hydra's and OmegaConf's installed files, the working directory
  and the environment variables the config reads (``${oc.env:...}``);
- ``plans``: the run key ``prepare`` gave a resolved config that needs no data fingerprint,
  stamped with ablate's own source (``code_digest``): a relaunch whose runs are all final
  finds their keys without torch (``ablate.sweep.runner.plan_sweep``);
- ``tables``: a built table's printed cells and written files, stamped with ablate's source,
  the installed pandas/scipy/numpy, the spec, sweep file, manifest and every record it reads
  (``ablate.report.table_cache``).

Entries are small JSON files under ``ABLATE_CACHE_DIR`` (default ``<ABLATE_HOME>/cache/commands``,
``ABLATE_HOME`` defaulting to the working directory, as for every path ablate writes), written
atomically; deleting the directory loses nothing.
``ABLATE_CACHE=off`` turns every cache off (each command then recomputes everything). A cache
directory that cannot be written is skipped silently. This module is part of the base layer:
it imports nothing heavy and nothing from ablate but ``ablate.io``.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Iterable, Optional

__all__ = ["DIR_ENV", "SWITCH_ENV", "cache_dir", "code_digest", "digest", "package_stamp", "read", "tree_digest",
           "write"]

DIR_ENV = "ABLATE_CACHE_DIR"
SWITCH_ENV = "ABLATE_CACHE"    # "off" (or 0/false/no) disables every cache
VERSION = 1                    # bump when an entry's layout or meaning changes
_PACKAGE = Path(__file__).resolve().parent
_CODE: dict[str, str] = {}


def cache_dir() -> Optional[Path]:
    """Where entries live, or None when caching is off."""
    if os.environ.get(SWITCH_ENV, "").strip().lower() in ("off", "0", "false", "no"):
        return None
    where = os.environ.get(DIR_ENV)
    if where:
        return Path(where).expanduser().resolve()
    # Beside the rest of what ablate writes (conf/paths: everything derives from ABLATE_HOME,
    # else the working directory), in paths.cache_dir's default place.
    return (Path(os.environ.get("ABLATE_HOME") or ".").expanduser() / "cache" / "commands").resolve()


def digest(*parts: Any) -> str:
    """A hex digest of JSON-serialisable ``parts`` (keys sorted)."""
    blob = json.dumps([VERSION, *parts], sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def tree_digest(root: Path, suffixes: Optional[tuple[str, ...]] = None) -> str:
    """A digest of every file under ``root`` (relative names and contents), optionally only
    those ending in ``suffixes``. Reads the files: a few ms for ablate's conf/ or source."""
    h = hashlib.sha256()
    root = Path(root)
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
        for name in sorted(filenames):
            if suffixes is not None and not name.endswith(suffixes):
                continue
            path = os.path.join(dirpath, name)
            h.update(os.path.relpath(path, root).encode() + b"\0")
            try:
                with open(path, "rb") as fh:
                    h.update(fh.read())
            except OSError:
                h.update(b"<unreadable>")
            h.update(b"\0")
    return h.hexdigest()


def code_digest(subpackage: str = "") -> str:
    """A digest of ablate's own source (``*.py`` under the package, or under one subpackage,
    e.g. ``"models"``); computed once per process."""
    if subpackage not in _CODE:
        _CODE[subpackage] = tree_digest(_PACKAGE / subpackage if subpackage else _PACKAGE, (".py",))
    return _CODE[subpackage]


def package_stamp(names: Iterable[str]) -> list:
    """For each top-level package: where it is installed and its ``__init__``'s mtime and size,
    without importing it (an upgrade or reinstall changes the stamp). None if not installed."""
    import importlib.util

    out = []
    for name in names:
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            spec = None
        origin = getattr(spec, "origin", None)
        try:
            st = os.stat(origin) if origin else None
        except OSError:
            st = None
        out.append([name, origin, st.st_mtime_ns if st else None, st.st_size if st else None])
    return out


def _path(kind: str, slot: str) -> Optional[Path]:
    root = cache_dir()
    return None if root is None else root / kind / f"{slot}.json"


def read(kind: str, slot: str) -> Optional[dict]:
    """The entry stored under ``slot`` (a digest), or None (none, unreadable or caching off)."""
    path = _path(kind, slot)
    if path is None:
        return None
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("version") == VERSION else None


def write(kind: str, slot: str, entry: dict) -> None:
    """Store ``entry`` under ``slot`` atomically; a directory that cannot be written is skipped."""
    path = _path(kind, slot)
    if path is None:
        return
    from ablate.io import atomic_write

    text = json.dumps({**entry, "version": VERSION}, sort_keys=True, separators=(",", ":"))
    try:
        atomic_write(path, lambda fh: fh.write(text), fsync=False)
    except OSError:
        pass
