"""torchvision, the peer of tests/interop/test_torchvision.py, importable beside a CPU-only torch.

PyPI's torchvision 0.28.0 (the release paired with torch 2.13.0) ships a compiled ``_C`` extension
built against CUDA torch: beside the CPU wheel of torch it does not load (libc10_cuda.so is
missing). torchvision then goes on without its C++ ops, which these tests never use (they compare
models and transforms), but on import it registers fake kernels for ``torchvision::nms`` and
``torchvision::qnms``, and registering a kernel for an op that was never defined fails:
"operator torchvision::nms does not exist". So when the extension cannot be loaded, define those
two op schemas (the ones ``_C`` defines) first; with a matching torch the extension loads and
nothing is defined here.

Every test of this directory is marked ``interop`` (below).
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
from pathlib import Path

import pytest
import torch

# The ops whose fake kernels torchvision registers with torch.library.register_fake on import.
TORCHVISION_SCHEMAS = (
    "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
)


def _torchvision_extension() -> Path | None:
    """torchvision's compiled ``_C`` file, found without importing torchvision; None if absent."""
    spec = importlib.util.find_spec("torchvision")
    if spec is None or spec.origin is None:
        return None
    package = Path(spec.origin).parent
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        if (package / f"_C{suffix}").is_file():
            return package / f"_C{suffix}"
    return None


def _has_nms() -> bool:
    try:
        _ = torch.ops.torchvision.nms  # raises when the operator is not registered
    except (AttributeError, RuntimeError):
        return False
    return True


def define_torchvision_schemas() -> torch.library.Library | None:
    """Define torchvision's nms/qnms schemas where its own extension does not load; returns the
    library holding them (kept alive for the session), or None when nothing had to be defined."""
    if importlib.util.find_spec("torchvision") is None or _has_nms():
        return None
    extension = _torchvision_extension()
    if extension is not None:
        try:
            torch.ops.load_library(str(extension))
        except OSError:
            pass  # a CUDA build beside a CPU torch: define the schemas below
        if _has_nms():
            return None
    library = torch.library.Library("torchvision", "DEF")
    for schema in TORCHVISION_SCHEMAS:
        library.define(schema)
    return library


# Module-level: defined before any test imports torchvision, and alive as long as the process.
_TORCHVISION_LIBRARY = define_torchvision_schemas()


def pytest_collection_modifyitems(config, items):
    """Every test of this directory checks cnnlab.interop against a peer library (Keras,
    torchvision) at full size: marked ``interop``, so ``make test-quick`` leaves them out."""
    here = Path(__file__).resolve().parent
    for item in items:
        if here in Path(item.path).resolve().parents:
            item.add_marker(pytest.mark.interop)
