"""The report as a PDF (ReportLab): a cover, a summary of the sections and their controls, then
each section's description, notes and table, with page numbers on every page.

Tables show the first `PDF_ROWS` rows of a section; the CSV and the JSON beside it in the
bundle hold all of them, and the PDF says so.
"""

from __future__ import annotations

import io
from typing import Any
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import (
    LongTable,
    PageBreak,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    TableStyle,
)

from evidence.sections import Evidence, Section

PDF_ROWS = 300
CELL_CHARS = 160
PAGE = landscape(A4)


def _styles() -> dict[str, ParagraphStyle]:
    base = getSampleStyleSheet()
    return {
        "title": ParagraphStyle("title", parent=base["Title"], fontSize=26, leading=32),
        "subtitle": ParagraphStyle("subtitle", parent=base["Normal"], fontSize=13, leading=18),
        "h1": ParagraphStyle("h1", parent=base["Heading1"], fontSize=16, spaceAfter=4),
        "controls": ParagraphStyle(
            "controls", parent=base["Normal"], fontSize=9, textColor=colors.HexColor("#2457d6")
        ),
        "body": ParagraphStyle("body", parent=base["Normal"], fontSize=9.5, leading=12.5),
        "note": ParagraphStyle("note", parent=base["Normal"], fontSize=9, leading=11.5),
        "cell": ParagraphStyle("cell", parent=base["Normal"], fontSize=7, leading=8.5),
        "head": ParagraphStyle(
            "head", parent=base["Normal"], fontSize=7, leading=8.5, fontName="Helvetica-Bold"
        ),
        "mono": ParagraphStyle("mono", parent=base["Code"], fontSize=8, leading=10),
    }


