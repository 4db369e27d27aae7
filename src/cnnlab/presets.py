"""Presets: named option sets, one registry for every command. A preset holds training and data
options only: a training config and a data config (the subset sizes; which dataset and where it
lies stay the user's choice). What a command makes of a preset is the command's own (a search's
trial count: ``cnnlab.search.study.PRESET_TRIALS``).

    from cnnlab.presets import get_preset
    p = get_preset("fast")
    config = p.train_config(epochs=20)  # the warm-up scaled with it: 2 epochs of 30 -> 1.3333 of 20

``cnnlab train --preset``, ``cnnlab reproduce --preset``, ``cnnlab search --preset`` and
``cnnlab finetune`` (preset ``finetune``) all read this table; options given on the command
line override single fields.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .data import DataConfig
from .train.config import TrainConfig


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    train: TrainConfig
    data: DataConfig = field(default_factory=DataConfig)  # subset sizes (limit_train, limit_val); None = all images

    def train_config(self, **overrides) -> TrainConfig:
        """The preset's training options with ``overrides`` (None: the preset's). A shorter run
        (``epochs`` below the preset's) without its own ``warmup_epochs`` keeps the preset's
        warm-up share: ``fast``'s 2 warm-up epochs of 30 become ``epochs * 2 / 30`` (a fraction
        of an epoch for very short runs) -- never a warm-up longer than the run."""
        return self.train.with_overrides(**{**overrides, "warmup_epochs": self.warmup_for(**overrides)})

    def warmup_for(self, epochs: int | None = None, warmup_epochs: float | None = None, **_: object) -> float | None:
        """The warm-up a run of ``epochs`` gets from this preset (None: the preset's own, as it is)."""
        if warmup_epochs is not None or epochs is None or not self.train.warmup_epochs or epochs >= self.train.epochs:
            return warmup_epochs
        if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
            return None  # TrainConfig refuses the epochs, naming them
        return round(self.train.warmup_epochs * epochs / self.train.epochs, 4)


# cnnlab's own training options (preset "fast", explained there); "sprint" cuts them short.
FAST = TrainConfig(
    epochs=30,
    batch_size=128,
    optimizer="sgd",
    lr=0.1,
    momentum=0.9,
    nesterov=True,
    weight_decay=5e-4,
    schedule="onecycle",
    warmup_epochs=2,
    label_smoothing=0.1,
    augment="standard",
    precision="auto",
    bn_momentum=0.9,
    tta="flip",
    precise_bn=0,
)

PRESETS: dict[str, Preset] = {
    "article": Preset(
        "article",
        "the articles' protocol: Adam (Keras defaults), batch 128, 100 epochs, its augmentation, "
        "test set as validation",
        # Article 000: Keras Adam defaults, batch 128, 100 epochs, ImageDataGenerator augmentation,
        # Keras BatchNorm (momentum 0.99, no precise BN: faithful to Keras; the history says so),
        # the whole test set as validation. Article B's search: 50 trials of this.
        TrainConfig(
            epochs=100, batch_size=128, optimizer="adam", lr=1e-3, augment="keras", bn_momentum=0.99, precise_bn=0
        ),
    ),
    "fast": Preset(
        "fast",
        "cnnlab's own: 30 epochs, SGD+Nesterov 0.1, one-cycle, L2 5e-4, label smoothing 0.1, pad-crop-flip, "
        "flip TTA, bf16 where native",
        # Aimed at the article's best accuracy in a third of its epochs: SGD with Nesterov momentum
        # and L2 5e-4 under a one-cycle schedule (2 warm-up epochs, cosine to 0), label smoothing
        # 0.1, pad-crop-flip augmentation (converges much faster than the article's rotations and
        # 20% shifts), BatchNorm momentum 0.9, horizontal-flip test-time augmentation measured beside
        # plain accuracy. Precision `auto`: bf16 autocast where the device computes it natively
        # (CUDA, AVX-512 BF16/AMX CPUs), fp32 elsewhere (emulated bf16 is slower than fp32 on an
        # AVX2 CPU); the history's info records which one ran.
        FAST,
    ),
    "sprint": Preset(
        "sprint",
        "the fast preset cut to under 10 minutes of a 2-core CPU for article 001's depthwise net: 7 epochs, "
        "1 warm-up epoch, no augmentation, flip TTA",
        # What `make run` trains, to the article's 77.36%. In so few epochs there is nothing to overfit
        # yet, and unaugmented images are learned faster: article 001's DepthwiseConv2D net reached
        # 72.9% after 3 such epochs where pad-crop-flip needed 4 for 73.5%; 4 epochs gave 74.96%,
        # 7 gave 78.76% (78.18% at epoch 6 of them), and a 6-epoch run 77.81%: 7 keeps a margin.
        # All on the Zen 4 VM (docs/results.md).
        # One-cycle with one warm-up epoch instead of fast's two.
        FAST.with_overrides(epochs=7, warmup_epochs=1, augment="none"),
    ),
    "quick": Preset(
        "quick",
        "a CPU-sized taste: 3 epochs on 1,600 training images, 1,000 validation images "
        "-- NOT comparable to the article",
        # About 5 minutes for the whole DenseNet experiment on a 2-core CPU. BatchNorm momentum 0.9 so
        # that the moving statistics settle within the few steps there are.
        TrainConfig(epochs=3, batch_size=64, optimizer="adam", lr=2e-3, augment="keras", bn_momentum=0.9),
        DataConfig(limit_train=1600, limit_val=1000),
    ),
    "smoke": Preset(
        "smoke",
        "a smoke test: 1 epoch on 500 images, 200 validation images -- NOT comparable to the article",
        # Seconds per model: checks that everything runs, not what it reaches. Precise BN (the
        # default) gives evaluation exact BatchNorm statistics after so few steps.
        TrainConfig(epochs=1, batch_size=64, optimizer="adam", lr=1e-3, augment="keras", bn_momentum=0.9),
        DataConfig(limit_train=500, limit_val=200),
    ),
    "finetune": Preset(
        "finetune",
        "transfer learning: 5 epochs, Adam 1e-3, random-resized crop + flip from 128 px, else pad-crop-flip "
        "(cnnlab finetune's defaults)",
        TrainConfig(epochs=5, augment="auto"),  # imagenet's random-resized crop from 128 px up, else pad-crop-flip
    ),
}


def get_preset(name: str) -> Preset:
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; presets: {', '.join(PRESETS)}")
    return PRESETS[name]
