"""Where the published ImageNet weights of a model are. Each family lists its files beside its
factories (``register_model(weights=...)``), the way torchvision keeps ``ResNet50_Weights``
beside ``resnet50``; :mod:`cnnlab.interop.pretrained` downloads, caches, verifies and loads them.

A file records the flavour its weights are for (``model_args``): keras.applications' ResNets
put the stride on the 1x1 conv, torchvision's families differ from Keras's in bias, padding,
BatchNorm epsilon (:data:`cnnlab.interop.TORCHVISION_KWARGS` collects torchvision's).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .registry import get_model_entry, list_models

KERAS_URL = "https://storage.googleapis.com/tensorflow/keras-applications/"
TORCHVISION_URL = "https://download.pytorch.org/models/"


@dataclass(frozen=True)
class Published:
    framework: str  # "keras" or "torchvision"
    url: str
    md5: str | None = None  # Keras's published file_hash (None: Keras publishes none)
    sha256_prefix: str | None = None  # torchvision: the hash in the file name
    model_args: dict = field(default_factory=dict)  # the flavour the weights are for

    @property
    def filename(self) -> str:
        return self.url.rsplit("/", 1)[-1]


def keras_weights(path: str, md5: str | None = None, **model_args) -> Published:
    """A keras.applications file (``path`` below its storage URL) with the MD5 Keras publishes."""
    return Published("keras", KERAS_URL + path, md5, model_args=model_args)


def torchvision_weights(filename: str, **model_args) -> Published:
    """A torchvision file; the SHA-256 prefix is the hash in its name (``resnet18-f37072fd.pth``)."""
    prefix = filename.rsplit("-", 1)[1].split(".")[0]
    return Published("torchvision", TORCHVISION_URL + filename, sha256_prefix=prefix, model_args=model_args)


def published(framework: str) -> dict[str, Published]:
    """The registered models with published weights of ``framework``, by name."""
    return {
        name: weights
        for name in list_models()
        for weights in get_model_entry(name).weights
        if weights.framework == framework
    }
