"""How much to train when reproducing: the article's protocol, our faster recipe, a CPU-sized
taste of the study, and a smoke run for tests.

A case the article trained without augmentation (article 000's case 1) stays without it in
every preset; the others use the preset's augmentation policy.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..train import TrainConfig


@dataclass(frozen=True)
class ReproducePreset:
    name: str
    train: TrainConfig
    limit_train: int | None  # class-balanced subset of the training set (None: all 50,000)
    limit_val: int | None  # class-balanced subset of the validation (test) set (None: all 10,000)
    description: str
    comparable: bool  # whether the figures can be set against the article's


PRESETS: dict[str, ReproducePreset] = {
    "article": ReproducePreset(
        "article",
        # Article 000: Keras Adam defaults, batch 128, 100 epochs, ImageDataGenerator augmentation,
        # Keras BatchNorm (momentum 0.99), the whole test set as validation.
        TrainConfig(epochs=100, batch_size=128, optimizer="adam", lr=1e-3, augment="keras", bn_momentum=0.99, precise_bn=0),
        None, None,
        "the article's protocol: Adam (Keras defaults), batch 128, 100 epochs, its augmentation, test set as validation",
        True,
    ),
    "fast": ReproducePreset(
        "fast",
        # Our recipe, aimed at the article's best accuracy in a third of its epochs: SGD with
        # Nesterov momentum and L2 5e-4 under a one-cycle schedule (2 warm-up epochs, cosine to 0),
        # label smoothing 0.1, pad-crop-flip augmentation (converges much faster than the article's
        # rotations and 20% shifts), BatchNorm momentum 0.9, horizontal-flip test-time augmentation
        # measured beside plain accuracy. Precision `auto`: bf16 autocast where the device computes
        # it natively (CUDA, AVX-512 BF16/AMX CPUs), fp32 elsewhere (emulated bf16 on an AVX2 CPU
        # is slower than fp32); the history's info records which one ran.
        TrainConfig(
            epochs=30, batch_size=128, optimizer="sgd", lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4,
            schedule="onecycle", warmup_epochs=2, label_smoothing=0.1, augment="standard", precision="auto",
            bn_momentum=0.9, tta="flip", precise_bn=0,
        ),
        None, None,
        "cnnlab's recipe: 30 epochs, SGD+Nesterov 0.1, one-cycle, L2 5e-4, label smoothing 0.1, pad-crop-flip, flip TTA, bf16 where native",
        True,
    ),
    "quick": ReproducePreset(
        "quick",
        # About 5 minutes for the whole DenseNet study on a 2-core CPU: 3 epochs on 1,600 images,
        # 1,000 validation images. BatchNorm momentum 0.9 so that the moving statistics settle
        # within the few steps there are (with Keras's 0.99 they would still be near their start).
        TrainConfig(epochs=3, batch_size=64, optimizer="adam", lr=2e-3, augment="keras", bn_momentum=0.9),
        1600, 1000,
        "a CPU-sized taste: 3 epochs on 1,600 training images, 1,000 validation images -- NOT comparable to the article",
        False,
    ),
    "smoke": ReproducePreset(
        "smoke",
        TrainConfig(epochs=1, batch_size=64, optimizer="adam", lr=1e-3, augment="keras", bn_momentum=0.9),
        500, 200,
        "a smoke test: 1 epoch on 500 images, 200 validation images -- NOT comparable to the article",
        False,
    ),
}


def get_preset(name: str) -> ReproducePreset:
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; presets: {', '.join(PRESETS)}")
    return PRESETS[name]
