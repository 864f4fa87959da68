"""FCN-score: label colours recovered despite JPEG noise, known metric values, and real photos
scoring above an untrained generator's outputs."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from pixtrans.data.synth import PALETTE, synthetic_pair
from pixtrans.metrics.fcn import (
    confusion_matrix,
    fcn_scores,
    labels_to_classes,
    palette_from_labels,
    scores,
    train_segmenter,
)


def jpeg(arr: np.ndarray, quality: int = 75, subsampling: int = 2) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "JPEG", quality=quality, subsampling=subsampling)
    return np.asarray(Image.open(buf).convert("RGB"))


def pairs(n: int, res: int = 32, offset: int = 0):
    photos, labels = zip(*(synthetic_pair(offset + i, res, seed=0) for i in range(n)), strict=True)
    return list(photos), list(labels)


def test_palette_and_classes_survive_jpeg_noise():
    # label maps of 16x16 blocks in the 8 synthetic colours, saved as ordinary 4:2:0 JPEGs
    rng = np.random.default_rng(0)
    blocks = [rng.integers(0, len(PALETTE), (8, 8)) for _ in range(6)]
    labels = [PALETTE[b.repeat(16, 0).repeat(16, 1)] for b in blocks]
    noisy = [jpeg(lab, quality=75) for lab in labels]
    palette = palette_from_labels(noisy, n_classes=len(PALETTE))
    dist = np.abs(PALETTE[:, None].astype(int) - palette[None].astype(int)).max(-1)  # [true, found]
    assert (dist.min(1) <= 6).all() and len(set(dist.argmin(1))) == len(PALETTE)
    # each noisy pixel's class matches the clean label's class almost everywhere
    truth = labels_to_classes(labels[0], palette)
    got = labels_to_classes(noisy[0], palette)
    assert (truth == got).float().mean() > 0.97


def test_scores_known_values():
    # 2 classes: class 0 has 3 pixels (2 right), class 1 has 1 pixel (right); class 2 absent
    target = torch.tensor([0, 0, 0, 1])
    pred = torch.tensor([0, 0, 1, 1])
    conf = confusion_matrix(pred, target, 3)
    assert conf.tolist() == [[2, 1, 0], [0, 1, 0], [0, 0, 0]]
    s = scores(conf)
    assert s["pixel_acc"] == pytest.approx(3 / 4)
    assert s["class_acc"] == pytest.approx((2 / 3 + 1) / 2)
    assert s["class_iou"] == pytest.approx((2 / 3 + 1 / 2) / 2)


def test_real_photos_score_above_an_untrained_generator():
    from pixtrans.nets import UnetGenerator, init_weights

    photos, labels = pairs(24)
    palette = PALETTE
    to_t = lambda arrs: torch.from_numpy(np.stack(arrs)).permute(0, 3, 1, 2).float() / 127.5 - 1  # noqa: E731
    x_train = to_t(photos[:20])
    y_train = torch.stack([labels_to_classes(lab, palette) for lab in labels[:20]])
    net = train_segmenter(x_train, y_train, len(palette), steps=60, batch_size=4, width=8, progress=False)

    x_test = to_t(photos[20:])
    y_test = torch.stack([labels_to_classes(lab, palette) for lab in labels[20:]])
    torch.manual_seed(0)
    G = init_weights(UnetGenerator(3, 3, num_downs=5, ngf=8, norm="batch", dropout=False)).eval()
    with torch.no_grad():
        fake = G(to_t(labels[20:]))
    real = fcn_scores(net, x_test, y_test, len(palette))
    untrained = fcn_scores(net, fake, y_test, len(palette))
    assert real["pixel_acc"] > untrained["pixel_acc"] + 0.1
    assert real["class_iou"] > untrained["class_iou"]
