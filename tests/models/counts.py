"""Parameter counts in Keras's convention, computed independently of cnnlab.analysis."""

from torch import nn


def keras_param_counts(model: nn.Module) -> tuple[int, int]:
    """(total, trainable): Keras counts BatchNorm moving mean and variance as non-trainable
    parameters; PyTorch keeps them as buffers."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    frozen = sum(p.numel() for p in model.parameters() if not p.requires_grad)
    stats = sum(
        m.running_mean.numel() + m.running_var.numel()
        for m in model.modules()
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.running_mean is not None
    )
    return trainable + frozen + stats, trainable
