"""``cnnlab explain``: what one convolution computes, on numbers small enough to check by hand.

Article 001 teaches Conv2D, DepthwiseConv2D, SeparableConv2D and Conv2DTranspose by filling
the weights and inputs with ``arange`` and writing one output cell out as a sum of products.
:func:`explain` does the same for any configuration: it builds the real cnnlab layer, runs
it (in float64, so the printed numbers are the exact sums), and writes the chosen output
cell term by term -- then checks that the terms add up to what the layer produced.

    >>> e = explain("conv2d")                      # the article's example
    >>> [round(float(v), 1) for v in e.output[0, 0]]
    [598.5, 615.6, 632.7]
    >>> print(format_text(e))                       # doctest: +SKIP

The package keeps one job per module: :mod:`.examples` (the article's examples and the
options that change them), :mod:`.compute` (the float64 arithmetic), :mod:`.data` (what it
produces, for any renderer), :mod:`.text` (the terminal text), :mod:`.tojson` (the JSON) and
:mod:`.explanation` (the data that renders itself, what :func:`explain` returns).
"""

from .compute import explain, explain_cell, run_example, scatter
from .data import ArticleCheck, ExplanationData, LayerRun, Scatter, ScatterRun, Step, Sum, Term
from .examples import ARTICLE_EXAMPLES, ARTICLE_OUTPUTS, FILLS, KINDS, ExampleConfig, check_cell, make_config
from .explanation import Explanation
from .text import MAX_MATRICES, format_text

__all__ = [
    "ARTICLE_EXAMPLES",
    "ARTICLE_OUTPUTS",
    "FILLS",
    "KINDS",
    "MAX_MATRICES",
    "ArticleCheck",
    "ExampleConfig",
    "Explanation",
    "ExplanationData",
    "LayerRun",
    "Scatter",
    "ScatterRun",
    "Step",
    "Sum",
    "Term",
    "check_cell",
    "explain",
    "explain_cell",
    "format_text",
    "make_config",
    "run_example",
    "scatter",
]
