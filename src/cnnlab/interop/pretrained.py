"""The published ImageNet weights, through the factory (as timm's ``create_model(name, pretrained=True)``)::

    model = cnnlab.create_model("resnet50", pretrained=True)     # Keras's file (its flavour: stride on the 1x1 conv)
    model = cnnlab.create_model("resnet50", 10, pretrained="torchvision")   # torchvision's file, a new 10-class head
    cnnlab.list_models(pretrained=True)                           # the models that have them

Keras's keras.applications files where cnnlab builds Keras's flavour, torchvision's files for the
models only torchvision has (or when the model is built in torchvision's flavour); ``pretrained``
may name one by its tag (its framework). ``cnnlab finetune --weights imagenet`` uses the same
choice. Downloaded once into the cache (``weights/`` in cnnlab's cache: ``$CNNLAB_DATA``,
``$XDG_CACHE_HOME/cnnlab`` or ``~/.cache/cnnlab``), checksum verified (the MD5
Keras publishes in keras.applications' source, or the SHA-256 prefix in torchvision's file
name) on every use. Without network the download fails within seconds with a message saying
what to fetch where -- it never hangs.

Each family lists its files beside its factories (``RESNET50_WEIGHTS`` in
:mod:`cnnlab.models.resnet`, registered with ``register_model(weights=...)``); this module only
chooses, fetches, verifies and loads them.

Each file carries the preprocessing of the images it was trained on (``Published.preprocessing``:
Keras's "caffe" BGR mean subtraction for VGG/ResNet, [-1, 1] for MobileNet/Xception, ImageNet
mean/std for DenseNet; torchvision's ImageNet mean/std, resize 256, crop 224). cnnlab feeds every
model images scaled to [0, 1], so a model built with published weights normalises its input as
they expect (:func:`cnnlab.models.normalize_input`; ``model.input_normalization``), and
``preprocessing.transform(image)`` frames a photo as their evaluation did.
"""

from __future__ import annotations

import hashlib
import shutil
import threading
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from torch import nn

from ..io import atomic_write
from ..models import FeatureExtractor, Published, normalize_input, published
from ..models import create_model as build_model

TIMEOUT = 10.0  # seconds: connecting (DNS included) and each read

# The registry's published files by model name (each family lists them beside its factories).
KERAS: dict[str, Published] = published("keras")
TORCHVISION: dict[str, Published] = published("torchvision")


def weights_dir() -> Path:
    from ..data import cache_dir

    return cache_dir() / "weights"


def choose(name: str, model_args: dict | None = None) -> Published:
    """Which published file fits ``name`` built with ``model_args``."""
    args = dict(model_args or {})
    tv, keras = TORCHVISION.get(name), KERAS.get(name)
    wanted = {k: v for k, v in (tv.model_args if tv else {}).items() if k != "dropout"}  # dropout: training only
    torchvision_built = bool(wanted) and all(args.get(k) == v for k, v in wanted.items())
    if tv is not None and (keras is None or torchvision_built):
        if any(args.get(k) != v for k, v in wanted.items()):
            raise ValueError(
                f"the ImageNet weights of {name} are torchvision's; build it in torchvision's flavour "
                f"(`model_args={wanted!r}`)"
            )
        return tv
    if keras is not None:
        return keras
    raise _none_for(name)


def _none_for(name: str) -> ValueError:
    known = sorted(set(KERAS) | set(TORCHVISION))
    return ValueError(f"no published ImageNet weights for {name!r}; models with them: {', '.join(known)}")


def weights_for(name: str, pretrained: bool | str = True, model_args: dict | None = None) -> tuple[Published, dict]:
    """The published file ``pretrained`` means for ``name`` (True: the one ``choose`` picks --
    torchvision's where only torchvision has one; a tag: the file of that framework) and the model
    keywords that build the model it fits: its own, then ``model_args`` (a keyword that
    contradicts the file is refused, naming it; ``dropout`` is training's, not the weights')."""
    args = dict(model_args or {})
    tags = {entry.tag: entry for entry in (KERAS.get(name), TORCHVISION.get(name)) if entry is not None}
    if not tags:
        raise _none_for(name)
    if pretrained is True:
        entry = tags["torchvision"] if "keras" not in tags else choose(name, args)
    elif isinstance(pretrained, str) and pretrained in tags:
        entry = tags[pretrained]
    else:
        raise ValueError(
            f"pretrained={pretrained!r}: {name} has published weights tagged "
            f"{', '.join(map(repr, tags))}; pass one of those tags, True (cnnlab's choice) or False"
        )
    wanted = {k: v for k, v in entry.model_args.items() if k != "dropout"}
    contrary = [f"{k}={args[k]!r}" for k, v in wanted.items() if k in args and args[k] != v]
    if contrary:
        fit = ", ".join(f"{k}={v!r}" for k, v in wanted.items())
        raise ValueError(f"the {entry.tag} weights of {name} are for {fit}; {', '.join(contrary)} was given")
    return entry, {**wanted, **args}


