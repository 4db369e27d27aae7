"""Run by tests/train/test_loop_options.py, once alone and once under torchrun: ddp_worker's
model and data, trained with DDP_BATCH images per process and DDP_ACCUMULATE micro-batches per
optimizer step into argv[1]; rank 0 writes how often DDP's no_sync() was entered into argv[2]."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ddp_worker import data, model  # noqa: E402
from torch.nn.parallel import DistributedDataParallel  # noqa: E402

from cnnlab.train import TrainConfig, fit  # noqa: E402


def main() -> None:
    entered = {"no_sync": 0}
    real = DistributedDataParallel.no_sync

    def counting(self):
        entered["no_sync"] += 1
        return real(self)

    DistributedDataParallel.no_sync = counting
    config = TrainConfig(
        epochs=2,
        batch_size=int(os.environ["DDP_BATCH"]),
        accumulate=int(os.environ["DDP_ACCUMULATE"]),
        optimizer="sgd",
        lr=0.05,
        schedule="cosine",
        augment="none",
        precise_bn=0,
        channels_last=False,
        device="cpu",
        eval_batch_size=32,
    )
    fit(model(), data(), config, sys.argv[1], quiet=True)
    if int(os.environ.get("RANK", "0")) == 0:
        Path(sys.argv[2]).write_text(json.dumps(entered))


if __name__ == "__main__":
    main()
