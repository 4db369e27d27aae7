"""What a training run is: one dataclass, a comment on every default (named recipes: ``cnnlab.presets``)."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

from ..configs import Options
from ..data.augment import POLICIES as AUGMENTATIONS

OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("constant", "cosine", "onecycle")
PRECISIONS = ("fp32", "bf16", "fp16", "auto")
TTAS = ("none", "flip")


@dataclass(frozen=True)
class TrainConfig(Options):
    what = "training option"

    epochs: int = 10  # passes over the training set
    batch_size: int = 128  # images per step and process (article 000: 128); under torchrun the global batch is this x processes
    optimizer: str = "adam"  # adam (Keras defaults: betas 0.9/0.999, eps 1e-7), adamw, or sgd
    lr: float = 1e-3  # peak learning rate (Keras Adam default 1e-3)
    # timm's rule: `lr` is meant for a global batch of this many images, and the run scales it to
    # its own (batch_size x processes): linearly for sgd, by the square root for adam/adamw. None: as given
    lr_base_batch: int | None = None
    momentum: float = 0.9  # sgd only
    nesterov: bool = True  # sgd only
    weight_decay: float = 0.0  # L2 for adam/sgd, decoupled for adamw
    schedule: str = "constant"  # constant, cosine (to 0), or onecycle (linear warmup, cosine down)
    warmup_epochs: float = 0.0  # onecycle/cosine: linear warmup length, in epochs
    label_smoothing: float = 0.0  # cross-entropy label smoothing
    # standard (pad-crop-flip, the usual CIFAR augmentation: learned faster than article 000's
    # rotations and 20% shifts, 31.1% against 30.0% after 2 epochs on 5,000 images), keras (article
    # 000's ImageDataGenerator, which the `article` presets use), or none
    # imagenet (random-resized crop + flip; evaluation on the central 87.5%), or auto (imagenet for
    # inputs of 128 px and more, else standard; resolved when the data is known)
    augment: str = "standard"
    cutout: int = 0  # standard augmentation: side of the cutout square, 0 = off
    precision: str = "fp32"  # fp32, bf16 / fp16 autocast (fp16 uses a gradient scaler on CUDA), or auto (bf16 where the device computes it natively, else fp32)
    channels_last: bool = True  # NHWC memory format for model and batches (1.1-1.3x faster on CPU, benchmarks/training.py)
    compile: bool = False  # torch.compile the model
    seed: int = 0  # weights, shuffling, augmentation and dropout all follow it
    device: str = "auto"  # auto (CUDA when present), cpu, cuda, cuda:N
    eval_batch_size: int = 512  # images per evaluation step
    tta: str = "none"  # test-time augmentation measured beside plain accuracy each epoch: none, or flip (mean of the image and its mirror)
    # BatchNorm moving-average momentum, Keras convention (0.99 = keep 99% of the old average per step);
    # None keeps the model's own (Keras's 0.99 for cnnlab's models).
    bn_momentum: float | None = None
    # "Precise BN": after each epoch's training, recompute every trainable BatchNorm layer's
    # statistics as the exact mean/variance over this many (unaugmented) training images, so
    # evaluation and checkpoints use statistics of the final weights. Without it, Keras's momentum
    # 0.99 leaves the statistics hundreds of steps behind the weights and a short run evaluates near
    # chance (12% after 2 epochs on 5,000 images, against 26% train accuracy). 0 = off (the
    # `article` presets, faithful to Keras).
    precise_bn: int = 1024
    sync_bn: bool = False  # several CUDA processes (torchrun): BatchNorm statistics over the global batch (SyncBatchNorm)

    def __post_init__(self) -> None:
        def check(ok: bool, name: str, allowed: str) -> None:
            if not ok:
                raise ValueError(f"{name} must be {allowed}, got {getattr(self, name)!r}")

        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"{f.name} must be a finite number, got {value!r}")
        check(isinstance(self.epochs, int) and self.epochs >= 1, "epochs", "a positive int")
        check(isinstance(self.batch_size, int) and self.batch_size >= 1, "batch_size", "a positive int")
        check(isinstance(self.eval_batch_size, int) and self.eval_batch_size >= 1, "eval_batch_size", "a positive int")
        check(self.optimizer in OPTIMIZERS, "optimizer", f"one of {OPTIMIZERS}")
        check(self.schedule in SCHEDULES, "schedule", f"one of {SCHEDULES}")
        check(self.precision in PRECISIONS, "precision", f"one of {PRECISIONS}")
        check(self.lr > 0, "lr", "positive")
        check(self.lr_base_batch is None or (isinstance(self.lr_base_batch, int) and self.lr_base_batch >= 1),
              "lr_base_batch", "None or a positive number of images")
        check(self.weight_decay >= 0, "weight_decay", "non-negative")
        check(0 <= self.label_smoothing < 1, "label_smoothing", "in [0, 1)")
        # a warm-up as long as the run would leave nothing of the schedule but the climb
        check(self.warmup_epochs == 0 or 0 < self.warmup_epochs < self.epochs, "warmup_epochs", f"0 or in (0, epochs={self.epochs})")
        check(self.augment in (*AUGMENTATIONS, "auto"), "augment", f"one of {(*AUGMENTATIONS, 'auto')}")
        check(isinstance(self.precise_bn, int) and self.precise_bn >= 0, "precise_bn", "a number of images >= 0")
        check(self.tta in TTAS, "tta", f"one of {TTAS}")
        check(self.bn_momentum is None or 0 <= self.bn_momentum < 1, "bn_momentum", "None or in [0, 1) (Keras convention)")

    def scaled_lr(self, global_batch: int) -> float:
        """The peak learning rate for a global batch of ``global_batch`` images (``lr_base_batch``)."""
        if self.lr_base_batch is None:
            return self.lr
        ratio = global_batch / self.lr_base_batch
        return self.lr * (ratio if self.optimizer == "sgd" else math.sqrt(ratio))
