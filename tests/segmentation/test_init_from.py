"""model.init_from: a segmentation run starts from a finished classification run's backbone
(by run key or checkpoint file: the same key), a mismatched architecture or attention is one
line, a source not finished yet plans but does not train."""
from __future__ import annotations

import pytest
import torch

from tests.helpers import TINY
from tests.segmentation.test_segmentation import SEG

pytestmark = pytest.mark.slow


@pytest.fixture
def source(home):
    from ablate.config import compose
    from ablate.train.run import run

    rec = run(compose([*TINY, "attention=ca", "data.n_train=64", "data.n_val=16"]))
    assert rec["status"] == "completed"
    return rec


def test_init_from_a_finished_run_loads_its_backbone_and_keys_the_source(source, home):
    from ablate.config import compose
    from ablate.train.run import prepare, run
    from ablate.train.tasks import build_model
    from ablate.train.transfer import load_backbone

    key = source["run_key"]
    plan = prepare(compose([*TINY, *SEG, "attention=ca", f"model.init_from={key}"]))
    ckpt = plan.run_dir.parent / key / "checkpoint.pt"
    by_path = prepare(compose([*TINY, *SEG, "attention=ca", f"model.init_from={ckpt}"]))
    plain = prepare(compose([*TINY, *SEG, "attention=ca"]))
    assert plan.key == by_path.key != plain.key
    assert plan.config["model"]["init_from"] == key
    # the backbone is the source's features, tensor for tensor; the head is left as it was
    net = build_model(plan.model_name, plan.model_kwargs, plan.attention, plan.task, num_classes=3, in_chans=1)
    head = {k: v.clone() for k, v in net.head.state_dict().items()}
    load_backbone(net.backbone, ckpt, key)
    src = torch.load(ckpt, weights_only=True)["model"]
    for name, tensor in net.backbone.state_dict().items():
        assert torch.equal(tensor, src["features." + name])
    assert all(torch.equal(v, net.head.state_dict()[k]) for k, v in head.items())
    rec = run(compose([*TINY, *SEG, "attention=ca", f"model.init_from={key}"]))
    assert rec["status"] == "completed" and rec["init_from"] == key and rec["miou"] is not None


def test_mismatched_attention_or_architecture_is_one_line(source, home):
    from ablate.config import compose
    from ablate.errors import ConfigError
    from ablate.train.run import prepare

    key = source["run_key"]
    with pytest.raises(ConfigError) as exc:
        prepare(compose([*TINY, *SEG, "attention=se", f"model.init_from={key}"]))
    assert str(exc.value).startswith(f"model.init_from={key}: architecture or attention differs (attention.")
    assert "\n" not in str(exc.value)
    with pytest.raises(ConfigError, match="architecture or attention differs \\(model.width: source 1.0, this run 2.0\\)"):
        prepare(compose([*TINY, *SEG, "attention=ca", "model.width=2.0", f"model.init_from={key}"]))


def test_weights_of_another_architecture_are_refused_when_loading(source, home, tmp_path):
    from ablate.errors import ConfigError
    from ablate.models.seg_head import create_segmenter
    from ablate.train.transfer import load_backbone

    from ablate.config import compose
    from ablate.train.run import prepare

    ckpt = prepare(compose(list(TINY))).run_dir.parent / source["run_key"] / "checkpoint.pt"
    other = create_segmenter("mobilenet_v2_tiny", num_classes=3, in_chans=1, attention="se", head_channels=8)
    with pytest.raises(ConfigError, match="architecture or attention differs"):
        load_backbone(other.backbone, ckpt, "x")


def test_a_source_not_finished_yet_plans_but_does_not_train(home):
    from ablate.config import compose
    from ablate.train.run import prepare, run

    cfg = compose([*TINY, *SEG, "model.init_from=0123456789ab"])
    assert prepare(cfg).key
    rec = run(cfg)
    assert rec["status"] == "failed"
    assert "model.init_from=0123456789ab: that run is not recorded" in rec["message"]


def test_init_from_bad_values_are_one_line(home):
    from ablate.config import compose
    from ablate.errors import ConfigError
    from ablate.train.run import prepare

    with pytest.raises(ConfigError, match="model.init_from='nope/x.pt': no such run key or checkpoint file"):
        prepare(compose([*TINY, *SEG, "model.init_from=nope/x.pt"]))