class _Numbered(Canvas):
    """Draws "page N of M" once every page is known."""

    def __init__(self, *args: Any, footer: str = "", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pages: list[dict[str, Any]] = []
        self._footer = footer

    def showPage(self) -> None:
        self._pages.append(dict(self.__dict__))
        self._startPage()

    def save(self) -> None:
        total = len(self._pages)
        for state in self._pages:
            self.__dict__.update(state)
            self.setFont("Helvetica", 7.5)
            self.setFillColor(colors.HexColor("#5d6679"))
            self.drawString(15 * mm, 8 * mm, self._footer)
            self.drawRightString(PAGE[0] - 15 * mm, 8 * mm, f"Page {self._pageNumber} of {total}")
            super().showPage()
        super().save()


def _cell(value: Any, style: ParagraphStyle) -> Paragraph:
    text = "" if value is None else str(value)
    if isinstance(value, bool):
        text = "yes" if value else "no"
    if len(text) > CELL_CHARS:
        text = text[: CELL_CHARS - 1] + "…"
    return Paragraph(escape(text), style)


def _widths(section: Section, width: float) -> list[float]:
    """Columns as wide as what they hold (the first rows, within bounds), filling the page."""
    weights = []
    for column in section.columns:
        sizes = [len(str(row.get(column) or "")) for row in section.rows[:50]]
        typical = max(len(column), sum(sizes) / len(sizes) if sizes else 0)
        weights.append(min(max(typical, 5.0), 45.0))
    total = sum(weights)
    return [width * w / total for w in weights]


def _table(section: Section, styles: dict[str, ParagraphStyle]) -> LongTable | None:
    if not section.rows:
        return None
    width = PAGE[0] - 30 * mm
    header = [_cell(c.replace("_", " "), styles["head"]) for c in section.columns]
    body = [[_cell(row.get(c), styles["cell"]) for c in section.columns] for row in section.rows]
    table = LongTable([header, *body[:PDF_ROWS]], colWidths=_widths(section, width), repeatRows=1)
    table.setStyle(
        TableStyle(
            [
                ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e6ebf5")),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("LINEBELOW", (0, 0), (-1, -1), 0.25, colors.HexColor("#d9dde6")),
                ("ROWBACKGROUNDS", (0, 1), (-1, -1), [colors.white, colors.HexColor("#f6f7f9")]),
                ("LEFTPADDING", (0, 0), (-1, -1), 3),
                ("RIGHTPADDING", (0, 0), (-1, -1), 3),
            ]
        )
    )
    return table


def render(evidence: Evidence) -> bytes:
    styles = _styles()
    buffer = io.BytesIO()
    footer = f"Warden evidence report · {evidence.period}"
    doc = SimpleDocTemplate(
        buffer,
        pagesize=PAGE,
        leftMargin=15 * mm,
        rightMargin=15 * mm,
        topMargin=15 * mm,
        bottomMargin=15 * mm,
        title=f"Warden evidence report {evidence.period}",
        author="Warden",
    )
    story: list[Any] = [
        Spacer(1, 40 * mm),
        Paragraph("Warden evidence report", styles["title"]),
        Spacer(1, 6 * mm),
        Paragraph(f"Period: {escape(evidence.period)}", styles["subtitle"]),
        Paragraph(
            f"Generated {escape(evidence.generated_at.isoformat(timespec='seconds'))}"
            + (f" by {escape(evidence.generated_by)}" if evidence.generated_by else ""),
            styles["subtitle"],
        ),
        Spacer(1, 10 * mm),
        Paragraph(
            "Controls evidenced: SOC 2 CC6.1, CC6.2, CC6.3, CC7.2, CC8.1; NIST SP 800-53 (as "
            "used by FedRAMP) AC-2, AC-3, AC-6, AU-2, AU-3, AU-6, AU-9, AU-10, AU-12, CM-3, IA-2.",
            styles["body"],
        ),
        Spacer(1, 6 * mm),
        Paragraph(
            "The bundle's manifest.json lists the SHA-256 of every file and is signed with the "
            "audit trail's Ed25519 checkpoint key; check it with <font name='Courier'>python "
            "manage.py evidence_report verify FILE.zip</font>. Public key:",
            styles["body"],
        ),
        Paragraph(escape(evidence.public_key), styles["mono"]),
        PageBreak(),
        Paragraph("Summary", styles["h1"]),
    ]
    summary = [
        [_cell(h, styles["head"]) for h in ("Section", "Controls", "Rows", "Findings")],
        *[
            [
                _cell(s.title, styles["cell"]),
                _cell(s.controls, styles["cell"]),
                _cell(len(s.rows), styles["cell"]),
                _cell(s.notes[0] if s.notes else "", styles["cell"]),
            ]
            for s in evidence.sections
        ],
    ]
    width = PAGE[0] - 30 * mm
    overview = LongTable(summary, colWidths=[width * 0.25, width * 0.3, width * 0.07, width * 0.38])
    overview.setStyle(
        TableStyle(
            [
                ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e6ebf5")),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("LINEBELOW", (0, 0), (-1, -1), 0.25, colors.HexColor("#d9dde6")),
            ]
        )
    )
    story.append(overview)
    for section in evidence.sections:
        story += [
            PageBreak(),
            Paragraph(escape(section.title), styles["h1"]),
            Paragraph(escape(section.controls), styles["controls"]),
            Spacer(1, 2 * mm),
            Paragraph(escape(section.description), styles["body"]),
            Spacer(1, 2 * mm),
        ]
        story += [Paragraph("• " + escape(note), styles["note"]) for note in section.notes[:60]]
        story.append(Spacer(1, 3 * mm))
        table = _table(section, styles)
        if table is None:
            story.append(Paragraph("Nothing recorded in the period.", styles["body"]))
        else:
            story.append(table)
            if len(section.rows) > PDF_ROWS:
                story.append(
                    Paragraph(
                        f"The first {PDF_ROWS} of {len(section.rows)} rows; "
                        f"{section.key}.csv and report.json hold every row.",
                        styles["note"],
                    )
                )
    doc.build(story, canvasmaker=lambda *a, **k: _Numbered(*a, footer=footer, **k))
    return buffer.getvalue()
