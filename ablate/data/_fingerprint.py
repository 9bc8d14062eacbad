"""Content fingerprints of datasets read from files: what the run key hashes instead of a path.

A fingerprint is a short digest of what identifies the data, never of where it lies: relative
file names with sizes and modification times (image folders, CIFAR batches), or the checksums a
zip archive already stores for its members (``.npz``). So moving data keeps a run's key, while
another folder, an added or regenerated file makes another run. Only metadata is read.
"""
from __future__ import annotations

import hashlib
import os
import zipfile
from pathlib import Path
from typing import Iterable

DIGITS = 16  # hex digits: 64 bits


def digest(lines: Iterable[str]) -> str:
    """sha256 over ``lines`` (one per file), shortened to ``DIGITS`` hex digits."""
    h = hashlib.sha256()
    for line in lines:
        h.update(line.encode("utf-8", "surrogateescape"))
        h.update(b"\n")
    return h.hexdigest()[:DIGITS]


def stat_line(base: Path, path: Path) -> str:
    """``relative/path<TAB>size<TAB>mtime_ns`` of one file (relative to ``base``, POSIX slashes)."""
    st = path.stat()
    return f"{path.relative_to(base).as_posix()}\t{st.st_size}\t{st.st_mtime_ns}"


def files_fingerprint(base: Path, paths: Iterable[Path]) -> str:
    """The fingerprint of ``paths`` (sizes and mtimes, names relative to ``base``)."""
    return digest(stat_line(base, p) for p in sorted(paths))


def tree_lines(base: Path, folder: Path, extensions: tuple[str, ...]) -> list[str]:
    """One line per class folder of ``folder`` and per file with one of ``extensions`` in it
    (the files an image folder's scan reads), sorted, with sizes and mtimes."""
    lines = []
    with os.scandir(folder) as it:
        classes = sorted(e.name for e in it if e.is_dir())
    for c in classes:
        lines.append(f"{(folder / c).relative_to(base).as_posix()}/")
        with os.scandir(folder / c) as it:
            entries = sorted((e for e in it if e.name.lower().endswith(extensions)), key=lambda e: e.name)
        for e in entries:
            st = e.stat()
            lines.append(f"{(folder / c / e.name).relative_to(base).as_posix()}\t{st.st_size}\t{st.st_mtime_ns}")
    return lines


def zip_lines(role: str, path: Path) -> list[str]:
    """One line per member of a zip archive (an ``.npz``): name, size and stored CRC-32, read from
    the archive's central directory; the arrays themselves are not read."""
    with zipfile.ZipFile(path) as zf:
        return [f"{role}:{i.filename}\t{i.file_size}\t{i.CRC:08x}" for i in sorted(zf.infolist(), key=lambda i: i.filename)]
