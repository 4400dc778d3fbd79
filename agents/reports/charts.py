"""The report's charts as PNG bytes: matplotlib's Agg canvas, no display, no global pyplot state.

Each chart is drawn on its own `Figure`, so rendering is safe in a web worker thread
and leaves nothing behind. PNGs carry no timestamp: the same data gives the same bytes,
so a rerun of the report does not make a new commit for its images.
"""

from __future__ import annotations

import io
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from agents.reports.model import RUNGS, DailyReport

CHARTS = ("decisions", "cost")
COLOURS = {"deterministic": "#2e7d32", "cached": "#1565c0", "llm": "#ef6c00"}
OTHER_COLOUR = "#9e9e9e"
COE_COLOUR = "#6a1b9a"


def render_charts(report: DailyReport) -> dict[str, bytes]:
    """{"decisions": PNG, "cost": PNG} for the 14 days that end on the report's day."""
    return {"decisions": decisions_chart(report), "cost": cost_chart(report)}


def chart_filename(report: DailyReport, chart: str) -> str:
    return f"{report.date.isoformat()}-{chart}.png"


def _figure() -> Figure:
    figure = Figure(figsize=(8, 3.2), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()


def _labels(report: DailyReport) -> list[str]:
    return [day.date.strftime("%m-%d") for day in report.series]


def _frame(axes: Any, days: int, highest: float) -> None:
    """Every day on the axis, bars from zero, and room above the highest (1 when all are zero)."""
    axes.set_xlim(-0.6, days - 0.4)
    axes.set_ylim(0, highest * 1.15 if highest > 0 else 1)


def decisions_chart(report: DailyReport) -> bytes:
    figure = _figure()
    axes = figure.add_subplot()
    labels = _labels(report)
    positions = range(len(labels))
    seen = {rung for day in report.series for rung in day.decisions}
    rungs = [r for r in RUNGS if r in seen] + sorted(seen - set(RUNGS))
    bottom = [0] * len(labels)
    for rung in rungs:
        heights = [day.decisions.get(rung, 0) for day in report.series]
        axes.bar(positions, heights, bottom=bottom, label=rung, color=COLOURS.get(rung, OTHER_COLOUR))
        bottom = [b + h for b, h in zip(bottom, heights, strict=True)]
    if rungs:
        axes.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
    else:
        axes.text(0.5, 0.5, "no decisions recorded", ha="center", va="center", transform=axes.transAxes, color="#666")
    _frame(axes, len(labels), max(bottom, default=0))
    axes.set_title(f"Decisions by rung per day ({report.timezone})", fontsize=10)
    axes.set_xticks(list(positions), labels, fontsize=7, rotation=45)
    axes.set_ylabel("decisions", fontsize=8)
    axes.tick_params(axis="y", labelsize=7)
    axes.spines[["top", "right"]].set_visible(False)
    return _png(figure)


def cost_chart(report: DailyReport) -> bytes:
    figure = _figure()
    axes = figure.add_subplot()
    labels = _labels(report)
    positions = list(range(len(labels)))
    costs = [day.cost_usd for day in report.series]
    coe = [day.coe_cost_usd for day in report.series]
    totals = [day.total_cost_usd for day in report.series]
    budget = report.headline.budget_usd
    colours = ["#c62828" if budget is not None and total > budget else "#ef6c00" for total in totals]
    axes.bar(positions, costs, color=colours, label="agents (ledger)")
    if any(coe):
        axes.bar(positions, coe, bottom=costs, color=COE_COLOUR, label="CoE jobs")
    if budget is not None:
        axes.axhline(budget, color="#424242", linestyle="--", linewidth=1, label=f"budget ${budget:,.2f}/day")
    _frame(axes, len(labels), max([budget or 0, *totals]))
    if not any(totals):
        axes.text(0.5, 0.5, "no LLM spend recorded", ha="center", va="center", transform=axes.transAxes, color="#666")
    axes.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
    axes.set_title("LLM cost per day (USD)" + ("" if budget is not None else " — no budget set"), fontsize=10)
    axes.set_xticks(positions, labels, fontsize=7, rotation=45)
    axes.set_ylabel("USD", fontsize=8)
    axes.tick_params(axis="y", labelsize=7)
    axes.spines[["top", "right"]].set_visible(False)
    return _png(figure)
