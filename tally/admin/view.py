"""From the dashboard's numbers to what the template shows: formatted values and the SVG charts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from markupsafe import Markup

from .. import currency as money
from .charts import bar_chart, grouped_bar_chart, hbar_chart, line_chart
from .service import PAYMENT_HEALTHY, PAYMENT_WARNING, Dashboard


@dataclass(frozen=True)
class CurrencyChart:
    currency: str
    chart: Markup
    rows: list[tuple[str, str]]  # (day, formatted value) for the table behind the chart


def _amount(currency: str) -> Any:
    return lambda value: money.format_amount(int(round(value)), currency)


def _count(value: float) -> str:
    return f"{int(round(value))}"


def _pct(value: float) -> str:
    return f"{value * 100:.0f} %"


def dashboard_view(data: Dashboard) -> dict[str, Any]:
    labels = [d.strftime("%b %d") for d in data.period.days]
    iso = [d.isoformat() for d in data.period.days]
    daily_rates = [s / (s + f) if s + f else None for s, f in data.payments.per_day]
    success_chart = line_chart(labels, daily_rates, title="Payment success rate per day", describe=_pct, y_max=1.0,
                               thresholds=[(PAYMENT_HEALTHY, "ok", "healthy from 95 %"),
                                           (PAYMENT_WARNING, "bad", "critical below 90 %")])
    declines_chart = hbar_chart(data.payments.decline_codes, title="Top decline codes", describe=_count)

    c = data.credits
    credits_series = [("granted", "granted", c.granted), ("used", "used", c.used), ("expired", "expired", c.expired)]
    credits_chart = grouped_bar_chart(labels, credits_series, title="Credits granted, used and expired per day",
                                      describe=lambda v: f"{int(v):,}")

    return {
        "data": data,
        "credits_chart": credits_chart,
        "credits_rows": [(day, g, u, e) for day, g, u, e in zip(iso, c.granted, c.used, c.expired, strict=True)
                         if g or u or e],
        "first_day": data.period.first_day.isoformat(),
        "last_day": data.period.last_day.isoformat(),
        "revenue_charts": _revenue_charts(data, labels, iso),
        "success_chart": success_chart,
        "success_rows": [(day, s, f) for day, (s, f) in zip(iso, data.payments.per_day, strict=True) if s or f],
        "declines_chart": declines_chart,
        "mrr_charts": _mrr_charts(data, labels, iso),
        "mrr_currencies": sorted(data.mrr.by_currency.items()),
    }


def _revenue_charts(data: Dashboard, labels: list[str], iso: list[str]) -> list[CurrencyChart]:
    charts = []
    for r in data.revenue:
        describe = _amount(r.currency)
        chart = bar_chart(labels, r.per_day, title=f"Revenue per day, {r.currency.upper()}", describe=describe,
                          hover=[f"{day}: {describe(v)}" for day, v in zip(iso, r.per_day, strict=True)])
        charts.append(CurrencyChart(r.currency, chart, [(day, describe(v)) for day, v in
                                                        zip(iso, r.per_day, strict=True) if v]))
    return charts


def _mrr_charts(data: Dashboard, labels: list[str], iso: list[str]) -> list[CurrencyChart]:
    charts = []
    for currency, values in sorted(data.mrr_per_day.items()):
        describe = _amount(currency)
        charts.append(CurrencyChart(currency, line_chart(
            labels, values, title=f"MRR at the end of each day, {currency.upper()}", describe=describe),
            [(day, describe(v)) for day, v in zip(iso, values, strict=True)]))
    return charts
