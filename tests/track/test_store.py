"""Conformance suite for results stores (after Optuna's StorageTestCase), run over backends."""
from __future__ import annotations

import multiprocessing as mp

import pytest

from ablate.track.record import RunRecord
from ablate.track.store import InMemoryStore, ResultsStore, RunDirStore, flatten, get_store

BACKENDS = ["memory", "rundir"]


@pytest.fixture(params=BACKENDS)
def store(request, tmp_path) -> ResultsStore:
    return InMemoryStore() if request.param == "memory" else RunDirStore(tmp_path / "runs")


def rec(key: str, status: str = "completed", top1: float = 50.0, **config) -> dict:
    return {"run_key": key, "status": status, "top1": top1, "config": {"seed": 0, **config}}


def test_put_get_roundtrip(store):
    store.put(rec("a", top1=71.5, attention={"kind": "ca"}))
    got = store.get("a")
    assert got["top1"] == 71.5 and got["config"]["attention"]["kind"] == "ca"
    assert store.get("missing") is None
    assert store.keys() == ["a"]


def test_returned_records_are_copies(store):
    store.put(rec("a"))
    got = store.get("a")
    got.top1 = -1
    got["config"]["seed"] = 99
    assert store.get("a")["top1"] == 50.0 and store.get("a")["config"]["seed"] == 0
    assert isinstance(got, RunRecord) and got.status == "completed"  # typed, and a read-only mapping
    with pytest.raises(TypeError):
        got["top1"] = 0


def test_put_is_idempotent_and_replacement_keeps_attempt(store):
    store.put(rec("a", status="failed", top1=None))
    store.put(rec("a", status="failed", top1=None))
    assert store.attempts("a") == []
    store.put(rec("a", status="completed", top1=60.0))
    assert store.get("a")["status"] == "completed"
    assert [r["status"] for r in store.attempts("a")] == ["failed"]


def test_filtered_records_and_frame(store):
    store.put(rec("a", attention={"kind": "ca", "branches": "h"}))
    store.put(rec("b", attention={"kind": "ca", "branches": "hw"}))
    store.put(rec("c", attention={"kind": "se"}))
    assert {r["run_key"] for r in store.records({"attention.kind": "ca"})} == {"a", "b"}
    assert {r["run_key"] for r in store.records({"attention.branches": ["h", "w"]})} == {"a"}
    df = store.frame({"attention.kind": "ca"})
    assert sorted(df["run_key"]) == ["a", "b"] and "attention.branches" in df.columns


def test_metrics_append_only(store):
    for e in range(3):
        store.append_metrics("a", {"epoch": e, "val_top1": 10.0 * e})
    assert [m["epoch"] for m in store.metrics("a")] == [0, 1, 2]
    assert store.metrics("nope") == []


def test_flatten_dotted_keys():
    row = flatten(rec("a", attention={"kind": "ca", "reduction": 32}, tags=["x"]))
    assert row["attention.kind"] == "ca" and row["attention.reduction"] == 32
    assert row["tags"] == ("x",) and row["run_key"] == "a"


def _put_many(root: str, start: int) -> None:
    s = RunDirStore(root)
    for i in range(start, start + 20):
        s.put(rec(f"k{i:03d}", top1=float(i)))


def test_rundir_concurrent_writers(tmp_path):
    root = str(tmp_path / "runs")
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_put_many, args=(root, s)) for s in (0, 20)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert all(p.exitcode == 0 for p in procs)
    s = RunDirStore(root)
    assert len(s.keys()) == 40 and s.get("k039")["top1"] == 39.0


def test_rundir_torn_metrics_line_ignored(tmp_path):
    s = RunDirStore(tmp_path)
    s.append_metrics("a", {"epoch": 0})
    with open(tmp_path / "a" / "metrics.jsonl", "a") as fh:
        fh.write('{"epoch": 1, "val_to')  # a crash mid-write
    assert s.metrics("a") == [{"epoch": 0}]


def test_get_store_picks_backend(tmp_path):
    assert isinstance(get_store("memory"), InMemoryStore)
    assert isinstance(get_store(tmp_path), RunDirStore)
    mem = InMemoryStore()
    assert get_store(mem) is mem
    # "<backend>:<argument>" goes through the STORES registry; any other text is a runs dir
    assert get_store(f"rundir:{tmp_path}").root == tmp_path
    assert get_store(f"{tmp_path}/odd:name").root == tmp_path / "odd:name"
    from ablate.track.store import STORES

    assert STORES.names() == ["memory", "rundir", "wandb"]
