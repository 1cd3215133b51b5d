"""The manager's compliance report: one `ComplianceReport` rendered as JSON, HTML or PDF.

- JSON is the model itself (language-neutral values, both titles, the model's field order):
  what `GET /api/compliance/...` answers, and it validates back into `ComplianceReport`.
- HTML is one self-contained page (inline CSS and SVG, no external asset, print-friendly)
  from the Jinja2 templates beside this file, autoescaped: a province summary, an overview
  of the systems, then one section per system (level, dossier, regime, the four layers,
  % controls passing, overdue items, trend, the controls table).
- PDF is the same HTML through WeasyPrint, in DejaVu Sans (a font with every Vietnamese
  glyph; Debian's fonts-dejavu-core). WeasyPrint is imported only for PDF.

Every label comes from `soc_api.compliance.i18n` (vi / en); enum values from `inventory.vocab`.
"""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Mapping, Sequence
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup, escape
from pydantic import BaseModel

from soc_api.compliance import i18n
from soc_api.compliance.model import ComplianceReport, ControlResult, SystemCompliance
from socmon.errors import SocmonError

Format = Literal["html", "pdf", "json"]
FORMATS: tuple[Format, ...] = ("html", "pdf", "json")

TEMPLATES = Path(__file__).parent / "templates"
# Failing first: the manager reads what needs doing before what is in place.
STATUS_ORDER = {"fail": 0, "unknown": 1, "pass": 2, "not_applicable": 3}
STATUS_SYMBOL = {"pass": "✓", "fail": "✗", "unknown": "?", "not_applicable": "–"}
EVIDENCE_MAX_CHARS = 240
EVIDENCE_MAX_ITEMS = 3
SPARK_WIDTH = 160
SPARK_HEIGHT = 36


class ReportError(SocmonError):
    """A report cannot be rendered (unknown format or language, PDF engine missing)."""


def render(report: ComplianceReport, fmt: str, lang: str) -> bytes:
    """`report` as `fmt` (html / pdf / json) in `lang` (vi / en; JSON is language-neutral)."""
    if fmt not in FORMATS:
        raise ReportError(f"unknown report format {fmt!r}; known: {', '.join(FORMATS)}")
    try:
        checked = i18n.check_lang(lang)
    except ValueError as e:
        raise ReportError(str(e)) from e
    if fmt == "json":
        return render_json(report)
    html = render_html(report, checked)
    if fmt == "html":
        return html.encode("utf-8")
    return html_to_pdf(html)


def render_json(report: ComplianceReport) -> bytes:
    """The model dumped: UTF-8, indented, keys in the model's field order, newline-terminated."""
    return report.model_dump_json(indent=2).encode("utf-8") + b"\n"


def render_html(report: ComplianceReport, lang: i18n.Lang) -> str:
    template = _environment().get_template("report.html")
    return template.render(report=report, lang=lang, **_context(report, lang))


def html_to_pdf(html: str) -> bytes:
    """The page through WeasyPrint (A4, fonts embedded)."""
    try:
        with warnings.catch_warnings():
            # Without libharfbuzz-subset0 WeasyPrint < 71 subsets fonts with fontTools and
            # warns that a later version will need the library (install.sh installs it).
            warnings.filterwarnings("ignore", "HarfBuzz-Subset", DeprecationWarning)
            from weasyprint import HTML
    except (ImportError, OSError) as e:  # OSError: pango / harfbuzz libraries missing
        raise ReportError(
            "PDF needs WeasyPrint and its system libraries "
            "(pip install weasyprint; apt-get install libpango-1.0-0 libpangoft2-1.0-0 "
            f"fonts-dejavu-core): {e}"
        ) from e
    # Self-contained: nothing is fetched (a file: or http: URL that slipped into the page
    # would otherwise be read while rendering).
    pdf = HTML(string=html, url_fetcher=_no_fetcher()).write_pdf()
    if not isinstance(pdf, bytes):  # write_pdf() without a target returns the bytes
        raise ReportError("WeasyPrint returned no PDF")
    return pdf


def _no_fetcher() -> Any:
    """A WeasyPrint URL fetcher that refuses every URL."""
    try:
        from weasyprint.urls import URLFetcher
    except ImportError:  # WeasyPrint < 66: a plain function

        def refuse(url: str, *args: Any, **kwargs: Any) -> Any:
            raise ValueError(f"external resources are not fetched: {url}")

        return refuse
    return URLFetcher(allowed_protocols=frozenset())


@lru_cache(maxsize=1)
def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["css_string"] = css_string
    env.filters["wbr"] = wbr
    return env


