"""Where this project's checkout keeps its datasets: the ``cnnlab`` command knows, the library
does not (it looks in the folders ``$CNNLAB_DATA_PATH`` names, and in its cache).

A checkout of cnnlab lies beside ``shared/`` (``../shared/datasets/cifar10-jpg.tar.gz``); run
from the checkout (or from the folder above it), the command looks there, as it always did,
unless ``$CNNLAB_DATA_PATH`` says where to look instead.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from ..data.sources import DATA_PATH

# relative to the working directory: beside the checkout, or inside the folder that holds both
CHECKOUT_DATASETS = (Path("..", "shared", "datasets"), Path("shared", "datasets"))


def checkout_datasets() -> list[str]:
    """The checkout's dataset folders that exist, as absolute paths."""
    return [str(p.resolve()) for p in CHECKOUT_DATASETS if p.is_dir()]


@contextlib.contextmanager
def looking_in_the_checkout() -> Iterator[None]:
    """For the command's run (and the processes it starts: search workers, torchrun), an unset
    ``$CNNLAB_DATA_PATH`` names the checkout's dataset folders; afterwards it is unset again."""
    if DATA_PATH in os.environ or not checkout_datasets():
        yield
        return
    os.environ[DATA_PATH] = os.pathsep.join(checkout_datasets())
    try:
        yield
    finally:
        os.environ.pop(DATA_PATH, None)
