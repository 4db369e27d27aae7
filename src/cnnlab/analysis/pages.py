"""cnnlab's offline pages: an HTML template of the package with a title and JSON data put in.

The data sits in ``<script type="application/json" id=...>{{DATA}}</script>``; ``</`` inside it
is escaped so that no string in the data can close that element early.
"""

from __future__ import annotations

import html
import json
from importlib import resources
from typing import Any


def fill_template(package: str, name: str, title: str, data: Any) -> str:
    """Template ``name`` of ``package`` with ``{{TITLE}}`` and ``{{DATA}}`` (``data`` as JSON) filled in."""
    text = json.dumps(data, separators=(",", ":"), allow_nan=False).replace("</", "<\\/")
    template = resources.files(package).joinpath(name).read_text(encoding="utf-8")
    return template.replace("{{TITLE}}", html.escape(title)).replace("{{DATA}}", text)


def embedded_data(text: str, element_id: str) -> Any:
    """The JSON a filled page holds in its element ``element_id`` (for checking a written page)."""
    start = text.index(">", text.index(f'id="{element_id}"')) + 1
    return json.loads(text[start : text.index("</script>", start)].replace("<\\/", "</"))
