"""The face every cnnlab model shows (after timm): ``forward_features``, ``forward_head``,
``num_features``, ``feature_info``, ``reset_classifier``; ``forward`` returns logits."""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from ..layers.base import positive_int


@dataclass(frozen=True)
class FeatureInfo:
    """One stage's output: the module that produces it, its channels, and its reduction
    (input size / feature-map size, e.g. 4 for a 56x56 map of a 224x224 input)."""

    module: str
    channels: int
    reduction: int


def keras_dense_init_(linear: nn.Linear) -> None:
    """Keras's Dense defaults: glorot_uniform kernel, zero bias."""
    nn.init.xavier_uniform_(linear.weight)
    if linear.bias is not None:
        nn.init.zeros_(linear.bias)


class ClassifierHead(nn.Module):
    """pool -> flatten -> optional MLP (``pre_logits``) -> dropout -> ``fc``.

    ``pool="avg"``: global average pooling (GAP), works at any input size.
    ``pool="flatten"``: adaptive average pooling to ``flatten_size`` then flatten, as
    torchvision's VGG does; at the design input size (7x7 maps for VGG at 224) the pooling is
    the identity and this is Keras's ``Flatten``.
    ``hidden``: widths of fully connected layers before the classifier (VGG's 4096, 4096;
    MobileNetV3's 1024), each followed by ``act_layer`` and ``hidden_drop_rate`` dropout.
    ``num_classes=0`` leaves ``fc`` as the identity: the head then returns features.
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        pool: str = "avg",
        hidden: Sequence[int] = (),
        act_layer: Callable[[], nn.Module] = nn.ReLU,
        drop_rate: float = 0.0,
        hidden_drop_rate: float = 0.0,
        flatten_size: tuple[int, int] = (7, 7),
    ) -> None:
        super().__init__()
        if pool not in ("avg", "flatten"):
            raise ValueError(f"pool must be 'avg' or 'flatten', got {pool!r}")
        if not 0.0 <= drop_rate < 1.0 or not 0.0 <= hidden_drop_rate < 1.0:
            raise ValueError(f"dropout rates must be in [0, 1), got {drop_rate!r} and {hidden_drop_rate!r}")
        self.pool_type = pool
        self.flatten_size = flatten_size  # the pooled map's (H, W) when pool="flatten"
        self.pool = nn.AdaptiveAvgPool2d(1 if pool == "avg" else flatten_size)
        self.flatten = nn.Flatten(1)
        features = in_channels * (1 if pool == "avg" else math.prod(flatten_size))
        layers: list[tuple[str, nn.Module]] = []
        for i, width in enumerate(hidden, start=1):
            layers += [(f"fc{i}", nn.Linear(features, width)), (f"act{i}", act_layer())]
            if hidden_drop_rate:
                layers.append((f"drop{i}", nn.Dropout(hidden_drop_rate)))
            features = width
        self.pre_logits = nn.Sequential(OrderedDict(layers)) if layers else nn.Identity()
        self.num_features = features
        self.drop = nn.Dropout(drop_rate) if drop_rate else nn.Identity()
        self.reset(num_classes)
        for module in self.pre_logits.modules():
            if isinstance(module, nn.Linear):
                keras_dense_init_(module)

    def reset(self, num_classes: int) -> None:
        """A new, freshly initialised classifier for ``num_classes`` (0: none)."""
        if num_classes != 0:
            positive_int("num_classes", num_classes)
        self.num_classes = num_classes
        if num_classes:
            device = next(self.parameters(), torch.empty(0)).device
            fc = nn.Linear(self.num_features, num_classes, device=device)
            keras_dense_init_(fc)
            self.fc: nn.Module = fc
        else:
            self.fc = nn.Identity()

    def forward(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.pre_logits(self.flatten(self.pool(x)))
        return x if pre_logits else self.fc(self.drop(x))


class CnnModel(nn.Module):
    """Base class of the zoo.

    A subclass builds, with these names: ``stem`` (input to the first stage), ``stages``
    (an ``nn.Sequential``, one child per resolution stage), optionally ``final`` (what comes
    after the last stage and before pooling, e.g. DenseNet's last BN-ReLU), and ``head`` (a
    :class:`ClassifierHead`); and it sets ``feature_info`` (one :class:`FeatureInfo` per
    stage). ``forward_features`` is then ``final(stages(stem(x)))``; override it only when
    a family needs more.
    """

    feature_info: list[FeatureInfo]
    stem: nn.Module
    stages: nn.Sequential
    head: ClassifierHead

    @property
    def num_features(self) -> int:
        """Width of the features the classifier ``fc`` sees (``forward_head(x, pre_logits=True)``)."""
        return self.head.num_features

    @property
    def num_classes(self) -> int:
        return self.head.num_classes

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Input images to the last feature map, before pooling."""
        x = self.stages(self.stem(x))
        final = getattr(self, "final", None)
        return x if final is None else final(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Last feature map to logits (or to the pooled features with ``pre_logits=True``)."""
        return self.head(x, pre_logits=pre_logits)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the classifier by a new one for ``num_classes`` (0 removes it)."""
        self.head.reset(num_classes)


def check_stem(stem: str) -> str:
    if stem not in ("imagenet", "cifar"):
        raise ValueError(
            f"stem must be 'imagenet' (the paper's) or 'cifar' (3x3 stride 1, no early pooling), got {stem!r}"
        )
    return stem


def check_bn_eps(bn_eps: object, default: float, torchvision: str = "torchvision: 1e-5") -> float:
    """The BatchNorm epsilon a ``bn_eps`` keyword asks for: None is the family's Keras ``default``;
    otherwise a number in (0, 1) (``torchvision`` names torchvision's value in the error)."""
    if bn_eps is None:
        return default
    if isinstance(bn_eps, bool) or not isinstance(bn_eps, (int, float)) or not 0 < bn_eps < 1:
        raise ValueError(
            f"bn_eps must be None (Keras's {default}) or a number in (0, 1) ({torchvision}), got {bn_eps!r}"
        )
    return float(bn_eps)
