"""cnnlab: a laboratory for convolutional neural network architectures on PyTorch."""

__version__ = "0.1.0"
