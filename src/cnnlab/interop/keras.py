"""Load Keras weights into a cnnlab model: from a Keras model object, a Keras 3
``.weights.h5`` file (``model.save_weights``) or a legacy ``.h5`` file (Keras 2
``save_weights``, ``model.save("x.h5")``, and the published keras.applications ImageNet files).

    model = create_model("resnet50", stride_on="1x1")     # keras.applications' ResNet50
    load_keras_weights(model, "resnet50_weights_tf_dim_ordering_tf_kernels.h5")

How layers are matched: cnnlab's families create their weight layers in the order Keras's
``model.layers`` lists them (that is what "layer for layer" in each family's docstring means,
and what the tests prove against keras.applications). Each source layer has a kind (conv2d,
depthwise, separable, bn, dense); the k-th cnnlab module of a kind takes the k-th source layer
of that kind. Keras 3's ``.weights.h5`` stores layers under class-derived names numbered in
``model.layers`` order (``conv2d``, ``conv2d_1``, ...), so it gives exactly the per-kind order
this needs; legacy ``.h5`` files keep ``layer_names`` in order. A Keras classifier written as a
1x1 ``Conv2D`` on the pooled map (MobileNet's ``conv_preds``, MobileNetV3's head) loads into
our ``nn.Linear`` when the source has no ``Dense`` layer. VGG's first dense layer follows a
``Flatten`` of an NHWC map: its rows are permuted to our NCHW flatten order. ResNet is the
one family whose ``model.layers`` order is not its creation order (a block's shortcut):
:mod:`cnnlab.models.resnet_keras` gives its order, and puts files that keep keras.applications'
names (``conv3_block1_0_conv``) in order by name, so Keras 2 files load whatever order they
list their layers in.

Files are read with h5py, never with Keras (Keras is a test dependency of cnnlab only).
Where the source carries layer configurations (a model object, a full-model legacy ``.h5``),
every convolution's kernel, strides, padding, dilation and bias and every BatchNorm epsilon is
compared with ours. A weights-only file cannot say where a ResNet puts its stride (the shapes
are the same either way), so loading one into a bottleneck ResNet needs ``stride_on`` to say it.
Nothing changes in the model unless every tensor fits.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..layers import Conv2D, DepthwiseConv2D, SeparableConv2D
from ..layers.base import KerasConv2dBase
from ..models.base import ClassifierHead
from ..models.resnet_keras import check_keras_stride_on, keras_module_order, keras_name_order

# Keras class (and its snake-case name in .weights.h5) -> kind
KERAS_CLASSES = {
    "Conv2D": "conv2d",
    "DepthwiseConv2D": "depthwise",
    "SeparableConv2D": "separable",
    "BatchNormalization": "bn",
    "Dense": "dense",
}
SNAKE_NAMES = {
    "conv2d": "conv2d",
    "depthwise_conv2d": "depthwise",
    "separable_conv2d": "separable",
    "batch_normalization": "bn",
    "dense": "dense",
}
BN_NAMES = ("gamma", "beta", "moving_mean", "moving_variance")
CONFIG_KEYS = ("kernel_size", "strides", "padding", "dilation_rate", "use_bias")


@dataclass
class SourceLayer:
    """One Keras layer with weights, in Keras's ``get_weights()`` order and shapes."""

    name: str
    kind: str
    arrays: list[np.ndarray]
    config: dict[str, Any] = field(default_factory=dict)  # empty when the source has none


@dataclass
class KerasSource:
    layers: list[SourceLayer]
    description: str
    has_config: bool


# --------------------------------------------------------------------------- reading sources


def read_keras_source(source: Any) -> KerasSource:
    """The weight layers of a Keras model object or a Keras ``.h5`` / ``.weights.h5`` file."""
    if isinstance(source, (str, Path)):
        return _read_file(Path(source))
    if hasattr(source, "layers") and hasattr(source, "get_weights"):
        return KerasSource(list(_model_layers(source)), f"Keras model {getattr(source, 'name', '?')!r}", True)
    raise ValueError(
        f"source must be a Keras model or the path of a .h5 / .weights.h5 file, got {type(source).__name__}"
    )


