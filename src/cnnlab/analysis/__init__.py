"""Looking inside layers and models: explanations, costs, summaries."""

from .explain import Explanation, explain, format_text
from .summary import LayerRow, ModelSummary, model_summary, summary

__all__ = ["Explanation", "LayerRow", "ModelSummary", "explain", "format_text", "model_summary", "summary"]
