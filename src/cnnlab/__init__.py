"""cnnlab: a laboratory for convolutional neural network architectures on PyTorch."""

from .analysis.explain import explain  # noqa: E402
from .analysis.summary import summary  # noqa: E402
from .interop.pretrained import create_model  # noqa: E402  (cnnlab.models.create_model, and pretrained=)
from .models import list_models, register_model  # noqa: E402
from .train.inspection import inspect  # noqa: E402  (a run, a checkpoint, a zoo name or a module)
from .version import __version__

__all__ = ["__version__", "create_model", "explain", "inspect", "list_models", "register_model", "summary"]
