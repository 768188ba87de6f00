"""An invoice as a PDF (fpdf2, pure Python): number, date, seller and buyer, the line, amount, currency,
status. Rendered on request from the stored invoice, so a PDF always matches the database."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fpdf import FPDF

from ..currency import format_amount
from .models import Invoice

# A Unicode font when the system has one (buyer names are not always Latin-1); else the PDF core font,
# with characters it cannot encode replaced rather than failing the download.
_DEJAVU = Path("/usr/share/fonts/truetype/dejavu")


@dataclass(frozen=True)
class InvoiceStatus:
    label: str  # "Paid", "Refunded", "Paid, partly refunded"
    amount_refunded: int = 0


def status_of(order_status: str, amount: int, amount_refunded: int) -> InvoiceStatus:
    if order_status == "refunded" or (amount_refunded and amount_refunded >= amount):
        return InvoiceStatus("Refunded", amount_refunded)
    if amount_refunded:
        return InvoiceStatus("Paid, partly refunded", amount_refunded)
    return InvoiceStatus("Paid")


class _Doc:
    def __init__(self) -> None:
        self.pdf = FPDF(format="A4", unit="mm")
        self.pdf.set_auto_page_break(auto=True, margin=18)
        self.unicode = (_DEJAVU / "DejaVuSans.ttf").exists() and (_DEJAVU / "DejaVuSans-Bold.ttf").exists()
        if self.unicode:
            self.pdf.add_font("Body", "", str(_DEJAVU / "DejaVuSans.ttf"))
            self.pdf.add_font("Body", "B", str(_DEJAVU / "DejaVuSans-Bold.ttf"))
        self.family = "Body" if self.unicode else "Helvetica"
        self.pdf.add_page()

    def text(self, value: str) -> str:
        return value if self.unicode else value.encode("latin-1", "replace").decode("latin-1")

    def font(self, size: float, bold: bool = False) -> None:
        self.pdf.set_font(self.family, "B" if bold else "", size)

    def line(self, text: str, *, size: float = 10, bold: bool = False, height: float = 5.5,
             align: str = "L", width: float = 0) -> None:
        self.font(size, bold)
        self.pdf.cell(width, height, self.text(text), new_x="LMARGIN" if not width else "RIGHT",
                      new_y="NEXT" if not width else "TOP", align=align)


REVERSE_CHARGE = ("Reverse charge: VAT to be accounted for by the recipient (Article 196, Council Directive "
                  "2006/112/EC). No VAT is charged on this invoice.")


def _buyer_lines(invoice: Invoice) -> list[str]:
    """Below the buyer's name: their email, billing address and tax IDs."""
    lines = []
    if invoice.customer_email and invoice.customer_email != invoice.customer_name:
        lines.append(invoice.customer_email)
    address = invoice.customer_address or {}
    for part in (address.get("line1"), address.get("line2"),
                 " ".join(p for p in (address.get("postal_code"), address.get("city")) if p),
                 " ".join(p for p in (address.get("state"), address.get("country")) if p)):
        if part:
            lines.append(part)
    lines += [f"{'VAT ID' if t.get('type', '').endswith('_vat') else 'Tax ID'}: {t.get('value')}"
              for t in invoice.customer_tax_ids or []]
    return lines


def _tax_rows(invoice: Invoice) -> list[tuple[str, int]]:
    """Net, then each tax with its rate and place, when the invoice was taxed (the total follows); nothing where
    no tax is collected."""
    taxed = [line for line in invoice.tax_lines or [] if line.get("reason") != "not_collecting"]
    if not taxed and not invoice.amount_tax:
        return []
    rows = [("Net", invoice.amount - invoice.amount_tax)]
    for line in taxed:
        place = " - ".join(p for p in (line.get("country"), line.get("state")) if p)
        label = "VAT reverse charge" if line.get("reason") == "reverse_charge" else line.get("label") or "Tax"
        rows.append((f"{label}{' included' if line.get('inclusive') else ''}" + (f" ({place})" if place else ""),
                     int(line.get("amount") or 0)))
    return rows


