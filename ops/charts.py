"""Chart geometry for server-rendered SVG: pure functions from counts to shapes.

The templates draw what these return (`templates/ops/_chart_*.html`): no JavaScript, no chart
library, every mark a link to the filtered trail behind it and a `<title>` a screen reader or a
hover reads. Each function is small and takes plain data, so it is tested without a database.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

WIDTH = 720
HEIGHT = 220
LEFT = 40  # room for the y-axis labels
BOTTOM = 24  # room for the x-axis labels
TOP = 8


@dataclass
class Segment:
    series: str
    value: int
    x: float
    y: float
    width: float
    height: float
    color: str
    href: str
    title: str


@dataclass
class Column:
    label: str
    total: int
    x: float
    segments: list[Segment] = field(default_factory=list)
    show_label: bool = True


@dataclass
class Tick:
    value: int
    y: float


@dataclass
class Columns:
    columns: list[Column]
    ticks: list[Tick]
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    baseline: float = HEIGHT - BOTTOM
    total: int = 0


def nice_max(value: int) -> int:
    """The smallest 1, 2 or 5 * 10^n at or above `value` (at least 1): the axis's top.

    >>> [nice_max(v) for v in (0, 1, 3, 7, 12, 480, 501)]
    [1, 1, 5, 10, 20, 500, 1000]
    """
    if value <= 1:
        return 1
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if value <= step * power:
            return step * power
    return 10 * power  # pragma: no cover (the loop ends at 10)


def stacked_columns(
    buckets: list[tuple[str, dict[str, int], dict[str, str], str]],
    colors: dict[str, str],
    *,
    label_every: int = 1,
) -> Columns:
    """Columns of stacked segments: `buckets` are (label, counts by series, link by series,
    title prefix), in order; series are stacked in the order of `colors`."""
    top = nice_max(max((sum(counts.values()) for _, counts, _, _ in buckets), default=0))
    plot_h = HEIGHT - BOTTOM - TOP
    slot = (WIDTH - LEFT) / max(len(buckets), 1)
    bar_w = max(2.0, slot * 0.72)
    columns: list[Column] = []
    for i, (label, counts, links, prefix) in enumerate(buckets):
        x = LEFT + i * slot + (slot - bar_w) / 2
        column = Column(label=label, total=sum(counts.values()), x=x + bar_w / 2)
        column.show_label = i % label_every == 0
        y = float(HEIGHT - BOTTOM)
        for series, color in colors.items():
            value = counts.get(series, 0)
            if not value:
                continue
            height = plot_h * value / top
            y -= height
            column.segments.append(
                Segment(
                    series=series,
                    value=value,
                    x=round(x, 1),
                    y=round(y, 1),
                    width=round(bar_w, 1),
                    height=round(max(height, 1.0), 1),
                    color=color,
                    href=links.get(series, ""),
                    title=f"{prefix}: {value} {series}",
                )
            )
        columns.append(column)
    ticks = [
        Tick(value=v, y=round(HEIGHT - BOTTOM - plot_h * v / top, 1)) for v in (0, top // 2, top)
    ]
    if top == 1:
        ticks = [Tick(0, HEIGHT - BOTTOM), Tick(1, TOP)]
    return Columns(columns=columns, ticks=ticks, total=sum(c.total for c in columns))


@dataclass
class Bar:
    label: str
    value: int
    width: float
    href: str
    title: str
    color: str
    y: float


@dataclass
class Bars:
    bars: list[Bar]
    width: int
    height: int
    label_width: int


def horizontal_bars(
    rows: list[tuple[str, int, str, str]], *, width: int = 520, label_width: int = 200
) -> Bars:
    """One bar per row (label, value, link, color), longest first as given.

    >>> [round(b.width) for b in horizontal_bars([("a", 10, "", ""), ("b", 5, "", "")]).bars]
    [260, 130]
    """
    room = width - label_width - 60
    top = max((value for _, value, _, _ in rows), default=0) or 1
    bars = [
        Bar(
            label=label,
            value=value,
            width=round(max(room * value / top, 1.0), 1),
            href=href,
            title=f"{label}: {value}",
            color=color or "#3b5bdb",
            y=i * 26,
        )
        for i, (label, value, href, color) in enumerate(rows)
    ]
    return Bars(bars=bars, width=width, height=max(len(bars) * 26, 26), label_width=label_width)


@dataclass
class Cell:
    x: float
    y: float
    value: int
    opacity: float
    alert: bool
    href: str
    title: str


@dataclass
class HeatRow:
    label: str
    y: float
    cells: list[Cell]


@dataclass
class Heatmap:
    rows: list[HeatRow]
    days: list[tuple[str, float]]
    width: int
    height: int
    label_width: int
    cell: int


def heatmap(
    rows: list[tuple[str, str, dict[str, tuple[int, int]]]],
    days: list[str],
    *,
    label_width: int = 220,
    cell: int = 22,
) -> Heatmap:
    """A grid: one row per (label, link) and one cell per day, from `{day: (reads, unmasked)}`.
    Darker means more reads; a cell where values came back unmasked is outlined."""
    top = max((n for _, _, by_day in rows for n, _ in by_day.values()), default=0) or 1
    heat_rows = []
    for r, (label, href, by_day) in enumerate(rows):
        y = 18 + r * (cell + 2)
        cells = []
        for d, day in enumerate(days):
            reads, unmasked = by_day.get(day, (0, 0))
            cells.append(
                Cell(
                    x=label_width + d * (cell + 2),
                    y=y,
                    value=reads,
                    opacity=round(0.12 + 0.88 * reads / top, 2) if reads else 0.0,
                    alert=unmasked > 0,
                    href=href,
                    title=f"{label} on {day}: {reads} reads"
                    + (f", {unmasked} unmasked" if unmasked else ""),
                )
            )
        heat_rows.append(HeatRow(label=label, y=y, cells=cells))
    step = max(1, math.ceil(44 / (cell + 2)))  # a "12-31" label needs about 40 px
    labels = [
        (day[5:], label_width + d * (cell + 2) + cell / 2)
        for d, day in enumerate(days)
        if d % step == 0
    ]
    return Heatmap(
        rows=heat_rows,
        days=labels,
        width=label_width + len(days) * (cell + 2) + 4,
        height=18 + len(rows) * (cell + 2) + 4,
        label_width=label_width,
        cell=cell,
    )
