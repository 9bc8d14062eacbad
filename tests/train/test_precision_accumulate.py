"""trainer.precision (fp32 / bf16 / fp16 with a gradient scaler) and trainer.accumulate (K
micro-batches per optimiser step): their checks, what they do to the loop and to the run key."""
from __future__ import annotations

import math
import warnings

import pytest
import torch
import torch.nn as nn

import ablate.train.engine as engine
from ablate.config import compose, to_container
from ablate.data import make_loader
from ablate.data.tensor import TensorImageDataset
from ablate.errors import ConfigError
from ablate.track.runkey import run_key, semantic_config
from ablate.track.store import RunDirStore
from ablate.train.engine import Diverged, TrainerConfig, fit
from tests.helpers import TINY


# --- checks -------------------------------------------------------------------------------
@pytest.mark.parametrize("kw, needle", [
    ({"precision": "fp8"}, "trainer.precision='fp8'; allowed: fp32, bf16, fp16"),
    ({"precision": True}, "trainer.precision=True; allowed: fp32, bf16, fp16"),
    ({"amp": True, "precision": "fp16"}, "trainer.amp=true (deprecated alias of trainer.precision=bf16) with "
                                         "trainer.precision='fp16'"),
    ({"accumulate": 0}, "trainer.accumulate=0; allowed: an integer >= 1"),
    ({"accumulate": 2.0}, "trainer.accumulate=2.0; allowed: an integer >= 1"),
])
def test_bad_precision_or_accumulate_is_one_line(kw, needle):
    with pytest.raises(ConfigError) as exc:
        TrainerConfig(**kw)
    assert needle in str(exc.value) and "\n" not in str(exc.value)


def test_amp_is_a_deprecated_alias_of_bf16():
    with pytest.warns(FutureWarning, match="trainer.precision=bf16"):
        assert TrainerConfig(amp=True).precision == "bf16"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert TrainerConfig(amp=False).precision == "fp32"
        assert TrainerConfig(precision="fp16").precision == "fp16"


def test_bad_precision_from_the_cli_before_any_compute(home, capsys):
    from ablate.cli import main

    assert main(["train", *TINY, "trainer.precision=half"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "trainer.precision='half'; allowed: fp32, bf16, fp16" in err
    assert not (home / "outputs" / "runs").exists() or not any((home / "outputs" / "runs").iterdir())


# --- run keys -----------------------------------------------------------------------------
def _key(*over: str) -> str:
    return run_key(to_container(compose([*TINY, *over])))


def test_precision_in_the_run_key(home):
    plain = _key()
    assert _key("trainer.precision=fp32") == plain  # the default adds nothing: shipped keys stand
    assert _key("trainer.precision=bf16") == _key("trainer.amp=true") != plain  # alias, one run
    assert _key("trainer.precision=fp16") not in (plain, _key("trainer.precision=bf16"))


def test_accumulate_in_the_run_key_is_the_global_batch(home):
    """K micro-batches of B hold the global batch K x B beside B (BatchNorm's batch), not K."""
    b16, b8 = _key("data.batch_size=16"), _key("data.batch_size=8")
    assert _key("data.batch_size=8", "trainer.accumulate=1") == b8
    k2 = _key("data.batch_size=8", "trainer.accumulate=2")
    assert k2 not in (b8, b16)  # same global batch as b16, but BatchNorm sees 8 at a time
    sem = semantic_config(to_container(compose([*TINY, "data.batch_size=8", "trainer.accumulate=2"])))
    assert sem["data"]["batch_size"] == 8 and sem["data"]["global_batch_size"] == 16
    assert "accumulate" not in sem["trainer"]
    # data.batch_size is the global batch, split over trainer.devices: with BatchNorm over all of
    # it (sync_bn) 2 processes are the plain batch of 16; with per-process BatchNorm over 8 they
    # are neither that nor 2 micro-batches of 8 (rank 0's running statistics, one update a step)
    cfg = to_container(compose([*TINY, "data.batch_size=16", "trainer.devices=2"]))
    assert run_key(cfg) == b16
    cfg["trainer"]["sync_bn"] = False
    assert run_key(cfg) not in (b16, k2)


# --- the loop -----------------------------------------------------------------------------
class NoBN(nn.Module):
    """A small conv net without BatchNorm or dropout: its update does not depend on how a batch
    is split into micro-batches."""

    def __init__(self, classes: int = 3) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 6, 3, padding=1)
        self.head = nn.Linear(6, classes)

    def forward(self, x):
        return self.head(torch.relu(self.conv(x)).mean((2, 3)))


class WithBN(NoBN):
    def __init__(self, classes: int = 3) -> None:
        super().__init__(classes)
        self.bn = nn.BatchNorm2d(6)

    def forward(self, x):
        return self.head(torch.relu(self.bn(self.conv(x))).mean((2, 3)))


def _loader(batch: int, n: int = 40, seed: int = 0, shuffle: bool = True):
    g = torch.Generator().manual_seed(123)
    data = TensorImageDataset(torch.randint(0, 256, (n, 3, 8, 8), dtype=torch.uint8, generator=g),
                              torch.randint(0, 3, (n,), generator=g))
    return make_loader(data, batch_size=batch, shuffle=shuffle, seed=seed, augment=shuffle, mean=[0.5] * 3,
                       std=[0.25] * 3, pad=1, hflip=True)


def _fit(tmp_path, name, model_cls=NoBN, *, batch=16, epochs=2, checkpoint=False, hook=None, **trainer):
    torch.manual_seed(0)
    model = model_cls()
    if hook is not None:
        model.head.weight.register_hook(hook)
    files = RunDirStore(tmp_path).files(name)
    files.create({"seed": 0})
    cfg = TrainerConfig(epochs=epochs, device="cpu", checkpoint=checkpoint, warmup_epochs=0.5, **trainer)
    result = fit(model, _loader(batch), _loader(8, shuffle=False),
                 lambda p: torch.optim.SGD(p, lr=0.2, momentum=0.9, weight_decay=1e-3, nesterov=True), cfg,
                 files=files, seed=0, log=lambda _: None, console=None)
    return model, result, files


def test_accumulating_two_micro_batches_equals_one_batch_twice_as_large(tmp_path, single_thread):
    """K=2 on micro-batches of B trains the same weights as K=1 on batches of 2B (no BatchNorm):
    the same samples and augmentation, the gradient of the same mean loss, summed in two parts."""
    one, r1, _ = _fit(tmp_path, "k1", accumulate=1, batch=16)
    two, r2, _ = _fit(tmp_path, "k2", accumulate=2, batch=16)  # the loader's batch is the step's: 2 x 8
    four, r4, _ = _fit(tmp_path, "k4", accumulate=4, batch=16)
    moved = max((p1 - p0).abs().max().item() for p1, p0 in zip(one.state_dict().values(), NoBN().state_dict().values()))
    assert moved > 1e-2  # it trained
    for other, r in ((two, r2), (four, r4)):
        for (k, a), b in zip(one.state_dict().items(), other.state_dict().values()):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=k)
        assert r.history[-1]["train_loss"] == pytest.approx(r1.history[-1]["train_loss"], rel=1e-6)
        assert r.top1 == r1.top1


