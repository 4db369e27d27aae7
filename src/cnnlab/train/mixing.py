"""Mixup and CutMix with timm's semantics (``timm.data.Mixup``, mode "batch"):

* one ``lam ~ Beta(alpha, alpha)`` per batch; every image is mixed with the image at the mirrored
  position of the batch (``x.flip(0)``);
* mixup: ``x = lam * x + (1 - lam) * x.flip(0)``;
* CutMix: a box of ``sqrt(1 - lam)`` of the height and width, centred uniformly at random and
  clipped to the image, is pasted from ``x.flip(0)``; ``lam`` is then corrected to the share of
  the image left uncovered (timm's ``correct_lam``);
* both set: CutMix or mixup for each batch with probability 0.5;
* the targets: ``lam * smooth(y) + (1 - lam) * smooth(y.flip(0))`` with label smoothing
  ``eps`` as timm's ``mixup_target`` (off value ``eps / classes``, on value ``1 - eps + eps / classes``),
  trained with the soft-target cross-entropy.

The draws come from the run's generator (through a NumPy generator seeded from it), so a resumed
run mixes as an uninterrupted one would.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def soft_targets(y: torch.Tensor, classes: int, lam: float, smoothing: float = 0.0) -> torch.Tensor:
    """timm's ``mixup_target``: each row sums to 1."""
    off = smoothing / classes
    on = 1.0 - smoothing + off
    one = torch.full((len(y), classes), off, device=y.device).scatter_(1, y[:, None], on)
    two = torch.full((len(y), classes), off, device=y.device).scatter_(1, y.flip(0)[:, None], on)
    return one * lam + two * (1.0 - lam)


def cutmix_box(rng: np.random.Generator, height: int, width: int, lam: float) -> tuple[int, int, int, int]:
    """timm's ``rand_bbox``: (top, bottom, left, right) of a box of ``sqrt(1 - lam)`` of each side."""
    ratio = np.sqrt(1.0 - lam)
    cut_h, cut_w = int(height * ratio), int(width * ratio)
    cy, cx = int(rng.integers(0, height)), int(rng.integers(0, width))
    top, bottom = np.clip(cy - cut_h // 2, 0, height), np.clip(cy + cut_h // 2, 0, height)
    left, right = np.clip(cx - cut_w // 2, 0, width), np.clip(cx + cut_w // 2, 0, width)
    return int(top), int(bottom), int(left), int(right)


class Mixing:
    """``mixing(x, y, generator)`` -> (mixed images, lam); ``loss`` and ``dominant`` for the mixed batch."""

    def __init__(self, mixup: float = 0.0, cutmix: float = 0.0, smoothing: float = 0.0) -> None:
        if mixup < 0 or cutmix < 0:
            raise ValueError(f"mixup and cutmix must be Beta alphas >= 0, got mixup={mixup!r}, cutmix={cutmix!r}")
        self.mixup, self.cutmix, self.smoothing = mixup, cutmix, smoothing

    def __bool__(self) -> bool:
        return self.mixup > 0 or self.cutmix > 0

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, float]:
        """Mix the float NCHW batch ``x`` in place; the share ``lam`` of each image's own label."""
        seed = int(torch.randint(0, 2**62, (1,), generator=generator))
        rng = np.random.default_rng(seed)
        use_cutmix = self.cutmix > 0 and (self.mixup == 0 or rng.random() < 0.5)
        lam = float(rng.beta(self.cutmix, self.cutmix) if use_cutmix else rng.beta(self.mixup, self.mixup))
        if use_cutmix:
            height, width = x.shape[-2:]
            top, bottom, left, right = cutmix_box(rng, height, width, lam)
            x[:, :, top:bottom, left:right] = x[:, :, top:bottom, left:right].flip(0)  # flip copies the box first
            lam = 1.0 - (bottom - top) * (right - left) / float(height * width)
        else:
            partner = x.flip(0).mul_(1.0 - lam)  # a copy, taken before x changes
            x.mul_(lam).add_(partner)
        return x, lam

    def loss(self, logits: torch.Tensor, y: torch.Tensor, lam: float) -> torch.Tensor:
        """Soft-target cross-entropy against the mixed, smoothed targets."""
        return F.cross_entropy(logits, soft_targets(y, logits.shape[1], lam, self.smoothing))

    @staticmethod
    def dominant(y: torch.Tensor, lam: float) -> torch.Tensor:
        """The label with the larger share of each mixed image (training accuracy is counted against it)."""
        return y if lam >= 0.5 else y.flip(0)
