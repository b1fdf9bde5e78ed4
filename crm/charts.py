"""Chart geometry for server-side SVG: numbers in, coordinates out; templates draw them.

No JavaScript and nothing fetched from elsewhere, so the reports work on a closed
network and in any browser.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

WIDTH = 640
HEIGHT = 220
PAD_LEFT, PAD_RIGHT, PAD_TOP, PAD_BOTTOM = 44, 16, 14, 30


def line_chart(
    labels: Sequence[str],
    series: Sequence[dict[str, Any]],
    *,
    y_min: float = 0,
    y_max: float = 100,
    y_step: float = 25,
    suffix: str = "%",
) -> dict[str, Any]:
    """series: [{"name", "color", "values": [float | None, ...], "n": [int, ...]}], one value per label.

    `n` (optional, issue 13) is each value's sample size: shown in the tooltip and beside the latest value.
    """
    plot_w = WIDTH - PAD_LEFT - PAD_RIGHT
    plot_h = HEIGHT - PAD_TOP - PAD_BOTTOM
    n = len(labels)

    def x(i: int) -> float:
        return round(PAD_LEFT + (plot_w * i / (n - 1) if n > 1 else plot_w / 2), 1)

    def y(v: float) -> float:
        v = min(max(v, y_min), y_max)
        return round(PAD_TOP + plot_h * (1 - (v - y_min) / (y_max - y_min)), 1)

    grid = []
    tick = y_min
    while tick <= y_max + 1e-9:
        grid.append({"y": y(tick), "label": f"{tick:g}{suffix}", "zero": tick == 0 and y_min < 0})
        tick += y_step
    # At most about seven labels; the last week always, without crowding its neighbour.
    every = max(1, -(-n // 7))
    shown = [i for i in range(n) if i % every == 0 and n - 1 - i >= max(1, every // 2 + 1)] + ([n - 1] if n else [])
    x_labels = [{"x": x(i), "label": labels[i], "anchor": "end" if i == n - 1 and n > 1 else "middle"} for i in shown]
    drawn = []
    for s in series:
        sizes = s.get("n") or [None] * n
        points = [(x(i), y(v), v, labels[i], sizes[i]) for i, v in enumerate(s["values"]) if v is not None]
        path = " ".join(f"{'M' if k == 0 else 'L'}{px},{py}" for k, (px, py, *_) in enumerate(points))

        def said(v, size, lab=""):
            return f"{lab}{v:g}{suffix}" + (f" (n={size})" if size is not None else "")

        drawn.append(
            {
                "name": s["name"],
                "color": s["color"],
                "path": path,
                "dots": [{"x": px, "y": py, "title": said(v, size, f"{lab}: ")} for px, py, v, lab, size in points],
                "last": said(points[-1][2], points[-1][4]) if points else "-",
                "last_label": points[-1][3] if points else "",
            }
        )
    return {
        "width": WIDTH,
        "height": HEIGHT,
        "plot": {"left": PAD_LEFT, "right": WIDTH - PAD_RIGHT, "top": PAD_TOP, "bottom": HEIGHT - PAD_BOTTOM},
        "grid": grid,
        "x_labels": x_labels,
        "series": drawn,
        "empty": not any(d["dots"] for d in drawn),
    }


def bar_chart(rows: Sequence[dict[str, Any]], *, value: str, overlay: str | None = None) -> dict[str, Any]:
    """Horizontal bars, one per row; `overlay` draws a darker part of each bar (e.g. repeats of contacts)."""
    # issue 13: the label column fits the longest label (about 8 px a character at 14 px), never cut.
    longest = max(
        (len(str(r.get("label") or r.get("name") or "")) + len(str(r.get("team") or "")) for r in rows), default=0
    )
    label_w, bar_h, gap = min(max(120, 8 * longest + 24), 340), 22, 8
    plot_w = WIDTH - label_w - 150
    top = max((r[value] for r in rows), default=0) or 1
    bars = []
    for i, r in enumerate(rows):
        width = round(plot_w * r[value] / top, 1)
        bars.append(
            {
                "row": r,
                "y": i * (bar_h + gap),
                "text_y": i * (bar_h + gap) + bar_h * 0.7,
                "width": max(width, 1),
                "overlay": round(plot_w * r[overlay] / top, 1) if overlay else 0,
                "value_x": label_w + max(width, 1) + 6,
            }
        )
    return {
        "width": WIDTH,
        "height": max(len(rows) * (bar_h + gap), bar_h),
        "label_w": label_w,
        "bar_h": bar_h,
        "bars": bars,
        "empty": not rows,
    }
