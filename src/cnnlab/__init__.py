"""cnnlab: a laboratory for convolutional neural network architectures on PyTorch."""

__version__ = "0.1.0"

from .analysis.explain import explain  # noqa: E402
from .analysis.summary import summary  # noqa: E402
from .models import create_model, list_models, register_model  # noqa: E402

__all__ = ["__version__", "create_model", "explain", "list_models", "register_model", "summary"]
