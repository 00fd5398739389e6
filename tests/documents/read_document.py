#!/usr/bin/env python3
"""Reads a generated DOCX or XLSX with independent readers (python-docx, openpyxl) and prints what
it finds as JSON, for the end-to-end tests in tests/tests/documents.rs to check.

    read_document.py docx FILE
    read_document.py xlsx FILE
"""
import json
import sys


def docx_summary(path):
    import docx
    from docx.oxml.ns import qn

    d = docx.Document(path)

    def run_info(r):
        rpr = r._element.rPr
        fonts = rpr.rFonts if rpr is not None else None
        return {
            "text": r.text,
            "east_asia": fonts.get(qn("w:eastAsia")) if fonts is not None else None,
            "ascii": r.font.name,
            "size_pt": r.font.size.pt if r.font.size is not None else None,
            "bold": bool(r.font.bold),
        }

    def para_info(p):
        pf = p.paragraph_format
        return {
            "text": p.text,
            "alignment": str(p.alignment) if p.alignment is not None else None,
            "line_spacing_pt": pf.line_spacing.pt if hasattr(pf.line_spacing, "pt") else pf.line_spacing,
            "line_spacing_rule": str(pf.line_spacing_rule) if pf.line_spacing_rule is not None else None,
            "runs": [run_info(r) for r in p.runs],
        }

    def footer_info(f):
        xml = f._element.xml
        return {
            "text": "".join(p.text for p in f.paragraphs),
            "alignment": [str(p.alignment) for p in f.paragraphs],
            "page_field": "PAGE" in "".join(i.text or "" for i in f._element.iter(qn("w:instrText"))),
            "sizes": sorted({r.font.size.pt for p in f.paragraphs for r in p.runs if r.font.size is not None}),
            "xml_has_fldchar": "fldChar" in xml,
        }

    sections = []
    for s in d.sections:
        sections.append({
            "page_width_mm": round(s.page_width.mm, 1),
            "page_height_mm": round(s.page_height.mm, 1),
            "top_mm": round(s.top_margin.mm, 1),
            "bottom_mm": round(s.bottom_margin.mm, 1),
            "left_mm": round(s.left_margin.mm, 1),
            "right_mm": round(s.right_margin.mm, 1),
            "odd_footer": footer_info(s.footer),
            "even_footer": footer_info(s.even_page_footer),
        })
    return {
        "title": d.core_properties.title,
        "odd_and_even_pages": d.settings.odd_and_even_pages_header_footer,
        "paragraphs": [para_info(p) for p in d.paragraphs],
        "tables": [[[c.text for c in row.cells] for row in t.rows] for t in d.tables],
        "sections": sections,
    }


def xlsx_summary(path):
    import openpyxl

    wb = openpyxl.load_workbook(path)
    sheets = []
    for ws in wb.worksheets:
        rows = [[("" if v is None else v) for v in row] for row in ws.iter_rows(values_only=True)]
        fills = {}
        for row in ws.iter_rows(min_row=3):
            for cell in row:
                if cell.fill is not None and cell.fill.fill_type == "solid":
                    fills[cell.coordinate] = cell.fill.fgColor.rgb
        sheets.append({
            "name": ws.title,
            "max_row": ws.max_row,
            "max_column": ws.max_column,
            "freeze_panes": ws.freeze_panes,
            "auto_filter": ws.auto_filter.ref,
            "merged": [str(r) for r in ws.merged_cells.ranges],
            "widths": {k: v.width for k, v in ws.column_dimensions.items() if v.width},
            "rows": rows,
            "fills": fills,
        })
    created = wb.properties.created
    return {
        "title": wb.properties.title,
        "created": created.isoformat() if created is not None else None,
        "sheets": sheets,
    }


def main():
    kind, path = sys.argv[1], sys.argv[2]
    summary = docx_summary(path) if kind == "docx" else xlsx_summary(path)
    json.dump(summary, sys.stdout, ensure_ascii=False, default=str)


if __name__ == "__main__":
    main()
