"""Charts as inline SVG, drawn on the server: no script, no library, no CDN, and nothing inline that the pages'
Content-Security-Policy forbids (shapes carry classes styled by ``admin.css``; no ``style`` attributes).
Each chart has a ``<title>`` and a ``<desc>`` for screen readers, and a ``<title>`` per bar or point that
browsers show on hover. Hand-written rather than pygal: four small chart kinds, and pygal's output needs its
tooltip script stripped and its inline styles allowed."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

from markupsafe import Markup, escape

WIDTH, HEIGHT = 640, 220
LEFT, RIGHT, TOP, BOTTOM = 72, 12, 12, 28
MAX_X_LABELS = 8
_ids = itertools.count(1)

Describe = Callable[[float], str]


def _frame(title: str, desc: str, body: list[str], *, height: int = HEIGHT) -> Markup:
    n = next(_ids)
    return Markup(
        f'<svg class="chart" viewBox="0 0 {WIDTH} {height}" role="img" '
        f'aria-labelledby="chart-{n}-title chart-{n}-desc" preserveAspectRatio="xMidYMid meet">'
        f'<title id="chart-{n}-title">{escape(title)}</title><desc id="chart-{n}-desc">{escape(desc)}</desc>'
        + "".join(body) + "</svg>")


def _y_axis(top_value: float, describe: Describe, plot_h: int) -> list[str]:
    parts = []
    for fraction in (0, 0.5, 1):
        y = TOP + plot_h - fraction * plot_h
        parts.append(f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>')
        parts.append(f'<text class="tick" x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">'
                     f'{escape(describe(top_value * fraction))}</text>')
    return parts


def _x_labels(labels: Sequence[str], centres: Sequence[float]) -> list[str]:
    step = max(1, -(-len(labels) // MAX_X_LABELS))
    return [f'<text class="tick" x="{x:.1f}" y="{HEIGHT - 8}" text-anchor="middle">{escape(label)}</text>'
            for i, (label, x) in enumerate(zip(labels, centres, strict=True)) if i % step == 0]


def bar_chart(labels: Sequence[str], values: Sequence[int], *, title: str, describe: Describe,
              hover: Sequence[str] | None = None) -> Markup:
    """Vertical bars, one per label (a day), values ≥ 0."""
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    top_value = max([*values, 0]) or 1
    slot = plot_w / max(1, len(values))
    body = _y_axis(top_value, describe, plot_h)
    centres = []
    for i, value in enumerate(values):
        h = plot_h * value / top_value
        x = LEFT + i * slot + slot * 0.15
        centres.append(LEFT + i * slot + slot / 2)
        tip = hover[i] if hover else f"{labels[i]}: {describe(value)}"
        body.append(f'<rect class="bar" x="{x:.1f}" y="{TOP + plot_h - h:.1f}" width="{slot * 0.7:.1f}" '
                    f'height="{h:.1f}"><title>{escape(tip)}</title></rect>')
    body += _x_labels(labels, centres)
    total = describe(sum(values))
    return _frame(title, f"{len(values)} bars; total {total}; highest {describe(max([*values, 0]))}.", body)


def grouped_bar_chart(labels: Sequence[str], series: Sequence[tuple[str, str, Sequence[int]]], *, title: str,
                      describe: Describe) -> Markup:
    """Bars side by side per label (a day), one per series ``(name, css class, values ≥ 0)``; the page gives
    the legend (the series' names with their colours) beside the chart."""
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    top_value = max([v for _, _, values in series for v in values] + [0]) or 1
    slot = plot_w / max(1, len(labels))
    width = slot * 0.8 / max(1, len(series))
    body = _y_axis(top_value, describe, plot_h)
    for i, label in enumerate(labels):
        for j, (name, css, values) in enumerate(series):
            h = plot_h * values[i] / top_value
            x = LEFT + i * slot + slot * 0.1 + j * width
            body.append(f'<rect class="bar {escape(css)}" x="{x:.1f}" y="{TOP + plot_h - h:.1f}" '
                        f'width="{width:.1f}" height="{h:.1f}"><title>{escape(label)}, {escape(name)}: '
                        f'{escape(describe(values[i]))}</title></rect>')
    body += _x_labels(labels, [LEFT + i * slot + slot / 2 for i in range(len(labels))])
    totals = "; ".join(f"{name} {describe(sum(values))} in all" for name, _, values in series)
    return _frame(title, f"{len(labels)} days, {len(series)} bars each: {totals}.", body)


def line_chart(labels: Sequence[str], values: Sequence[float | None], *, title: str, describe: Describe,
               y_max: float | None = None, thresholds: Sequence[tuple[float, str, str]] = ()) -> Markup:
    """One line over the labels; ``None`` values (no data that day) break it. ``thresholds``: horizontal
    reference lines (value, css class, label), e.g. the healthy and critical rates."""
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    known = [v for v in values if v is not None]
    top_value = y_max if y_max is not None else (max(known, default=0) or 1)
    slot = plot_w / max(1, len(values))
    centres = [LEFT + i * slot + slot / 2 for i in range(len(values))]

    def y_of(value: float) -> float:
        return TOP + plot_h - plot_h * value / top_value

    body = _y_axis(top_value, describe, plot_h)
    body += [f'<line class="threshold {escape(css)}" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y_of(value):.1f}" '
             f'y2="{y_of(value):.1f}"><title>{escape(label)}</title></line>' for value, css, label in thresholds]
    body += [f'<polyline class="line" points="{" ".join(s)}"/>' for s in _segments(centres, values, y_of)]
    body += [f'<circle class="point" cx="{x:.1f}" cy="{y_of(value):.1f}" r="3">'
             f'<title>{escape(label)}: {escape(describe(value))}</title></circle>'
             for label, x, value in zip(labels, centres, values, strict=True) if value is not None]
    body += _x_labels(labels, centres)
    last = next((v for v in reversed(values) if v is not None), None)
    desc = f"{len(known)} points; latest {describe(last)}." if last is not None else "No data in this period."
    return _frame(title, desc, body)


def _segments(centres: Sequence[float], values: Sequence[float | None],
              y_of: Callable[[float], float]) -> list[list[str]]:
    """The line's runs of points between days without data."""
    segments: list[list[str]] = [[]]
    for x, value in zip(centres, values, strict=True):
        if value is None:
            segments.append([])
        else:
            segments[-1].append(f"{x:.1f},{y_of(value):.1f}")
    return [s for s in segments if s]


def hbar_chart(items: Sequence[tuple[str, int]], *, title: str, describe: Describe) -> Markup:
    """Horizontal bars, largest first (e.g. decline codes)."""
    row_h, label_w = 26, 190
    height = max(40, TOP + row_h * len(items) + 8)
    top_value = max([v for _, v in items], default=0) or 1
    plot_w = WIDTH - label_w - RIGHT - 48
    body = []
    for i, (label, value) in enumerate(items):
        y = TOP + i * row_h
        w = plot_w * value / top_value
        body.append(f'<text class="tick" x="{label_w - 8}" y="{y + 16}" text-anchor="end">{escape(label)}</text>')
        body.append(f'<rect class="bar bad" x="{label_w}" y="{y + 3}" width="{w:.1f}" height="{row_h - 8}">'
                    f'<title>{escape(label)}: {escape(describe(value))}</title></rect>')
        body.append(f'<text class="value" x="{label_w + w + 6:.1f}" y="{y + 16}">{escape(describe(value))}</text>')
    desc = "; ".join(f"{label} {describe(value)}" for label, value in items) or "Nothing to show."
    return _frame(title, desc, body, height=height)
