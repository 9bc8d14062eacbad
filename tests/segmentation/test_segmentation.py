"""Segmentation task kind: mIoU from a confusion matrix, the DeepLabV3 head's stride and shapes,
the generated task's labels, masks augmented with their images, a segmentation run end to end,
classification keys unchanged by the task group."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.helpers import TINY

SEG = ["task=segmentation", "data=seg_alignment", "data.n_train=64", "data.n_val=16", "data.batch_size=32",
       "task.head_channels=8", "trainer.epochs=1"]


def test_miou_from_a_hand_computed_confusion_matrix_with_ignore_pixels():
    from ablate.train.tasks import confusion_matrix, iou_from_confusion

    target = torch.tensor([[0, 0, 1, 1], [2, 2, 255, 255], [0, 1, 2, 255]])
    pred = torch.tensor([[0, 1, 1, 1], [2, 0, 1, 2], [0, 1, 1, 0]])
    cm = confusion_matrix(pred, target, 3, 255)
    # rows true, columns predicted; the three 255 pixels are left out whatever was predicted
    assert cm.tolist() == [[2, 1, 0], [0, 3, 0], [1, 1, 1]]
    out = iou_from_confusion(cm)
    # IoU = TP / (TP + FP + FN): class 0: 2 / (2 + 1 + 1); class 1: 3 / (3 + 2 + 0); class 2: 1 / (1 + 0 + 2)
    expected = [100 * 2 / 4, 100 * 3 / 5, 100 * 1 / 3]
    assert out["iou"] == pytest.approx(expected)
    assert out["miou"] == pytest.approx(sum(expected) / 3)
    assert out["pixel_acc"] == pytest.approx(100 * 6 / 9)


def test_a_class_absent_from_targets_and_predictions_is_left_out_of_the_mean():
    from ablate.train.tasks import iou_from_confusion

    out = iou_from_confusion([[3, 1, 0], [1, 1, 0], [0, 0, 0]])
    assert out["iou"][2] is None
    assert out["miou"] == pytest.approx((100 * 3 / 5 + 100 * 1 / 3) / 2)


def test_a_label_out_of_range_is_one_line():
    from ablate.train.tasks import confusion_matrix

    with pytest.raises(ValueError, match="label 7 in a mask; allowed: 0..2 or 255"):
        confusion_matrix(torch.zeros(4, dtype=torch.long), torch.tensor([0, 1, 7, 255]), 3, 255)


@pytest.mark.parametrize("output_stride,feature", [(16, (5, 3)), (8, (9, 6)), (32, (3, 2))])
@pytest.mark.parametrize("attention", ["none", "ca", "cbam"])
def test_head_output_stride_and_shapes_on_odd_input_sizes(output_stride, feature, attention, single_thread):
    from ablate.models.seg_head import create_segmenter

    net = create_segmenter("mobilenet_v2", num_classes=21, width=0.35, attention=attention,
                           output_stride=output_stride, head_channels=8).eval()
    x = torch.randn(2, 3, 65, 47)  # 65 -> 33 -> 17 -> 9 -> 5 -> 3, 47 -> 24 -> 12 -> 6 -> 3 -> 2
    assert net.output_stride == output_stride
    assert tuple(net.backbone(x).shape[2:]) == feature
    assert tuple(net(x).shape) == (2, 21, 65, 47)
    # the receptive field is the classification net's: the dilated net has the same weights' names
    strided = create_segmenter("mobilenet_v2", num_classes=21, width=0.35, attention=attention,
                               output_stride=32, head_channels=8)
    assert list(net.state_dict()) == list(strided.state_dict())


def test_cbam_spatial_gate_is_not_dilated():
    from ablate.models.seg_head import create_segmenter

    net = create_segmenter("mobilenet_v2", num_classes=3, width=0.35, attention="cbam", output_stride=8)
    convs = [m for n, m in net.backbone.named_modules() if isinstance(m, torch.nn.Conv2d)]
    assert any(c.dilation[0] == 4 for c in convs)  # the last stages are dilated
    big = [c for c in convs if c.kernel_size[0] == 7]
    assert big and all(c.dilation == (1, 1) for c in big)


def test_head_options_are_one_line_errors():
    from ablate.errors import ConfigError
    from ablate.models.seg_head import create_segmenter

    with pytest.raises(ConfigError, match="task.output_stride=12; allowed: 4, 8, 16, 32"):
        create_segmenter("mobilenet_v2_tiny", num_classes=3, output_stride=12)


def test_seg_alignment_labels_follow_the_row_column_rule():
    from ablate.data.segmentation import generate_seg_alignment

    x, y = generate_seg_alignment(200, np.random.default_rng(3), image_size=24, objects=3, clutter=16)
    assert x.shape == (200, 1, 24, 24) and y.shape == (200, 24, 24)
    assert set(np.unique(y)) == {0, 1, 2}
    assert ((y > 0) <= (x[:, 0] > 0)).all()  # every labelled pixel is ink of a square
    for img in y[:50]:  # each square: aligned iff another square has exactly its rows or columns
        boxes = []
        for label in (1, 2):
            rows, cols = np.nonzero(img == label)
            for r in np.unique(rows):
                for c in np.unique(cols[rows == r]):
                    if (r == 0 or img[r - 1, c] != label) and (c == 0 or img[r, c - 1] != label):
                        boxes.append((r, c, label))
        assert len(boxes) == 3
        for r, c, label in boxes:
            aligned = any((r2 == r or c2 == c) for r2, c2, _ in boxes if (r2, c2) != (r, c))
            assert label == (1 if aligned else 2)


def test_masks_are_augmented_with_their_images_and_padding_is_ignored():
    from ablate.data import load_dataset, make_loader

    b = load_dataset("seg_alignment", root=None, seed=0, n_train=64, n_val=8)
    kw = dict(batch_size=64, shuffle=False, seed=1, mean=b.mean, std=b.std, pad=2, hflip=True)
    aug = make_loader(b.train, augment=True, **kw)
    x, y = next(iter(aug))
    ink = x[:, 0] > x[:, 0].min()  # normalised: background is the minimum
    assert ((y == 1) | (y == 2)).le(ink).all()
    assert (y == 255).any() and set(torch.unique(y).tolist()) <= {0, 1, 2, 255}
    # the images get the very draws they get without masks
    plain = make_loader(torch.utils.data.TensorDataset(b.train.images, b.train.labels[:, 0, 0]), augment=True, **kw)
    assert torch.equal(next(iter(plain))[0], x)


def test_classification_run_key_is_the_same_with_the_task_group_chosen(home):
    from ablate.config import compose
    from ablate.train.run import prepare

    assert prepare(compose(list(TINY))).key == prepare(compose([*TINY, "task=classification"])).key


def test_task_and_data_must_agree(home):
    from ablate.config import compose
    from ablate.errors import ConfigError
    from ablate.train.run import prepare

    with pytest.raises(ConfigError, match="data='alignment' with task=segmentation; allowed: seg_alignment, voc"):
        prepare(compose([*TINY, "task=segmentation"]))
    with pytest.raises(ConfigError, match="holds label maps"):
        prepare(compose([*TINY, "data=seg_alignment"]))


@pytest.mark.slow
def test_segmentation_run_records_miou_and_resumes_to_the_same_metrics(home, tmp_path):
    import ablate.train.engine as eng
    from ablate.config import compose
    from ablate.train.run import run

    over = [*TINY, *SEG, "trainer.epochs=2", "attention=ca"]
    whole = run(compose([*over, "paths.root=" + str(tmp_path / "a")]))
    assert whole["status"] == "completed" and whole["top1"] is None
    assert 0 <= whole["miou"] <= 100 and len(whole["iou"]) == 3 and whole["madds"] > 0
    cfg = compose([*over, "paths.root=" + str(tmp_path / "b")])
    from ablate.train.tasks import SegmentationTask

    orig = SegmentationTask.evaluate

    def stop_after(self, *a, **k):
        out = orig(self, *a, **k)
        eng.request_stop()
        return out

    SegmentationTask.evaluate = stop_after
    try:
        first = run(cfg)
    finally:
        SegmentationTask.evaluate = orig
        eng.clear_stop()
    assert first["status"] == "preempted"
    again = run(cfg)
    assert again["status"] == "completed" and again["resumed_from"] == 1
    assert again["miou"] == whole["miou"] and again["loss"] == whole["loss"]
