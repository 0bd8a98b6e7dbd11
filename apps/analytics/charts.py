"""Small server-side SVG charts for the dashboard: no JavaScript, no CDN, nothing to bundle."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

WIDTH, HEIGHT = 640, 200
LEFT, RIGHT, TOP, BOTTOM = 48, 12, 12, 28


@dataclass(frozen=True)
class Series:
    name: str
    color: str
    values: Sequence[float | None]


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    magnitude = 10 ** (len(str(int(value))) - 1)
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * magnitude:
            return float(step * magnitude)
    return float(10 * magnitude)


def _x(i: int, n: int) -> float:
    inner = WIDTH - LEFT - RIGHT
    return LEFT + (inner * i / (n - 1) if n > 1 else inner / 2)


def _y(value: float, y_max: float) -> float:
    inner = HEIGHT - TOP - BOTTOM
    return TOP + inner * (1 - min(max(value / y_max, 0.0), 1.0))


def chart(
    *,
    title: str,
    days: Sequence[dt.date],
    series: Sequence[Series],
    kind: str = "line",
    y_max: float | None = None,
    y_format: Callable[[float], str] = lambda v: f"{v:g}",
) -> SafeString:
    """An accessible SVG line or bar chart of `series` over `days` (None values are gaps)."""
    n = len(days)
    present = [v for s in series for v in s.values if v is not None]
    top = y_max if y_max is not None else _nice_max(max(present) if present else 0.0)
    parts = [
        f'<svg class="sa-chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{escape(title)}" preserveAspectRatio="none">',
        f"<title>{escape(title)}</title>",
    ]
    for fraction in (0.0, 0.5, 1.0):
        y = _y(top * fraction, top)
        parts.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" class="sa-grid"/>'
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" class="sa-axis">'
            f"{escape(y_format(top * fraction))}</text>"
        )
    if n:
        for i in sorted({0, n // 2, n - 1}):
            # The first and last labels lean inwards so that they are not cut at the edges.
            anchor = "start" if i == 0 and n > 1 else "end" if i == n - 1 and n > 1 else "middle"
            parts.append(
                f'<text x="{_x(i, n):.1f}" y="{HEIGHT - 8}" text-anchor="{anchor}" '
                f'class="sa-axis">{days[i]:%b %d}</text>'
            )
    if kind == "bar" and n:
        slot = (WIDTH - LEFT - RIGHT) / n
        width = max(1.0, slot * 0.8 / max(1, len(series)))
        for k, s in enumerate(series):
            for i, value in enumerate(s.values):
                if value is None:
                    continue
                x = LEFT + slot * i + slot * 0.1 + width * k
                y = _y(value, top)
                parts.append(
                    f'<rect x="{x:.1f}" y="{y:.1f}" width="{width:.1f}" '
                    f'height="{HEIGHT - BOTTOM - y:.1f}" fill="{s.color}">'
                    f"<title>{escape(s.name)} {days[i]:%Y-%m-%d}: "
                    f"{escape(y_format(value))}</title></rect>"
                )
    else:
        for s in series:
            segment: list[str] = []
            segments: list[list[str]] = []
            for i, value in enumerate(s.values):
                if value is None:
                    if segment:
                        segments.append(segment)
                    segment = []
                    continue
                segment.append(f"{_x(i, n):.1f},{_y(value, top):.1f}")
                parts.append(
                    f'<circle cx="{_x(i, n):.1f}" cy="{_y(value, top):.1f}" r="2.5" '
                    f'fill="{s.color}"><title>{escape(s.name)} {days[i]:%Y-%m-%d}: '
                    f"{escape(y_format(value))}</title></circle>"
                )
            if segment:
                segments.append(segment)
            for points in segments:
                parts.append(
                    f'<polyline fill="none" stroke="{s.color}" stroke-width="2" '
                    f'points="{" ".join(points)}"/>'
                )
    parts.append("</svg>")
    legend = "".join(
        f'<span class="sa-legend-item"><i style="background:{s.color}"></i>{escape(s.name)}</span>'
        for s in series
    )
    # Every piece above is escaped or built from numbers and fixed colours.
    return mark_safe(  # noqa: S308
        f'<figure class="sa-figure"><figcaption>{escape(title)}</figcaption>'
        f'{"".join(parts)}<div class="sa-legend">{legend}</div></figure>'
    )


def percent(value: float) -> str:
    return f"{value * 100:.0f}%"


def milliseconds(value: float) -> str:
    return f"{value / 1000:.1f} s" if value >= 1000 else f"{value:.0f} ms"
