"""What an inspection looks at: the model (with its classes and how its evaluation reads an
image) and the image, turned into the tensor the model sees.

:class:`Preprocess` is a run's evaluation view -- the input size, the framing of a run trained
on images in their own framing (``eval_frame``: shorter side, then the center view), the center
crop of the imagenet policy (``eval_crop``) and a normalisation where one is recorded -- applied
as ``cnnlab predict`` and ``cnnlab evaluate`` apply it. Whatever is changed on the way (a
grayscale image converted, an image resized) is said in the notes.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ...data.augment import center_crop_view
from ...data.frames import center_views, resize_short_side
from ...layers.base import KerasConv2dBase
from ...models import create_model, get_model_entry, list_models

FAR = 2.0  # an image more than this factor larger or smaller than the model's input is "far" from it


@dataclass(frozen=True)
class Preprocess:
    """How an image becomes the model's input (what a run's evaluation does)."""

    image_size: tuple[int, int] | None  # (H, W); None: the image's own size
    frame: dict[str, Any] | None = None  # {"short_side": S, "crop": f}: resize, then the center view
    crop: float | None = None  # the central fraction, resized back (the imagenet policy's evaluation)
    mean: tuple[float, ...] | None = None  # normalisation after the [0, 1] scaling, where one is recorded
    std: tuple[float, ...] | None = None
    channels: int = 3

    @classmethod
    def from_run_info(cls, info: dict[str, Any], image_size: Sequence[int], channels: int = 3) -> Preprocess:
        """The evaluation view a run's info records (``eval_frame``, ``eval_crop``), as ``cnnlab predict`` reads it."""
        return cls(
            (int(image_size[0]), int(image_size[1])),
            info.get("eval_frame") or None,
            info.get("eval_crop") or None,
            channels=channels,
        )

    def describe(self) -> str:
        if self.image_size is None:
            return "the image at its own size, scaled to [0, 1]"
        h, w = self.image_size
        if self.frame:
            text = f"shorter side to {self.frame['short_side']}, the center {h}x{w} view"
        else:
            text = f"resized to {h}x{w} (bilinear)"
        text += ", scaled to [0, 1]"
        if self.crop:
            text += f", the central {self.crop:.3g} resized back (the run's evaluation crop)"
        if self.mean is not None:
            text += ", normalised by the recorded mean and std"
        return text


@dataclass
class Subject:
    """A model ready to inspect: the module (in eval mode), its class names, its evaluation view."""

    model: nn.Module
    classes: list[str]
    preprocess: Preprocess
    name: str  # what the model is, for titles: "densenet_cifar (docs/weights/densenet-case3.pt)"
    notes: list[str] = field(default_factory=list)  # said once per inspection (random weights, ...)


def input_channels(model: nn.Module) -> int:
    """The channels the model's first convolution reads (3 when it has none cnnlab knows)."""
    for module in model.modules():
        if isinstance(module, (KerasConv2dBase, nn.Conv2d)):
            return int(module.in_channels)
    return 3


def subject(model: Any, classes: Sequence[str] | None = None, image_size: int | Sequence[int] | None = None) -> Subject:
    """``model`` as a :class:`Subject`: an ``nn.Module``, a zoo name (random weights, said so), a
    :class:`Subject`, or a loaded run (anything with ``model``, ``classes``, ``image_size`` and
    ``info``, as ``cnnlab.train.load_run`` returns): its classes and its evaluation view."""
    if isinstance(model, Subject):
        return model
    size = _size(image_size)
    if all(hasattr(model, a) for a in ("model", "classes", "image_size", "info")):  # a loaded run
        module = model.model
        view = Preprocess.from_run_info(model.info, size or model.image_size, input_channels(module))
        where = getattr(model, "checkpoint", None)
        name = f"{model.info.get('model', type(module).__name__)}" + (f" ({where})" if where else "")
        return Subject(module.eval(), _classes(classes or model.classes, module), view, name)
    if isinstance(model, str):
        if model not in list_models():
            get_model_entry(model)  # the registry's error: unknown model, with the nearest names
        module = create_model(model, num_classes=len(classes) if classes else None)
        default = get_model_entry(model).input_size[1:]
        note = f"{model} has random weights (a zoo model, untrained): its predictions mean nothing yet"
        view = Preprocess(size or (int(default[0]), int(default[1])), channels=input_channels(module))
        return Subject(module.eval(), _classes(classes, module), view, f"{model} (random weights)", [note])
    if isinstance(model, nn.Module):
        view = Preprocess(size, channels=input_channels(model))
        return Subject(model, _classes(classes, model), view, type(model).__name__)
    raise TypeError(
        f"model must be an nn.Module, a zoo model name or a loaded run (cnnlab.train.load_run), "
        f"got {type(model).__name__}"
    )


def _size(image_size: int | Sequence[int] | None) -> tuple[int, int] | None:
    if image_size is None:
        return None
    pair = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    if len(pair) != 2 or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v > 0 for v in pair):
        raise ValueError(f"image_size must be a positive int or (height, width), got {image_size!r}")
    return int(pair[0]), int(pair[1])


def _classes(classes: Sequence[str] | None, model: nn.Module) -> list[str]:
    """The class names given, or ``class 0`` ... when none are known."""
    count = getattr(model, "num_classes", None)
    if classes is None:
        if not isinstance(count, int) or count < 1:
            raise ValueError("classes must be given for a model that does not say how many classes it has")
        return [f"class {i}" for i in range(count)]
    names = [str(c) for c in classes]
    if isinstance(count, int) and count > 0 and len(names) != count:
        raise ValueError(f"classes: {len(names)} names given for a model with {count} classes")
    return names


