"""What a training run is: one dataclass, a comment on every default (named presets: ``cnnlab.presets``)."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

from ..configs import Options
from ..data.augment import POLICIES as AUGMENTATIONS

OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("constant", "cosine", "onecycle")
PRECISIONS = ("fp32", "bf16", "fp16", "auto")
TTAS = ("none", "flip")
EARLY_STOP_METRICS = ("val_acc", "val_loss")
MAX_LR = 100.0  # the largest peak learning rate accepted (1e300 overflowed float32 deep in the optimizer)


@dataclass(frozen=True)
class TrainConfig(Options):
    what = "training option"

    epochs: int = 10  # passes over the training set
    batch_size: int = (
        128  # images per step and process (article 000: 128); under torchrun the global batch is this x processes
    )
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
    # fp32, bf16 / fp16 autocast (fp16 uses a gradient scaler on CUDA), or auto (bf16 where the device
    # computes it natively, else fp32)
    precision: str = "fp32"
    channels_last: bool = (
        True  # NHWC memory format for model and batches (1.1-1.3x faster on CPU, benchmarks/training.py)
    )
    compile: bool = False  # torch.compile the model
    seed: int = 0  # weights, shuffling, augmentation and dropout all follow it
    device: str = "auto"  # auto (CUDA when present), cpu, cuda, cuda:N
    eval_batch_size: int = 512  # images per evaluation step
    # test-time augmentation measured beside plain accuracy each epoch: none, or flip (mean of the image
    # and its mirror)
    tta: str = "none"
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
    sync_bn: bool = (
        False  # several CUDA processes (torchrun): BatchNorm statistics over the global batch (SyncBatchNorm)
    )
    early_stop: int = (
        0  # Keras EarlyStopping: stop after this many epochs without improvement of early_stop_metric; 0 = off
    )
    early_stop_metric: str = (
        "val_acc"  # what early_stop watches: val_acc (higher is better) or val_loss (lower is better)
    )
    min_delta: float = 0.0  # early_stop: a change of at most this much is no improvement (Keras's min_delta)
    clip_grad: float = 0.0  # clip the gradients' global L2 norm to this before each optimizer step; 0 = off
    mixup: float = (
        0.0  # timm's mixup: each batch blended with its reverse by a Beta(alpha, alpha) share; alpha, 0 = off
    )
    # timm's CutMix: a Beta(alpha, alpha)-sized box pasted from the reverse batch; alpha, 0 = off (both
    # set: one or the other per batch, p 0.5)
    cutmix: float = 0.0
    accumulate: int = (
        1  # micro-batches of batch_size per optimizer step (gradient accumulation); the schedule counts optimizer steps
    )
    # decay of an exponential moving average of the weights (e.g. 0.999), evaluated and saved as the
    # model; 0 = off
    ema: float = 0.0
    tensorboard: bool = False  # also write TensorBoard event files into RUN/tb/ (needs the tensorboard package)

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
        check(0 < self.lr <= MAX_LR, "lr", f"in (0, {MAX_LR:g}] (SGD's usual peak is 0.1, Adam's 1e-3)")
        check(isinstance(self.seed, int) and 0 <= self.seed < 2**32, "seed", f"an int in 0..{2**32 - 1}")
        check(
            self.lr_base_batch is None or (isinstance(self.lr_base_batch, int) and self.lr_base_batch >= 1),
            "lr_base_batch",
            "None or a positive number of images",
        )
        check(self.weight_decay >= 0, "weight_decay", "non-negative")
        check(0 <= self.label_smoothing < 1, "label_smoothing", "in [0, 1)")
        # a warm-up as long as the run would leave nothing of the schedule but the climb
        check(
            self.warmup_epochs == 0 or 0 < self.warmup_epochs < self.epochs,
            "warmup_epochs",
            f"0 or in (0, epochs={self.epochs})",
        )
        check(self.augment in (*AUGMENTATIONS, "auto"), "augment", f"one of {(*AUGMENTATIONS, 'auto')}")
        check(isinstance(self.precise_bn, int) and self.precise_bn >= 0, "precise_bn", "a number of images >= 0")
        check(self.tta in TTAS, "tta", f"one of {TTAS}")
        check(
            self.bn_momentum is None or 0 <= self.bn_momentum < 1, "bn_momentum", "None or in [0, 1) (Keras convention)"
        )
        self._check_loop_options(check)

    def _check_loop_options(self, check) -> None:
        """Early stopping, clipping, mixing, accumulation, EMA, TensorBoard."""

        def count(value: object) -> bool:
            return isinstance(value, int) and not isinstance(value, bool)

        check(count(self.early_stop) and self.early_stop >= 0, "early_stop", "a patience in epochs >= 0 (0 = off)")
        check(self.early_stop_metric in EARLY_STOP_METRICS, "early_stop_metric", f"one of {EARLY_STOP_METRICS}")
        check(self.min_delta >= 0, "min_delta", "non-negative")
        # options of early stopping without early stopping would silently do nothing
        check(self.early_stop > 0 or self.min_delta == 0, "min_delta", "0 unless early_stop (the patience) is set")
        check(
            self.early_stop > 0 or self.early_stop_metric == "val_acc",
            "early_stop_metric",
            "val_acc unless early_stop is set",
        )
        check(self.clip_grad >= 0, "clip_grad", "a gradient norm >= 0 (0 = off)")
        check(self.mixup >= 0, "mixup", "a Beta alpha >= 0 (0 = off)")
        check(self.cutmix >= 0, "cutmix", "a Beta alpha >= 0 (0 = off)")
        check(
            count(self.accumulate) and self.accumulate >= 1, "accumulate", "a positive number of micro-batches per step"
        )
        check(self.ema == 0 or 0 < self.ema < 1, "ema", "a decay in (0, 1), e.g. 0.999, or 0 (off)")
        check(isinstance(self.tensorboard, bool), "tensorboard", "True or False")

    def scaled_lr(self, global_batch: int) -> float:
        """The peak learning rate for a global batch of ``global_batch`` images (``lr_base_batch``)."""
        if self.lr_base_batch is None:
            return self.lr
        ratio = global_batch / self.lr_base_batch
        return self.lr * (ratio if self.optimizer == "sgd" else math.sqrt(ratio))