def test_with_batchnorm_the_split_changes_the_update(tmp_path, single_thread):
    """BatchNorm normalises each micro-batch: why the run key keeps the micro-batch size."""
    one, _, _ = _fit(tmp_path, "k1", WithBN, accumulate=1, batch=16)
    two, _, _ = _fit(tmp_path, "k2", WithBN, accumulate=2, batch=16)
    gap = max((a - b).abs().max().item() for a, b in zip(one.state_dict().values(), two.state_dict().values()))
    assert gap > 1e-4


def _inf_at(steps: set):
    """A gradient hook making the head's gradient infinite at the given optimiser steps."""
    count = {"n": 0}

    def hook(grad):
        step = count["n"]
        count["n"] += 1
        return torch.full_like(grad, math.inf) if step in steps else grad

    return hook


def test_fp16_skips_a_step_with_an_inf_gradient_and_goes_on(tmp_path, single_thread):
    _, clean, _ = _fit(tmp_path, "clean", precision="fp16")
    model, hit, files = _fit(tmp_path, "hit", precision="fp16", hook=_inf_at({1}), checkpoint=True)
    assert hit.epochs == 2 and all(math.isfinite(r["train_loss"]) for r in hit.history)
    assert all(torch.isfinite(p).all() for p in model.parameters())
    skipped = lambda r: [row["skipped_steps"] for row in r.history]  # noqa: E731
    assert skipped(hit)[0] == skipped(clean)[0] + 1 and skipped(hit)[1] == skipped(clean)[1]
    assert hit.history[0]["grad_scale"] == clean.history[0]["grad_scale"] / 2  # backed off once
    state = files.load_checkpoint(map_location="cpu")
    assert state["scaler"]["scale"] == hit.history[-1]["grad_scale"]  # resumes with its scale


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_without_a_scaler_an_inf_gradient_diverges(tmp_path, single_thread, precision):
    with pytest.raises(Diverged, match="loss is nan at epoch 0"):
        _fit(tmp_path, precision, precision=precision, hook=_inf_at({1}))


def test_fp16_skipping_every_step_is_a_divergence(tmp_path, single_thread, monkeypatch):
    monkeypatch.setattr(engine, "MAX_SKIPPED_STEPS", 4)
    with pytest.raises(Diverged, match="fp16: 4 steps in a row skipped for non-finite gradients"):
        _fit(tmp_path, "always", precision="fp16", hook=_inf_at(set(range(100))))


def test_fp16_and_bf16_train_close_to_fp32(tmp_path, single_thread):
    ref, r32, _ = _fit(tmp_path, "fp32")
    for precision in ("bf16", "fp16"):
        model, r, _ = _fit(tmp_path, precision, precision=precision)
        assert r.history[-1]["train_loss"] == pytest.approx(r32.history[-1]["train_loss"], abs=0.05)
        assert "skipped_steps" in r.history[-1] if precision == "fp16" else "skipped_steps" not in r.history[-1]


def test_a_run_trains_with_fp16_and_accumulation(tiny_cfg, monkeypatch):
    """Through ``run``: the training loader's batch is accumulate x data.batch_size, the
    validation loader's the micro-batch; fp16 rows record the scaler."""
    import ablate.data as data
    from ablate.train.run import run

    seen = []
    real = data.make_loader

    def spy(dataset, **kw):
        seen.append((kw["shuffle"], kw["batch_size"]))
        return real(dataset, **kw)

    monkeypatch.setattr(data, "make_loader", spy)
    rec = run(tiny_cfg("data.batch_size=8", "trainer.accumulate=3", "trainer.precision=fp16", "trainer.epochs=1"))
    assert rec["status"] == "completed", rec["message"]
    assert sorted(seen) == [(False, 8), (True, 24)]
    assert rec["config"]["trainer"]["accumulate"] == 3