def _model_layers(model: Any):
    for layer in model.layers:
        if type(layer).__name__ not in KERAS_CLASSES and hasattr(layer, "layers"):  # a nested model
            yield from _model_layers(layer)
            continue
        weights = layer.get_weights()
        if not weights:
            continue
        kind = KERAS_CLASSES.get(type(layer).__name__)
        if kind is None:
            raise ValueError(
                f"Keras layer {layer.name!r} ({type(layer).__name__}) has weights cnnlab cannot load "
                f"(supported: {', '.join(KERAS_CLASSES)})"
            )
        config = layer.get_config()
        yield SourceLayer(layer.name, kind, [np.asarray(w) for w in weights], config)


def _h5py():
    try:
        import h5py
    except ImportError:
        raise ValueError("reading Keras .h5 files needs h5py: pip install h5py") from None
    return h5py


def _read_file(path: Path) -> KerasSource:
    if not path.is_file():
        raise FileNotFoundError(f"no Keras weights file at {path}")
    h5py = _h5py()
    try:
        f = h5py.File(path, "r")
    except OSError as error:
        raise ValueError(
            f"{path} is not an HDF5 file Keras wrote ({error}); expected a .h5 or .weights.h5 file"
        ) from None
    with f:
        root = f.get("model_weights", f)
        if "layer_names" in root.attrs:
            return KerasSource(
                _legacy_layers(root, _legacy_configs(f)), f"legacy Keras file {path}", "model_config" in f.attrs
            )
        if "layers" in f:
            return KerasSource(_keras3_layers(f["layers"], path), f"Keras 3 weights file {path}", False)
    raise ValueError(f"{path} holds no Keras weights (neither 'layer_names' nor a 'layers' group)")


def _text(value: Any) -> str:
    return value.decode("utf8") if isinstance(value, bytes) else str(value)


def _legacy_configs(f) -> dict[str, dict]:
    if "model_config" not in f.attrs:
        return {}
    config = json.loads(_text(f.attrs["model_config"]))
    layers = config.get("config", {}).get("layers", [])
    return {layer["config"]["name"]: {**layer["config"], "class_name": layer["class_name"]} for layer in layers}


def _legacy_kind(name: str, arrays: dict[str, np.ndarray]) -> str:
    keys = set(arrays)
    if set(BN_NAMES) <= keys:
        return "bn"
    if {"depthwise_kernel", "pointwise_kernel"} <= keys:
        return "separable"
    if "depthwise_kernel" in keys:
        return "depthwise"
    if "kernel" in keys:
        return "conv2d" if arrays["kernel"].ndim == 4 else "dense"
    raise ValueError(f"Keras layer {name!r} has weights {sorted(keys)} that cnnlab cannot load")


def _legacy_layers(root, configs: dict[str, dict]) -> list[SourceLayer]:
    layers = []
    for name in map(_text, root.attrs["layer_names"]):
        group = root[name]
        arrays = {}
        for weight in map(_text, group.attrs.get("weight_names", [])):
            short = weight.split("/")[-1].split(":")[0]
            arrays[short] = np.asarray(group[weight])
        if not arrays:
            continue
        config = configs.get(name, {})
        # Keras 3 names a DepthwiseConv2D's weight "kernel", Keras 2 "depthwise_kernel": trust the class when known
        kind = KERAS_CLASSES.get(config.get("class_name", "")) or _legacy_kind(name, arrays)
        if kind == "depthwise" and "kernel" in arrays:
            arrays["depthwise_kernel"] = arrays.pop("kernel")
        order = {
            "bn": BN_NAMES,
            "separable": ("depthwise_kernel", "pointwise_kernel", "bias"),
            "depthwise": ("depthwise_kernel", "bias"),
        }.get(kind, ("kernel", "bias"))
        layers.append(SourceLayer(name, kind, [arrays[k] for k in order if k in arrays], config))
    return layers


def _keras3_layers(group, path: Path) -> list[SourceLayer]:
    """Layers of a Keras 3 ``.weights.h5``: ``layers/<snake class>[_<n>]/vars/<i>``, per kind in order n."""
    found = []
    for key in group:
        variables = group[key].get("vars")
        if variables is None or not len(variables):
            if "layers" in group[key]:
                raise ValueError(f"{path} holds a nested model ({key!r}); load the inner model's weights instead")
            continue
        match = re.fullmatch(r"(?P<cls>[a-z0-9_]+?)(?:_(?P<n>\d+))?", key)
        kind = SNAKE_NAMES.get(match["cls"]) if match else None
        if match is None or kind is None:
            raise ValueError(
                f"{path}: layer {key!r} has weights cnnlab cannot load (supported: {', '.join(SNAKE_NAMES)})"
            )
        arrays = [np.asarray(variables[str(i)]) for i in range(len(variables))]
        found.append((kind, int(match["n"] or 0), SourceLayer(key, kind, arrays)))
    found.sort(key=lambda item: (item[0], item[1]))
    return [layer for _, _, layer in found]


