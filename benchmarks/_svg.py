"""A tiny SVG writer for the charts of the benchmark page (no plotting dependency).

Two kinds of chart, both on a logarithmic ratio axis (ratio 1 = the baseline, no added cost):
``bars`` draws one bar per case for each group; ``lines`` draws each library's ratio against the
groups' parameter (number of breakers, workers, attempts), one panel per group series.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from xml.sax.saxutils import escape

from benchmarks._harness import CaseResult, SectionResult

OURS = "resilience-kit-py"
OURS_COLOUR = "#3f51b5"
# One colour per peer on every chart of the page.
COLOURS = {
    "pybreaker": "#e67e22",
    "circuitbreaker": "#16a085",
    "purgatory": "#8e44ad",
    "aiobreaker": "#c0392b",
    "tenacity": "#2c3e50",
    "stamina": "#d4ac0d",
    "backoff": "#7f8c8d",
    "cashews": "#e67e22",
    "aiocache": "#16a085",
    "opentelemetry-instrumentation-sqlalchemy": "#8e44ad",
}
FALLBACK = ("#5d6d7e", "#a04000", "#1e8449", "#6c3483")
FONT = "font-family='system-ui, -apple-system, Segoe UI, Roboto, sans-serif'"
WIDTH = 780


def _text(
    x: float, y: float, text: str, *, size: int = 12, anchor: str = "start", **attrs: str
) -> str:
    extra = "".join(f" {k.replace('_', '-')}='{v}'" for k, v in attrs.items())
    return (
        f"<text x='{x:.1f}' y='{y:.1f}' font-size='{size}' text-anchor='{anchor}'{extra}>"
        f"{escape(text)}</text>"
    )


def _svg(height: float, body: Iterable[str], title: str) -> str:
    return (
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{WIDTH}' height='{height:.0f}' "
        f"viewBox='0 0 {WIDTH} {height:.0f}' {FONT} role='img'>"
        f"<title>{escape(title)}</title>"
        f"<rect width='100%' height='100%' fill='white'/>" + "".join(body) + "</svg>\n"
    )


def ticks(low: float, high: float, *, decades_only: bool = False) -> list[float]:
    """1-2-5 ticks (or powers of ten) covering ``[low, high]`` (both > 0)."""
    out = []
    exponent = math.floor(math.log10(low))
    mantissas = (1,) if decades_only else (1, 2, 5)
    while True:
        for mantissa in mantissas:
            value = mantissa * 10.0**exponent
            if value > high * 1.0001:
                return out
            if value >= low * 0.9999:
                out.append(value)
        exponent += 1


def _bounds(ratios: Sequence[float]) -> tuple[float, float]:
    """The axis range: from a 1-2-5 value at or below the smallest ratio (at most 1) to one
    at or above the largest (at least 2)."""
    low = max(min([1.0, *ratios]), 0.1)
    high = max([2.0, *ratios])
    return ticks(low / 10, low)[-1], ticks(high, high * 10)[0]


def _fmt_ratio(value: float) -> str:
    return f"{value:.2f}x" if value < 10 else f"{value:.1f}x" if value < 100 else f"{value:.0f}x"


def _fmt_tick(value: float) -> str:
    return f"{value:g}x"


def _axis_ticks(low: float, high: float) -> list[float]:
    return ticks(low, high, decades_only=math.log10(high / low) > 2.5)


def fmt_ns(value: float) -> str:
    """A duration in ns, readable: ``0.8``, ``143``, ``12,960``."""
    if abs(value) < 10:
        return f"{value:.1f}"
    return f"{value:,.0f}"


def colour(case: CaseResult) -> str:
    """resilience_kit in the theme colour, each peer in its own."""
    if case.library == OURS:
        return OURS_COLOUR
    return COLOURS.get(case.library, FALLBACK[sum(map(ord, case.label)) % len(FALLBACK)])


def bars(result: SectionResult) -> str:
    """One bar per case (ratio to the group's baseline, log scale), grouped by group."""
    ratios = [c.ratio for g in result.groups for c in g.cases if c.timed and not c.baseline]
    low, high = _bounds(ratios)
    left, right = 250, WIDTH - 150
    scale = (right - left) / math.log10(high / low)

    def x_of(ratio: float) -> float:
        return left + math.log10(max(ratio, low) / low) * scale

    body: list[str] = []
    y = 30.0
    body.append(
        _text(
            left, 18, "ratio to the baseline (log scale; 1 = no added cost)", size=11, fill="#555"
        )
    )
    top = y
    for group in result.groups:
        body.append(_text(10, y + 14, group.group.title, size=13, font_weight="bold"))
        y += 22
        for case in group.cases:
            if case.baseline:
                continue
            body.append(_text(left - 8, y + 12, case.label, anchor="end"))
            if case.timed:
                width = max(x_of(case.ratio) - left, 1.0)
                body.append(
                    f"<rect x='{left}' y='{y + 2:.1f}' width='{width:.1f}' height='13' "
                    f"fill='{colour(case)}'/>"
                )
                body.append(
                    _text(
                        left + width + 5,
                        y + 13,
                        f"{_fmt_ratio(case.ratio)}  +{fmt_ns(case.added)} ns",
                        size=11,
                    )
                )
            else:
                status = "unavailable" if case.status == "unavailable" else "FAILED"
                body.append(_text(left + 4, y + 13, status, size=11, fill="#999"))
            y += 18
        y += 8
    grid = []
    for tick in _axis_ticks(low, high):
        x = x_of(tick)
        grid.append(f"<line x1='{x:.1f}' y1='{top:.1f}' x2='{x:.1f}' y2='{y:.1f}' stroke='#ddd'/>")
        grid.append(_text(x, y + 14, _fmt_tick(tick), size=10, anchor="middle", fill="#555"))
    return _svg(y + 24, grid + body, result.section.title)


def lines(result: SectionResult) -> str:
    """Each library's ratio against the groups' parameter; one panel per group series."""
    panels: dict[str, list] = {}
    for group in result.groups:
        panels.setdefault(group.group.series, []).append(group)
    ratios = [c.ratio for g in result.groups for c in g.cases if c.timed and not c.baseline]
    low, high = _bounds(ratios)
    panel_height, left, right = 230.0, 70, WIDTH - 190
    body: list[str] = []
    y0 = 10.0
    for series, groups in panels.items():
        top, bottom = y0 + 24, y0 + panel_height - 30
        title = f"{series}: ratio to the baseline" if series else "ratio to the baseline"
        body.append(_text(left, y0 + 14, title, size=12, font_weight="bold"))
        scale = (bottom - top) / math.log10(high / low)

        def y_of(ratio: float, bottom: float = bottom, scale: float = scale) -> float:
            return bottom - math.log10(max(ratio, low) / low) * scale

        step = (right - left) / max(len(groups) - 1, 1)
        xs = [
            left + i * step if len(groups) > 1 else (left + right) / 2 for i in range(len(groups))
        ]
        for tick in _axis_ticks(low, high):
            yt = y_of(tick)
            body.append(
                f"<line x1='{left}' y1='{yt:.1f}' x2='{right}' y2='{yt:.1f}' stroke='#e3e3e3'/>"
            )
            body.append(
                _text(left - 6, yt + 4, _fmt_tick(tick), size=10, anchor="end", fill="#555")
            )
        for x, group in zip(xs, groups, strict=True):
            param = group.group.param
            text = f"{param:,.0f}" if param is not None else group.group.title
            body.append(_text(x, bottom + 16, text, size=10, anchor="middle", fill="#555"))
        body.append(
            _text(
                (left + right) / 2,
                bottom + 30,
                result.section.x_label,
                size=11,
                anchor="middle",
                fill="#555",
            )
        )
        cases: dict[str, CaseResult] = {}
        for group in groups:
            for case in group.cases:
                if not case.baseline:
                    cases.setdefault(case.label, case)
        for position, (label, first) in enumerate(cases.items()):
            points = []
            for x, group in zip(xs, groups, strict=True):
                case = next((c for c in group.cases if c.label == label), None)
                if case is not None and case.timed:
                    points.append((x, y_of(case.ratio)))
            stroke = colour(first)
            width = 3 if first.library == OURS else 1.8
            if len(points) > 1:
                path = " ".join(f"{px:.1f},{py:.1f}" for px, py in points)
                body.append(
                    f"<polyline points='{path}' fill='none' stroke='{stroke}' "
                    f"stroke-width='{width}'/>"
                )
            for px, py in points:
                body.append(f"<circle cx='{px:.1f}' cy='{py:.1f}' r='3' fill='{stroke}'/>")
            legend_y = top + 16 * position
            body.append(
                f"<rect x='{right + 16}' y='{legend_y:.1f}' width='12' height='4' fill='{stroke}'/>"
            )
            suffix = "" if points else " (n/a)"
            body.append(_text(right + 32, legend_y + 6, label + suffix, size=11))
        y0 += panel_height
    return _svg(y0 + 10, body, result.section.title)


def chart(result: SectionResult) -> str:
    """The section's chart, of the kind it asks for."""
    return lines(result) if result.section.chart == "lines" else bars(result)
