"""What :func:`~.compute.explain` returns: an explanation's data (:class:`~.data.ExplanationData`)
that shows itself -- as the command's text (``print(e)``), as the JSON of ``--json``
(``e.to_dict()``) and in Jupyter (``_repr_html_``).

The renderers read the data and know nothing of this class, so the data, the renderers and
this class import one another in one direction only: data <- text, tojson <- explanation.
"""

from __future__ import annotations

from typing import Any

from ...notebook import preformatted
from .data import ExplanationData
from .text import format_text
from .tojson import explanation_dict


class Explanation(ExplanationData):  # the same dataclass fields: nothing to add but the renderings
    """A :class:`~.data.LayerRun` with output ``cell`` = (y, x, channel) written out term by term."""

    def to_dict(self) -> dict[str, Any]:
        """Everything :func:`~.text.format_text` prints, as JSON-ready data (arrays as nested lists)."""
        return explanation_dict(self)

    def __str__(self) -> str:  # print(cnnlab.explain("conv2d")) shows what the command prints
        return format_text(self)

    def _repr_html_(self) -> str:  # Jupyter: the worked text
        return preformatted(format_text(self))
