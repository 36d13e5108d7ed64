"""The report rendered: one self-contained HTML document, and the same HTML as an A4 PDF.

WeasyPrint lays the HTML out on pages: page numbers, the municipality and the date sit in the page
margins (CSS @page), and page one ends after the summary, the criteria and the caveats.
"""

from __future__ import annotations

import html

from evidence.report import Table, build_sections
from evidence.report_charts import charts
from evidence.report_text import Reader
from evidence.service import Evidence


# ----------------------------------------------------------------------------- HTML
def _style(r: Reader, evidence: Evidence) -> str:
    margin_left = " · ".join(
        [r.join(evidence.municipalities) or r._("Living Design Lab"), evidence.facts.title]
    )
    page = r._("Page %(page)s of %(pages)s") % {
        "page": '" counter(page) "',
        "pages": '" counter(pages) "',
    }
    return f"""
@page {{ size: A4; margin: 18mm 15mm 18mm 15mm;
  @top-left {{ content: "{_css_string(margin_left)}"; {MARGIN_FONT} }}
  @top-right {{ content: "{_css_string(r.date(evidence.facts.now))}"; {MARGIN_FONT} }}
  @bottom-right {{ content: "{page}"; {MARGIN_FONT} }} }}
body {{ font-family: 'DejaVu Sans', system-ui, sans-serif; max-width: 1000px; margin: 2em auto;
  padding: 0 1em; color: #1d2733; line-height: 1.4; font-size: 11pt; }}
h1 {{ font-size: 18pt; margin: 0 0 .1em; }}
h2 {{ font-size: 13pt; border-bottom: 2px solid #dde3ea; padding-bottom: .15em;
  margin: 1.2em 0 .4em; break-after: avoid; }}
p {{ margin: .3em 0; }}
p + table {{ break-before: avoid; }}  /* a table stays with the words that introduce it */
.subtitle {{ color: #52606d; margin-bottom: .6em; }}
table {{ border-collapse: collapse; width: 100%; margin: .4em 0; font-size: 9.5pt;
  break-inside: avoid; }}
th, td {{ border: 1px solid #dde3ea; padding: .25em .45em; text-align: left; vertical-align: top; }}
th {{ background: #f3f6f9; font-weight: 600; }}
table.numbers td + td, table.numbers th + th, table.counts td, table.counts th {{
  text-align: right; }}
table.survey {{ table-layout: fixed; }}
table.activities td:first-child {{ width: 18%; }}
table.survey th:first-child {{ width: 48%; }}
table.facts td:first-child {{ width: 34%; color: #3e4c59; }}
table.key td {{ font-size: 10.5pt; }}
table.key td:first-child {{ font-weight: 600; color: #1d2733; }}
.summary p {{ font-size: 11pt; }}
.verdict-met {{ color: #146c2e; font-weight: 600; }}
.verdict-not_met {{ color: #a61b1b; font-weight: 600; }}
.verdict-not_measurable {{ color: #8a5a00; font-weight: 600; }}
.caveats {{ background: #fff7e6; border-left: 4px solid #e0a800; padding: .2em .8em .4em;
  margin-top: .8em; }}
.caveats h2 {{ border: none; margin-top: .3em; }}
.caveats p {{ font-size: 9.5pt; }}
.note {{ color: #52606d; font-size: 8.5pt; }}
.chart {{ break-inside: avoid; margin: .4em 0; }}
.chart svg {{ width: 100%; height: auto; }}
.first-page-end {{ break-after: page; }}
@media print {{ body {{ max-width: none; margin: 0; padding: 0; }} }}
"""


MARGIN_FONT = "font-family: 'DejaVu Sans', sans-serif; font-size: 8pt; color: #52606d;"


def _css_string(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def _table_html(table: Table) -> str:
    head = ""
    if any(table.headers):
        head = "<thead><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in table.headers)
        head += "</tr></thead>"
    body = []
    for i, row in enumerate(table.rows):
        cells = []
        for j, cell in enumerate(row):
            css = table.cell_css.get((i, j))
            attribute = f" class='{css}'" if css else ""
            cells.append(f"<td{attribute}>{html.escape(str(cell))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table class='{table.css}'>{head}<tbody>{''.join(body)}</tbody></table>"


def render_html(evidence: Evidence, locale: str = "da") -> str:
    r = Reader(locale)
    svgs = charts(evidence, r)
    facts = evidence.facts
    title = r._("Evidence for the council: %(title)s") % {"title": facts.title}
    parts = [
        f"<!DOCTYPE html><html lang='{locale}'><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title>",
        f"<style>{_style(r, evidence)}</style></head><body>",
        f"<h1>{html.escape(facts.title)}</h1>",
        "<p class='subtitle'>"
        + html.escape(
            r._("Trial %(id)s · %(municipality)s · Living Design Lab · report of %(date)s")
            % {
                "id": facts.id,
                "municipality": r.join(evidence.municipalities) or "—",
                "date": r.date(facts.now),
            }
        )
        + "</p>",
    ]
    for section in build_sections(evidence, r):
        parts.append(f"<section class='{section.css.strip()}'>")
        parts.append(f"<h2>{html.escape(section.title)}</h2>")
        parts.extend(f"<p>{html.escape(p)}</p>" for p in section.paragraphs)
        parts.extend(_table_html(table) for table in section.tables)
        parts.extend(
            f"<div class='chart'>{svgs[key]}</div>" for key in section.charts if key in svgs
        )
        parts.extend(f"<p class='note'>{html.escape(note)}</p>" for note in section.notes)
        parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts)


# ------------------------------------------------------------------------------ PDF
def render_pdf(evidence: Evidence, locale: str = "da") -> bytes:
    """The same HTML on A4 pages (WeasyPrint), with page numbers, municipality and date."""
    from weasyprint import HTML  # imported on use: it loads Pango, which the API rarely needs

    pdf = HTML(string=render_html(evidence, locale)).write_pdf()
    assert pdf is not None
    return bytes(pdf)
