"""The four charts of a company's report, drawn with matplotlib's Agg backend (files only, no window,
no network) from ``CompanyReportData``.

Colours are the Okabe-Ito palette, told apart with the common colour-vision deficiencies; over- and
under-budget also differ by more than colour (the legend, the sign of a bar). Outside text (ProPay
and worker names) is drawn literally: mathtext is off, so a "$" in a name is a dollar sign.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Literal

import pandas as pd

from protiv_dagster.reports.data import CompanyReportData

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from matplotlib.typing import RcKeyType


def _matplotlib() -> ModuleType:
    """matplotlib on its Agg backend, imported when a chart is drawn. Every process that loads the
    code location imports this module (a run worker before each run, `protiv sync`), and most of
    them draw nothing: importing matplotlib there cost some 0.4 s of every definitions load."""
    import matplotlib

    matplotlib.use("Agg")  # explicit: a report never opens a window, whatever MPLBACKEND says
    return matplotlib


BLUE, SKY, ORANGE, GREEN, VERMILLION = "#0072B2", "#56B4E9", "#E69F00", "#009E73", "#D55E00"
BUDGET_GREY, INK, MUTED = "#C8D1DA", "#1F2933", "#5F6B76"
# 9 x 4.5 inches: 900 x 450 pixels at 100 dpi, the size kept in Dagster's event log.
SIZE = (9.0, 4.5)
# At most this many bars per chart: the largest ones, with a note saying how many were left out.
MOST_BARS = 15
NAME_CHARACTERS = 46
# Periods up to this many carry their value on the chart; more would overlap.
LABELLED_PERIODS = 12

STYLE: dict[RcKeyType, object] = {
    "text.parse_math": False,
    "font.size": 10,
    "axes.titlesize": 12,
    "axes.titleweight": "bold",
    "axes.titlelocation": "left",
    "axes.edgecolor": MUTED,
    "axes.labelcolor": INK,
    "text.color": INK,
    "xtick.color": MUTED,
    "ytick.color": INK,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "legend.frameon": False,
}


@dataclass(frozen=True)
class Chart:
    key: str
    title: str
    how_to_read: str
    draw: Callable[[Figure, CompanyReportData], None]


def _figure() -> Figure:
    _matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=SIZE, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _short(text: object) -> str:
    """One line of at most NAME_CHARACTERS, cut in the middle: names of one job's milestones differ
    at their end ("... / Week 1", "... / Week 3")."""
    text = " ".join(str(text).split())  # no line breaks or tabs from a vendor
    if len(text) <= NAME_CHARACTERS:
        return text
    head = (NAME_CHARACTERS - 1) // 2
    return text[:head].rstrip() + "…" + text[len(text) - (NAME_CHARACTERS - 1 - head) :].lstrip()


def _nothing_yet(figure: Figure, title: str, message: str) -> None:
    """A panel saying what is missing, instead of an empty axis a reader would puzzle over."""
    axes = figure.add_subplot()
    axes.set_axis_off()
    axes.set_title(title)
    axes.text(0.5, 0.55, message, ha="center", va="center", fontsize=15, color=INK, transform=axes.transAxes)
    axes.text(
        0.5,
        0.4,
        "The chart fills in after the next sync that completes one.",
        ha="center",
        va="center",
        color=MUTED,
        transform=axes.transAxes,
    )


def _label_with_cut_note(axes: Axes, label: str, shown: int, total: int, what: str) -> None:
    """The value axis's label, with a second line saying how many were left out when the bars were cut
    (in the label, so the layout keeps room for it)."""
    note = f"\nShowing the {shown} largest of {total} {what}." if total > shown else ""
    axes.set_xlabel(label + note)


def _value_grid(axes: Axes, axis: Literal["x", "y"]) -> None:
    axes.grid(axis=axis, color="#E4E7EB", linewidth=0.8)
    axes.set_axisbelow(True)


def _dollars(value: float, _position: object) -> str:
    return f"${value:,.0f}"


BUDGET_TITLE = "Budget against actual hours, completed ProPays"


def draw_budget_vs_actual(figure: Figure, data: CompanyReportData) -> None:
    completed = data.completed
    if completed.empty:
        _nothing_yet(figure, BUDGET_TITLE, "No completed ProPays yet")
        return
    shown = completed.nlargest(MOST_BARS, "budget_hours").iloc[::-1]  # the largest at the top
    axes = figure.add_subplot()
    positions = range(len(shown))
    axes.barh(positions, shown["budget_hours"], height=0.8, color=BUDGET_GREY, label="Budget")
    over = shown["actual_hours"] > shown["budget_hours"]
    for is_over, colour, label in (
        (False, BLUE, "Actual, at or under budget"),
        (True, VERMILLION, "Actual, over budget"),
    ):
        rows = [index for index, flag in enumerate(over) if flag == is_over]
        if rows:
            axes.barh(rows, shown["actual_hours"].iloc[rows], height=0.4, color=colour, label=label)
    axes.set_yticks(list(positions), [_short(name) for name in shown["name"]])
    _label_with_cut_note(axes, "Worker-hours (h)", len(shown), len(completed), "completed ProPays (by budget hours)")
    axes.set_title(BUDGET_TITLE)
    _value_grid(axes, "x")
    figure.legend(loc="outside lower center", ncols=3)


WORKERS_TITLE = "Bonus per worker: final and provisional, apart"


def draw_bonus_per_worker(figure: Figure, data: CompanyReportData) -> None:
    workers = data.workers
    if workers.empty:
        _nothing_yet(figure, WORKERS_TITLE, "No worker bonuses yet")
        return
    shown = workers.sort_values(["final_bonus", "provisional_bonus"], ascending=False).head(MOST_BARS).iloc[::-1]
    axes = figure.add_subplot()
    positions = list(range(len(shown)))
    axes.barh(
        [p + 0.2 for p in positions], shown["final_bonus"], height=0.4, color=BLUE, label="Final (completed ProPays)"
    )
    axes.barh(
        [p - 0.2 for p in positions],
        shown["provisional_bonus"],
        height=0.4,
        color=ORANGE,
        hatch="///",
        edgecolor="white",
        label="Provisional (started ProPays, may change)",
    )
    names = [
        _short(" ".join(str(part) for part in (first, last) if isinstance(part, str) and part) or worker_id)
        for first, last, worker_id in zip(shown["first_name"], shown["last_name"], shown["worker_id"])
    ]
    axes.set_yticks(positions, names)
    axes.xaxis.set_major_formatter(_dollars)  # a function: matplotlib wraps it in a FuncFormatter
    _label_with_cut_note(axes, "Bonus ($)", len(shown), len(workers), "workers with a bonus (by final bonus)")
    axes.set_title(WORKERS_TITLE)
    _value_grid(axes, "x")
    figure.legend(loc="outside lower center", ncols=3)


HOURS_TITLE = "Hours gained per week (budget minus actual, completed ProPays)"


def _few_periods_centred(axes: Axes, count: int, slots: int = 8) -> None:
    """With fewer than ``slots`` periods, keep them at a natural width in the middle instead of one
    bar stretched over the whole axis."""
    pad = max(0.0, (slots - count) / 2)
    axes.set_xlim(-0.5 - pad, count - 0.5 + pad)


def _period_labels(axes: Axes, starts: pd.Series, fmt: str) -> None:
    step = max(1, math.ceil(len(starts) / 14))  # at most ~14 labels, never overlapping
    positions = list(range(len(starts)))
    axes.set_xticks(positions[::step], [start.strftime(fmt) for start in starts.iloc[::step]])


def draw_hours_gained(figure: Figure, data: CompanyReportData) -> None:
    weeks = data.weeks
    if weeks.empty:
        _nothing_yet(figure, HOURS_TITLE, "No completed ProPays yet")
        return
    axes = figure.add_subplot()
    gained = weeks["hours_gained"]
    colours = [GREEN if value >= 0 else VERMILLION for value in gained]
    axes.bar(range(len(weeks)), gained, color=colours, width=0.7)
    axes.axhline(0, color=MUTED, linewidth=0.8)
    for position, value in enumerate(gained if len(weeks) <= LABELLED_PERIODS else ()):
        axes.annotate(
            f"{value:+,.1f} h",
            (position, value),
            xytext=(0, 3 if value >= 0 else -12),
            textcoords="offset points",
            ha="center",
            fontsize=8,
            color=MUTED,
        )
    _few_periods_centred(axes, len(weeks))
    _period_labels(axes, weeks["period_start"], "%b %d")
    axes.set_xlabel("Week of completion (ISO week, starting Monday)")
    axes.set_ylabel("Hours gained (h)")
    axes.set_title(HOURS_TITLE)
    _value_grid(axes, "y")


EFFICIENCY_TITLE = "Efficiency over time (budget hours / actual hours)"


def draw_efficiency(figure: Figure, data: CompanyReportData) -> None:
    # Weeks while they fit on one chart, months once there are more than half a year of weeks.
    periods, by, fmt = (data.weeks, "Week", "%b %d") if len(data.weeks) <= 26 else (data.months, "Month", "%b %Y")
    periods = periods[periods["actual_hours"] > 0] if len(periods) else periods
    if periods.empty:
        _nothing_yet(figure, EFFICIENCY_TITLE, "No completed ProPays yet")
        return
    efficiency = 100 * periods["budget_hours"] / periods["actual_hours"]
    axes = figure.add_subplot()
    positions = list(range(len(periods)))
    axes.axhline(100, color=MUTED, linewidth=1, linestyle="--")
    axes.annotate(
        "100 % = on budget",
        (1, 100),
        xycoords=("axes fraction", "data"),
        xytext=(-4, 4),
        textcoords="offset points",
        ha="right",
        color=MUTED,
        fontsize=9,
    )
    axes.plot(positions, efficiency, color=BLUE, marker="o", linewidth=2)
    for position, value in zip(positions, efficiency) if len(positions) <= LABELLED_PERIODS else ():
        axes.annotate(
            f"{value:.0f} %", (position, value), xytext=(0, 7), textcoords="offset points", ha="center", fontsize=8
        )
    low, high = min(efficiency.min(), 100), max(efficiency.max(), 100)
    margin = max(5.0, (high - low) * 0.15)
    axes.set_ylim(low - margin, high + margin)
    _few_periods_centred(axes, len(positions))
    axes.yaxis.set_major_formatter(lambda value, _: f"{value:.0f} %")
    _period_labels(axes, periods["period_start"].reset_index(drop=True), fmt)
    axes.set_xlabel(f"{by} of completion")
    axes.set_ylabel("Efficiency (% of budget)")
    axes.set_title(EFFICIENCY_TITLE)
    _value_grid(axes, "y")


CHARTS = (
    Chart(
        "budget_vs_actual",
        BUDGET_TITLE,
        "Each completed ProPay: the wide grey bar is the hours budgeted, the narrow bar the hours the crew "
        "worked. Blue ends inside the grey (under budget: the crew earns a bonus); red runs past it (over budget).",
        draw_budget_vs_actual,
    ),
    Chart(
        "bonus_per_worker",
        WORKERS_TITLE,
        "Each worker's ProPay bonuses in dollars. Blue is final: completed ProPays, it will not change. Orange "
        "(hatched) is provisional: ProPays still under way, it may go up or down before they are completed. "
        "The two are never added together.",
        draw_bonus_per_worker,
    ),
    Chart(
        "hours_gained",
        HOURS_TITLE,
        "For the ProPays completed each week: the hours budgeted minus the hours worked. Green bars are hours "
        "the crews gained; a red bar below the line is a week whose ProPays ran over budget in total.",
        draw_hours_gained,
    ),
    Chart(
        "efficiency",
        EFFICIENCY_TITLE,
        "Budget hours divided by actual hours of the ProPays completed in each period. The dashed line is 100 %: "
        "on budget. Above it the crews finished under budget (110 % = 10 % faster than budgeted); below it, over.",
        draw_efficiency,
    ),
)


def chart_png(chart: Chart, data: CompanyReportData, dpi: int = 100, *, titled: bool = True) -> bytes:
    """The chart as a PNG of 9 x 4.5 inches at ``dpi`` (900 x 450 pixels at 100); without its title
    when ``titled`` is false (a page whose heading says it already)."""
    with _matplotlib().rc_context(STYLE):
        figure = _figure()
        chart.draw(figure, data)
        if not titled:
            for axes in figure.axes:
                axes.set_title("")
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=dpi, facecolor="white")
    return buffer.getvalue()
