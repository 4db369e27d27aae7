"""Looking inside layers and models: explanations, costs, summaries."""

from .explain import Explanation, explain, format_text

__all__ = ["Explanation", "explain", "format_text"]
