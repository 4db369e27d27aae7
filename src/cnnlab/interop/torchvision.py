"""Load torchvision state dicts into cnnlab models built in torchvision's flavour.

    # torchvision_kwargs: conv_bias=False, padding="symmetric", bn_eps=1e-5
    model = create_model("resnet50", **torchvision_kwargs("resnet50"))
    load_torchvision_weights(model, torch.load("resnet50-0676ba61.pth", weights_only=True))

cnnlab's layers compute what Keras computes. Where torchvision's network differs, a keyword
of the model picks torchvision's flavour (:data:`TORCHVISION_KWARGS`, read from each family's
table of published weights): no conv bias in ResNets; BatchNorm epsilon 1e-5 (ResNet,
DenseNet, MobileNetV2); BatchNorm in GoogLeNet; and padding.
Keras's 'same' puts the one extra row/column of a stride-2 3x3 conv at the bottom/right, so its
windows start at pixel 0; PyTorch's ``padding=1`` pads every side, so they start at pixel -1.
The same weights then give different outputs, so ``padding="symmetric"`` builds ResNet's and
MobileNet's strided convs torchvision's way (VGG, DenseNet and GoogLeNet need nothing: their
strided steps are symmetric in both).

Matching is by order, as for Keras: torchvision registers its modules in the order cnnlab
creates them (each family's docstring lists the layout), and the k-th conv / BatchNorm /
linear layer of the state dict goes to the k-th of the model, shapes checked. torchvision
GoogLeNet's auxiliary classifiers (``aux1``, ``aux2``; used only in training) are skipped. Its
published ImageNet weights expect ``transform_input=True`` (an input re-normalisation cnnlab
does not build); equivalence here is with ``transform_input=False``.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping

import torch
from torch import nn

from ..layers import Conv2D, DepthwiseConv2D
from ..layers.base import KerasConv2dBase
from ..models.registry import published

# model -> the keywords of torchvision's flavour: those of its published torchvision weights,
# which each family lists beside its factories (``RESNET50_WEIGHTS`` in cnnlab.models.resnet)
TORCHVISION_KWARGS: dict[str, dict] = {name: weights.model_args for name, weights in published("torchvision").items()}
IGNORED_PREFIXES = ("aux1.", "aux2.")  # torchvision GoogLeNet's auxiliary heads


def torchvision_kwargs(name: str) -> dict:
    """The model keywords that build torchvision's flavour of ``name``."""
    if name not in TORCHVISION_KWARGS:
        raise ValueError(
            f"torchvision has no {name!r} that cnnlab can build; models with torchvision weights: "
            f"{', '.join(sorted(TORCHVISION_KWARGS))}"
        )
    return dict(TORCHVISION_KWARGS[name])


def _groups(state_dict: Mapping[str, torch.Tensor]) -> tuple[dict[str, list[tuple[str, dict]]], list[str]]:
    """State-dict entries grouped by module, per kind (conv, bn, linear), in order."""
    modules: OrderedDict[str, dict[str, torch.Tensor]] = OrderedDict()
    ignored = []
    for key, value in state_dict.items():
        if key.startswith(IGNORED_PREFIXES):
            ignored.append(key)
            continue
        prefix, _, leaf = key.rpartition(".")
        if leaf == "num_batches_tracked":
            continue
        if not isinstance(value, torch.Tensor):
            raise ValueError(f"state dict entry {key!r} is a {type(value).__name__}, not a tensor")
        modules.setdefault(prefix, {})[leaf] = value
    kinds: dict[str, list[tuple[str, dict]]] = {"conv": [], "bn": [], "linear": []}
    for prefix, tensors in modules.items():
        weight = tensors.get("weight")
        if "running_mean" in tensors:
            kinds["bn"].append((prefix, tensors))
        elif weight is not None and weight.dim() == 4:
            kinds["conv"].append((prefix, tensors))
        elif weight is not None and weight.dim() == 2:
            kinds["linear"].append((prefix, tensors))
        else:
            raise ValueError(
                f"state dict module {prefix!r} ({', '.join(tensors)}) is not a conv, BatchNorm or linear layer"
            )
    return kinds, ignored


def _kind(module: nn.Module) -> str | None:
    if isinstance(module, (Conv2D, DepthwiseConv2D)):
        return "conv"
    if isinstance(module, KerasConv2dBase):
        raise ValueError(f"torchvision has no {type(module).__name__}; cannot load its weights into one")
    if isinstance(module, nn.modules.batchnorm._BatchNorm):
        return "bn"
    if isinstance(module, nn.Linear):
        return "linear"
    return None


def _ours(module: nn.Module) -> dict[str, torch.Tensor]:
    tensors: dict[str, torch.Tensor] = {n: p for n, p in module.named_parameters(recurse=False)}
    if isinstance(module, nn.modules.batchnorm._BatchNorm):  # its running statistics, when it keeps them
        if module.running_mean is not None:
            tensors["running_mean"] = module.running_mean
        if module.running_var is not None:
            tensors["running_var"] = module.running_var
    return tensors


def _describe(tensors: Mapping[str, torch.Tensor]) -> str:
    return ", ".join(f"{n} {tuple(t.shape)}" for n, t in tensors.items())


def load_torchvision_weights(
    model: nn.Module, state_dict: Mapping[str, torch.Tensor], strict: bool = True
) -> list[str]:
    """Copy a torchvision state dict into ``model``; returns the torchvision module names loaded.

    ``strict=False`` accepts a state dict without the classifier (the model's head is kept).
    Raises ValueError listing the first mismatching tensors; the model is unchanged then.
    """
    if not isinstance(state_dict, Mapping):
        raise ValueError(f"state_dict must be a mapping of names to tensors, got {type(state_dict).__name__}")
    kinds, _ = _groups(state_dict)
    head = getattr(model, "head", None)
    head_modules = set(head.modules()) if isinstance(head, nn.Module) else set()
    pairs, loaded, problems, missing = [], [], [], []
    for name, module in model.named_modules():
        kind = _kind(module)
        if kind is None:
            continue
        if not kinds[kind]:
            missing.append((name, module))
            continue
        prefix, theirs = kinds[kind].pop(0)
        ours = _ours(module)
        if set(ours) != set(theirs) or any(ours[k].shape != theirs[k].shape for k in ours):
            problems.append(f"{name} ({_describe(ours)}) <- {prefix} ({_describe(theirs)})")
            continue
        pairs += [(ours[k], theirs[k]) for k in ours]
        loaded.append(prefix)
    leftover = [(prefix, t) for queue in kinds.values() for prefix, t in queue]
    headless = bool(missing) and not leftover and all(m in head_modules for _, m in missing)
    if missing and not (headless and not strict):
        problems += [
            f"{name} ({_describe(_ours(m))}): nothing left in the state dict for it" for name, m in missing[:5]
        ]
    problems += [f"state dict {prefix} ({_describe(t)}): nothing in the model takes it" for prefix, t in leftover[:5]]
    if problems:
        shown = "\n  ".join(problems[:8])
        more = f"\n  ... and {len(problems) - 8} more" if len(problems) > 8 else ""
        hint = " (a state dict without classifier? pass strict=False)" if headless else ""
        flavour = " (built with cnnlab.interop.torchvision_kwargs(name)?)"
        raise ValueError(f"the torchvision weights do not fit {type(model).__name__}{flavour}{hint}:\n  {shown}{more}")
    with torch.no_grad():
        for tensor, value in pairs:
            tensor.copy_(value.to(dtype=tensor.dtype, device=tensor.device))
    return loaded
