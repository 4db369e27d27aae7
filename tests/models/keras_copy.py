"""Copy a Keras model's weights into a cnnlab model layer by layer, in creation order.

The test-side precursor of weight import: it only works when both models create their
weight layers in the same order, which is exactly what the "same structure as
keras.applications" tests want to prove. BatchNorm statistics are randomised first (fresh
Keras models have mean 0 / variance 1, which would hide a wrong epsilon or a swapped pair).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from cnnlab.layers.base import KerasConv2dBase


def copy_keras_weights_in_order(reference, model: nn.Module, seed: int = 0) -> None:
    keras_layers = [layer for layer in reference.layers if layer.get_weights()]
    ours = [m for m in model.modules() if isinstance(m, (KerasConv2dBase, nn.BatchNorm2d, nn.Linear))]
    assert len(keras_layers) == len(ours), (len(keras_layers), len(ours))
    rng = np.random.default_rng(seed)
    for layer, module in zip(keras_layers, ours):
        weights = layer.get_weights()
        if isinstance(module, nn.BatchNorm2d):
            assert type(layer).__name__ == "BatchNormalization", layer.name
            c = weights[0].shape[0]
            weights = [rng.uniform(0.5, 1.5, c), rng.normal(0, 0.1, c), rng.normal(0, 0.1, c), rng.uniform(0.5, 1.5, c)]
            weights = [w.astype("float32") for w in weights]
            layer.set_weights(weights)
            assert module.eps == pytest.approx(layer.epsilon) and module.momentum == pytest.approx(1 - layer.momentum)
            with torch.no_grad():
                for tensor, value in zip(
                    (module.weight, module.bias, module.running_mean, module.running_var), weights
                ):
                    tensor.copy_(torch.from_numpy(value))
        elif isinstance(module, nn.Linear):  # Keras Dense, or a 1x1 Conv2D on the pooled 1x1 map
            kernel = weights[0].reshape(-1, weights[0].shape[-1])
            with torch.no_grad():
                module.weight.copy_(torch.from_numpy(kernel).T)
                module.bias.copy_(torch.from_numpy(weights[1]))
        else:
            assert type(module).__name__ == type(layer).__name__ and module.use_bias == layer.use_bias, layer.name
            module.set_keras_weights(weights)
