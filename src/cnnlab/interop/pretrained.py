"""The published ImageNet weights (``--weights imagenet``): Keras's keras.applications files
where cnnlab builds Keras's flavour, torchvision's files for the models only torchvision has
(or when the model is built in torchvision's flavour). Downloaded once into the cache
(``weights/`` in cnnlab's cache: ``$CNNLAB_DATA``, ``$XDG_CACHE_HOME/cnnlab`` or ``~/.cache/cnnlab``), checksum verified (the MD5
Keras publishes in keras.applications' source, or the SHA-256 prefix in torchvision's file
name) on every use. Without network the download fails within seconds with a message saying
what to fetch where -- it never hangs.

Each family lists its files beside its factories (``RESNET50_WEIGHTS`` in
:mod:`cnnlab.models.resnet`, registered with ``register_model(weights=...)``); this module only
chooses, fetches, verifies and loads them.

Note that the published weights were trained on preprocessed images (Keras: "caffe" BGR mean
subtraction for VGG/ResNet, [-1, 1] for MobileNet/Xception, ImageNet mean/std for DenseNet;
torchvision: ImageNet mean/std), while cnnlab's trainer feeds images scaled to [0, 1]. The
weights are a starting point for fine-tuning, not a calibrated ImageNet classifier as is.
"""

from __future__ import annotations

import hashlib
import shutil
import threading
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from torch import nn

from ..io import atomic_write
from ..models.weights import Published, published

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
            hint = " ".join(f"--arg {k}={v}" for k, v in wanted.items())
            raise ValueError(f"the ImageNet weights of {name} are torchvision's; build it in torchvision's flavour ({hint})")
        return tv
    if keras is not None:
        return keras
    known = sorted(set(KERAS) | set(TORCHVISION))
    raise ValueError(f"no published ImageNet weights for {name!r}; models with them: {', '.join(known)}")


def _check(path: Path, entry: Published) -> None:
    digest_md5, digest_sha = hashlib.md5(), hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest_md5.update(chunk)
            digest_sha.update(chunk)
    if entry.md5 is not None and digest_md5.hexdigest() != entry.md5:
        raise ValueError(f"{path}: MD5 {digest_md5.hexdigest()} is not the published {entry.md5}; delete it and download again")
    if entry.sha256_prefix is not None and not digest_sha.hexdigest().startswith(entry.sha256_prefix):
        raise ValueError(f"{path}: SHA-256 {digest_sha.hexdigest()[:16]}... does not start with the published "
                         f"{entry.sha256_prefix}; delete it and download again")
    if entry.md5 is None and entry.sha256_prefix is None:
        # Keras publishes no hash for MobileNet v1/v2: remember the first download's SHA-256 and hold later uses to it
        record = path.parent / (entry.filename + ".sha256")
        if record.is_file() and record.read_text().strip() != digest_sha.hexdigest():
            raise ValueError(f"{path}: SHA-256 {digest_sha.hexdigest()[:16]}... is not the one recorded at the first "
                             f"download ({record}); delete both and download again")
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
                _connect_within(url.hostname, url.port or (443 if url.scheme == "https" else 80), timeout)
            with urllib.request.urlopen(entry.url, timeout=timeout) as response:

                def write(tmp: str) -> None:
                    with open(tmp, "wb") as f:
                        shutil.copyfileobj(response, f, 1 << 20)
                    _check(Path(tmp), entry)

                atomic_write(path, write)
        except (OSError, urllib.error.URLError, TimeoutError) as error:
            raise ValueError(
                f"cannot download the ImageNet weights {entry.url} ({type(error).__name__}: {error}). Without network, "
                f"fetch that file elsewhere and put it at {path}, or pass its path with --weights PATH"
            ) from None
    _check(path, entry)
    return path


def load_pretrained(model: nn.Module, name: str, model_args: dict | None = None, timeout: float = TIMEOUT) -> str:
    """Load the published ImageNet weights of ``name`` into ``model``; returns a description."""
    entry = choose(name, model_args)
    path = fetch(entry, timeout)
    if entry.framework == "keras":
        from .keras import load_keras_weights

        load_keras_weights(model, path, stride_on=entry.model_args.get("stride_on"))
    else:
        import torch

        from .torchvision import load_torchvision_weights

        load_torchvision_weights(model, torch.load(path, map_location="cpu", weights_only=True))
    return f"imagenet:{entry.framework}:{entry.filename}"


__all__ = ["KERAS", "TORCHVISION", "Published", "choose", "fetch", "load_pretrained", "weights_dir"]
