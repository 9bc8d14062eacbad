"""One run as several processes (``trainer.devices``): torchrun on CPU with gloo, tiny nets.

The end-to-end tests start real ``ablate train`` processes (each a torchrun of 2 ranks) and are
marked slow; the checks of bad input and run keys are fast and start nothing.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from ablate.config import compose
from ablate.errors import ConfigError
from ablate.train.engine import TrainerConfig
from ablate.train.run import prepare
from tests.helpers import TINY


# --- fast: bad input, run keys ---------------------------------------------------------------
def _key(home, *overrides: str) -> str:
    return prepare(compose([*TINY, *overrides])).key


def test_the_run_key_does_not_depend_on_the_process_count(home):
    one = _key(home)
    assert _key(home, "trainer.devices=2") == one == _key(home, "trainer.devices=4", "trainer.sync_bn=true")
    # sync_bn only matters with several processes
    assert _key(home, "trainer.sync_bn=false") == one
    # per-process BatchNorm on 2 processes normalises over 32 samples, not 64: another run; not
    # 2 accumulated micro-batches of 32 either (the same gradients, but the running statistics
    # are rank 0's, updated once a step, not twice)
    per_rank = _key(home, "trainer.devices=2", "trainer.sync_bn=false")
    assert per_rank != one and per_rank != _key(home, "trainer.devices=4", "trainer.sync_bn=false")
    assert per_rank != _key(home, "data.batch_size=32", "trainer.accumulate=2")
    assert _key(home, "trainer.devices=2", "trainer.sync_bn=false", "launcher=slurm", "launcher.nodes=2") == _key(
        home, "trainer.devices=4", "trainer.sync_bn=false")  # the processes, wherever they are


@pytest.mark.parametrize("override, match", [
    ("trainer.devices=0", r"trainer.devices=0; allowed: an integer >= 1"),
    ("trainer.devices=two", r"trainer.devices='two'; allowed: an integer >= 1"),
    ("trainer.sync_bn=maybe", r"trainer.sync_bn='maybe'; allowed: true, false"),
    ("trainer.devices=3", r"data.batch_size=64 does not split over trainer.devices=3 = 3 processes .*"
                          r"allowed: a multiple of 3 \(3, 6, 9, \.\.\.\)"),
])
def test_bad_values_are_one_line_before_any_process_starts(home, capsys, override, match):
    from ablate.cli import main

    assert main(["train", *TINY, override]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("ablate: error: ")
    import re

    assert re.search(match, err), err
    assert not (home / "outputs" / "runs").exists()  # nothing started, nothing written


def test_a_multi_node_batch_must_split_over_every_process(home):
    with pytest.raises(ConfigError, match=r"trainer.devices=2 x launcher.nodes=3 = 6 processes"):
        prepare(compose([*TINY, "trainer.devices=2", "launcher=slurm", "launcher.nodes=3"]))


def test_more_devices_than_cuda_has_is_one_line(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    TrainerConfig(devices=2, device="cuda").check_here()
    with pytest.raises(ConfigError, match=r"trainer.devices=3 but this machine has 2 CUDA device\(s\); allowed: 1 to 2"):
        TrainerConfig(devices=3, device="auto").check_here()
    with pytest.raises(ConfigError, match=r"trainer.device='cuda:1' with trainer.devices=2; allowed: auto, cuda, cpu"):
        TrainerConfig(devices=2, device="cuda:1")
    TrainerConfig(devices=3, device="cpu").check_here()  # CPU processes: as many as asked


def test_a_study_refuses_several_processes_per_trial(home):
    from ablate.sweep import launch, load_sweep

    with pytest.raises(ConfigError, match=r"trainer.devices=2 in an Optuna study; allowed: trainer.devices=1"):
        launch(load_sweep("tune_reduction"), [*TINY, "trainer.devices=2"], dry_run=True)


def test_packing_refuses_runs_of_several_processes(home, tmp_path):
    from ablate.sweep import launch

    from ablate.sweep.files import load_sweep

    sweep = tmp_path / "two.yaml"
    sweep.write_text("grid: {attention: [none]}\nseeds: [0]\n")
    with pytest.raises(ConfigError, match=r"launcher.runs_per_gpu=2 packs runs of one process"):
        launch(load_sweep(str(sweep)), [*TINY, "trainer.devices=2", "launcher=parallel", "launcher.runs_per_gpu=2"])


# --- slow: real torchrun runs ----------------------------------------------------------------
def _train(home: Path, *overrides: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "ABLATE_HOME": str(home)}
    proc = subprocess.run([sys.executable, "-m", "ablate", "train", *overrides], env=env,
                          capture_output=True, text=True, timeout=600)
    if check:
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def _run_dir(home: Path) -> Path:
    (d,) = [p.parent for p in (home / "outputs" / "runs").glob("*/result.json")]
    return d


def _checkpoint(home: Path) -> dict:
    return torch.load(_run_dir(home) / "checkpoint.pt", map_location="cpu", weights_only=True)


@pytest.fixture(scope="module")
def rgb(tmp_path_factory) -> Path:
    """203 + 67 random 3-channel 16 px images: NCHW batches (1-channel images would make every
    activation channels_last, where torch's CPU BatchNorm sums in one pass, ~1e-4 off; the
    processes' BatchNorm is exact, so the comparison would measure torch's rounding)."""
    rng = np.random.default_rng(0)
    path = tmp_path_factory.mktemp("rgb") / "rgb.npz"
    np.savez(path, x=rng.integers(0, 256, (203, 16, 16, 3), dtype=np.uint8), y=rng.integers(0, 3, 203),
             x_val=rng.integers(0, 256, (67, 16, 16, 3), dtype=np.uint8), y_val=rng.integers(0, 3, 67))
    return path


@pytest.mark.slow
@pytest.mark.parametrize("split", [["data.batch_size=64"], ["data.batch_size=32", "trainer.accumulate=2", "data.n_train=193"]])
def test_two_processes_reach_the_one_process_weights(tmp_path, rgb, split):
    """Same global batch (64; the last, 11, splits 6/5), BatchNorm over all of it (sync_bn): 2
    processes train the weights 1 process trains, to float rounding, under the same run key.
    With 2 accumulated micro-batches of 32 each micro-batch is shared out, and the last step
    (1 sample) leaves rank 1 an empty micro-batch: both ranks still run it (their collectives
    pair up) and it adds nothing.
    SGD: AdamW turns the rounding noise of gradients that are zero in exact arithmetic (a
    BatchNorm bias before another BatchNorm) into lr-sized steps, whatever reorders the sums.
    Rank 0 alone writes: one record, one W&B run, one log."""
    common = ["data=arrays", f"data.path={rgb}", *split, "trainer.epochs=2", "trainer.latency_repeats=1",
              "attention=se", "model.dropout=0", "optim=sgd", "trainer.channels_last=false", "trainer.threads=1"]
    _train(tmp_path / "one", *common, "tracking=disabled")
    _train(tmp_path / "two", *common, "trainer.devices=2", "tracking=offline")
    one, two = _run_dir(tmp_path / "one"), _run_dir(tmp_path / "two")
    assert one.name == two.name  # the same run key
    rec = json.loads((two / "result.json").read_text())
    assert rec["status"] == "completed" and rec["world_size"] == 2 and rec["epochs"] == 2
    a, b = _checkpoint(tmp_path / "one"), _checkpoint(tmp_path / "two")
    assert list(b["model"]) == list(a["model"])  # the plain model's keys: no DDP 'module.' prefix
    for name, wa in a["model"].items():
        wb = b["model"][name]
        if wa.is_floating_point():  # measured: <= 1.4e-5 of the tensor's scale (1 vs 2 threads in one process: 1.0e-5)
            scale = max(wa.abs().max().item(), 1e-3)
            assert (wa - wb).abs().max().item() <= 1e-4 * scale, name
        else:
            assert torch.equal(wa, wb), name
    for ra, rb in zip(a["history"], b["history"], strict=True):
        assert rb["val_top1"] == ra["val_top1"] and rb["val_top5"] == ra["val_top5"]
        assert rb["train_loss"] == pytest.approx(ra["train_loss"], rel=1e-6)
        assert rb["val_loss"] == pytest.approx(ra["val_loss"], rel=1e-6)
    # one record, one W&B run, rank 0's log only
    assert len(list((tmp_path / "two" / "outputs" / "runs").glob("*/result.json"))) == 1
    assert len(list((two / "wandb").glob("offline-run-*"))) == 1 and rec["wandb_id"] == two.name
    assert (two / "train.log").read_text().count("epoch 2/2") == 1


# --- slow: a rank lost or stopped mid-epoch, then relaunched ---------------------------------
LONG = ["data.n_train=1536", "data.n_val=256", "trainer.epochs=3", "trainer.latency_repeats=1", "tracking=disabled",
        "trainer.devices=2"]


@pytest.fixture(scope="module")
def unbroken(tmp_path_factory) -> list[dict]:
    home = tmp_path_factory.mktemp("unbroken")
    _train(home, *LONG)
    return [json.loads(line) for line in (_run_dir(home) / "metrics.jsonl").read_text().splitlines()]


def _ranks(home: Path) -> dict[int, int]:
    """rank -> pid of the ranks training under ``home`` (from their environment)."""
    found = {}
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            raw = (p / "environ").read_bytes().decode(errors="replace")
        except OSError:
            continue
        env = dict(e.split("=", 1) for e in raw.split("\0") if "=" in e)
        if env.get("ABLATE_DISTRIBUTED") == "1" and env.get("ABLATE_HOME") == str(home) and "RANK" in env:
            found[int(env["RANK"])] = int(p.name)
    return found


@pytest.mark.slow
@pytest.mark.parametrize("rank, sig, status, again", [(1, signal.SIGKILL, "failed", 2), (0, signal.SIGKILL, "failed", 2),
                                                      (1, signal.SIGUSR1, "preempted", 2), (0, signal.SIGTERM, "preempted", 1)])
def test_one_rank_lost_or_stopped_mid_epoch_then_relaunched_ends_as_unbroken(tmp_path, unbroken, rank, sig, status, again):
    """kill -9 of one rank (the other is stopped by torchrun or its lost peer) or a pre-emption
    signal to one rank (every rank stops at the same step): the run records a resumable
    status, and the relaunch resumes from the last checkpoint to the unbroken run's metrics.
    ``again``: the processes of the relaunch; 1 resumes the same run (same key) in one process."""
    env = {**os.environ, "ABLATE_HOME": str(tmp_path)}
    proc = subprocess.Popen([sys.executable, "-m", "ablate", "train", *LONG], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    end = time.time() + 300
    while not list((tmp_path / "outputs" / "runs").glob("*/checkpoint.pt")):  # epoch 1 done
        assert proc.poll() is None and time.time() < end, proc.stdout.read()[-3000:]
        time.sleep(0.05)
    time.sleep(0.5)  # into epoch 2 (an epoch takes ~2 s here)
    pids = _ranks(tmp_path)
    assert sorted(pids) == [0, 1]
    os.kill(pids[rank], sig)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 1, out[-3000:]  # the run did not finish
    rec = json.loads((_run_dir(tmp_path) / "result.json").read_text())
    assert rec["status"] == status and rec["epochs"] == 1, rec["message"]
    if sig == signal.SIGUSR1:
        assert rec["message"].startswith("stop requested at epoch 1 step ")
    _train(tmp_path, *LONG[:-1], f"trainer.devices={again}")
    rec = json.loads((_run_dir(tmp_path) / "result.json").read_text())
    assert rec["status"] == "completed" and rec["resumed_from"] == 1 and rec["epochs"] == 3
    if again != 2:  # another process count: the same run, float rounding apart
        assert rec.get("world_size") is None and not _ranks(tmp_path)
        return
    rows = [json.loads(line) for line in (_run_dir(tmp_path) / "metrics.jsonl").read_text().splitlines()]
    assert rows == [{**r, "seconds": rows[i]["seconds"]} for i, r in enumerate(unbroken)]  # bit-identical
    assert not _ranks(tmp_path)  # no rank left behind
