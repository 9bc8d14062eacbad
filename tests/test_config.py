"""Every config group option composes and validates; bad input fails before any compute."""
from __future__ import annotations

import pytest

from ablate.config import compose, group_options
from ablate.train.run import prepare

GROUPS = ["data", "model", "attention", "optim", "trainer", "tracking", "launcher"]


# Datasets read from files the user provides: with none there, validation says what is missing.
NEEDS_FILES = {"cifar10", "cifar100", "imagefolder", "imagenet", "arrays", "voc"}
# Options that need another group's option: label-map datasets train task=segmentation and back.
NEEDS = {("data", "seg_alignment"): "task=segmentation", ("data", "voc"): "task=segmentation",
         ("task", "segmentation"): "data=seg_alignment"}


@pytest.mark.parametrize("group", GROUPS)
def test_every_group_option_composes_and_validates(group, tiny_cfg):
    import importlib.util

    options = group_options(group)
    assert options, f"conf/{group}/ has no options"
    for opt in options:
        extra = [NEEDS[group, opt]] if (group, opt) in NEEDS else []
        cfg = tiny_cfg(f"{group}={opt}", *extra) if group != "data" else tiny_cfg(f"data={opt}", "~data.n_train", "~data.n_val", *extra)
        missing = group == "data" and (opt in NEEDS_FILES or (opt == "digits" and importlib.util.find_spec("sklearn") is None))
        if missing:  # checked before any compute: one line naming what is missing
            with pytest.raises(ValueError, match="not found|pip install scikit-learn|data.path") as exc:
                prepare(cfg)
            assert "\n" not in str(exc.value)
            continue
        plan = prepare(cfg)
        assert plan.key and len(plan.key) == 12
        assert cfg[group] is not None


def test_default_run_is_the_embedded_default(home):
    cfg = compose([])
    assert cfg.data.name == "alignment" and cfg.tracking.mode == "offline"
    assert cfg.launcher.name == "local" and cfg.trainer.device == "auto"
    assert str(home) in prepare(cfg).run_dir.as_posix()


def test_run_dir_is_named_by_the_run_key(tiny_cfg):
    a, b = prepare(tiny_cfg()), prepare(tiny_cfg("tracking=offline", "trainer.threads=2"))
    c = prepare(tiny_cfg("seed=1"))
    assert a.key == b.key and a.run_dir == b.run_dir and a.key != c.key and a.run_dir.name == a.key


@pytest.mark.parametrize("override, words", [
    ("attention=foo", ["attention/foo", "ca"]),
    ("attention.kind=foo", ["'foo'", "ca", "se"]),
    ("attention=ca attention.branches=diag", ["'diag'", "hw"]),
    ("attention=ca attention.act=tanh", ["'tanh'", "hswish"]),
    ("attention=ca attention.reduction=0", ["reduction", "0"]),
    ("attention=se attention.reduction=-4", ["reduction", "-4"]),
    ("model.position=before_stem", ["'before_stem'", "after_depthwise"]),
    ("model.width=0", ["width", "0"]),
    ("model.width=-1.0", ["width", "-1.0"]),
    ("data=foo", ["data/foo", "alignment"]),
    ("data.name=foo", ["'foo'", "alignment"]),
    ("tracking.mode=loud", ["'loud'", "offline, online, disabled"]),
    ("trainer.epochs=0", ["epochs", "0"]),
    ("trainer.device=tpu", ["'tpu'", "cpu"]),
    ("seed=-1", ["seed", "-1"]),
    ("data.batch_size=0", ["batch_size", "0"]),
    ("data.clutter=-3", ["clutter", "-3"]),
    ("data.n_train=2", ["n_train", "2"]),
])
def test_bad_input_is_one_line_naming_value_and_allowed(override, words, tiny_cfg):
    with pytest.raises(ValueError) as exc:
        prepare(tiny_cfg(*override.split()))
    msg = str(exc.value)
    assert "\n" not in msg, msg
    for w in words:
        assert w in msg, (w, msg)
