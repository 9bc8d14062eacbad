"""Run-dir store read path used by tables: the index cache stays correct (rebuildable, follows
new and changed result.json files), key-only filtering matches ``flatten``; the 10k benchmark runs."""
from __future__ import annotations

import json
import os
import subprocess
import sys

from ablate.track.store import InMemoryStore, RunDirStore
from ablate.track.store._rundir import INDEX
from tests.helpers import ROOT
from tests.report._synth import record


def fill(store, n=6):
    for i in range(n):
        store.put(record(f"k{i}", {"attention.kind": "ca" if i % 2 else "none", "attention.reduction": 8 * (i % 3),
                                   "model.stages": [1, 2]}, i, 60.0 + i))


def test_index_follows_new_changed_and_removed_records(tmp_path):
    store = RunDirStore(tmp_path)
    fill(store)
    assert [r["top1"] for r in store.records()] == [60.0 + i for i in range(6)]
    assert (tmp_path / INDEX).is_file()
    store.put({**store.get("k1"), "top1": 99.0})           # changed (same size is fine: new inode)
    store.put(record("k9", {"attention.kind": "se"}, 9, 1.0))  # new
    os.unlink(tmp_path / "k0" / "result.json")              # removed
    got = {r["run_key"]: r["top1"] for r in RunDirStore(tmp_path).records()}
    assert got == {"k1": 99.0, "k2": 62.0, "k3": 63.0, "k4": 64.0, "k5": 65.0, "k9": 1.0}
    entries = json.loads((tmp_path / INDEX).read_text())["entries"]
    assert set(entries) == set(got) and entries["k1"][1]["top1"] == 99.0


def test_index_is_a_cache_deleting_or_corrupting_it_loses_nothing(tmp_path):
    store = RunDirStore(tmp_path)
    fill(store)
    first = list(store.records())
    (tmp_path / INDEX).write_text("{not json")
    assert list(store.records()) == first
    (tmp_path / INDEX).unlink()
    assert list(store.records()) == first
    # a stale entry (signature no longer matches the file) is never served
    idx = json.loads((tmp_path / INDEX).read_text())
    idx["entries"]["k2"][1]["top1"] = -1.0
    idx["entries"]["k2"][0][1] -= 1  # mtime differs -> re-read from result.json
    (tmp_path / INDEX).write_text(json.dumps(idx))
    assert [r["top1"] for r in store.records() if r["run_key"] == "k2"] == [62.0]


def test_returned_records_are_copies_of_the_cache(tmp_path):
    store = RunDirStore(tmp_path)
    fill(store)
    rec = next(iter(store.records()))
    rec["config"]["seed"] = 1234
    assert next(iter(store.records()))["config"]["seed"] == 0


def test_key_only_filter_matches_flatten_semantics(tmp_path):
    rd, mem = RunDirStore(tmp_path), InMemoryStore()
    fill(rd)
    fill(mem)
    for where in ({}, {"attention.kind": "ca"}, {"attention.reduction": [0, 16]}, {"model.stages": (1, 2)},
                  {"status": "completed", "seed": 3}, {"attention.missing": None}, {"attention": None},
                  {"attention.kind": "ca", "top1": 61.0}):
        assert [r["run_key"] for r in rd.records(where)] == [r["run_key"] for r in mem.records(where)], where


def test_benchmark_script_runs(tmp_path):
    res = subprocess.run([sys.executable, str(ROOT / "bench" / "table_10k.py"), "--n", "240", "--dir", str(tmp_path / "b")],
                         capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "second read: read 240 records" in res.stdout and "cells n = [0, 9, 10]" in res.stdout  # one width only
