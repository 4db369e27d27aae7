"""One epoch of training and validation (what ``fit`` repeats): the data on the device,
augmentation, mixup/CutMix, precision, gradient accumulation and clipping, the moving average of
the weights, and the validation of the model a checkpoint exports.

An optimizer step takes ``accumulate`` micro-batches of ``batch_size`` images per process: each
micro-batch's mean loss is scaled by its share of the step's images (1/accumulate for full steps;
a shorter last step of an epoch weighs as one batch of its size), so the gradient equals that of
one batch of all of them. Under DDP the gradients are exchanged only on the last micro-batch
(``no_sync`` for the others). The learning-rate schedule and the EMA count optimizer steps.
"""

from __future__ import annotations

import math
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from ..data import DataSplits
from ..data.augment import Augmentation, eval_view
from .batches import batch_source
from .batchnorm import precise_batchnorm
from .config import TrainConfig
from .distributed import World, max_all, sum_all, wrap
from .ema import ModelEma
from .evaluation import evaluate
from .history import EpochRecord
from .mixing import Mixing
from .precision import autocast_for, resolve_precision
from .state import TrainingState

CHECK_EVERY = 20  # micro-batches between progress updates (and the host syncs they cost)


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


class Epochs:
    """One epoch of training and validation; ``steps``: optimizer steps per epoch (the schedule's
    unit), ``batches``: micro-batches per epoch (``steps`` without accumulation)."""

    def __init__(
        self,
        model: nn.Module,
        data: DataSplits,
        config: TrainConfig,
        device: torch.device,
        out: Path,
        world: World | None = None,
        changing: bool = False,
    ) -> None:
        if config.channels_last:
            # torch's stub of Module.to lists no memory_format overload; the method takes it (torch docs)
            model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        world = world if world is not None else World()  # one process
        self.model, self.config, self.out, self.world = model, config, out, world
        trainer = wrap(model, world, device, config.sync_bn, changing)
        # wrap gives a DistributedDataParallel when world.distributed: its no_sync() skips the gradient exchange
        self.ddp = trainer if isinstance(trainer, DistributedDataParallel) else None
        # torch.compile of a Module gives an OptimizedModule, a Module (its stub says only Callable)
        self.runner: nn.Module = cast(nn.Module, torch.compile(trainer)) if config.compile else trainer
        # DDP's forward talks to the other ranks: evaluation (a shard per rank) runs the model itself
        self.evaluator = model if world.distributed else self.runner
        # the images on the device, or read from the decoded cache batch by batch (DataConfig.stream)
        self.train_src = batch_source(data.train, device, config.channels_last, training=True)
        self.val_src = batch_source(data.val, device, config.channels_last)
        self.device = device
        # a micro-batch is one global batch (batch_size per rank); a last one some rank would find empty is dropped
        n, self.global_batch = len(self.train_src), config.batch_size * world.size
        self.batches = (
            n // self.global_batch if 0 < n % self.global_batch < world.size else math.ceil(n / self.global_batch)
        )
        self.steps = math.ceil(self.batches / config.accumulate)
        self.precision = resolve_precision(config.precision, device)
        self.autocast = autocast_for(self.precision, device)
        self.augment = Augmentation(config.augment, cutout=config.cutout)
        self.mixing = Mixing(config.mixup, config.cutmix, config.label_smoothing)
        # after channels_last and DDP/SyncBatchNorm: the average has the trained model's layout and layers
        self.ema = ModelEma(model, config.ema) if config.ema else None
        # images in their own framing are evaluated on their center views already (data.frames)
        self.eval_view = None if data.val.framed else eval_view(config.augment)

    def describe(self) -> dict[str, Any]:
        """What the options did, for the run's records."""
        info: dict[str, Any] = {"steps_per_epoch": self.steps}
        if self.ema is not None:
            info["ema"] = {
                "decay": self.config.ema,
                "warmup": "decay_eff = min(decay, (1 + step) / (10 + step))",
                "buffers": "copied from the trained model every step"
                + (
                    "; BatchNorm statistics recomputed for the EMA weights (precise_bn)"
                    if self.config.precise_bn
                    else ""
                ),
                "evaluated": "val_loss, val_acc, val_acc_tta, best (best.pt) and the checkpoints' model: the EMA "
                "weights; val_loss_raw, val_acc_raw: the trained weights (train_model in last.pt)",
            }
        if self.mixing:
            info["train_acc"] = "counted against the label with the larger share of each mixed image (mixup/cutmix)"
        return info

    def checkpoint(self, state: TrainingState) -> dict[str, Any]:
        """``state``'s checkpoint; with ``ema`` its ``model`` is the EMA (what evaluate, export and
        best.pt use) and ``train_model`` the trained weights a resume continues from."""
        checkpoint = state.state_dict()
        if self.ema is not None:
            checkpoint["train_model"], checkpoint["model"] = checkpoint["model"], self.ema.module.state_dict()
            checkpoint["ema"] = self.ema.state_dict()
        return checkpoint

    def restore(self, checkpoint: dict[str, Any]) -> None:
        """The EMA of a resumed run (``state.load_state_dict`` restores the rest)."""
        if self.ema is not None:
            self.ema.load_state_dict(checkpoint["model"], checkpoint["ema"])

    def train(self, state: TrainingState, epoch: int, progress) -> EpochRecord:
        start = time.perf_counter()
        loss, acc = self._steps(state, epoch, progress)
        train_seconds = time.perf_counter() - start
        config, n = self.config, len(self.train_src)
        if config.precise_bn:
            self._precise_bn()
        val_loss, val_acc = self._evaluate("none")
        raw = {}
        exported = self.evaluator
        if self.ema is not None:  # the EMA is the model the checkpoints export: its accuracy is the run's
            raw, exported = {"val_loss_raw": val_loss, "val_acc_raw": val_acc}, self.ema.module
            val_loss, val_acc = self._evaluate("none", exported)
        val_acc_tta = self._evaluate(config.tta, exported)[1] if config.tta != "none" else None
        return EpochRecord(
            epoch=epoch,
            train_loss=loss,
            train_acc=acc,
            val_loss=val_loss,
            val_acc=val_acc,
            lr=state.optimizer.param_groups[0]["lr"],
            seconds=time.perf_counter() - start,
            images_per_s=n / train_seconds,
            val_acc_tta=val_acc_tta,
            **raw,
        )

    def _precise_bn(self) -> None:
        # the same images every epoch: the first ones of a fixed permutation (no generator draw, so
        # shuffling and augmentation do not depend on this option)
        config = self.config
        subset = torch.randperm(len(self.train_src), generator=torch.Generator().manual_seed(config.seed))[
            : config.precise_bn
        ]
        images = self.train_src.take(subset)
        precise_batchnorm(self.model, images, config.batch_size, self.autocast)
        if self.ema is not None:  # the EMA's statistics for its own weights, in the layers that train
            precise_batchnorm(self.ema.module, images, config.batch_size, self.autocast, like=self.model)

    def _evaluate(self, tta: str, model: nn.Module | None = None) -> tuple[float, float]:
        """(loss, accuracy) on the validation images: each rank evaluates its part, the sums are shared."""
        loss_sum = correct = 0.0
        for x, y in self.val_src.parts(self.world.size, self.world.rank):
            if len(y):
                loss, acc = evaluate(
                    model or self.evaluator,
                    x,
                    y,
                    self.config.eval_batch_size,
                    self.autocast,
                    tta=tta,
                    view=self.eval_view,
                )
                loss_sum, correct = loss_sum + loss * len(y), correct + acc * len(y)
        loss_total, correct_total = sum_all(torch.tensor(loss_sum), torch.tensor(correct))
        n = len(self.val_src)
        return float(loss_total) / n, round(float(correct_total)) / n

    def _batch_generator(self, state: TrainingState, epoch: int) -> torch.Generator:
        """Augmentation's random draws: the run's generator in one process (so a resume is exact);
        with several, one per rank and epoch (ranks augment their own images differently, and the
        shared generator, which orders the data, stays the same on every rank)."""
        if not self.world.distributed:
            return state.generator
        return torch.Generator().manual_seed((self.config.seed * 1_000_003 + epoch) * 1_009 + self.world.rank)

    def _indices(self, state: TrainingState) -> list[torch.Tensor]:
        """This rank's part of each global micro-batch of the epoch (all of it in one process)."""
        order = torch.randperm(len(self.train_src), generator=state.generator)
        rank, batch, indices = self.world.rank, self.config.batch_size, []
        for step in range(self.batches):
            chunk = order[step * self.global_batch : (step + 1) * self.global_batch]
            indices.append(
                chunk[rank * batch : (rank + 1) * batch]
                if len(chunk) == self.global_batch
                else chunk.tensor_split(self.world.size)[rank]
            )
        return indices

    def _steps(self, state: TrainingState, epoch: int, progress) -> tuple[float, float]:
        """The epoch's optimizer steps; (mean training loss, training accuracy)."""
        device, start, accumulate = self.device, time.perf_counter(), self.config.accumulate
        self.model.train()
        indices = self._indices(state)
        draws = self._batch_generator(state, epoch)
        sizes = [len(i) for i in indices]
        # each micro-batch's share of its optimizer step's images: the step's gradient is that of one big batch
        shares = [
            size / sum(sizes[i - i % accumulate : i - i % accumulate + accumulate]) for i, size in enumerate(sizes)
        ]
        loss_sum = torch.zeros((), device=device, dtype=torch.float64)
        correct = torch.zeros((), device=device, dtype=torch.int64)
        first_bad = torch.full((), -1, device=device, dtype=torch.int64)
        seen = 0
        progress.epoch_start(epoch)
        for i, (images, y) in enumerate(self.train_src.batches(indices)):
            last = (i + 1) % accumulate == 0 or i + 1 == len(indices)  # the step's last micro-batch
            if i % accumulate == 0:
                state.optimizer.zero_grad(set_to_none=True)
            logits, loss, target = self._backward(state, images, y, draws, shares[i], sync=last)
            if last:
                self._optimizer_step(state)
            # no host sync per step: remember the first non-finite step on the device
            first_bad = torch.where((first_bad < 0) & ~torch.isfinite(loss), i, first_bad)
            loss_sum += loss.double() * len(y)
            correct += (logits.argmax(dim=1) == target).sum()
            seen += len(y)
            if (i + 1) % CHECK_EVERY == 0 or i + 1 == self.batches:
                self._check_finite(int(max_all(first_bad).item()), loss, epoch)
                progress.step(
                    i + 1,
                    seen * self.world.size,
                    loss_sum.item() / seen,
                    correct.item() / seen,
                    time.perf_counter() - start,
                )
        loss_total, correct_total, seen_total = sum_all(loss_sum, correct, torch.tensor(seen))
        return loss_total.item() / seen_total.item(), correct_total.item() / seen_total.item()

    def _backward(
        self, state: TrainingState, images, y: torch.Tensor, draws: torch.Generator, share: float, sync: bool
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Forward and backward of one micro-batch (gradients added to the step's); (logits, loss,
        the labels its accuracy counts: with mixup/cutmix the dominant one of each image)."""
        config = self.config
        x = self.augment(images, draws)
        if config.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        lam = None
        if self.mixing:
            x, lam = self.mixing(x, draws)
        with self.ddp.no_sync() if self.ddp is not None and not sync else nullcontext():
            with self.autocast():
                logits = self.runner(x)
                if lam is None:
                    loss = F.cross_entropy(logits.float(), y, label_smoothing=config.label_smoothing)
                else:
                    loss = self.mixing.loss(logits.float(), y, lam)
            state.scaler.scale(loss if share == 1 else loss * share).backward()
        return logits.detach(), loss.detach(), y if lam is None else Mixing.dominant(y, lam)

    def _optimizer_step(self, state: TrainingState) -> None:
        """Clip the gradients' global norm (after unscaling fp16's), step, schedule, move the EMA."""
        if self.config.clip_grad:
            state.scaler.unscale_(state.optimizer)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.clip_grad)
        state.scaler.step(state.optimizer)
        state.scaler.update()
        state.scheduler.step()
        if self.ema is not None:
            self.ema.update()

    def _check_finite(self, bad: int, loss: torch.Tensor, epoch: int) -> None:
        if bad >= 0:
            raise TrainingDiverged(
                f"the training loss became {loss.item()} at epoch {epoch}, step {bad + 1}; stopped. "
                + (
                    f"The last good checkpoint is {self.out / 'last.pt'} (epoch {epoch - 1})"
                    if epoch > 1
                    else "No checkpoint was written (first epoch)"
                )
                + "; try a lower learning rate or fp32"
            )
