"""Small self-contained SVG charts (no plotting library): a Pareto frontier, a heatmap, budget bars."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from html import escape

from solver import Frontier

WIDTH, HEIGHT = 640, 400
LEFT, RIGHT, TOP, BOTTOM = 70, 20, 40, 50
ACCENT, MARKER = "#1f77b4", "#d62728"
# The light and dark ends of the shade scale (a white-to-blue ramp, like matplotlib's Blues).
_LIGHT, _DARK = (222, 235, 247), (8, 48, 107)
UNSHADED = "#bdbdbd"


def _ticks(low: float, high: float, n: int = 5) -> list[float]:
    if high <= low:
        return [low]
    return [low + (high - low) * i / (n - 1) for i in range(n)]


def fmt(value: float) -> str:
    """`value` to 3 significant digits with a k/M/G/T suffix (1.23M)."""
    for unit, scale in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= scale:
            return f"{value / scale:.3g}{unit}"
    return f"{value:.3g}"


def shade(value: float | None) -> str:
    """The fill colour of a shade in [0, 1] on the white-to-blue ramp (grey for None)."""
    if value is None:
        return UNSHADED
    t = min(max(value, 0.0), 1.0)
    r, g, b = (round(lo + (hi - lo) * t) for lo, hi in zip(_LIGHT, _DARK, strict=True))
    return f"#{r:02x}{g:02x}{b:02x}"


def _svg(width: float, height: float, title: str, parts: list[str], css_class: str) -> str:
    """An <svg> element of the given size and class with a <title>, a white background and `parts`."""
    return "\n".join([
        f'<svg xmlns="http://www.w3.org/2000/svg" class="{css_class}" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" font-family="sans-serif" font-size="12">',
        f"<title>{escape(title)}</title>",
        '<rect width="100%" height="100%" fill="white"/>',
        *parts,
        "</svg>",
    ])


def frontier_svg(
    front: Frontier, title: str, marker: tuple[float, float, str] | None = None, cap: float | None = None
) -> str:
    """Gain against cost on `front.axis`: a step line through the Pareto points; `marker` (x, gain, label),
    e.g. a plan, as a ringed point; `cap` (e.g. the budget) as a dashed vertical line."""
    points = [(float(getattr(p, front.axis)), p.gain) for p in front.points]
    marked = [(marker[0], marker[1])] if marker is not None else []
    xs = [x for x, _ in points + marked] + ([cap] if cap is not None else []) or [0.0]
    ys = [y for _, y in points + marked] or [0.0]
    x0, x1 = 0.0, max(xs) or 1.0
    y0, y1 = 0.0, max(ys) or 1.0
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def sx(x: float) -> float:
        return LEFT + (x - x0) / (x1 - x0) * plot_w

    def sy(y: float) -> float:
        return TOP + plot_h - (y - y0) / (y1 - y0) * plot_h

    steps, last_y = [], y0
    for x, y in sorted(points):
        steps += [f"{sx(x):.1f},{sy(last_y):.1f}", f"{sx(x):.1f},{sy(y):.1f}"]
        last_y = y
    if points:
        steps.append(f"{sx(x1):.1f},{sy(last_y):.1f}")
    parts = [
        f'<text x="{WIDTH / 2}" y="22" text-anchor="middle" font-size="14">{escape(title)}</text>',
        f'<line x1="{LEFT}" y1="{TOP + plot_h}" x2="{LEFT + plot_w}" y2="{TOP + plot_h}" '
        'stroke="black"/>',
        f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{TOP + plot_h}" stroke="black"/>',
    ]
    for t in _ticks(x0, x1):
        parts.append(
            f'<text x="{sx(t):.1f}" y="{TOP + plot_h + 18}" text-anchor="middle">{fmt(t)}</text>'
        )
    for t in _ticks(y0, y1):
        parts.append(
            f'<text x="{LEFT - 8}" y="{sy(t) + 4:.1f}" text-anchor="end">{fmt(t)}</text>'
        )
    parts += [
        f'<text x="{LEFT + plot_w / 2}" y="{HEIGHT - 10}" text-anchor="middle">'
        f"{escape(front.axis)}</text>",
        f'<text x="16" y="{TOP + plot_h / 2}" text-anchor="middle" '
        f'transform="rotate(-90 16 {TOP + plot_h / 2})">gain</text>',
    ]
    if steps:
        parts.append(
            f'<polyline fill="none" stroke="{ACCENT}" stroke-width="2" points="{" ".join(steps)}"/>'
        )
    if cap is not None:
        parts.append(
            f'<g class="cap"><line x1="{sx(cap):.1f}" y1="{TOP}" x2="{sx(cap):.1f}" y2="{TOP + plot_h}" stroke="#666" '
            f'stroke-dasharray="5 4"/><text x="{sx(cap) - 4:.1f}" y="{TOP + plot_h - 6}" text-anchor="end" fill="#666">'
            f"budget</text></g>"
        )
    for x, y in points:
        parts.append(f'<circle class="point" cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="3.5" fill="{ACCENT}"/>')
    if marker is not None:
        mx, my = sx(marker[0]), sy(marker[1])
        anchor, dx = ("end", -10) if mx > LEFT + plot_w / 2 else ("start", 10)
        parts.append(
            f'<g class="marker"><circle cx="{mx:.1f}" cy="{my:.1f}" r="7" fill="none" stroke="{MARKER}" '
            f'stroke-width="2.5"/><text x="{mx + dx:.1f}" y="{my + 16:.1f}" text-anchor="{anchor}" '
            f'fill="{MARKER}">{escape(marker[2])}</text></g>'
        )
    return _svg(WIDTH, HEIGHT, title, parts, "frontier")


@dataclass(frozen=True)
class Mark:
    """One item placed in a heatmap cell: `key` (its data-id), up to two text lines, a tooltip, a shade in [0, 1]."""

    key: str
    lines: tuple[str, ...]
    tooltip: str
    shade: float | None


@dataclass(frozen=True)
class Heatmap:
    """A grid of `rows` x `columns`; `marks` by (row, column) index; `open` cells had options but no mark."""

    rows: Sequence[str]
    columns: Sequence[str]
    marks: Mapping[tuple[int, int], Sequence[Mark]]
    open: frozenset[tuple[int, int]] = field(default_factory=frozenset)
    legend: tuple[str, str] | None = None


MARK_W, MARK_H, GAP, LABEL_W, HEAD_H = 58, 30, 3, 90, 24


def heatmap_svg(grid: Heatmap, title: str) -> str:
    """The grid as an SVG: one shaded box (class `cell`; `data-id`, `data-row`, `data-column`) per mark, side by
    side within its cell; open cells light grey; a legend of the shade scale below."""
    per_column = [max([len(grid.marks.get((r, c), ())) for r in range(len(grid.rows))] + [1])
                  for c in range(len(grid.columns))]
    widths = [n * (MARK_W + GAP) + GAP for n in per_column]
    lefts = [LABEL_W + sum(widths[:c]) for c in range(len(widths))]
    row_h = MARK_H + 2 * GAP
    width = max(LABEL_W + sum(widths) + GAP, LABEL_W + 220 if grid.legend else 0)
    height = HEAD_H + len(grid.rows) * row_h + (44 if grid.legend else 8)
    parts = []
    for c, name in enumerate(grid.columns):
        parts.append(f'<text x="{lefts[c] + widths[c] / 2:.0f}" y="{HEAD_H - 8}" text-anchor="middle" '
                     f'font-weight="bold">{escape(name)}</text>')
    for r, name in enumerate(grid.rows):
        y = HEAD_H + r * row_h
        parts.append(f'<text x="{LABEL_W - 8}" y="{y + row_h / 2 + 4:.0f}" text-anchor="end">{escape(name)}</text>')
        parts.append(f'<line x1="{LABEL_W}" y1="{y}" x2="{width - GAP}" y2="{y}" stroke="#eee"/>')
        for c in range(len(grid.columns)):
            marks = grid.marks.get((r, c), ())
            if not marks and (r, c) in grid.open:
                parts.append(f'<rect class="open" x="{lefts[c] + GAP}" y="{y + GAP}" width="{MARK_W}" '
                             f'height="{MARK_H}" fill="#f2f2f2" stroke="#ddd"/>')
            for i, mark in enumerate(marks):
                parts.append(_mark_svg(mark, lefts[c] + GAP + i * (MARK_W + GAP), y + GAP, name, grid.columns[c]))
    if grid.legend:
        parts.append(_legend_svg(LABEL_W, height - 34, grid.legend))
    return _svg(width, height, title, parts, "heatmap")


def _mark_svg(mark: Mark, x: float, y: float, row: str, column: str) -> str:
    dark = mark.shade is not None and mark.shade > 0.55
    colour = "white" if dark else "black"
    lines = mark.lines[:2]
    texts = "".join(
        f'<text x="{x + MARK_W / 2:.0f}" y="{y + MARK_H / 2 + 4 + 12 * (i - (len(lines) - 1) / 2):.0f}" '
        f'text-anchor="middle" font-size="11" fill="{colour}">{escape(line)}</text>'
        for i, line in enumerate(lines)
    )
    return (f'<g class="cell" data-id="{escape(mark.key)}" data-row="{escape(row)}" data-column="{escape(column)}">'
            f'<title>{escape(mark.tooltip)}</title>'
            f'<rect x="{x}" y="{y}" width="{MARK_W}" height="{MARK_H}" rx="3" fill="{shade(mark.shade)}" '
            f'stroke="#666" stroke-width="0.5"/>{texts}</g>')


def _legend_svg(x: float, y: float, labels: tuple[str, str]) -> str:
    stops = "".join(f'<stop offset="{t}" stop-color="{shade(t)}"/>' for t in (0, 0.5, 1))
    return (f'<g class="legend"><defs><linearGradient id="shade-ramp">{stops}</linearGradient></defs>'
            f'<rect x="{x}" y="{y}" width="200" height="12" fill="url(#shade-ramp)" stroke="#666" stroke-width="0.5"/>'
            f'<text x="{x}" y="{y + 26}">{escape(labels[0])}</text>'
            f'<text x="{x + 200}" y="{y + 26}" text-anchor="end">{escape(labels[1])}</text></g>')


@dataclass(frozen=True)
class Bar:
    """One budget axis: `used` against `limit` (None: no cap to draw against), labelled, its numbers as `text`."""

    key: str
    label: str
    used: float
    limit: float | None
    text: str


BAR_LABEL_W, BAR_W, BAR_H, BAR_ROW = 110, 300, 18, 34


def bars_svg(bars: Sequence[Bar], title: str) -> str:
    """Horizontal bars (class `bar`, with `data-axis`, `data-used`, `data-limit`): the used fraction of each limit
    filled (orange from 90 %, red past the limit); a bar without a limit is a dashed empty track."""
    parts = []
    for i, bar in enumerate(bars):
        y = 8 + i * BAR_ROW
        limit = "" if bar.limit is None else f' data-limit="{bar.limit!r}"'
        dash = "" if bar.limit is not None else ' stroke-dasharray="4 3"'
        track = f'<rect x="{BAR_LABEL_W}" y="{y}" width="{BAR_W}" height="{BAR_H}" fill="#f7f7f7" stroke="#999"{dash}/>'
        fill = ""
        if bar.limit is not None:
            fraction = bar.used / bar.limit
            colour = MARKER if fraction > 1 else "#ff7f0e" if fraction >= 0.9 else ACCENT
            fill = (f'<rect x="{BAR_LABEL_W}" y="{y}" width="{BAR_W * min(fraction, 1.0):.1f}" height="{BAR_H}" '
                    f'fill="{colour}"/>')
        parts.append(
            f'<g class="bar" data-axis="{escape(bar.key)}" data-used="{bar.used!r}"{limit}>'
            f'<text x="{BAR_LABEL_W - 8}" y="{y + 13}" text-anchor="end">{escape(bar.label)}</text>{track}{fill}'
            f'<text class="numbers" x="{BAR_LABEL_W + BAR_W + 8}" y="{y + 13}">{escape(bar.text)}</text></g>'
        )
    return _svg(BAR_LABEL_W + BAR_W + 300, 8 + len(bars) * BAR_ROW, title, parts, "budgets")
