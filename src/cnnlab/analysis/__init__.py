"""Looking inside layers and models: explanations (:mod:`.explain`), costs and summaries (:mod:`.summary`).

The functions themselves are ``cnnlab.explain`` and ``cnnlab.summary``; here ``cnnlab.analysis.explain``
and ``cnnlab.analysis.summary`` name the package and the module that hold them.
"""

from .explain import Explanation, format_text
from .summary import LayerRow, ModelSummary, model_summary

__all__ = ["Explanation", "LayerRow", "ModelSummary", "format_text", "model_summary"]
