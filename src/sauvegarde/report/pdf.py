"""PDF through WeasyPrint, an optional extra (``pip install "sauvegarde[pdf]"``, which needs pango at run time)."""

from __future__ import annotations

import importlib

from sauvegarde.errors import SauvegardeError

INSTALL_HINT = 'PDF needs WeasyPrint, which is not installed: pip install "sauvegarde[pdf]"'
PANGO_HINT = "WeasyPrint cannot load pango: install it (Debian: apt install libpango-1.0-0 libpangoft2-1.0-0)"


class PdfUnavailable(SauvegardeError):
    """WeasyPrint (or the pango library it loads) is missing; exit 1 with a one-line hint."""


def html_to_pdf(html: str) -> bytes:
    """The PDF of a standalone HTML document (images as data: URIs, CSS inline)."""
    try:
        weasyprint = importlib.import_module("weasyprint")
    except ImportError:
        raise PdfUnavailable(INSTALL_HINT) from None
    except OSError:  # WeasyPrint is there, the system library it loads is not
        raise PdfUnavailable(PANGO_HINT) from None
    pdf = weasyprint.HTML(string=html, base_url=".").write_pdf()
    assert isinstance(pdf, bytes)
    return pdf