def _check(path: Path, entry: Published) -> None:
    digest_md5, digest_sha = hashlib.md5(), hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest_md5.update(chunk)
            digest_sha.update(chunk)
    if entry.md5 is not None and digest_md5.hexdigest() != entry.md5:
        raise ValueError(
            f"{path}: MD5 {digest_md5.hexdigest()} is not the published {entry.md5}; delete it and download again"
        )
    if entry.sha256_prefix is not None and not digest_sha.hexdigest().startswith(entry.sha256_prefix):
        raise ValueError(
            f"{path}: SHA-256 {digest_sha.hexdigest()[:16]}... does not start with the published "
            f"{entry.sha256_prefix}; delete it and download again"
        )
    if entry.md5 is None and entry.sha256_prefix is None:
        # Keras publishes no hash for MobileNet v1/v2: remember the first download's SHA-256 and hold later uses to it
        record = path.parent / (entry.filename + ".sha256")
        if record.is_file() and record.read_text().strip() != digest_sha.hexdigest():
            raise ValueError(
                f"{path}: SHA-256 {digest_sha.hexdigest()[:16]}... is not the one recorded at the first "
                f"download ({record}); delete both and download again"
            )
        if not record.is_file() and path.parent == weights_dir():
            record.write_text(digest_sha.hexdigest() + "\n")


def _connect_within(host: str, port: int, timeout: float) -> None:
    """Resolve and connect in a daemon thread: name resolution has no timeout of its own."""
    import socket

    outcome: list[BaseException | None] = []

    def attempt() -> None:
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            outcome.append(None)
        except OSError as error:
            outcome.append(error)

    thread = threading.Thread(target=attempt, daemon=True)
    thread.start()
    thread.join(timeout)
    if not outcome:
        raise TimeoutError(f"no connection to {host} within {timeout:g} s")
    if outcome[0] is not None:
        raise outcome[0]


def fetch(entry: Published, timeout: float = TIMEOUT) -> Path:
    """The cached file for ``entry``, downloading it first if needed; checksum verified."""
    path = weights_dir() / entry.filename
    if not path.is_file():
        url = urllib.parse.urlparse(entry.url)
        try:
            if url.scheme in ("http", "https"):
                _connect_within(url.hostname or "", url.port or (443 if url.scheme == "https" else 80), timeout)
            with urllib.request.urlopen(entry.url, timeout=timeout) as response:

                def write(tmp: str) -> None:
                    with open(tmp, "wb") as f:
                        shutil.copyfileobj(response, f, 1 << 20)
                    _check(Path(tmp), entry)

                atomic_write(path, write)
        except (OSError, urllib.error.URLError, TimeoutError) as error:
            raise ValueError(
                f"cannot download the ImageNet weights {entry.url} ({type(error).__name__}: {error}). Without network, "
                f"fetch that file elsewhere and put it at {path}: it is then verified and used"
            ) from None
    _check(path, entry)
    return path


def load_pretrained(model: nn.Module, name: str, model_args: dict | None = None, timeout: float = TIMEOUT) -> str:
    """Load the published ImageNet weights of ``name`` built with ``model_args`` (``choose``) into
    ``model``; returns a description. The model's input normalisation is the caller's
    (``normalize_input(model, entry.preprocessing)``; ``create_model`` does both)."""
    return load_published(model, choose(name, model_args), timeout)


def load_published(model: nn.Module, entry: Published, timeout: float = TIMEOUT) -> str:
    """Load the file of ``entry`` (fetched and verified) into ``model``; returns a description."""
    path = fetch(entry, timeout)
    if entry.framework == "keras":
        from .keras import load_keras_weights

        load_keras_weights(model, path, stride_on=entry.model_args.get("stride_on"))
    else:
        import torch

        from .torchvision import load_torchvision_weights

        load_torchvision_weights(model, torch.load(path, map_location="cpu", weights_only=True))
    return f"imagenet:{entry.framework}:{entry.filename}"


def create_model(
    name: str,
    num_classes: int | None = None,
    in_channels: int = 3,
    features_only: bool = False,
    out_indices: Any = None,
    *,
    pretrained: bool | str = False,
    timeout: float = TIMEOUT,
    **kwargs: Any,
) -> nn.Module:
    """:func:`cnnlab.models.create_model`, and with ``pretrained`` its published ImageNet weights.

    ``pretrained``: False (random initialisation), True (the file cnnlab chooses for the keywords
    given, see ``weights_for``) or a tag naming one (``"keras"``, ``"torchvision"``;
    ``get_model_entry(name).weights`` lists them). The model is built with the keywords the file
    is for, loaded, given a new ``num_classes`` head where that differs from the file's, and made
    to normalise its [0, 1] input as the weights expect (``model.input_normalization``);
    ``model.pretrained_weights`` is the file's ``Published`` entry, ``.preprocessing`` included.
    """
    plain = pretrained is False or pretrained is None
    if plain or not isinstance(features_only, bool) or (out_indices is not None and not features_only):
        return build_model(name, num_classes, in_channels, features_only, out_indices, **kwargs)  # (or its error)
    if in_channels != 3:
        raise ValueError(f"in_channels={in_channels!r}: published weights take RGB images (3 channels)")
    entry, model_args = weights_for(name, pretrained, kwargs)
    model: Any = build_model(name, **model_args)  # a zoo model: num_classes, reset_classifier
    backbone = FeatureExtractor(model, out_indices) if features_only else None  # out_indices checked before downloading
    load_published(model, entry, timeout)
    if num_classes is not None and num_classes != model.num_classes:
        model.reset_classifier(num_classes)
    normalize_input(model, entry.preprocessing)  # on the stem's input, which a backbone shares
    result: Any = backbone if backbone is not None else model
    result.pretrained_weights = entry
    return result


__all__ = [
    "KERAS",
    "TORCHVISION",
    "Published",
    "choose",
    "create_model",
    "fetch",
    "load_pretrained",
    "load_published",
    "weights_dir",
    "weights_for",
]
