"""What published weights were trained on: each file's input size, resizing, crop and value
normalisation (torchvision's ``weights.transforms()``, timm's ``pretrained_cfg``), and the
normalisation a model with those weights applies to its input.

cnnlab's models take RGB images scaled to [0, 1] -- the trainer, ``evaluate`` and ``predict``
all feed them so. Published weights expect other values (torchvision's: ImageNet mean/std;
Keras's ``preprocess_input``: [-1, 1], or BGR minus the ImageNet mean in pixel units), so a model
built with them normalises its [0, 1] input itself (:func:`normalize_input`), as keras.applications'
MobileNetV3 carries its ``Rescaling`` layer and torchvision's GoogLeNet its ``transform_input``.

    >>> weights = get_model_entry("resnet50").weights[0]
    >>> weights.preprocessing.transform(image)      # PIL image -> (3, 224, 224) in [0, 1], resized and cropped
    >>> weights.preprocessing.normalize(x)          # [0, 1] RGB -> what the weights were trained on
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)  # torchvision's (and Keras's "torch" mode), of [0, 1] RGB values
IMAGENET_STD = (0.229, 0.224, 0.225)
INTERPOLATIONS = ("nearest", "bilinear", "bicubic")


@dataclass(frozen=True)
class Preprocessing:
    """How images were fed to a set of weights, read as torchvision's ImageClassification:
    shorter side resized to ``resize``, the central ``input_size`` cut out, values scaled to
    [0, 1], then ``(x - mean) / std`` per RGB channel, and the channels reversed when
    ``channels == "BGR"`` (Keras's "caffe" mode: BGR minus the ImageNet mean in pixel units is
    ``mean = pixel mean / 255``, ``std = 1 / 255``)."""

    input_size: tuple[int, int] = (224, 224)  # (height, width) the weights were evaluated at
    resize: int | None = 256  # shorter side before the center crop; None: straight to input_size (Keras's load_img)
    mean: tuple[float, float, float] = IMAGENET_MEAN  # subtracted from the [0, 1] RGB values
    std: tuple[float, float, float] = IMAGENET_STD  # then divided by
    channels: str = "RGB"  # channel order the weights expect after normalising: "RGB" or "BGR"
    interpolation: str = "bilinear"  # resampling of the resize: nearest, bilinear or bicubic

    def __post_init__(self) -> None:
        size = tuple(self.input_size)
        if len(size) != 2 or any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in size):
            raise ValueError(f"input_size must be (height, width) positive ints, got {self.input_size!r}")
        resize = self.resize
        if resize is not None and (isinstance(resize, bool) or not isinstance(resize, int) or resize < min(size)):
            raise ValueError(
                f"resize must be None or a shorter side of at least {min(size)} (input_size {size}), "
                f"got {self.resize!r}"
            )
        mean, std = tuple(float(m) for m in self.mean), tuple(float(s) for s in self.std)
        if len(mean) != 3 or len(std) != 3 or not all(s > 0 for s in std):
            raise ValueError(
                f"mean and std must be 3 numbers (R, G, B), std positive; got mean={self.mean!r}, std={self.std!r}"
            )
        if self.channels not in ("RGB", "BGR"):
            raise ValueError(f"channels must be 'RGB' or 'BGR', got {self.channels!r}")
        if self.interpolation not in INTERPOLATIONS:
            raise ValueError(f"interpolation must be one of {', '.join(INTERPOLATIONS)}, got {self.interpolation!r}")
        for name, value in (("input_size", size), ("mean", mean), ("std", std)):
            object.__setattr__(self, name, value)

    @property
    def crop_pct(self) -> float:
        """The central fraction kept (timm's crop_pct): input size / resized shorter side."""
        return 1.0 if self.resize is None else min(self.input_size) / self.resize

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """[0, 1] RGB images, (N, 3, H, W) or (3, H, W), as the weights expect them."""
        shape = (3, 1, 1)
        mean = torch.tensor(self.mean, dtype=x.dtype, device=x.device).view(shape)
        std = torch.tensor(self.std, dtype=x.dtype, device=x.device).view(shape)
        x = (x - mean) / std
        return x.flip(-3) if self.channels == "BGR" else x

    def transform(self, image: Any) -> torch.Tensor:
        """A PIL image as the weights' evaluation framed it: (3, H, W) float RGB in [0, 1], resized
        and center-cropped (torchvision's arithmetic); ``normalize`` is the model's next step."""
        from PIL import Image

        resample = {
            "nearest": Image.Resampling.NEAREST,
            "bilinear": Image.Resampling.BILINEAR,
            "bicubic": Image.Resampling.BICUBIC,
        }[self.interpolation]
        image = image.convert("RGB")
        height, width = self.input_size
        if self.resize is None:
            image = image.resize((width, height), resample)
        else:
            w, h = image.size
            short, long = (w, h) if w <= h else (h, w)
            new_short, new_long = self.resize, int(self.resize * long / short)
            size = (new_short, new_long) if w <= h else (new_long, new_short)
            if size != image.size:
                image = image.resize(size, resample)
            top, left = round((size[1] - height) / 2.0), round((size[0] - width) / 2.0)  # torchvision's center_crop
            image = image.crop((left, top, left + width, top + height))
        pixels = torch.frombuffer(bytearray(image.tobytes()), dtype=torch.uint8).view(height, width, 3)
        return pixels.permute(2, 0, 1).float().div(255)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready record (a run's ``preprocessing``); ``from_dict`` reads it back."""
        record = asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in record.items()}

    @classmethod
    def from_dict(cls, record: dict[str, Any]) -> Preprocessing:
        unknown = sorted(set(record) - set(cls.__dataclass_fields__))
        if unknown:
            known = ", ".join(cls.__dataclass_fields__)
            raise ValueError(f"unknown preprocessing fields {', '.join(unknown)}; known: {known}")
        fields: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in record.items()}
        return cls(**fields)