def _totals(doc: _Doc, invoice: Invoice, status: InvoiceStatus, *, label_width: float, amount_width: float) -> None:
    """Net and each tax (when taxed), the total, the currency and any refund, right-aligned under the lines."""
    pdf = doc.pdf
    doc.font(10)
    for label, amount in _tax_rows(invoice):
        pdf.cell(label_width, 7, doc.text(label), align="R")
        pdf.cell(amount_width, 7, format_amount(amount, invoice.currency), align="R")
        pdf.ln(7)
    doc.font(11, bold=True)
    pdf.cell(label_width, 8, "Total", align="R")
    pdf.cell(amount_width, 8, format_amount(invoice.amount, invoice.currency), align="R")
    pdf.ln(8)
    doc.font(9)
    pdf.cell(0, 6, f"Currency: {invoice.currency.upper()}", align="R", new_x="LMARGIN", new_y="NEXT")
    if status.amount_refunded:
        pdf.cell(0, 6, f"Refunded: {format_amount(status.amount_refunded, invoice.currency)}", align="R",
                 new_x="LMARGIN", new_y="NEXT")


def render_invoice_pdf(invoice: Invoice, status: InvoiceStatus) -> bytes:
    doc = _Doc()
    pdf = doc.pdf
    pdf.set_title(f"Invoice {invoice.number}")
    pdf.set_author(invoice.seller_name)
    pdf.set_creator("Tally")

    doc.line(invoice.seller_name, size=16, bold=True, height=8)
    doc.line("Invoice", size=22, bold=True, height=12)
    doc.line(f"Invoice number: {invoice.number}", bold=True)
    doc.line(f"Date of issue: {invoice.issued_at:%d %B %Y}")
    doc.line(f"Status: {status.label}")
    pdf.ln(6)

    top = pdf.get_y()
    doc.line("From", bold=True, width=90)
    doc.line("Billed to", bold=True, width=90)
    pdf.ln(5.5)
    doc.line(invoice.seller_name, width=90)
    doc.line(invoice.customer_name or invoice.customer_email or invoice.user_id, width=90)
    pdf.ln(5.5)
    for extra in _buyer_lines(invoice):
        pdf.set_x(pdf.l_margin + 90)
        doc.line(extra, width=90)
        pdf.ln(5.5)
    pdf.set_y(max(pdf.get_y(), top + 17) + 6)

    # The lines table: description | quantity | unit price | amount.
    widths = (95, 20, 35, 35)
    doc.font(10, bold=True)
    pdf.set_fill_color(238, 240, 244)
    for label, width, align in zip(("Description", "Qty", "Unit price", "Amount"), widths, "LRRR"):
        pdf.cell(width, 8, label, border="B", align=align, fill=True)
    pdf.ln(8)
    doc.font(10)
    for item in invoice.lines:
        currency = item.get("currency", invoice.currency)
        cells = (str(item.get("description", "")), str(item.get("quantity", 1)),
                 format_amount(int(item.get("unit_amount", item.get("amount", 0))), currency),
                 format_amount(int(item.get("amount", 0)), currency))
        for text, width, align in zip(cells, widths, "LRRR"):
            pdf.cell(width, 8, doc.text(text), border="B", align=align)
        pdf.ln(8)
    pdf.ln(2)
    _totals(doc, invoice, status, label_width=sum(widths[:3]), amount_width=widths[3])
    pdf.ln(8)
    doc.font(9)
    pdf.set_text_color(90, 98, 115)
    if invoice.reverse_charge:
        pdf.multi_cell(0, 5, doc.text(REVERSE_CHARGE), new_x="LMARGIN", new_y="NEXT")
        pdf.ln(2)
    pdf.multi_cell(0, 5, doc.text(f"Order {invoice.order_id}. Paid through Stripe. "
                                  f"Thank you for your purchase."))
    return bytes(pdf.output())
