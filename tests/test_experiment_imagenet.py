"""The ImageNet overlays (CA paper, Table 2): each composes and validates against a tree in the
ImageNet layout; one trains a step on it with the recipe's views at 224 (1 epoch, 8 images)."""
from __future__ import annotations

import pytest

from ablate.config import compose
from ablate.train.run import prepare, run
from tests.imagenet_tree import WNIDS, write_imagenet_tree

OVERLAYS = ("imagenet_mbv2", "imagenet_mbv2_se", "imagenet_mbv2_cbam", "imagenet_mbv2_ca")
KINDS = dict(zip(OVERLAYS, ("none", "se", "cbam", "ca")))


@pytest.mark.parametrize("name", OVERLAYS)
def test_the_overlay_is_the_papers_recipe(name, home, tmp_path):
    cfg = compose([f"experiment={name}", f"data.root={tmp_path}"])
    assert (cfg.model.name, cfg.model.width, cfg.model.stem, cfg.attention.kind) == ("mobilenet_v2", 1.0, "imagenet",
                                                                                      KINDS[name])
    assert (cfg.trainer.epochs, cfg.trainer.label_smoothing, cfg.trainer.min_lr_ratio) == (200, 0.0, 0.0)
    assert cfg.optim._target_ == "torch.optim.SGD" and (cfg.optim.lr, cfg.optim.momentum, cfg.optim.weight_decay) == (
        0.05, 0.9, 4e-5)
    assert cfg.data.batch_size * cfg.trainer.accumulate == 256 and cfg.trainer.devices == 4
    assert (cfg.data.image_size, cfg.data.short_side, cfg.data.random_resized_crop, cfg.data.hflip,
            cfg.data.pad) == (224, 256, True, True, 0)
    with pytest.raises(ValueError, match=r"imagefolder: .*train not found; expected <root>/train/<class>") as exc:
        prepare(cfg)  # before any compute: the images are missing
    assert "\n" not in str(exc.value)
    write_imagenet_tree(tmp_path)
    plan = prepare(cfg)
    assert plan.config["data"]["fingerprint"] and plan.trainer.devices == 4


@pytest.mark.slow
def test_imagenet_overlay_trains_a_step_on_an_imagenet_tree(home, tmp_path):
    write_imagenet_tree(tmp_path / "imagenet", n_train=3, n_val=1)
    # one GPU's version of the recipe: micro-batches of 4, accumulated 2 per step; 8 of the 9
    # training images (one step), the 3 validation images; 224 px views as in the recipe
    over = ["experiment=imagenet_mbv2_ca", f"data.root={tmp_path / 'imagenet'}", "trainer.devices=1",
            "data.batch_size=4", "trainer.accumulate=2", "data.n_train=8", "data.num_workers=2",
            "trainer.epochs=1", "tracking=disabled", "trainer.latency_repeats=1", "trainer.threads=2"]
    rec = run(compose(over))
    assert rec["status"] == "completed", rec["message"]
    assert rec["input_size"] == [1, 3, 224, 224] and rec["epochs"] == 1
    # MobileNetV2-1.0 + CA is 3.95M with the 1000-class head (1280*1000 + 1000); here 3 classes
    assert rec["params"] == 3_950_648 - 1_281_000 + 1280 * len(WNIDS) + len(WNIDS)
    assert 0.0 <= rec["top1"] <= 100.0 and rec["config"]["data"]["random_resized_crop"] is True
