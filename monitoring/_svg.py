"""Small inline SVG charts (lines, interval bands, bars): self-contained pages that need no script or CDN."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape

W, H = 720, 280
LEFT, RIGHT, TOP, BOTTOM = 56, 150, 28, 44
COLOURS = ("#1d70b8", "#d4351c", "#00703c", "#f47738", "#4c2c92", "#505a5f", "#b58840", "#912b88")
DASHES = ("", "6 3", "2 3", "8 3 2 3", "1 0", "4 4", "10 4", "3 6")  # colour is never the only cue


def _fmt(v: float) -> str:
    return f"{v:.3g}" if abs(v) < 1000 else f"{v:,.0f}"


def _axes(title: str, x_labels: Sequence[str], y_max: float, plot_w: float, plot_h: float) -> list[str]:
    out = [f'<text x="{LEFT}" y="16" font-size="13" font-weight="bold">{escape(title)}</text>',
           f'<line x1="{LEFT}" y1="{TOP + plot_h}" x2="{LEFT + plot_w}" y2="{TOP + plot_h}" stroke="#333"/>',
           f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{TOP + plot_h}" stroke="#333"/>']
    for i in range(5):
        v = y_max * i / 4
        y = TOP + plot_h - plot_h * i / 4
        out.append(f'<text x="{LEFT - 4}" y="{y + 4:.1f}" font-size="10" text-anchor="end">{_fmt(v)}</text>')
        out.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{LEFT + plot_w}" y2="{y:.1f}" stroke="#eee"/>')
    n = len(x_labels)
    step = max(1, n // 8)
    for i in range(0, n, step):
        x = LEFT + (plot_w * (i + 0.5) / n)
        out.append(f'<text x="{x:.1f}" y="{TOP + plot_h + 16}" font-size="10" '
                   f'text-anchor="middle">{escape(str(x_labels[i]))}</text>')
    return out


def line_chart(title: str, x_labels: Sequence[str], series: Mapping[str, Sequence[float | None]],
               bands: Mapping[str, tuple[Sequence[float | None], Sequence[float | None]]] | None = None,
               refs: Sequence[tuple[float, str]] = (), y_label: str = "") -> str:
    """Lines per series over the x labels (None = gap), shaded bands (e.g. 95 % intervals), reference lines."""
    plot_w, plot_h = W - LEFT - RIGHT, H - TOP - BOTTOM
    values = [v for s in series.values() for v in s if v is not None]
    values += [v for lo, hi in (bands or {}).values() for v in (*lo, *hi) if v is not None]
    values += [r for r, _ in refs]
    y_max = max(values, default=1.0) * 1.1 or 1.0
    n = max(1, len(x_labels))

    def xy(i: int, v: float) -> str:
        return f"{LEFT + plot_w * (i + 0.5) / n:.1f},{TOP + plot_h - plot_h * v / y_max:.1f}"

    out = _axes(title, x_labels, y_max, plot_w, plot_h)
    for k, (name, (lo, hi)) in enumerate((bands or {}).items()):
        band = [(i, a, b) for i, (a, b) in enumerate(zip(lo, hi, strict=True)) if a is not None and b is not None]
        if band:
            poly = " ".join(xy(i, b) for i, _, b in band) + " " + " ".join(xy(i, a) for i, a, _ in reversed(band))
            out.append(f'<polygon points="{poly}" fill="{COLOURS[k % len(COLOURS)]}" fill-opacity="0.15">'
                       f'<title>{escape(name)}</title></polygon>')
    for k, (name, ys) in enumerate(series.items()):
        colour, dash = COLOURS[k % len(COLOURS)], DASHES[k % len(DASHES)]
        pts = [xy(i, v) for i, v in enumerate(ys) if v is not None]
        if pts:
            out.append(f'<polyline points="{" ".join(pts)}" fill="none" stroke="{colour}" stroke-width="2" '
                       f'stroke-dasharray="{dash}"><title>{escape(name)}</title></polyline>')
        ly = TOP + 14 * k + 6
        out.append(f'<line x1="{W - RIGHT + 8}" y1="{ly}" x2="{W - RIGHT + 30}" y2="{ly}" stroke="{colour}" '
                   f'stroke-width="2" stroke-dasharray="{dash}"/>')
        out.append(f'<text x="{W - RIGHT + 34}" y="{ly + 4}" font-size="11">{escape(name)}</text>')
    for value, label in refs:
        y = TOP + plot_h - plot_h * value / y_max
        out.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{LEFT + plot_w}" y2="{y:.1f}" stroke="#b10e1e" '
                   f'stroke-dasharray="4 3"/><text x="{LEFT + plot_w - 2}" y="{y - 3:.1f}" font-size="10" '
                   f'text-anchor="end">{escape(label)}</text>')
    if y_label:
        out.append(f'<text x="12" y="{TOP + plot_h / 2}" font-size="10" transform="rotate(-90 12 '
                   f'{TOP + plot_h / 2})" text-anchor="middle">{escape(y_label)}</text>')
    return _svg(title, out)


def bar_chart(title: str, labels: Sequence[str], values: Sequence[float],
              refs: Sequence[tuple[float, str]] = ()) -> str:
    """Horizontal bars, one per label, with reference lines (e.g. the PSI bands)."""
    height = TOP + 18 * len(labels) + BOTTOM
    plot_w = W - 200 - 40
    v_max = max([*values, *(r for r, _ in refs)], default=1.0) * 1.1 or 1.0
    out = [f'<text x="8" y="16" font-size="13" font-weight="bold">{escape(title)}</text>']
    for i, (label, v) in enumerate(zip(labels, values, strict=True)):
        y = TOP + 18 * i
        out.append(f'<text x="196" y="{y + 12}" font-size="11" text-anchor="end">{escape(label)}</text>')
        out.append(f'<rect x="200" y="{y + 2}" width="{plot_w * max(v, 0) / v_max:.1f}" height="13" '
                   f'fill="{COLOURS[0]}"><title>{escape(label)}: {_fmt(v)}</title></rect>')
        out.append(f'<text x="{200 + plot_w * max(v, 0) / v_max + 4:.1f}" y="{y + 12}" '
                   f'font-size="10">{_fmt(v)}</text>')
    for value, label in refs:
        x = 200 + plot_w * value / v_max
        out.append(f'<line x1="{x:.1f}" y1="{TOP}" x2="{x:.1f}" y2="{height - BOTTOM + 4}" stroke="#b10e1e" '
                   f'stroke-dasharray="4 3"/><text x="{x:.1f}" y="{height - BOTTOM + 16}" font-size="10" '
                   f'text-anchor="middle">{escape(label)}</text>')
    return _svg(title, out, height)


def _svg(title: str, parts: list[str], height: int = H) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" role="img" viewBox="0 0 {W} {height}" width="{W}" '
            f'height="{height}" font-family="sans-serif"><title>{escape(title)}</title>'
            + "".join(parts) + "</svg>")
