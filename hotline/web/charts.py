"""Charts as inline SVG, drawn on the server: no script, no CDN, works offline and prints.

Each function takes what a report table shows (hotline.services.reports.Shown): a value of None is a
hidden count and is never drawn; its label ("<5" or "*") is written where the bar or point would be.
Text is SVG <text>, so Khmer labels are shaped by the browser's own fonts.
"""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup, escape

PALETTE = ("#1f5f8b", "#c2571a", "#4b8b3b", "#7a4f9a", "#a33b5b", "#5b6770")


def _svg(width: int, height: int, title: str, body: list[str]) -> Markup:
    # Every piece of text in `body` went through escape() (see _text); numbers are formatted floats.
    svg = (f'<svg class="chart" role="img" viewBox="0 0 {width} {height}" width="100%" '
           f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>{"".join(body)}</svg>')
    return Markup(svg)  # noqa: S704


def _text(x: float, y: float, text: str, *, anchor: str = "start", size: int = 12, cls: str = "") -> str:
    return (f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}"'
            f'{f" class={chr(34)}{cls}{chr(34)}" if cls else ""}>{escape(text)}</text>')


def line(title: str, columns: Sequence[str], series: Sequence[tuple[str, Sequence[float | None], Sequence[str]]]
         ) -> Markup:
    """One line per series over the periods; hidden points are gaps marked with their label."""
    width, height, left, right, top, bottom = 640, 260, 48, 150, 16, 40
    plot_w, plot_h = width - left - right, height - top - bottom
    top_value = max([v for _, vals, _ in series for v in vals if v is not None] or [0]) or 1
    n = max(len(columns), 1)

    def x(i: int) -> float:
        return left + (plot_w * i / (n - 1) if n > 1 else plot_w / 2)

    def y(v: float) -> float:
        return top + plot_h - plot_h * v / top_value

    body = [f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" stroke="#888"/>',
            _text(left - 6, top + 4, f"{top_value:.0f}", anchor="end", size=11),
            _text(left - 6, top + plot_h, "0", anchor="end", size=11)]
    step = max(1, n // 8)
    for i, c in enumerate(columns):
        if i % step == 0:
            body.append(_text(x(i), height - bottom + 16, c, anchor="middle", size=10))
    for s, (name, values, texts) in enumerate(series):
        colour = PALETTE[s % len(PALETTE)]
        run: list[str] = []
        for i, v in enumerate(values):
            if v is None:
                if len(run) > 1:
                    body.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{" ".join(run)}"/>')
                run = []
                body.append(_text(x(i), top + plot_h - 4 - 12 * s, texts[i], anchor="middle", size=10, cls="hidden"))
                continue
            run.append(f"{x(i):.1f},{y(v):.1f}")
            body.append(f'<circle cx="{x(i):.1f}" cy="{y(v):.1f}" r="2.5" fill="{colour}"/>')
        if len(run) > 1:
            body.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{" ".join(run)}"/>')
        body.append(f'<rect x="{width - right + 10}" y="{top + 18 * s}" width="10" height="10" fill="{colour}"/>')
        body.append(_text(width - right + 26, top + 18 * s + 9, name, size=11))
    return _svg(width, height, title, body)


def bars(title: str, labels: Sequence[str], values: Sequence[float | None], texts: Sequence[str]) -> Markup:
    """Horizontal bars, one per row; a hidden count has no bar, only its label."""
    row_h, label_w, width = 22, 190, 640
    height = row_h * len(labels) + 10
    top_value = max([v for v in values if v is not None] or [0]) or 1
    plot_w = width - label_w - 60
    body = []
    for i, (name, v, text) in enumerate(zip(labels, values, texts, strict=True)):
        y = 5 + row_h * i
        body.append(_text(label_w - 6, y + 14, name, anchor="end", size=12))
        w = 0.0 if v is None else plot_w * v / top_value
        if v is not None:
            body.append(f'<rect x="{label_w}" y="{y + 3}" width="{w:.1f}" height="{row_h - 6}" fill="{PALETTE[0]}"/>')
        body.append(_text(label_w + w + 4, y + 14, text, size=11, cls="hidden" if v is None else ""))
    return _svg(width, max(height, 30), title, body)


def funnel(title: str, labels: Sequence[str], values: Sequence[float | None], texts: Sequence[str]) -> Markup:
    """Centred bars narrowing stage by stage, with the share of the first stage."""
    row_h, width = 34, 640
    first = values[0] if values and values[0] else None
    top_value = max([v for v in values if v is not None] or [0]) or 1
    body = []
    for i, (name, v, text) in enumerate(zip(labels, values, texts, strict=True)):
        y = 4 + row_h * i
        w = 0.0 if v is None else 380 * v / top_value
        if v is not None:
            body.append(f'<rect x="{(width - w) / 2:.1f}" y="{y}" width="{w:.1f}" height="{row_h - 6}" '
                        f'fill="{PALETTE[i % len(PALETTE)]}" opacity="0.85"/>')
        share = f" ({100 * v / first:.0f}%)" if v is not None and first else ""
        body.append(_text(8, y + 19, name, size=12))
        body.append(_text(width - 8, y + 19, f"{text}{share}", anchor="end", size=12))
    return _svg(width, row_h * len(labels) + 8, title, body)
