"""A Pareto frontier as a small self-contained SVG chart (no plotting library)."""

from __future__ import annotations

from html import escape

from solver import Frontier

WIDTH, HEIGHT = 640, 400
LEFT, RIGHT, TOP, BOTTOM = 70, 20, 40, 50


def _ticks(low: float, high: float, n: int = 5) -> list[float]:
    if high <= low:
        return [low]
    return [low + (high - low) * i / (n - 1) for i in range(n)]


def _fmt(value: float) -> str:
    for unit, scale in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= scale:
            return f"{value / scale:.3g}{unit}"
    return f"{value:.3g}"


def frontier_svg(front: Frontier, title: str) -> str:
    """Gain against cost on `front.axis`: a step line through the Pareto points."""
    points = [(float(getattr(p, front.axis)), p.gain) for p in front.points]
    xs = [x for x, _ in points] or [0.0]
    ys = [y for _, y in points] or [0.0]
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
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">',
        f"<title>{escape(title)}</title>",
        '<rect width="100%" height="100%" fill="white"/>',
        f'<text x="{WIDTH / 2}" y="22" text-anchor="middle" font-size="14">{escape(title)}</text>',
        f'<line x1="{LEFT}" y1="{TOP + plot_h}" x2="{LEFT + plot_w}" y2="{TOP + plot_h}" '
        'stroke="black"/>',
        f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{TOP + plot_h}" stroke="black"/>',
    ]
    for t in _ticks(x0, x1):
        parts.append(
            f'<text x="{sx(t):.1f}" y="{TOP + plot_h + 18}" text-anchor="middle">{_fmt(t)}</text>'
        )
    for t in _ticks(y0, y1):
        parts.append(
            f'<text x="{LEFT - 8}" y="{sy(t) + 4:.1f}" text-anchor="end">{_fmt(t)}</text>'
        )
    parts += [
        f'<text x="{LEFT + plot_w / 2}" y="{HEIGHT - 10}" text-anchor="middle">'
        f"{escape(front.axis)}</text>",
        f'<text x="16" y="{TOP + plot_h / 2}" text-anchor="middle" '
        f'transform="rotate(-90 16 {TOP + plot_h / 2})">gain</text>',
    ]
    if steps:
        parts.append(
            f'<polyline fill="none" stroke="#1f77b4" stroke-width="2" points="{" ".join(steps)}"/>'
        )
    for x, y in points:
        parts.append(f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="3.5" fill="#1f77b4"/>')
    parts.append("</svg>")
    return "\n".join(parts)
