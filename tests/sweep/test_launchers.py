"""Launcher config group: validation, one-line CLI errors before any job starts, GPU slots."""
from __future__ import annotations

import importlib.util

import pytest

from ablate.cli import main
from ablate.sweep.launchers import LAUNCHERS, get_launcher
from ablate.sweep.packing import device_slots
from tests.helpers import TINY


def test_every_launcher_yaml_builds_its_launcher(home):
    from ablate.config import compose, group_options
    from ablate.config import to_container

    assert group_options("launcher") == LAUNCHERS.names()
    for name in group_options("launcher"):
        launcher = get_launcher(to_container(compose([f"launcher={name}"]))["launcher"])
        assert launcher.name == name


@pytest.mark.parametrize("cfg, words", [
    ({"name": "moon"}, [f"unknown launcher 'moon'; allowed: {', '.join(LAUNCHERS.names())}"]),
    ({"name": "local", "workerz": 2}, ["launcher local: unknown option 'workerz'", "workers"]),
    ({"name": "parallel", "workers": 0}, ["launcher.workers=0"]),
    ({"name": "parallel", "runs_per_gpu": 0}, ["launcher.runs_per_gpu=0"]),
    ({"name": "parallel", "mem_per_run_gb": -1}, ["launcher.mem_per_run_gb=-1"]),
    # local never turns into parallel behind the user's back: it has no packing keys
    ({"name": "local", "runs_per_gpu": 2}, ["launcher local: unknown option 'runs_per_gpu'; allowed: name, workers"]),
    ({"name": "slurm", "partitio": "debug"}, ["launcher slurm: unknown option 'partitio'", "partition"]),
])
def test_bad_launcher_config(cfg, words):
    with pytest.raises(ValueError) as err:
        get_launcher(cfg)
    for w in words:
        assert w in str(err.value) and "\n" not in str(err.value)


def test_cpu_packing_gives_k_cpu_slots(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert device_slots(None) == []
    assert device_slots(3) == [None, None, None]


def test_gpu_packing_is_round_robin_over_the_visible_gpus(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,5")
    assert device_slots(2) == ["2", "5", "2", "5"]  # no memory figure given: nothing to refuse


@pytest.mark.gpu
def test_packing_refuses_a_k_that_does_not_fit_gpu_memory():
    import torch

    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    free_gb = torch.cuda.mem_get_info(0)[0] / 2**30
    with pytest.raises(ValueError, match=r"does not fit GPU .* allowed: runs_per_gpu <= "):
        device_slots(4, mem_per_run_gb=free_gb / 2, gpus=[0])


def _write(tmp_path, text: str) -> str:
    p = tmp_path / "study.yaml"
    p.write_text(text)
    return str(p)


POSTGRES_DRIVER = any(importlib.util.find_spec(m) for m in ("psycopg2", "psycopg"))
STUDY = "kind: optuna\noverrides: [attention=ca]\nsearch: {attention.reduction: [8, 16]}\nn_trials: 2\n"


@pytest.mark.parametrize("extra, words", [
    (["launcher.name=moon"], [f"unknown launcher 'moon'; allowed: {', '.join(LAUNCHERS.names())}"]),
    (["--storage", "mongodb://x"], ["bad storage URL 'mongodb://x'", "sqlite:///PATH"]),
    (["--storage", "postgresql://ablate:pw@127.0.0.1:1/none"],
     ["cannot open storage", "ablate:***@127.0.0.1:1", "OperationalError"] if POSTGRES_DRIVER else
     ["needs a PostgreSQL driver", "ablate:***@127.0.0.1:1", "ablate[cluster]"]),
    (["--n-trials", "0"], ["n_trials=0"]),
])
def test_tune_bad_input_is_one_line_before_any_run(extra, words, tmp_path, home, capsys):
    assert main(["tune", _write(tmp_path, STUDY), *TINY, *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("ablate: error:"), err
    for w in words:
        assert w in err, (w, err)
    assert not (home / "outputs" / "runs").exists()


def test_empty_search_space_through_the_cli(tmp_path, home, capsys):
    assert main(["sweep", _write(tmp_path, "kind: optuna\nsearch: {}\n")]) == 2
    assert "search space is empty" in capsys.readouterr().err


def test_slurm_without_slurm_tools_fails_before_submitting(home, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", str(tmp_path))  # no sinfo/sbatch on PATH, as on a laptop
    assert main(["sweep", "branches", "--seeds", "0", "--no-table", "launcher=slurm", *TINY]) == 2
    err = capsys.readouterr().err
    # without the cluster extra the missing package is named first; either way one line, nothing submitted
    expected = "sinfo not found" if importlib.util.find_spec("submitit") else "launcher slurm needs submitit"
    assert expected in err and err.count("\n") == 1, err
    assert not (home / "outputs" / "runs").exists()
    assert not (home / "outputs" / "sweeps" / "branches" / "submitit").exists()


def test_status_of_a_sweep_never_launched(home, capsys):
    assert main(["status", "branches"]) == 2
    assert "sweep 'branches' has not been launched" in capsys.readouterr().err


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="needs a machine without CUDA")
def test_a_device_this_machine_lacks_is_refused_by_launchers_that_run_here(home, capsys):
    from ablate.cli import main
    from tests.helpers import TINY

    assert main(["train", *TINY, "trainer.device=cuda"]) == 2
    assert "'cuda'" in capsys.readouterr().err
    assert main(["sweep", "branches", "--seeds", "0", *TINY, "launcher=local", "trainer.device=cuda"]) == 2
    err = capsys.readouterr().err
    assert "not available" in err and "auto, cpu" in err and err.count("\n") == 1
    assert not (home / "outputs" / "runs").exists()
