"""Template filters of the metrics dashboard: shares as people read them."""

from __future__ import annotations

from django import template

register = template.Library()


@register.filter
def pct(rate: float | str | None, digits: int = 1) -> str:
    """0.1234 -> '12.3 %'; None (nothing to count) or an empty template value -> '—', never '0 %'."""
    if rate is None or rate == "":
        return "—"
    return f"{float(rate) * 100:.{int(digits)}f} %"
