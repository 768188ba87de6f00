"""The one template environment of Tally's server-rendered pages: the app's (``tally/pages/templates``) and the
operator's (``tally/admin/templates``, named ``admin/…``). Both layouts, ``base.html`` and
``admin/layout.html``, fill in ``skeleton.html``: the document, the test-mode banner, the header's frame, the
main landmark and the footer."""

from __future__ import annotations

from pathlib import Path

from fastapi.templating import Jinja2Templates

_HERE = Path(__file__).parent

templates = Jinja2Templates(directory=[_HERE / "pages" / "templates", _HERE / "admin" / "templates"])
