"""Commands that train nothing answer at once: which libraries they import, and the caches
that let them (compose, plan, table; ``ablate.cache``) stay right when something changes.

Speed itself is measured by ``bench/commands.py``, never by a timed test; these tests check
what makes it fast: ``ablate status``, ``ablate table`` (its second call), ``ablate sweep
--dry-run``, a relaunch whose runs are all final and every ``--help`` run in a fresh
interpreter without importing torch, W&B, Optuna or matplotlib (nor pandas/scipy/Hydra where
the caches answer), and each cache misses as soon as what it depends on changes.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from tests.helpers import ROOT

HEAVY = {"torch", "wandb", "optuna", "matplotlib"}
BUILD = {"pandas", "scipy", "hydra"}  # what a cached table or plan needs none of

# Runs `ablate ARGS...` in this interpreter and prints which of the watched top-level modules
# were imported, as the last line of stderr (stdout is the command's own).
PROBE = textwrap.dedent("""
    import sys
    from ablate.cli import main
    try:
        rc = main(sys.argv[1:])
    except SystemExit as exc:
        rc = exc.code or 0
    watched = {watched!r}
    sys.stdout.flush()
    print("MODULES " + " ".join(m for m in watched if m in sys.modules) + f" RC {{rc}}", file=sys.stderr)
""").format(watched=tuple(sorted(HEAVY | BUILD)))


def probe(home, *args: str, env: dict | None = None) -> tuple[set[str], int, str]:
    """(imported watched modules, exit status, stdout) of ``ablate ARGS`` in a fresh interpreter."""
    full = {**os.environ, "ABLATE_HOME": str(home), "ABLATE_PROJECT": str(ROOT), "WANDB_MODE": "disabled",
            **(env or {})}
    out = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, env=full,
                         cwd=home, timeout=300)
    last = out.stderr.strip().splitlines()[-1] if out.stderr.strip() else ""
    assert last.startswith("MODULES"), out.stderr[-3000:]
    words = last.split()
    return set(words[1:-2]), int(words[-1]), out.stdout


SWEEP = """\
description: two settings x three seeds, records written by the test (nothing trains)
table: fastcmd_table.yaml
overrides: [trainer.threads=1, tracking=disabled, data.n_train=256, data.n_val=128, trainer.epochs=1]
grid:
  attention: [none, ca]
seeds: [0, 1, 2]
"""
TABLE = """\
title: "Fast commands"
sweep: fastcmd
rows:
  - {label: plain, where: {attention.kind: none}}
  - {label: CA, where: {attention.kind: ca}}
baseline: plain
metrics:
  - {key: top1, label: "Top-1 (%)", fmt: ".2f", aggregate: mean_std, delta: true}
formats: [md, csv]
"""


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A launched sweep (manifest written) whose six runs all have completed records, planned
    in this process the way ``ablate sweep`` plans it (which fills the compose and plan caches)."""
    from ablate.sweep import load_sweep
    from ablate.sweep.runner import plan_sweep, write_manifest

    home = tmp_path_factory.mktemp("fastcmd")
    (home / "fastcmd.yaml").write_text(SWEEP)
    (home / "fastcmd_table.yaml").write_text(TABLE)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ABLATE_HOME", str(home))
        mp.chdir(home)
        spec = load_sweep(str(home / "fastcmd.yaml"))
        runs = plan_sweep(spec)
        write_manifest(spec, runs, home / "outputs" / "sweeps")
        for r in runs:
            ca = r.config["attention"]["kind"] == "ca"
            r.store.put({"run_key": r.key, "status": "completed", "seed": r.config["seed"], "sweep": "fastcmd",
                         "top1": 60.0 + 30 * ca + r.config["seed"], "config": r.config})
    return home


def test_status_dry_run_and_a_relaunch_with_nothing_to_do_import_no_heavy_library(finished):
    sweep = str(finished / "fastcmd.yaml")
    mods, rc, out = probe(finished, "status", sweep)
    assert rc == 0 and "completed 6" in out and not mods & HEAVY, mods
    mods, rc, out = probe(finished, "status", sweep)  # `paths` composed once: now from the cache
    assert rc == 0 and "completed 6" in out and not mods & {*HEAVY, *BUILD}, mods
    mods, rc, out = probe(finished, "sweep", sweep, "--dry-run")
    assert rc == 0 and out.count("completed") == 6 and not mods & {*HEAVY, *BUILD}, mods
    mods, rc, out = probe(finished, "sweep", sweep)  # the no-op relaunch also prints the table
    assert rc == 0 and "Fast commands" in out and not mods & HEAVY, mods
    # ... and once the table is cached (the relaunch above built it), nothing heavy at all
    mods, rc, out = probe(finished, "sweep", sweep)
    assert rc == 0 and "Fast commands" in out and not mods & {*HEAVY, *BUILD}, mods


def test_table_imports_no_heavy_library_and_its_second_call_no_pandas_or_scipy(finished):
    out_dir = finished / "tables_t"
    mods, rc, first = probe(finished, "table", str(finished / "fastcmd_table.yaml"), "--out", str(out_dir))
    assert rc == 0 and not mods & HEAVY, mods
    files = {p.name: p.read_bytes() for p in out_dir.iterdir()}
    assert sorted(files) == ["fastcmd_table.csv", "fastcmd_table.md"]
    for p in out_dir.iterdir():
        p.unlink()  # a cached table still writes every file
    mods, rc, second = probe(finished, "table", str(finished / "fastcmd_table.yaml"), "--out", str(out_dir))
    assert rc == 0 and not mods & {*HEAVY, *BUILD}, mods
    assert second == first and {p.name: p.read_bytes() for p in out_dir.iterdir()} == files


