"""cnnlab's offline pages: an HTML template of the package with a title and JSON data put in.

The data sits in ``<script type="application/json" id=...>{{DATA}}</script>``. Every ``<``,
``>`` and ``&`` in it is written as a JSON escape (``\\u003c``, ``\\u003e``, ``\\u0026``), so that
no string in the data -- a module named ``</script>`` or ``<!--<script>`` -- can close that
element early or switch the HTML parser into a script's comment states (where the page's own
``</script>`` would no longer end it). ``JSON.parse`` reads the escapes back as the characters.
"""

from __future__ import annotations

import html
import json
from importlib import resources
from typing import Any

# the characters HTML gives a meaning inside a <script> element, as JSON escapes
_SCRIPT_SAFE = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"})


def script_json(data: Any) -> str:
    """``data`` as JSON that is safe as the text of a ``<script>`` element."""
    return json.dumps(data, separators=(",", ":"), allow_nan=False).translate(_SCRIPT_SAFE)


def fill_template(package: str, name: str, title: str, data: Any) -> str:
    """Template ``name`` of ``package`` with ``{{TITLE}}`` and ``{{DATA}}`` (``data`` as JSON) filled in."""
    template = resources.files(package).joinpath(name).read_text(encoding="utf-8")
    return template.replace("{{TITLE}}", html.escape(title)).replace("{{DATA}}", script_json(data))


def embedded_data(text: str, element_id: str) -> Any:
    """The JSON a filled page holds in its element ``element_id`` (for checking a written page):
    the element's text up to the first ``</script>``, as an HTML parser reads it."""
    start = text.index(">", text.index(f'id="{element_id}"')) + 1
    return json.loads(text[start : text.index("</script>", start)])
