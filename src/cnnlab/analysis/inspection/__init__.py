"""Look inside a trained network: what every layer computes on a real image.

:func:`inspect` runs one image through a model with every module watched and returns an
:class:`Inspection`: the class probabilities, the tensor the model saw, every feature map by
module name, Grad-CAM for any class and layer, and any value of a convolution unit written out
by ``cnnlab explain``'s float64 machinery. ``cnnlab inspect`` is its command; ``save_html``
writes the offline page, ``save_pngs`` the pictures.

One job per module: :mod:`.source` (the model and the image, as the run's evaluation reads
it), :mod:`.capture` (the watched pass, units and stages), :mod:`.cells` (explained values),
:mod:`.gradcam`, :mod:`.result` (the :class:`Inspection`), :mod:`.core` (:func:`inspect`),
and the renderings :mod:`.tojson`, :mod:`.pictures`, :mod:`.view` (notebook) and :mod:`.page`.
"""

from .cells import CellExplanation
from .core import inspect
from .result import Inspection
from .source import Preprocess, Subject

__all__ = ["CellExplanation", "Inspection", "Preprocess", "Subject", "inspect"]
