"""Reproduce the articles' experiments with one call each.

    >>> from cnnlab.reproduce import reproduce                      # doctest: +SKIP
    >>> result = reproduce("densenet", preset="quick", out_dir="runs/dn")  # doctest: +SKIP
    >>> print(result.table())                                       # doctest: +SKIP

Studies: ``densenet`` (article 000's six cases) and ``convtypes`` (article 001's three nets).
Presets: ``article``, ``fast``, ``quick``, ``smoke`` (``cnnlab.presets``, shared with train and search).
"""

from .report import Reproduction, Row
from .runner import make_plan, reproduce
from .studies import STUDIES, ArticleRow, Case, Study, get_study

__all__ = [
    "ArticleRow", "Case", "Reproduction", "Row", "STUDIES", "Study", "get_study", "make_plan", "reproduce",
]
