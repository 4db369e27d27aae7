"""Data augmentation on the device, a whole batch at a time.

Input: a uint8 (or 0-255 float) NCHW batch on any device; output: float32 in [0, 1]
(Keras's ``rescale=1/255`` comes last, so pixel-valued steps such as the channel shift act on
0-255 values exactly as in the article). Random numbers come from a seeded CPU generator and
are then moved to the batch's device, so a seed gives the same batch on CPU and GPU.

Policies:
- ``keras``: article 000's ``ImageDataGenerator(rotation_range=20, width_shift_range=0.2,
  height_shift_range=0.2, channel_shift_range=50, horizontal_flip=True, rescale=1/255)``
  with Keras's defaults ``fill_mode="nearest"`` (edge pixels repeat outside the image) and
  ``interpolation_order=1`` (bilinear): one affine warp (rotation + shift) per image, then the
  channel shift (one offset for all channels, clipped to the image's own min/max as Keras
  does), then the flip. Checked against Keras's own ``apply_transform`` in the tests.
- ``standard``: zero-pad 4, random crop back to the input size, horizontal flip; ``cutout``
  > 0 zeroes one random ``cutout x cutout`` square per image (DeVries & Taylor 2017).
- ``imagenet``: the standard for transfer learning at 224x224: a random-resized crop (an area
  of 8-100% of the image, aspect ratio 3/4-4/3, drawn as torchvision's ``RandomResizedCrop``
  draws it, with its center-crop fallback) resized back to the input size (bilinear, antialiased
  as torchvision's tensors and PIL are), then a horizontal flip. Evaluation then sees the central
  87.5% of each image resized to the input size (:func:`eval_view`): the "resize to size/0.875,
  center-crop size" of ImageNet evaluation, for images stored at the model's input size.
- ``none``: rescale only.

A batch of images kept in their own framing (:class:`~.frames.Frames`, ``DataConfig.cache_size``)
is cropped per image: ``imagenet`` draws each random-resized crop over that image's own size (the
whole photo, not a fixed resize of it); the other policies start from each image's center view.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .frames import EVAL_CROP, Frames  # EVAL_CROP: imagenet evaluation's center crop, a fraction of the side

POLICIES = ("keras", "standard", "imagenet", "none")
RRC_SCALE, RRC_RATIO = (0.08, 1.0), (3 / 4, 4 / 3)  # torchvision's RandomResizedCrop defaults


@dataclass(frozen=True)
class Augmentation:
    policy: str = "none"
    rotation: float = 20.0  # keras: degrees, uniform in [-rotation, rotation]
    shift: float = 0.2  # keras: fraction of width/height, uniform in [-shift, shift]
    channel_shift: float = 50.0  # keras: added to all channels, 0-255 scale
    flip: bool = True  # horizontal flip with probability 1/2 (keras and standard)
    pad: int = 4  # standard: zero padding before the random crop
    cutout: int = 0  # standard: side of the zeroed square, 0 = off

    def __post_init__(self) -> None:
        if self.policy not in POLICIES:
            raise ValueError(f"augmentation policy must be one of {POLICIES}, got {self.policy!r}")
        if self.rotation < 0 or not 0 <= self.shift < 1 or self.channel_shift < 0 or self.pad < 0 or self.cutout < 0:
            raise ValueError(f"augmentation ranges must be non-negative (shift < 1), got {self}")

    def __call__(self, images: torch.Tensor | Frames, generator: torch.Generator) -> torch.Tensor:
        if isinstance(images, Frames):
            if self.policy == "imagenet":
                boxes = random_resized_boxes(len(images), images.heights, images.widths, generator)
                return self._flip(images.crops(boxes), generator) / 255.0
            images = images.center()
        if images.dim() != 4:
            raise ValueError(f"augmentation expects an NCHW batch, got shape {tuple(images.shape)}")
        x = images.float()
        if self.policy == "keras":
            x = self._keras(x, generator)
        elif self.policy == "standard":
            x = self._standard(x, generator)
        elif self.policy == "imagenet":
            boxes = random_resized_boxes(len(x), x.shape[-2], x.shape[-1], generator)
            x = self._flip(resized_crops(x, boxes, x.shape[-2:]), generator)
        return x / 255.0  # out of place: a float input is never modified

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def _uniform(n: int, low: float, high: float, generator, device) -> torch.Tensor:
        return (torch.rand(n, generator=generator) * (high - low) + low).to(device)

    def _flip(self, x: torch.Tensor, generator) -> torch.Tensor:
        if not self.flip:
            return x
        mask = (torch.rand(len(x), generator=generator) < 0.5).to(x.device)
        return torch.where(mask[:, None, None, None], x.flip(-1), x)

    def _keras(self, x: torch.Tensor, generator) -> torch.Tensor:
        n, _, h, w = x.shape
        # drawn as Keras's ImageDataGenerator.get_random_transform draws them
        theta = self._uniform(n, -self.rotation, self.rotation, generator, x.device) * (math.pi / 180)
        tx = self._uniform(n, -self.shift, self.shift, generator, x.device) * h  # Keras: height range x h
        ty = self._uniform(n, -self.shift, self.shift, generator, x.device) * w
        intensity = self._uniform(n, -self.channel_shift, self.channel_shift, generator, x.device)
        flip = (
            (torch.rand(n, generator=generator) < 0.5).to(x.device)
            if self.flip
            else torch.zeros(n, dtype=torch.bool, device=x.device)
        )
        return keras_transform(x, theta, tx, ty, intensity if self.channel_shift else None, flip)

    def _standard(self, x: torch.Tensor, generator) -> torch.Tensor:
        n, _, h, w = x.shape
        if self.pad:
            padded = F.pad(x, (self.pad,) * 4)
            oy = torch.randint(0, 2 * self.pad + 1, (n,), generator=generator).to(x.device)
            ox = torch.randint(0, 2 * self.pad + 1, (n,), generator=generator).to(x.device)
            rows = (oy[:, None] + torch.arange(h, device=x.device))[:, None, :, None]  # (n, 1, h, 1)
            cols = (ox[:, None] + torch.arange(w, device=x.device))[:, None, None, :]  # (n, 1, 1, w)
            batch = torch.arange(n, device=x.device)[:, None, None, None]
            chans = torch.arange(x.shape[1], device=x.device)[None, :, None, None]
            x = padded[batch, chans, rows, cols]
        x = self._flip(x, generator)
        if self.cutout:
            # square of side `cutout` around a random centre, clipped at the borders
            top = torch.randint(0, h, (n,), generator=generator).to(x.device)[:, None, None] - self.cutout // 2
            left = torch.randint(0, w, (n,), generator=generator).to(x.device)[:, None, None] - self.cutout // 2
            ys = torch.arange(h, device=x.device)[None, :, None]
            xs = torch.arange(w, device=x.device)[None, None, :]
            hole = (ys >= top) & (ys < top + self.cutout) & (xs >= left) & (xs < left + self.cutout)
            x = x.masked_fill(hole[:, None], 0.0)
        return x


def keras_transform(
    x: torch.Tensor,
    theta: torch.Tensor,
    tx: torch.Tensor,
    ty: torch.Tensor,
    channel_shift: torch.Tensor | None,
    flip: torch.Tensor,
) -> torch.Tensor:
    """Keras's ``ImageDataGenerator.apply_transform`` for a batch, with per-image parameters
    (radians, row and column shifts in pixels, channel-shift intensity, horizontal flip).

    Keras samples the input at ``c + R(o - c + t)`` for output pixel ``o`` (``c`` the image
    centre, ``R`` the rotation, ``t`` the shift), bilinearly, edge pixels repeated outside
    the image; then clips ``x + intensity`` to
    the image's own range; then flips.
    """
    n, _, h, w = x.shape
    cos, sin = theta.cos(), theta.sin()
    # In affine_grid's (x=col, y=row) order and normalised units (2 / size per pixel; the h/w
    # factors keep the rotation rigid). Measured against Keras: its `tx` moves columns and
    # `ty` rows (the legacy generator swaps the axes it names), and its rotation turns
    # this way round.
    a = torch.stack(
        [torch.stack([cos, -sin * h / w], dim=1), torch.stack([sin * w / h, cos], dim=1)], dim=1
    )  # (n, 2, 2)
    shift = torch.stack([2 * tx / w, 2 * ty / h], dim=1)  # (x, y) normalised
    theta_grid = torch.cat([a, a @ shift[:, :, None]], dim=2)
    grid = F.affine_grid(theta_grid, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    if channel_shift is not None:
        low = x.amin(dim=(1, 2, 3), keepdim=True)
        high = x.amax(dim=(1, 2, 3), keepdim=True)
        x = torch.minimum(torch.maximum(x + channel_shift[:, None, None, None], low), high)
    return torch.where(flip[:, None, None, None], x.flip(-1), x)


def random_resized_boxes(
    n: int,
    height,
    width,
    generator: torch.Generator,
    scale: tuple[float, float] = RRC_SCALE,
    ratio: tuple[float, float] = RRC_RATIO,
) -> torch.Tensor:
    """(n, 4) crop boxes (top, left, h, w), drawn per image as torchvision's
    ``RandomResizedCrop.get_params``: up to 10 tries of an area uniform in ``scale`` x the image's
    and an aspect ratio log-uniform in ``ratio``; the first that fits is kept, else the center crop
    of the nearest allowed ratio. ``height`` / ``width``: one size for all, or each image's."""
    heights = [height] * n if isinstance(height, int) else list(height)
    widths = [width] * n if isinstance(width, int) else list(width)
    if len(heights) != n or len(widths) != n:
        raise ValueError(f"{n} images but {len(heights)} heights and {len(widths)} widths")
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    boxes = []
    for height, width in zip(heights, widths):
        area = height * width
        box = None
        for _ in range(10):
            target = area * float(torch.empty(1).uniform_(scale[0], scale[1], generator=generator))
            aspect = math.exp(float(torch.empty(1).uniform_(log_ratio[0], log_ratio[1], generator=generator)))
            w = int(round(math.sqrt(target * aspect)))
            h = int(round(math.sqrt(target / aspect)))
            if 0 < w <= width and 0 < h <= height:
                top = int(torch.randint(0, height - h + 1, (1,), generator=generator))
                left = int(torch.randint(0, width - w + 1, (1,), generator=generator))
                box = (top, left, h, w)
                break
        if box is None:  # torchvision's fallback: the whole image at the nearest allowed ratio
            in_ratio = width / height
            w, h = (
                (width, int(round(width / min(ratio))))
                if in_ratio < min(ratio)
                else ((int(round(height * max(ratio))), height) if in_ratio > max(ratio) else (width, height))
            )
            box = ((height - h) // 2, (width - w) // 2, h, w)
        boxes.append(box)
    return torch.tensor(boxes, dtype=torch.int64)


def resized_crops(x: torch.Tensor, boxes: torch.Tensor, size) -> torch.Tensor:
    """Each image's box (top, left, h, w) resized to ``size`` (bilinear, antialiased when
    shrinking: torchvision's ``resized_crop`` on tensors); float NCHW in, float NCHW out."""
    out = [
        F.interpolate(
            x[i : i + 1, :, top : top + h, left : left + w],
            size=tuple(size),
            mode="bilinear",
            align_corners=False,
            antialias=True,
        )
        for i, (top, left, h, w) in enumerate(boxes.tolist())
    ]
    return torch.cat(out) if out else x


def center_crop_view(x: torch.Tensor, fraction: float = EVAL_CROP) -> torch.Tensor:
    """The central ``fraction`` of each image (float NCHW), resized back to its size."""
    h, w = x.shape[-2:]
    ch, cw = max(1, round(h * fraction)), max(1, round(w * fraction))
    top, left = (h - ch) // 2, (w - cw) // 2
    return F.interpolate(
        x[:, :, top : top + ch, left : left + cw], size=(h, w), mode="bilinear", align_corners=False, antialias=True
    )


def eval_view(policy: str):
    """What evaluation applies to a [0, 1] float batch under training policy ``policy``: the
    center crop for ``imagenet``, nothing (None) otherwise."""
    return center_crop_view if policy == "imagenet" else None


def auto_policy(height: int, width: int) -> str:
    """``auto``: ``imagenet`` for inputs of 128 px and more (photos at transfer-learning size),
    ``standard`` (pad-crop-flip) for small ones such as CIFAR's 32x32."""
    return "imagenet" if min(height, width) >= 128 else "standard"
