"""Conformance suite for launchers (after the results store's): one contract, every backend.

Each registered launcher: its conf/launcher YAML holds exactly its config keys, an unknown key
is a one-line error naming the allowed ones, it says whether runs execute here (and then checks
their device here), and it runs a 2-run grid to completed records that a relaunch does not
re-train. Backends that need something this machine may lack (Ray, a SLURM cluster) skip with
the reason; CI starts SLURM, so there every backend but an uninstalled Ray runs."""
from __future__ import annotations

import dataclasses
import json

import pytest
import yaml

from ablate.cli import main
from ablate.errors import ConfigError
from ablate.sweep.launchers import LAUNCHERS, get_launcher
from tests.helpers import ROOT, TINY

NAMES = LAUNCHERS.names()
# What each backend needs to run a tiny grid in CI (the services' one-node SLURM cluster).
EXTRA = {"slurm": ["launcher.partition=debug", "launcher.cpus_per_task=1", "launcher.mem_gb=1",
                   "launcher.timeout_min=10", "launcher.poll_s=0.5"]}


def test_every_backend_module_registers_one_launcher():
    assert {"local", "parallel", "ray", "slurm"} <= set(NAMES)  # discovered, nothing lists them
    assert sorted(p.stem for p in (ROOT / "conf" / "launcher").glob("*.yaml")) == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_conf_yaml_holds_exactly_the_config_keys(name):
    cfg = yaml.safe_load((ROOT / "conf" / "launcher" / f"{name}.yaml").read_text())
    keys = [f.name for f in dataclasses.fields(LAUNCHERS.get(name).config_class)]
    assert sorted(cfg) == sorted(keys) and cfg["name"] == name
    launcher = get_launcher(cfg)
    assert launcher.name == name and isinstance(launcher.cfg, LAUNCHERS.get(name).config_class)


@pytest.mark.parametrize("name", NAMES)
def test_unknown_key_is_one_line_naming_the_allowed_ones(name):
    with pytest.raises(ConfigError) as err:
        get_launcher({"name": name, "no_such_key": 1})
    msg = str(err.value)
    assert f"launcher {name}: unknown option 'no_such_key'" in msg and "workers" in msg and "\n" not in msg


@pytest.mark.parametrize("name", NAMES)
def test_device_is_checked_here_only_by_launchers_that_run_here(name, tiny_cfg):
    import torch

    from ablate.sweep.runner import PlannedRun
    from ablate.train.run import prepare

    if torch.cuda.is_available():
        pytest.skip("needs a machine without CUDA")
    launcher = get_launcher({"name": name})
    runs = [PlannedRun([], prepare(tiny_cfg("trainer.device=cuda")))]
    if launcher.runs_here:
        with pytest.raises(ConfigError, match="not available"):
            launcher.check_runs(runs)
    else:
        launcher.check_runs(runs)  # the node decides


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_runs_a_two_run_grid_and_a_relaunch_trains_nothing(name, home, tmp_path, request):
    if name == "ray":
        pytest.importorskip("ray", reason="ray is not installed (pip install ray); the ray launcher is optional")
    if name == "slurm":
        request.getfixturevalue("slurm_cluster")  # skips with the reason when no cluster is up
    sweep = tmp_path / "two.yaml"
    sweep.write_text("grid: {attention: [none, ca]}\nseeds: [0]\n")
    args = ["sweep", str(sweep), "--no-table", f"launcher={name}", *EXTRA.get(name, []), *TINY]
    assert main(args) == 0
    results = sorted((home / "outputs" / "runs").glob("*/result.json"))
    recs = [json.loads(p.read_text()) for p in results]
    assert len(recs) == 2 and all(r["status"] == "completed" for r in recs), [r.get("message") for r in recs]
    before = {p: p.stat().st_mtime_ns for p in results}
    assert main(args) == 0
    assert {p: p.stat().st_mtime_ns for p in results} == before