@pytest.mark.parametrize("argv", [["--help"], ["sweep", "--help"], ["status", "--help"], ["table", "--help"],
                                  ["report", "--help"], ["profile", "--help"], ["tune", "--help"],
                                  ["train", "--help"], ["--version"]], ids=" ".join)
def test_help_imports_no_heavy_library(argv, tmp_path):
    mods, rc, out = probe(tmp_path, *argv)
    assert rc == 0 and out.strip() and not mods & {*HEAVY, "pandas", "scipy"}, mods


def test_a_new_record_rebuilds_the_cached_table(finished):
    """The table cache is stamped with every record it reads: a changed one is a rebuild."""
    from ablate.track.store import RunDirStore

    spec = str(finished / "fastcmd_table.yaml")
    out_dir = finished / "tables_r"
    probe(finished, "table", spec, "--out", str(out_dir))
    before = (out_dir / "fastcmd_table.md").read_text()
    store = RunDirStore(finished / "outputs" / "runs")
    manifest = json.loads((finished / "outputs" / "sweeps" / "fastcmd" / "manifest.json").read_text())
    ca = next(e for e in manifest["runs"] if e["config"]["attention"]["kind"] == "ca")
    rec = dict(store.get(ca["run_key"]))
    assert "91.00" in before  # CA: 90, 91, 92
    store.put({**rec, "top1": 10.0})
    try:
        mods, rc, _ = probe(finished, "table", spec, "--out", str(out_dir))
        after = (out_dir / "fastcmd_table.md").read_text()
        assert rc == 0 and "scipy" in mods  # rebuilt ...
        assert f"{(273 - rec['top1'] + 10) / 3:.2f}" in after and "91.00" not in after  # ... with the new number
    finally:
        store.put(rec)


def test_a_relaunch_with_a_run_to_do_prepares_every_run(finished, monkeypatch):
    """A run whose record is missing takes the full path: every run prepared (torch), nothing
    taken from the plan cache for the launch."""
    from ablate.sweep import load_sweep
    from ablate.sweep.runner import plan_sweep

    monkeypatch.setenv("ABLATE_HOME", str(finished))
    monkeypatch.chdir(finished)
    spec = load_sweep(str(finished / "fastcmd.yaml"))
    quick = plan_sweep(spec)
    assert all(r._plan is None for r in quick) and len(quick) == 6  # all final: none prepared
    spec.seeds = [0, 1, 2, 3]  # seed 3 has no record
    full = plan_sweep(spec)
    assert len(full) == 8 and all(r._plan is not None for r in full)
    assert [r.key for r in full[:3]] == [r.key for r in quick[:3]]  # the same keys either way


def test_the_compose_cache_follows_conf_env_and_overrides(tmp_path, monkeypatch):
    """A cached config is used only while conf/, the variables it reads and the overrides are
    the same: a changed conf file, ABLATE_HOME or override composes again."""
    import shutil

    from ablate import cache
    from ablate.config import compose, compose_container, to_container

    project = tmp_path / "project"
    shutil.copytree(ROOT / "conf", project / "conf")
    monkeypatch.setenv("ABLATE_PROJECT", str(project))
    monkeypatch.setenv("ABLATE_HOME", str(tmp_path / "home1"))
    monkeypatch.setenv(cache.DIR_ENV, str(tmp_path / "cache"))
    first = compose_container(["seed=3"])
    assert first == to_container(compose(["seed=3"]))
    assert len(list((tmp_path / "cache" / "compose").iterdir())) == 1

    import ablate.config as config_module

    calls = []
    real = config_module.compose
    monkeypatch.setattr(config_module, "compose", lambda o=(): calls.append(list(o)) or real(o))
    assert compose_container(["seed=3"]) == first and calls == []  # a hit: Hydra not called
    monkeypatch.setenv("ABLATE_HOME", str(tmp_path / "home2"))  # conf/paths reads ${oc.env:ABLATE_HOME}
    assert compose_container(["seed=3"])["paths"]["root"] == str(tmp_path / "home2") and len(calls) == 1
    trainer = project / "conf" / "trainer" / "default.yaml"
    trainer.write_text(trainer.read_text().replace("label_smoothing: 0.1", "label_smoothing: 0.2"))
    assert compose_container(["seed=3"])["trainer"]["label_smoothing"] == 0.2 and len(calls) == 2
    assert compose_container(["seed=4"])["seed"] == 4 and len(calls) == 3
    monkeypatch.setenv(cache.SWITCH_ENV, "off")
    compose_container(["seed=4"])
    assert len(calls) == 4  # caching off: composed every time


def test_a_config_with_a_time_dependent_resolver_is_never_cached(tmp_path, monkeypatch):
    from ablate import cache
    from ablate.config import compose_container

    monkeypatch.setenv("ABLATE_HOME", str(tmp_path))
    monkeypatch.setenv(cache.DIR_ENV, str(tmp_path / "cache"))
    compose_container(["tags=[${now:%H-%M-%S-%f}]"])
    compose_container(["seed=1"])
    assert len(list((tmp_path / "cache" / "compose").iterdir())) == 1  # only the seed=1 config


def test_a_second_profile_builds_no_model(tmp_path):
    args = ["profile", "model=mobilenet_v2_tiny", "model.stem=small", "attention=ca", "--repeats", "1"]
    mods, rc, first = probe(tmp_path, *args)
    assert rc == 0 and "torch" in mods
    mods, rc, second = probe(tmp_path, *args)
    assert rc == 0 and not mods & {*HEAVY, *BUILD}, mods
    assert first.splitlines()[-4:] == second.splitlines()[-4:]  # the same row, latency included
