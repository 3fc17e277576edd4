"""Tiny server-rendered SVG charts (no JavaScript, no library, nothing from a CDN).

Charts carry only presentation *attributes* and classes styled by ``static/dashboard.css``, so
they pass the console's ``style-src 'self'`` policy. Each chart is an ``img`` with a ``<title>``
and ``<desc>``; pages put a data table next to it for screen readers and for exact figures.
Right-to-left pages get a mirrored chart (labels on the right, time running right to left);
coordinates are mirrored here and the SVG itself is laid out left to right, so text anchors
mean the same in both directions. A ``None`` value (a suppressed figure) draws nothing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

WIDTH = 640
BAR_WIDTH = 480  # bar charts sit in half-width cards: a smaller canvas keeps text legible


@dataclass(frozen=True)
class Datum:
    label: str
    value: float | None  # None: not drawn (suppressed)
    display: str  # what a reader sees for it ("12", "<5")


def _num(x: float) -> str:
    return f"{x:.1f}".rstrip("0").rstrip(".")


def nice_top(highest: float) -> float:
    """The axis maximum: 1, 2, 2.5 or 5 times a power of ten, at least ``highest``."""
    if highest <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(highest))
    return next(power * m for m in (1, 2, 2.5, 5, 10) if power * m >= highest)


class _Canvas:
    def __init__(self, height: int, rtl: bool, width: int = WIDTH) -> None:
        self.height, self.rtl, self.width = height, rtl, width
        self.parts: list[Markup] = []

    def x(self, x: float, width: float = 0) -> float:
        return self.width - x - width if self.rtl else x

    def anchor(self, anchor: str) -> str:
        if not self.rtl or anchor == "middle":
            return anchor
        return "end" if anchor == "start" else "start"

    def text(self, x: float, y: float, content: str, *, anchor: str = "start",
             cls: str = "") -> None:
        self.parts.append(Markup('<text x="{}" y="{}" text-anchor="{}" class="{}">{}</text>')
                          .format(_num(self.x(x)), _num(y), self.anchor(anchor), cls, content))

    def rect(self, x: float, y: float, width: float, height: float, cls: str,
             tip: str) -> None:
        self.parts.append(Markup(
            '<rect x="{}" y="{}" width="{}" height="{}" class="{}"><title>{}</title></rect>')
            .format(_num(self.x(x, width)), _num(y), _num(width), _num(height), cls, tip))

    def line(self, x1: float, y1: float, x2: float, y2: float, cls: str) -> None:
        self.parts.append(Markup('<line x1="{}" y1="{}" x2="{}" y2="{}" class="{}"/>').format(
            _num(self.x(x1)), _num(y1), _num(self.x(x2)), _num(y2), cls))

    def svg(self, chart_id: str, title: str, desc: str, cls: str) -> Markup:
        head = Markup(
            '<svg xmlns="http://www.w3.org/2000/svg" class="chart {}" viewBox="0 0 {} {}" '
            'direction="ltr" role="img" aria-labelledby="{}-title {}-desc" id="{}">'
            '<title id="{}-title">{}</title><desc id="{}-desc">{}</desc>'
        ).format(cls, self.width, self.height, chart_id, chart_id, chart_id, chart_id, title,
                 chart_id, desc)
        return head + Markup("").join(self.parts) + Markup("</svg>")


def bar_chart(data: Sequence[Datum], *, chart_id: str, title: str, desc: str,
              rtl: bool = False) -> Markup:
    """Horizontal bars, one row per datum, its figure written after the bar."""
    row, label_w, pad = 30, 170, 8
    canvas = _Canvas(max(1, len(data)) * row + pad * 2, rtl, BAR_WIDTH)
    top = nice_top(max((d.value for d in data if d.value is not None), default=0))
    span = BAR_WIDTH - label_w - 50
    for i, datum in enumerate(data):
        y = pad + i * row
        canvas.text(label_w - pad, y + row * 0.62, escape(datum.label), anchor="end",
                    cls="label")
        width = span * (datum.value or 0) / top
        if datum.value is not None and width > 0:
            canvas.rect(label_w, y + 5, max(width, 1.5), row - 10, "bar",
                        escape(f"{datum.label}: {datum.display}"))
        canvas.text(label_w + width + pad, y + row * 0.62, escape(datum.display),
                    cls="value" if datum.value is not None else "value suppressed")
    return canvas.svg(chart_id, title, desc, "bars")


def line_chart(data: Sequence[Datum], *, chart_id: str, title: str, desc: str,
               rtl: bool = False, ticks: int = 8) -> Markup:
    """A line over time; a suppressed point breaks the line. ``ticks`` x labels at most."""
    height, left, right, top_pad, bottom = 230, 48, 16, 14, 34
    canvas = _Canvas(height, rtl)
    plot_w, plot_h = WIDTH - left - right, height - top_pad - bottom
    top = nice_top(max((d.value for d in data if d.value is not None), default=0))
    for step in range(5):
        level = top * step / 4
        y = top_pad + plot_h * (1 - step / 4)
        canvas.line(left, y, WIDTH - right, y, "grid")
        canvas.text(left - 6, y + 4, escape(_num(level)), anchor="end", cls="axis")
    count = len(data)
    every = max(1, math.ceil(count / ticks))

    def at(i: int, value: float) -> tuple[float, float]:
        x = left + (plot_w * i / (count - 1) if count > 1 else plot_w / 2)
        return x, top_pad + plot_h * (1 - value / top)

    segment: list[tuple[float, float]] = []
    segments = [segment]
    for i, datum in enumerate(data):
        if (count - 1 - i) % every == 0:  # counted from the latest, which always shows
            canvas.text(at(i, 0)[0], height - 12, escape(datum.label), anchor="middle",
                        cls="axis")
        if datum.value is None:
            segment = []
            segments.append(segment)
            continue
        segment.append(at(i, datum.value))
    for points in segments:
        if len(points) > 1:
            canvas.parts.append(Markup('<polyline class="line" points="{}"/>').format(
                " ".join(f"{_num(canvas.x(x))},{_num(y)}" for x, y in points)))
    for i, datum in enumerate(data):
        if datum.value is not None:
            x, y = at(i, datum.value)
            canvas.parts.append(Markup(
                '<circle cx="{}" cy="{}" r="3.5" class="point"><title>{}</title></circle>')
                .format(_num(canvas.x(x)), _num(y), escape(f"{datum.label}: {datum.display}")))
    return canvas.svg(chart_id, title, desc, "timeline")
