"""W&B as a source: offline runs written by real tiny runs (tracking=offline) build the same
table as the local store, without a server; the public-API path maps runs the same way."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from ablate.report import build_table, load_table_spec
from ablate.report.spec import TableSpec
from ablate.track.store import WandbStore, get_store
from ablate.track.store._wandb import parse_offline_run
from tests.helpers import TINY

SPEC_YAML = """
title: "W&B import"
sweep: wb
row_key: {key: attention.kind, values: [none, ca]}
baseline: none
metrics:
  - {key: params, label: "Params", aggregate: mean, fmt: ".0f"}
  - {key: top1, label: "Top-1", fmt: ".3f", delta: true}
"""


@pytest.mark.slow
def test_offline_wandb_runs_build_the_same_table(home, tmp_path, capsys):
    from ablate.cli import main
    from ablate.report.sources import project_paths, table_records
    from ablate.track.store import RunDirStore

    sweep = tmp_path / "wb.yaml"
    sweep.write_text("grid: {attention: [none, ca]}\nseeds: [0, 1]\n")
    offline = [o for o in TINY if not o.startswith("tracking=")] + ["tracking=offline"]
    assert main(["sweep", str(sweep), "--no-table", *offline]) == 0
    spec_path = tmp_path / "wb_table.yaml"
    spec_path.write_text(SPEC_YAML)
    spec = load_table_spec(str(spec_path))
    runs_dir = home / "outputs" / "runs"
    local = build_table(spec, *table_records(spec, None, project_paths())[:2])

    source = f"wandb:{runs_dir}"
    wb_store = get_store(source)
    assert isinstance(wb_store, WandbStore) and len(wb_store.keys()) == 4
    recs, expected, _ = table_records(spec, source, project_paths())  # via the local manifest
    imported = build_table(spec, recs, expected)
    cols = ["setting", "n", "params_mean", "top1_mean", "top1_std", "top1_delta", "top1_p"]
    assert imported.values[cols].equals(local.values[cols]) and list(imported.values["n"]) == [2, 2]
    (home / "outputs" / "sweeps" / "wb" / "manifest.json").unlink()  # no manifest: the W&B group picks the runs
    recs, expected, _ = table_records(spec, source, project_paths())
    assert expected is None and build_table(spec, recs).values[cols].equals(local.values[cols])

    key = sorted(wb_store.keys())[0]
    local_rows = RunDirStore(runs_dir).metrics(key)
    assert [r["val_top1"] for r in wb_store.metrics(key)] == [r["val_top1"] for r in local_rows]
    assert wb_store.get(key)["config"] == RunDirStore(runs_dir).get(key)["config"]

    # cross-check the log reader against W&B's own reader
    run_file = next((runs_dir / key / "wandb").glob("offline-run-*/run-*.wandb"))
    wandb_cli = Path(sys.executable).with_name("wandb")
    out = subprocess.run([str(wandb_cli), "leet", "inspect", "--summary", "--json", str(run_file.parent)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr[-500:]
    theirs = json.loads(out.stdout)
    ours = parse_offline_run(run_file)
    for k in ("top1", "top5", "params", "madds", "latency_ms", "status"):
        assert ours["summary"][k] == pytest.approx(theirs["summary"][k]) if k != "status" else ours["summary"][k] == theirs["summary"][k]
    assert ours["config"] == {k: v for k, v in theirs["config"].items() if k != "_wandb"}
    assert ours["name"] == theirs["name"] == key and ours["group"] == "wb" and ours["exit_code"] == theirs["exit_code"] == 0

    # a torn tail (run killed mid-write) parses to a prefix, no exception
    torn = tmp_path / "run-torn.wandb"
    data = run_file.read_bytes()
    torn.write_bytes(data[: len(data) - 37])
    assert len(parse_offline_run(torn)["history"]) <= len(ours["history"])

    assert main(["table", str(spec_path), "--wandb", str(runs_dir), "--format", "csv", "--out", str(tmp_path / "t")]) == 0
    assert (tmp_path / "t" / "wb_table.csv").is_file()
    shutil.rmtree(tmp_path / "t")


class FakeRun(SimpleNamespace):
    def scan_history(self):
        return iter(self.rows)


class FakeApi:
    """The slice of ``wandb.Api`` the store uses: ``runs(path)`` -> runs with name, group, config,
    summary, state, created_at and ``scan_history()``."""

    def __init__(self, runs):
        self._runs, self.paths = runs, []

    def runs(self, path):
        self.paths.append(path)
        return list(self._runs)


def api_run(name, kind, seed, top1, state="finished", created="2026-01-01", summary_status=True):
    cfg = {"seed": seed, "sweep": "s", "attention": {"kind": kind}, "_wandb": {"x": 1}}
    summary = {"top1": top1, "params": 10, "_runtime": 3.0, **({"status": "completed"} if summary_status else {})}
    rows = [{"epoch": 0, "val_top1": top1 / 2, "_step": 0}, {"epoch": 1, "val_top1": top1, "_step": 1}]
    return FakeRun(name=name, group="s", config=cfg, summary=summary, state=state, created_at=created, rows=rows)


def test_public_api_runs_become_records():
    api = FakeApi([api_run("aaaaaaaaaaa1", "none", 0, 70.0), api_run("aaaaaaaaaaa2", "none", 1, 72.0),
                   api_run("bbbbbbbbbbb1", "ca", 0, 75.0, created="2026-01-01"),
                   api_run("bbbbbbbbbbb1", "ca", 0, 76.0, created="2026-02-01"),  # retried: the newer wins
                   api_run("my-run", "ca", 1, 77.0, state="crashed", summary_status=False)])
    store = WandbStore("ent/proj", api=api)
    assert api.paths == [] and len(store.keys()) == 4 and api.paths == ["ent/proj"]
    assert store.get("bbbbbbbbbbb1")["top1"] == 76.0 and [a["top1"] for a in store.attempts("bbbbbbbbbbb1")] == [75.0]
    crashed = [store.get(k) for k in store.keys() if store.get(k)["top1"] == 77.0][0]
    assert crashed["status"] == "failed" and len(crashed["run_key"]) == 12  # key recomputed from the config
    assert "_wandb" not in crashed["config"] and crashed["sweep"] == "s"
    assert store.metrics("aaaaaaaaaaa1") == [{"epoch": 0, "val_top1": 35.0}, {"epoch": 1, "val_top1": 70.0}]
    spec = TableSpec(name="w", row_key={"key": "attention.kind", "values": ["none", "ca"]},
                     metrics=[{"key": "top1", "label": "T"}])
    v = build_table(spec, store.records()).values.set_index("setting")
    assert v.loc["none", "top1_mean"] == 71.0 and v.loc["ca", "n"] == 1 and v.loc["ca", "failed"] == 1
    got = store.get("aaaaaaaaaaa1")
    got["config"]["seed"] = 99
    assert store.get("aaaaaaaaaaa1")["config"]["seed"] == 0  # returned records are copies


def test_wandb_store_is_read_only_and_checks_its_source(tmp_path):
    store = WandbStore(str(tmp_path))
    assert store.keys() == []
    with pytest.raises(PermissionError, match="read-only"):
        store.put({"run_key": "a"})
    with pytest.raises(PermissionError, match="read-only"):
        store.append_metrics("a", {"epoch": 0})
    with pytest.raises(ValueError, match=r"W&B source 'a/b/c'; allowed: ENTITY/PROJECT or a directory"):
        WandbStore("a/b/c")
    bad = tmp_path / "run-x.wandb"
    bad.write_bytes(b"not a log")
    with pytest.raises(ValueError, match="not a W&B transaction log"):
        parse_offline_run(bad)


def test_cli_rejects_a_bad_wandb_source(home, capsys):
    from ablate.cli import main

    assert main(["table", "branches", "--wandb", "no-slash"]) == 2
    assert "--wandb 'no-slash'; allowed: ENTITY/PROJECT or an existing directory" in capsys.readouterr().err