# --------------------------------------------------------------------------- matching


def _kind(module: nn.Module) -> str | None:
    if isinstance(module, SeparableConv2D):
        return "separable"
    if isinstance(module, DepthwiseConv2D):
        return "depthwise"
    if isinstance(module, Conv2D):
        return "conv2d"
    if isinstance(module, nn.modules.batchnorm._BatchNorm):
        return "bn"
    if isinstance(module, nn.Linear):
        return "dense"
    if isinstance(module, (KerasConv2dBase, nn.modules.conv._ConvNd)):
        raise ValueError(f"cnnlab cannot load Keras weights into {type(module).__name__}")
    return None


def _shapes(arrays) -> str:
    return ", ".join(str(tuple(a.shape)) for a in arrays)


def _torch_shapes(module: nn.Module) -> str:
    return ", ".join(f"{n} {tuple(p.shape)}" for n, p in module.named_parameters(recurse=False))


def _flatten_linear(model: nn.Module) -> tuple[nn.Linear | None, tuple[int, int]]:
    """The Linear that follows a Flatten of a feature map (VGG's fc1), and the map's size."""
    head = getattr(model, "head", None)
    if isinstance(head, ClassifierHead) and head.pool_type == "flatten":
        first = next((m for m in head.modules() if isinstance(m, nn.Linear)), None)
        height, width = head.flatten_size
        return first, (height, width)
    return None, (1, 1)


class _Misfit(ValueError):
    """A Keras layer's arrays do not fit the module they were matched with (the message says how)."""


