"""Where the published ImageNet weights of a model are, and how they were fed. Each family lists
its files beside its factories (``register_model(weights=...)``), the way torchvision keeps
``ResNet50_Weights`` beside ``resnet50``; the registry answers which models have them
(``list_models(pretrained=True)``) and :mod:`cnnlab.interop.pretrained` downloads, caches,
verifies and loads them (``cnnlab.create_model(name, pretrained=True)``).

A file records the model keywords its weights are for (``model_args``): keras.applications'
ResNets put the stride on the 1x1 conv, torchvision's families differ from Keras's in bias,
padding, BatchNorm epsilon (:data:`cnnlab.interop.TORCHVISION_KWARGS` collects torchvision's);
and its :class:`~cnnlab.models.preprocessing.Preprocessing` (input size, resize, crop, mean/std).

This module imports nothing of the registry: the registry imports it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from .preprocessing import IMAGENET_MEAN, IMAGENET_STD, Preprocessing

KERAS_URL = "https://storage.googleapis.com/tensorflow/keras-applications/"
TORCHVISION_URL = "https://download.pytorch.org/models/"

# keras.applications' preprocess_input, by mode: images as keras.utils.load_img gives them
# (resized straight to the input size, nearest neighbour), then
TORCH_MODE = Preprocessing(resize=None, interpolation="nearest")  # "torch": [0, 1], ImageNet mean/std
TF_MODE = Preprocessing(resize=None, mean=(0.5,) * 3, std=(0.5,) * 3, interpolation="nearest")  # "tf": [-1, 1]
CAFFE_MODE = Preprocessing(  # "caffe": BGR, minus the ImageNet mean in pixel units (no scaling)
    resize=None,
    mean=(123.68 / 255, 116.779 / 255, 103.939 / 255),
    std=(1 / 255,) * 3,
    channels="BGR",
    interpolation="nearest",
)
# The keras.applications module of each file (the first folder of its path) -> its preprocess_input.
# MobileNetV3's preprocess_input passes [0, 255] on to a Rescaling layer inside Keras's model,
# to [-1, 1]; cnnlab's MobileNetV3 has no such layer, so its input is normalised to [-1, 1].
KERAS_PREPROCESSING = {
    "vgg16": CAFFE_MODE,
    "vgg19": CAFFE_MODE,
    "resnet": CAFFE_MODE,
    "densenet": TORCH_MODE,
    "mobilenet": TF_MODE,
    "mobilenet_v2": TF_MODE,
    "mobilenet_v3": TF_MODE,
    "xception": dataclasses.replace(TF_MODE, input_size=(299, 299)),
}
# torchvision's ImageClassification(crop_size=224): resize 256, crop 224, bilinear, ImageNet mean/std.
TORCHVISION_PREPROCESSING = Preprocessing(mean=IMAGENET_MEAN, std=IMAGENET_STD)
# torchvision's GoogLeNet weights expect transform_input=True, which maps ImageNet-normalised
# images back to [-1, 1]; cnnlab's GoogLeNet has no transform_input, so it is fed [-1, 1] directly.
TORCHVISION_EXCEPTIONS = {"googlenet": Preprocessing(mean=(0.5,) * 3, std=(0.5,) * 3)}


@dataclass(frozen=True)
class Published:
    """One published weight file: where it is, how it is verified, the model keywords it is for,
    and how the images it was trained on were prepared."""

    framework: str  # "keras" or "torchvision"
    url: str
    md5: str | None = None  # Keras's published file_hash (None: Keras publishes none)
    sha256_prefix: str | None = None  # torchvision: the hash in the file name
    model_args: dict = field(default_factory=dict)  # the model keywords the weights are for
    preprocessing: Preprocessing = TORCHVISION_PREPROCESSING

    @property
    def filename(self) -> str:
        return self.url.rsplit("/", 1)[-1]

    @property
    def tag(self) -> str:
        """The name ``create_model(name, pretrained=tag)`` chooses it by: its framework."""
        return self.framework


def keras_weights(
    path: str, md5: str | None = None, preprocessing: Preprocessing | None = None, **model_args
) -> Published:
    """A keras.applications file (``path`` below its storage URL) with the MD5 Keras publishes;
    ``preprocessing`` defaults to its application's ``preprocess_input`` (``KERAS_PREPROCESSING``)."""
    if preprocessing is None:
        module = path.split("/", 1)[0]
        if module not in KERAS_PREPROCESSING:
            raise ValueError(f"no preprocessing known for keras.applications' {module!r} ({path}): pass preprocessing=")
        preprocessing = KERAS_PREPROCESSING[module]
    return Published("keras", KERAS_URL + path, md5, model_args=model_args, preprocessing=preprocessing)


def torchvision_weights(filename: str, preprocessing: Preprocessing | None = None, **model_args) -> Published:
    """A torchvision file; the SHA-256 prefix is the hash in its name (``resnet18-f37072fd.pth``);
    ``preprocessing`` defaults to torchvision's ImageNet evaluation transform."""
    stem, _, rest = filename.rpartition("-")
    prefix = rest.split(".")[0]
    if preprocessing is None:
        preprocessing = TORCHVISION_EXCEPTIONS.get(stem, TORCHVISION_PREPROCESSING)
    return Published(
        "torchvision",
        TORCHVISION_URL + filename,
        sha256_prefix=prefix,
        model_args=model_args,
        preprocessing=preprocessing,
    )
