"""Training on several processes with PyTorch's own engine: ``torchrun`` starts them,
``torch.distributed`` connects them (gloo on the CPU, NCCL on CUDA), ``DistributedDataParallel``
averages the gradients.

cnnlab needs no launcher of its own: under ``torchrun`` (which sets ``WORLD_SIZE``, ``RANK``,
``LOCAL_RANK``, ``MASTER_ADDR``...) :func:`fit <cnnlab.train.fit>` joins the process group,
every rank trains on its own part of each global batch and only rank 0 writes files.

    torchrun --nproc-per-node 2 -m cnnlab train densenet_cifar --batch-size 64 ...
    cnnlab train densenet_cifar --nproc 2 ...          # the same, started for you

``--batch-size`` is per rank (as in torchrun scripts and timm): the global batch is
``batch_size * world_size``, and the learning rate applies to that global batch as given.
"""

from __future__ import annotations

import atexit
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class World:
    """This process's place among the training processes (one process: rank 0 of 1)."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        """Rank 0: the one process that writes files and shows progress."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1

    @property
    def restarts(self) -> int:
        """How many times torchrun restarted the workers (``--max-restarts``): 0 on the first try."""
        return int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") or 0)


def world_from_env() -> World:
    """The world torchrun describes in the environment; one process when there is none."""
    size = int(os.environ.get("WORLD_SIZE", "1") or 1)
    if size <= 1:
        return World()
    return World(rank=int(os.environ["RANK"]), size=size, local_rank=int(os.environ.get("LOCAL_RANK", "0")))


def join(world: World, device: torch.device) -> torch.device:
    """Join the process group (gloo on the CPU, NCCL on CUDA) and return this rank's device:
    ``cuda:LOCAL_RANK`` for CUDA, one GPU per process."""
    if not world.distributed:
        return device
    if device.type == "cuda":
        device = torch.device("cuda", world.local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if os.environ.get("TORCHELASTIC_USE_AGENT_STORE") == "True":
            # torchrun shares its rendezvous store with the workers, and after a restart
            # (--max-restarts) the previous attempt's addresses are still in it: the new workers
            # would dial dead ports (pytorch/pytorch#135712). One key space per attempt avoids that.
            store = dist.PrefixStore(
                f"cnnlab/attempt{world.restarts}",
                dist.TCPStore(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), world.size, is_master=False),
            )
            dist.init_process_group(backend, store=store, rank=world.rank, world_size=world.size)
        else:
            dist.init_process_group(backend)
        # one group for the process's life (reproduce trains several cases in it), left at exit
        atexit.register(leave, world)
    if dist.get_world_size() != world.size:
        raise RuntimeError(f"the process group has {dist.get_world_size()} processes, WORLD_SIZE says {world.size}")
    return device


def leave(world: World) -> None:
    if world.distributed and dist.is_initialized():
        dist.destroy_process_group()


def wrap(
    model: nn.Module, world: World, device: torch.device, sync_bn: bool = False, changing: bool = False
) -> nn.Module:
    """``model`` in DistributedDataParallel (its BatchNorm layers synchronised with ``sync_bn``;
    ``changing``: the trained weights may change between epochs); the model itself for one process."""
    if not world.distributed:
        return model
    if sync_bn:
        if device.type != "cuda":
            raise ValueError("`sync_bn=True` needs CUDA: PyTorch's SyncBatchNorm does not run on the CPU")
        if isinstance(model, nn.modules.batchnorm._BatchNorm):
            raise ValueError("`sync_bn=True` converts the BatchNorm layers inside a model, not a bare BatchNorm")
        nn.SyncBatchNorm.convert_sync_batchnorm(model)  # in place: the model's BatchNorm children are replaced
    from torch.nn.parallel import DistributedDataParallel

    # ``changing``: which weights train may change between epochs (finetune freezes the backbone for
    # its first epochs, after the model is wrapped); DDP must then expect weights without a gradient
    return DistributedDataParallel(
        model, device_ids=[device.index] if device.type == "cuda" else None, find_unused_parameters=changing
    )


def sum_all(*values: torch.Tensor) -> list[torch.Tensor]:
    """Each tensor summed over the ranks (the tensors themselves for one process)."""
    if not (dist.is_available() and dist.is_initialized()):
        return list(values)
    packed = torch.stack([v.double() for v in values])
    dist.all_reduce(packed)
    return list(packed.unbind())


def max_all(value: torch.Tensor) -> torch.Tensor:
    if dist.is_available() and dist.is_initialized():
        value = value.clone()
        dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return value


def barrier(world: World) -> None:
    if world.distributed and dist.is_initialized():
        dist.barrier()


def same_everywhere(world: World, value: object) -> object:
    """Rank 0's ``value`` on every rank (an error found by rank 0 stops them all alike)."""
    if not world.distributed:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]