def _convert(
    module: nn.Module, layer: SourceLayer, flatten: tuple[int, int] | None
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(torch tensor, value in its layout) pairs; ``_Misfit`` saying why when the layer does not fit."""
    arrays = layer.arrays
    if isinstance(module, KerasConv2dBase):
        specs = module._keras_weights()
        if [tuple(a.shape) for a in arrays] != [s.keras_shape for s in specs]:
            raise _Misfit(f"expects Keras shapes {', '.join(str(s.keras_shape) for s in specs)}")
        return [(getattr(module, s.attr), s.from_keras(torch.as_tensor(a))) for s, a in zip(specs, arrays)]
    if isinstance(module, nn.modules.batchnorm._BatchNorm):
        c = module.num_features
        if len(arrays) != 4 or any(a.shape != (c,) for a in arrays):
            raise _Misfit(f"expects 4 arrays of shape ({c},) (gamma, beta, moving mean, moving variance)")
        gamma, beta, mean, variance = module.weight, module.bias, module.running_mean, module.running_var
        if gamma is None or beta is None or mean is None or variance is None:
            raise _Misfit("has no affine weights (affine=False) or no running statistics (track_running_stats=False)")
        return [(t, torch.as_tensor(a)) for t, a in zip((gamma, beta, mean, variance), arrays)]
    # nn.Linear from Dense (in, out) or a 1x1 Conv2D on the pooled map (1, 1, in, out)
    assert isinstance(module, nn.Linear)  # _kind matched it to a Dense layer
    out_f, in_f = module.weight.shape
    expected = [(in_f, out_f)] + ([(out_f,)] if module.bias is not None else [])
    kernel = (
        arrays[0].reshape(-1, arrays[0].shape[-1])
        if arrays and arrays[0].ndim == 4 and arrays[0].shape[:2] == (1, 1)
        else arrays[0]
    )
    if [tuple(kernel.shape)] + [tuple(a.shape) for a in arrays[1:]] != expected:
        raise _Misfit(f"expects Keras shapes {', '.join(map(str, expected))}")
    if flatten is not None:  # Keras flattens (H, W, C); we flatten (C, H, W)
        h, w = flatten
        kernel = kernel.reshape(h, w, in_f // (h * w), out_f).transpose(2, 0, 1, 3).reshape(in_f, out_f)
    pairs = [(module.weight, torch.as_tensor(np.ascontiguousarray(kernel.T)))]
    if module.bias is not None:
        pairs.append((module.bias, torch.as_tensor(arrays[1])))
    return pairs


def _config_mismatch(module: nn.Module, layer: SourceLayer) -> str | None:
    config = layer.config
    if not config:
        return None
    if isinstance(module, nn.modules.batchnorm._BatchNorm):
        eps = config.get("epsilon")
        if eps is not None and not np.isclose(eps, module.eps, rtol=1e-6, atol=0):
            return f"BatchNorm epsilon {module.eps} but Keras's {layer.name} has {eps}"
        return None
    if not isinstance(module, KerasConv2dBase):
        return None
    for key in CONFIG_KEYS:
        if key in config:
            theirs = config[key]
            theirs = tuple(theirs) if isinstance(theirs, (list, tuple)) else theirs
            ours = getattr(module, key)
            if key == "padding":
                if module.kernel_size == (1, 1):
                    continue  # a 1x1 kernel never pads: 'same' and 'valid' are the same layer
                theirs = str(theirs).lower()
            if ours != theirs:
                return f"{key}={ours!r} but Keras's {layer.name} has {key}={theirs!r}"
    return None


def load_keras_weights(model: nn.Module, source: Any, strict: bool = True, stride_on: str | None = None) -> list[str]:
    """Copy Keras weights into ``model``; returns the Keras layer names loaded, in our module order.

    ``source``: a Keras model, or the path of a ``.weights.h5`` (Keras 3) or ``.h5`` (legacy)
    file. ``strict=False`` accepts a source without a classifier (``include_top=False``) and
    leaves the model's head as it is. ``stride_on``: for a weights-only file and a bottleneck
    ResNet, where the Keras model put the stride ('1x1' for keras.applications). Raises
    ValueError listing the first mismatching tensors when the weights do not fit.
    """
    src = read_keras_source(source)
    src.layers = keras_name_order(model, src.layers)
    if not src.has_config:
        check_keras_stride_on(model, stride_on, src.description)
    queues: dict[str, list[SourceLayer]] = {}
    for layer in src.layers:
        queues.setdefault(layer.kind, []).append(layer)
    linear_kind = "dense" if queues.get("dense") else "conv2d"
    flatten_linear, flatten_size = _flatten_linear(model)
    head = getattr(model, "head", None)
    head_modules = set(head.modules()) if isinstance(head, nn.Module) else set()
    pairs, loaded, problems, missing = [], [], [], []
    for name, module in keras_module_order(model):
        kind = _kind(module)
        if kind is None:
            continue
        kind = linear_kind if kind == "dense" else kind
        queue = queues.get(kind, [])
        if not queue:
            missing.append((name, module))
            continue
        layer = queue.pop(0)
        try:
            result = _convert(module, layer, flatten_size if module is flatten_linear else None)
        except _Misfit as misfit:
            problems.append(f"{name} ({_torch_shapes(module)}) <- {layer.name} ({_shapes(layer.arrays)}): {misfit}")
            continue
        why = _config_mismatch(module, layer)
        if why:
            problems.append(f"{name} <- {layer.name}: {why}")
            continue
        pairs += result
        loaded.append(layer.name)
    leftover = [layer for queue in queues.values() for layer in queue]
    _check_fit(model, src.description, problems, missing, leftover, head_modules, strict)
    with torch.no_grad():
        for tensor, value in pairs:
            tensor.copy_(value.to(dtype=tensor.dtype, device=tensor.device))
    return loaded


def _check_fit(
    model: nn.Module,
    description: str,
    problems: list[str],
    missing: list,
    leftover: list,
    head_modules: set,
    strict: bool,
) -> None:
    """Raise ValueError listing the first misfits: tensors that do not fit, modules no Keras layer is
    left for (unless ``strict=False`` and only the head lacks weights), Keras layers nothing takes."""
    if missing and not (not strict and not leftover and all(m in head_modules for _, m in missing)):
        for name, module in missing[:5]:
            problems.append(f"{name} ({_torch_shapes(module)}): no Keras layer left for it")
    for layer in leftover[:5]:
        problems.append(
            f"Keras layer {layer.name} ({layer.kind}: {_shapes(layer.arrays)}): nothing in the model takes it"
        )
    if problems:
        shown = "\n  ".join(problems[:8])
        more = f"\n  ... and {len(problems) - 8} more" if len(problems) > 8 else ""
        headless = missing and not leftover and all(m in head_modules for _, m in missing)
        hint = (
            " (a source without classifier, include_top=False? pass strict=False to keep the model's head)"
            if headless
            else ""
        )
        raise ValueError(f"the weights of {description} do not fit {type(model).__name__}{hint}:\n  {shown}{more}")
