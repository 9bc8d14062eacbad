"""Files others can read: everything ablate writes atomically (tables, reports, results,
checkpoints, manifests, caches) gets the mode ``open()`` gives a new file, ``0666 & ~umask``,
not tempfile's private 0600; a file once written 0600 becomes readable again when rewritten."""
from __future__ import annotations

import os
import stat
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.helpers import ROOT, TINY

UMASKS = (0o022, 0o077, 0o002)


@contextmanager
def umask(mask: int):
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_current_umask_reads_without_changing_it():
    from ablate.io import current_umask

    for mask in UMASKS:
        with umask(mask):
            assert current_umask() == mask
            assert current_umask() == mask  # still the same: reading did not reset it


def test_current_umask_without_proc(monkeypatch):
    """Where /proc is not there (macOS), the umask is read by setting and restoring it."""
    import builtins

    from ablate import io

    real_open = builtins.open

    def no_proc(file, *a, **k):
        if str(file).startswith("/proc/"):
            raise FileNotFoundError(file)
        return real_open(file, *a, **k)

    monkeypatch.setattr(builtins, "open", no_proc)
    with umask(0o027):
        assert io.current_umask() == 0o027
        assert os.umask(0o027) == 0o027  # restored


@pytest.mark.parametrize("mask", UMASKS)
def test_atomic_writers_respect_the_umask(tmp_path, mask):
    from ablate.io import atomic_write, torch_save, write_json
    from ablate.track.store import RunDirStore

    want = 0o666 & ~mask
    with umask(mask):
        atomic_write(tmp_path / "t.md", lambda fh: fh.write("| a |\n"))
        write_json(tmp_path / "m.json", {"a": 1})
        torch_save(tmp_path / "checkpoint.pt", {"epoch": 0})
        store = RunDirStore(tmp_path / "runs")
        store.put({"run_key": "abc", "status": "failed"})
        store.put({"run_key": "abc", "status": "completed", "top1": 50.0})  # replaces, archives the old one
        list(store.records())  # writes the index cache
    files = [tmp_path / "t.md", tmp_path / "m.json", tmp_path / "checkpoint.pt", tmp_path / "runs" / "abc" / "result.json"]
    files.append(tmp_path / "runs" / ".index.json")
    for f in files:
        assert mode(f) == want, (f.name, oct(mode(f)), oct(want))
    assert not list(tmp_path.rglob("*.tmp"))


def test_a_file_written_0600_before_becomes_readable_when_rewritten(tmp_path):
    from ablate.io import write_json

    path = tmp_path / "result.json"
    path.write_text("{}")
    path.chmod(0o600)
    with umask(0o022):
        write_json(path, {"a": 1})
    assert mode(path) == 0o644


def test_tables_results_and_checkpoints_of_a_real_run_are_group_readable(home):
    """A tiny run and its table in a fresh process under ``umask 027`` (a shared group project):
    every file is 0640, none 0600."""
    code = f"""
import os, sys
os.umask(0o027)
from ablate.cli import main
rc = main(["train", *{TINY!r}, "attention=ca", "sweep=modes"])
from ablate.report import build_table, load_table_spec
from ablate.report.formats import write_table
from ablate.track.store import RunDirStore
recs = list(RunDirStore(os.path.join(os.environ["ABLATE_HOME"], "outputs", "runs")).records())
from ablate.report.spec import TableSpec
spec = TableSpec(name="modes", rows=[{{"label": "CA", "where": {{"attention.kind": "ca"}}}}], metrics=[{{"key": "top1", "label": "Top-1"}}])
write_table(build_table(spec, recs), os.path.join(os.environ["ABLATE_HOME"], "outputs", "tables"), ["md", "csv", "html", "tex"])
sys.exit(rc)
"""
    env = {**os.environ, "ABLATE_HOME": str(home)}
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    written = [p for p in (home / "outputs").rglob("*") if p.is_file() and "wandb" not in p.parts]
    names = {p.name for p in written}
    assert {"result.json", "checkpoint.pt", "metrics.jsonl", "modes.md", "modes.csv", "modes.tex"} <= names, names
    private = {str(p.relative_to(home)): oct(mode(p)) for p in written if mode(p) != 0o640}
    assert not private
