"""The hosted invoice page (``hosted_invoice_url``) and its PDF (``invoice_pdf``).

The page is plain HTML built here (no template, so it depends on nothing else in the sandbox). The PDF is a
real, minimal PDF 1.4 file written by hand: one page of Helvetica text lines, enough for a viewer or a test
that checks ``%PDF-``; no external library is needed.
"""

from __future__ import annotations

from datetime import UTC, datetime
from html import escape
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from ..billing.invoicing import money
from ..routing import PAGE_ROUTES
from ..store import Obj


def _invoice(request: Request) -> Obj | None:
    sb = request.app.state.sandbox
    return sb.store.get(request.path_params["invoice_id"], "invoice")


def _tax_lines(sb: Any, invoice: Obj) -> list[str]:
    """Each tax with its rate and place, the buyer's tax IDs, and the reverse-charge wording where it applies."""
    cur = invoice["currency"]
    out = []
    for tax in invoice.get("total_taxes") or []:
        rate = sb.store.get((tax.get("tax_rate_details") or {}).get("tax_rate") or "", "tax_rate") or {}
        name = f"{rate.get('display_name', 'Tax')} {rate.get('jurisdiction', '')} ({rate.get('percentage', 0):g} %"
        name += ", included)" if tax["tax_behavior"] == "inclusive" else ")"
        out.append(f"{name}: {money(tax['amount'], cur)}")
        if tax["taxability_reason"] == "reverse_charge":
            out.append("Reverse charge: VAT to be accounted for by the recipient.")
    for tax_id in invoice.get("customer_tax_ids") or []:
        out.append(f"Customer tax ID: {tax_id['value']}")
    return out


def _text_lines(sb: Any, invoice: Obj) -> list[str]:
    cur = invoice["currency"]
    day = datetime.fromtimestamp(invoice["created"], UTC).strftime("%Y-%m-%d")
    out = [f"Invoice {invoice['number'] or invoice['id']}", f"Date: {day}", f"Status: {invoice['status']}",
           f"Bill to: {invoice['customer_name'] or invoice['customer_email'] or invoice['customer']}", ""]
    for line in invoice["lines"]["data"]:
        out.append(f"{line['description']}: {money(line['amount'], cur)}")
    out += ["", f"Subtotal: {money(invoice['subtotal'], cur)}"]
    for discount in invoice["total_discount_amounts"] or []:
        out.append(f"Discount: -{money(discount['amount'], cur)}")
    out += _tax_lines(sb, invoice)
    out += [f"Total: {money(invoice['total'], cur)}", f"Amount due: {money(invoice['amount_due'], cur)}",
            f"Amount paid: {money(invoice['amount_paid'], cur)}",
            f"Amount remaining: {money(invoice['amount_remaining'], cur)}"]
    return out


async def page(request: Request) -> Response:
    invoice = _invoice(request)
    if invoice is None or invoice["status"] == "draft":
        return HTMLResponse("<h1>Invoice not found</h1>", status_code=404)
    lines = _text_lines(request.app.state.sandbox, invoice)
    body = "".join(f"<p>{escape(text)}</p>" if text else "<hr>" for text in lines[1:])
    html = (f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(lines[0])}</title></head>"
            f"<body><p><strong>TEST MODE</strong></p><h1>{escape(lines[0])}</h1>{body}"
            f"<p><a href='{escape(invoice['invoice_pdf'] or '')}'>Download PDF</a></p></body></html>")
    return HTMLResponse(html, headers={"Cache-Control": "no-store"})


def _pdf_escape(text: str) -> str:
    ascii_text = text.replace("×", "x").replace("€", "EUR ").replace("£", "GBP ").encode("latin-1", "replace")
    return ascii_text.decode("latin-1").replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def build_pdf(lines: list[str]) -> bytes:
    stream = "BT /F1 11 Tf 50 790 Td 14 TL " + " ".join(f"({_pdf_escape(t)}) '" for t in lines) + " ET"
    objects = [
        "<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R "
        "/Resources << /Font << /F1 5 0 R >> >> >>",
        f"<< /Length {len(stream.encode('latin-1'))} >>\nstream\n{stream}\nendstream",
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n{body}\nendobj\n".encode("latin-1")
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    for offset in offsets:
        out += f"{offset:010d} 00000 n \n".encode()
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


async def pdf(request: Request) -> Response:
    invoice = _invoice(request)
    if invoice is None or invoice["status"] == "draft":
        return Response(b"not found", status_code=404)
    return Response(build_pdf(_text_lines(request.app.state.sandbox, invoice)), media_type="application/pdf",
                    headers={"Content-Disposition": f"inline; filename={invoice['number'] or invoice['id']}.pdf"})


PAGE_ROUTES.extend([
    Route("/invoice/{invoice_id}", page, methods=["GET"]),
    Route("/invoice/{invoice_id}/pdf", pdf, methods=["GET"]),
])