def _context(report: ComplianceReport, lang: i18n.Lang) -> dict[str, Any]:
    """Helpers and precomputed pieces the template reads (all plain values, escaped there)."""

    def t(key: str, **fields: Any) -> str:
        return i18n.t(key, lang, **fields)

    return {
        "t": t,
        "pct": lambda v: i18n.format_pct(v, lang),
        "day": lambda v: i18n.format_date(v, lang),
        "moment": lambda v: i18n.format_datetime(v, lang),
        "status_label": lambda v: i18n.status_label(v, lang),
        "dossier_label": lambda v: i18n.dossier_label(v, lang),
        "regime_label": lambda v: i18n.regime_label(v, lang),
        "confidence_label": lambda v: i18n.confidence_label(v, lang),
        "evidence_kind_label": lambda v: i18n.evidence_kind_label(v, lang),
        "layer_name": lambda n: i18n.layer_name(n, lang),
        "title_of": lambda item: localized(item, "title", lang),
        "reason_of": lambda item: localized(item, "reason", lang),
        "symbol": lambda status: STATUS_SYMBOL.get(status, "?"),
        "evidence_summary": evidence_summary,
        "listed_controls": listed_controls,
        "not_applicable_groups": lambda s: not_applicable_groups(s, lang),
        "regime_short": lambda v: i18n.regime_short(v, lang),
        "sparkline": sparkline,
        "catalogue_as_of": _as_of(report.catalogue.as_of, lang),
        "layer_coverage": layer_coverage(report),
        "has_unverified": any(
            not c.enforced or c.confidence == "unverified"
            for s in report.systems
            for c in s.controls
        ),
    }


def localized(item: BaseModel, field: str, lang: str) -> str:
    """`item.<field>_vi` for vi, else `item.<field>_en` / `item.<field>`; the other one if empty."""
    names = (f"{field}_vi", f"{field}_en", field) if lang == "vi" else (f"{field}_en", field)
    names = (*names, f"{field}_vi")
    for name in names:
        value = getattr(item, name, None)
        if isinstance(value, str) and value:
            return value
    return ""


def listed_controls(system: SystemCompliance) -> list[ControlResult]:
    """The controls of the table: failing, unknown, then passing; catalogue order within each.

    Not-applicable controls (about half the catalogue for any one system: other levels, the
    other regime) are not rows; `not_applicable_groups` lists them compactly.
    """
    return sorted(
        (c for c in system.controls if c.status != "not_applicable"),
        key=lambda c: STATUS_ORDER.get(c.status, len(STATUS_ORDER)),
    )


def not_applicable_groups(system: SystemCompliance, lang: str) -> list[tuple[str, list[str]]]:
    """(reason, control ids) of the system's not-applicable controls, reasons in first-seen order."""
    groups: dict[str, list[str]] = {}
    for c in system.controls:
        if c.status == "not_applicable":
            groups.setdefault(localized(c, "reason", lang), []).append(c.id)
    return list(groups.items())


def evidence_summary(evidence: Mapping[str, Any], limit: int = EVIDENCE_MAX_CHARS) -> str:
    """One line from a control's evidence: `key: value; key: a, b, c … (+4)`, cut at `limit`."""
    text = "; ".join(f"{key}: {_short(value)}" for key, value in evidence.items())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _short(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str | int | float):
        return str(value)
    if isinstance(value, Sequence):
        items = [_short(v) for v in value[:EVIDENCE_MAX_ITEMS]]
        more = len(value) - EVIDENCE_MAX_ITEMS
        return ", ".join(items) + (f" … (+{more})" if more > 0 else "") if items else "–"
    if isinstance(value, Mapping):
        return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    return str(value)


def sparkline(values: Sequence[float]) -> dict[str, Any]:
    """SVG polyline points (0–100 % mapped onto the box) for a system's trend."""
    if not values:
        return {"points": "", "width": SPARK_WIDTH, "height": SPARK_HEIGHT, "last": None}
    step = SPARK_WIDTH / (len(values) - 1) if len(values) > 1 else 0.0
    coords = []
    for i, v in enumerate(values):
        x = i * step if len(values) > 1 else SPARK_WIDTH / 2
        y = SPARK_HEIGHT - 2 - max(0.0, min(100.0, v)) / 100 * (SPARK_HEIGHT - 4)
        coords.append((round(x, 1), round(y, 1)))
    return {
        "points": " ".join(f"{x},{y}" for x, y in coords),
        "width": SPARK_WIDTH,
        "height": SPARK_HEIGHT,
        "last": coords[-1],
    }


_LAYER_ID = re.compile(r"LAYER(\d)")


def layer_coverage(report: ComplianceReport) -> list[tuple[int, str, int]]:
    """(layer number, layer id, systems passing) from the province summary, in layer order."""
    numbers: dict[str, int] = {layer.id: layer.layer for s in report.systems for layer in s.layers}
    rows: list[tuple[int, str, int]] = []
    for layer_id, passing in report.province.layers_passing.items():
        number = numbers.get(layer_id)
        if number is None:
            m = _LAYER_ID.match(layer_id)
            number = int(m.group(1)) if m else 0
        rows.append((number, layer_id, passing))
    return sorted(rows)


def _as_of(value: str, lang: str) -> str:
    try:
        return i18n.format_date(date.fromisoformat(value), lang)
    except ValueError:
        return value


def css_string(value: str) -> Markup:
    """`value` as a quoted CSS string, safe inside a <style> element (no HTML escaping there)."""
    escaped = "".join(ch if ch.isalnum() or ch in " .,:-_/" else f"\\{ord(ch):06x}" for ch in value)
    return Markup(f'"{escaped}"')


def wbr(value: str) -> Markup:
    """`value` escaped, with a line-break opportunity after each dot (long control ids)."""
    return Markup(str(escape(value)).replace(".", ".<wbr>"))