class InputNormalization(nn.Module):
    """The value normalisation of ``preprocessing`` as a module (no weights of its own: nothing
    in the state dict). :func:`normalize_input` runs it on a model's input."""

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, preprocessing: Preprocessing) -> None:
        super().__init__()
        self.register_buffer("mean", torch.empty(1, 3, 1, 1), persistent=False)  # moves with the model
        self.register_buffer("std", torch.empty(1, 3, 1, 1), persistent=False)
        self.set(preprocessing)

    def set(self, preprocessing: Preprocessing) -> None:
        self.preprocessing = preprocessing
        with torch.no_grad():
            self.mean.copy_(torch.tensor(preprocessing.mean).view(1, 3, 1, 1))
            self.std.copy_(torch.tensor(preprocessing.std).view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = (x - self.mean.to(x)) / self.std.to(x)  # .to: a no-op where the model was moved with its input
        return x.flip(-3) if self.preprocessing.channels == "BGR" else x

    def pre_hook(self, module: nn.Module, args: tuple) -> tuple:
        """A forward pre-hook: the first argument normalised."""
        return (self(args[0]), *args[1:])

    def extra_repr(self) -> str:
        p = self.preprocessing
        return f"mean={p.mean}, std={p.std}, channels={p.channels}"


def normalize_input(model: nn.Module, preprocessing: Preprocessing) -> nn.Module:
    """Make ``model`` normalise its [0, 1] RGB input as ``preprocessing`` says, and return it.

    The normalisation is the child ``input_normalization`` (printed with the model, absent from
    its state dict), run on the input of ``model.stem`` -- so ``forward``, ``forward_features``
    and a ``features_only`` backbone all see normalised images -- or of the model itself where
    it has no stem. Applying it again replaces the earlier one (never normalises twice)."""
    existing = getattr(model, "input_normalization", None)
    if isinstance(existing, InputNormalization):
        existing.set(preprocessing)
        return model
    norm = InputNormalization(preprocessing)
    model.input_normalization = norm
    target = getattr(model, "stem", None)
    (target if isinstance(target, nn.Module) else model).register_forward_pre_hook(norm.pre_hook)
    return model


def input_preprocessing(model: nn.Module) -> Preprocessing | None:
    """The preprocessing ``model`` applies to its input (``normalize_input``), or None."""
    norm = getattr(model, "input_normalization", None)
    return norm.preprocessing if isinstance(norm, InputNormalization) else None
