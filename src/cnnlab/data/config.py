"""What data a run trains and validates on: one frozen dataclass beside ``TrainConfig``.

data = DataConfig("cifar10", data_dir="path/to/cifar10", limit_train=5000)
splits = data.load(seed=0)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from ..configs import Options
from .dataset import DataSplits
from .frames import default_input_size
from .names import check_name
from .progress import DataProgress
from .splits import load_splits


@dataclass(frozen=True)
class DataConfig(Options):
    what = "data option"

    dataset: str = "cifar10"  # cifar10, cifar100, or "folder" (or any name) for an image folder in data_dir
    # local copy: official archive, its folder, an image-folder tree or tar (None: $CNNLAB_DATA, the cache,
    # the folders of $CNNLAB_DATA_PATH, a download)
    data_dir: str | None = None
    val_split: float | None = (
        None  # None: validate on the test set (article 000) or the folder's val/; else a stratified fraction of train
    )
    image_size: tuple[int, int] | None = None  # (H, W) image folders are resized to (None: the dataset's own size)
    limit_train: int | None = None  # class-balanced subset of the training images (None: all)
    limit_val: int | None = None  # class-balanced subset of the validation images (None: all)
    # keep the decoded images on disk and read them batch by batch while training (None: when they
    # would fill more than a quarter of the memory); the same run either way, only the memory differs
    stream: bool | None = None
    # image folders: keep every image in its own framing, shorter side this many pixels, so that
    # training crops from the whole photo (imagenet's random-resized crop) and evaluation sees
    # the central 87.5%; image_size is then the model's input (default 0.875 x cache_size)
    cache_size: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.dataset, str) or not self.dataset:
            raise ValueError(f"dataset must be a name such as cifar10, got {self.dataset!r}")
        check_name(self.dataset)  # it names a folder in the cache: a safe slug only
        if self.data_dir is not None and not isinstance(self.data_dir, str):  # a Path given: stored as text
            object.__setattr__(self, "data_dir", str(self.data_dir))
        for name in ("limit_train", "limit_val"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ValueError(f"{name} must be a positive number of images, got {value!r}")
        if self.val_split is not None and not 0 < self.val_split < 1:
            raise ValueError(f"val_split must be a fraction in (0, 1), got {self.val_split!r}")
        if self.image_size is not None:
            size = tuple(self.image_size)
            if len(size) != 2 or not all(isinstance(v, int) and v >= 1 for v in size):
                raise ValueError(f"image_size must be (height, width) positive ints, got {self.image_size!r}")
            object.__setattr__(self, "image_size", size)
        if self.cache_size is not None:
            self._check_cache_size()

    def _check_cache_size(self) -> None:
        size = self.cache_size
        if isinstance(size, bool) or not isinstance(size, int) or size < 8:
            raise ValueError(
                f"cache_size must be the cached images' shorter side in pixels (8 or more, e.g. 256), got {size!r}"
            )
        if self.stream is False:
            raise ValueError(
                "images cached in their own framing (cache_size) are read from disk batch by batch; drop `stream=False`"
            )
        if self.image_size is None:
            object.__setattr__(self, "image_size", (default_input_size(size),) * 2)
        elif min(self.image_size) > size:
            raise ValueError(
                f"image_size {self.image_size} is larger than the cached images' shorter side {size}: "
                f"pass a cache size of at least {min(self.image_size)} (e.g. {-(-max(self.image_size) * 8 // 7)})"
            )

    def load(self, seed: int = 0, download: bool = True, progress: DataProgress | None = None) -> DataSplits:
        """The train / validation (/ test) splits this config describes (``seed``: subsets and split;
        ``progress``: told of a decode's progress and of notices, default a bar on a terminal)."""
        return load_splits(
            self.dataset,
            self.data_dir,
            self.val_split,
            self.image_size,
            self.limit_train,
            seed,
            download=download,
            limit_val=self.limit_val,
            stream=self.stream,
            cache_size=self.cache_size,
            progress=progress,
        )

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["image_size"] = list(self.image_size) if self.image_size else None
        return d
