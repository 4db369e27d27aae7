"""The published ImageNet weights (``--weights imagenet``): Keras's keras.applications files
where cnnlab builds Keras's flavour, torchvision's files for the models only torchvision has
(or when the model is built in torchvision's flavour). Downloaded once into the cache
(``weights/`` in cnnlab's cache: ``$CNNLAB_DATA``, ``$XDG_CACHE_HOME/cnnlab`` or ``~/.cache/cnnlab``), checksum verified (the MD5
Keras publishes in keras.applications' source, or the SHA-256 prefix in torchvision's file
name) on every use. Without network the download fails within seconds with a message saying
what to fetch where -- it never hangs.

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
from dataclasses import dataclass, field
from pathlib import Path

from torch import nn

from ..io import atomic_write
from .torchvision import TORCHVISION_KWARGS

TIMEOUT = 10.0  # seconds: connecting (DNS included) and each read


@dataclass(frozen=True)
class Published:
    framework: str  # "keras" or "torchvision"
    url: str
    md5: str | None = None  # Keras's published file_hash (None: Keras publishes none)
    sha256_prefix: str | None = None  # torchvision: the hash in the file name
    model_kwargs: dict = field(default_factory=dict)  # the flavour the weights are for

    @property
    def filename(self) -> str:
        return self.url.rsplit("/", 1)[-1]


_K = "https://storage.googleapis.com/tensorflow/keras-applications/"
_T = "https://download.pytorch.org/models/"
KERAS: dict[str, Published] = {
    "vgg16": Published("keras", _K + "vgg16/vgg16_weights_tf_dim_ordering_tf_kernels.h5", "64373286793e3c8b2b4e3219cbf3544b"),
    "vgg19": Published("keras", _K + "vgg19/vgg19_weights_tf_dim_ordering_tf_kernels.h5", "cbe5617147190e668d6c5d5026f83318"),
    **{
        f"resnet{d}": Published("keras", _K + f"resnet/resnet{d}_weights_tf_dim_ordering_tf_kernels.h5", md5, model_kwargs={"stride_on": "1x1"})
        for d, md5 in ((50, "2cb95161c43110f7111970584f804107"), (101, "f1aeb4b969a6efcfb50fad2f0c20cfc5"),
                       (152, "100835be76be38e30d865e96f2aaae62"))
    },
    "mobilenet": Published("keras", _K + "mobilenet/mobilenet_1_0_224_tf.h5"),
    "mobilenet_v2": Published("keras", _K + "mobilenet_v2/mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224.h5"),
    "mobilenet_v3_small": Published("keras", _K + "mobilenet_v3/weights_mobilenet_v3_small_224_1.0_float.h5",
                                    "8768d4c2e7dee89b9d02b2d03d65d862"),
    "mobilenet_v3_large": Published("keras", _K + "mobilenet_v3/weights_mobilenet_v3_large_224_1.0_float.h5",
                                    "59e551e166be033d707958cf9e29a6a7"),
    **{
        f"densenet{d}": Published("keras", _K + f"densenet/densenet{d}_weights_tf_dim_ordering_tf_kernels.h5", md5)
        for d, md5 in ((121, "9d60b8095a5708f2dcce2bca79d332c7"), (169, "d699b8f76981ab1b30698df4c175e90b"),
                       (201, "1ceb130c1ea1b78c3bf6114dbdfd8807"))
    },
    "xception": Published("keras", _K + "xception/xception_weights_tf_dim_ordering_tf_kernels.h5", "0a58e3b7378bc2990ea3b43d5981f1f6"),
}
_TV_FILES = {
    "resnet18": "resnet18-f37072fd.pth", "resnet34": "resnet34-b627a593.pth", "resnet50": "resnet50-0676ba61.pth",
    "resnet101": "resnet101-63fe2227.pth", "resnet152": "resnet152-394f9c45.pth",
    "densenet121": "densenet121-a639ec97.pth", "densenet169": "densenet169-b2777c0a.pth", "densenet201": "densenet201-c1103571.pth",
    "vgg11": "vgg11-8a719046.pth", "vgg13": "vgg13-19584684.pth", "vgg16": "vgg16-397923af.pth", "vgg19": "vgg19-dcbb9e9d.pth",
    "vgg11_bn": "vgg11_bn-6002323d.pth", "vgg13_bn": "vgg13_bn-abd245e5.pth", "vgg16_bn": "vgg16_bn-6c64b313.pth",
    "vgg19_bn": "vgg19_bn-c79401a0.pth", "mobilenet_v2": "mobilenet_v2-b0353104.pth",
    "mobilenet_v3_small": "mobilenet_v3_small-047dcff4.pth", "mobilenet_v3_large": "mobilenet_v3_large-8738ca79.pth",
    "googlenet": "googlenet-1378be20.pth",
}
TORCHVISION: dict[str, Published] = {
    name: Published("torchvision", _T + file, sha256_prefix=file.rsplit("-", 1)[1].split(".")[0], model_kwargs=TORCHVISION_KWARGS[name])
    for name, file in _TV_FILES.items()
}


def weights_dir() -> Path:
    from ..data import cache_dir

    return cache_dir() / "weights"


def choose(name: str, model_args: dict | None = None) -> Published:
    """Which published file fits ``name`` built with ``model_args``."""
    args = dict(model_args or {})
    tv, keras = TORCHVISION.get(name), KERAS.get(name)
    wanted = {k: v for k, v in (tv.model_kwargs if tv else {}).items() if k != "dropout"}  # dropout: training only
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

        load_keras_weights(model, path, stride_on=entry.model_kwargs.get("stride_on"))
    else:
        import torch

        from .torchvision import load_torchvision_weights

        load_torchvision_weights(model, torch.load(path, map_location="cpu", weights_only=True))
    return f"imagenet:{entry.framework}:{entry.filename}"


__all__ = ["KERAS", "TORCHVISION", "Published", "choose", "fetch", "load_pretrained", "weights_dir"]