def class_index(classes: Sequence[str], which: int | str) -> int:
    """A class by name or index (an index may come as text: ``--class 3``); a ValueError names the classes."""
    if isinstance(which, str) and which in classes:
        return list(classes).index(which)
    if isinstance(which, str) and which.strip().isdigit():
        which = int(which)
    if isinstance(which, (int, np.integer)) and not isinstance(which, bool):
        if not 0 <= which < len(classes):
            raise ValueError(
                f"class index {which} is out of range: the model has {len(classes)} classes (0..{len(classes) - 1})"
            )
        return int(which)
    close = difflib.get_close_matches(str(which), list(classes), n=3, cutoff=0.5)
    listed = ", ".join(classes[:20]) + (f", ... ({len(classes)} in all)" if len(classes) > 20 else "")
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise ValueError(f"class {which!r} is not one of the model's classes ({listed}){hint}")


# ------------------------------------------------------------------------- the image
def read_image(image: Any, channels: int = 3) -> tuple[Any, str, list[str]]:
    """(an RGB -- or, for a one-channel model, L -- PIL image, its name, notes) from a path, a
    PIL image or an HxWxC (or HxW) uint8 array; an unreadable image is a ValueError naming it."""
    from PIL import Image, UnidentifiedImageError

    if isinstance(image, (str, Path)):
        path = Path(image)
        if not path.is_file():
            raise FileNotFoundError(f"no such image file: {path}")
        try:
            with Image.open(path) as opened:
                opened.load()
                pil, name = opened.copy(), str(path)
        except (OSError, UnidentifiedImageError, ValueError) as error:
            raise ValueError(f"cannot read image {path}: {' '.join(str(error).split())}") from None
    elif isinstance(image, Image.Image):
        pil, name = image, "image"
    elif isinstance(image, np.ndarray):
        pil, name = _from_array(image), "array"
    else:
        raise TypeError(f"image must be a path, a PIL image or an HxWxC uint8 array, got {type(image).__name__}")
    return _convert(pil, name, channels)


def _from_array(array: np.ndarray) -> Any:
    from PIL import Image

    if array.dtype != np.uint8:
        raise ValueError(f"an image array must be uint8 (0..255) HxWxC, got dtype {array.dtype}")
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if not (array.ndim == 2 or (array.ndim == 3 and array.shape[2] in (3, 4))) or min(array.shape[:2]) < 1:
        raise ValueError(f"an image array must be HxW, HxWx1, HxWx3 or HxWx4 uint8, got shape {array.shape}")
    return Image.fromarray(np.ascontiguousarray(array))


def _convert(pil: Any, name: str, channels: int) -> tuple[Any, str, list[str]]:
    notes = []
    if channels == 1:
        if pil.mode != "L":
            notes.append(f"{name}: {pil.mode} image converted to grayscale (the model reads 1 channel)")
        return pil.convert("L"), name, notes
    if pil.mode in ("L", "LA", "1", "I", "I;16", "F"):
        notes.append(f"{name}: grayscale image converted to RGB (its gray copied to the 3 channels the model reads)")
    elif pil.mode in ("RGBA", "RGBa"):
        notes.append(f"{name}: the alpha channel of the {pil.mode} image is dropped")
    elif pil.mode not in ("RGB", "P"):
        notes.append(f"{name}: {pil.mode} image converted to RGB")
    return pil.convert("RGB"), name, notes


def model_input(pil: Any, view: Preprocess, name: str = "image") -> tuple[torch.Tensor, np.ndarray, list[str]]:
    """(1xCxHxW float tensor the model sees, the HxWxC uint8 pixels it was made from, notes):
    resized as the run's evaluation does (``cnnlab predict``'s steps), scaled to [0, 1], cropped
    and normalised where the run's view says so."""
    from PIL import Image

    notes = []
    w0, h0 = pil.size
    if view.image_size is None:
        pixels = np.asarray(pil)
    elif view.frame:
        short = int(view.frame["short_side"])
        framed = np.asarray(resize_short_side(pil, short))
        if framed.ndim == 2:
            framed = framed[:, :, None]
        pixels = center_views([framed], view.image_size, view.frame.get("crop", 0.875)).numpy()[0]
        notes.append(f"{name}: {w0}x{h0} (WxH) framed as the run's evaluation does: {view.describe()}")
    else:
        h, w = view.image_size
        pixels = np.asarray(pil if (h0, w0) == (h, w) else pil.resize((w, h), Image.Resampling.BILINEAR))
        if (h0, w0) != (h, w):
            far = max(h0 / h, w0 / w, h / h0, w / w0) > FAR
            notes.append(
                f"{name}: {w0}x{h0} (WxH) {'is far from' if far else 'differs from'} the model's {w}x{h} "
                f"input: resized to {w}x{h} (bilinear), as the run's evaluation reads images"
            )
    pixels = pixels[:, :, None] if pixels.ndim == 2 else pixels
    x = torch.from_numpy(np.array(pixels, copy=True)).permute(2, 0, 1)[None].float().div(255)
    if view.crop:
        x = center_crop_view(x, view.crop)
        pixels = x[0].permute(1, 2, 0).mul(255).round().clamp(0, 255).to(torch.uint8).numpy()  # what the model sees
    if view.mean is not None and view.std is not None:
        mean = torch.tensor(view.mean, dtype=x.dtype).view(1, -1, 1, 1)
        x = (x - mean) / torch.tensor(view.std, dtype=x.dtype).view(1, -1, 1, 1)
    return x, np.ascontiguousarray(pixels), notes
