# SPDX-License-Identifier: BSD-3-Clause
"""Who owns a survey's products and when they become public (a survey's ``[access]``).

ESO's rule is the default: a product is public one proprietary period after
the night it was observed, and until then only its owning group (the survey
team, a DaCHS group) sees it.  A survey's config file states the group and
the period, and may extend the period for a field or a night (an approved
extension, a programme's own rules)::

    [access]
    group = "vvv"              # DaCHS group owning the products
    proprietary_days = 365     # release = night + this many days
    [[access.embargo]]         # later releases: field and/or night, and the date
    field = "vvv_disc"
    night = "20240524"
    until = "2099-12-31"

The release date of a product is the latest of the rules that match it; a
per-run override (``release`` in the run's parameters) comes last.  Derived
rows take the latest release date of the products they come from.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

__all__ = ["AccessPolicy", "Embargo", "access_policy", "night_date"]

#: ESO's standard proprietary period.
DEFAULT_PROPRIETARY_DAYS = 365


def night_date(night: str | int) -> date:
    """The evening date of a night written YYYYMMDD."""
    return datetime.strptime(str(night), "%Y%m%d").date()


@dataclass(frozen=True)
class Embargo:
    """A later release for the products of a field and/or a night."""

    until: date
    field: str | None = None
    night: str | None = None

    def matches(self, field: str | None, night: str | None) -> bool:
        return ((self.field is None or self.field == field)
                and (self.night is None or self.night == night))


@dataclass(frozen=True)
class AccessPolicy:
    """A survey's owning group and release rules."""

    group: str
    """The DaCHS group that owns the survey's products before their release."""
    proprietary_days: int = DEFAULT_PROPRIETARY_DAYS
    embargoes: tuple[Embargo, ...] = ()

    def release(self, night: str | int, field: str | None = None,
                override: date | None = None) -> date:
        """The release date of a product of ``field`` observed on ``night``."""
        night = str(night)
        released = night_date(night) + timedelta(days=self.proprietary_days)
        for embargo in self.embargoes:
            if embargo.matches(field, night):
                released = max(released, embargo.until)
        return override if override is not None else released

    @staticmethod
    def latest(dates: Sequence[date | None]) -> date | None:
        """The release date of a row derived from products released on ``dates``."""
        known = [d for d in dates if d is not None]
        return max(known) if known else None


def _date(value: Any, where: str) -> date:
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise ValueError(f"{where}: {value!r} is not a date (YYYY-MM-DD)") from None


def access_policy(config: Mapping[str, Any], key: str, source: str = "") -> AccessPolicy:
    """The ``[access]`` table of a survey's parsed config (the group defaults to its key)."""
    sec = config.get("access", {})
    where = f"{source}: [access]"
    group = str(sec.get("group", key))
    days = sec.get("proprietary_days", DEFAULT_PROPRIETARY_DAYS)
    if not isinstance(days, int) or days < 0:
        raise ValueError(f"{where} proprietary_days must be a whole number of days ≥ 0")
    embargoes = []
    for entry in sec.get("embargo", ()):
        if "until" not in entry:
            raise ValueError(f"{where} embargo {dict(entry)} has no 'until'")
        night = entry.get("night")
        embargoes.append(Embargo(_date(entry["until"], where), entry.get("field"),
                                 None if night is None else str(night)))
    return AccessPolicy(group, days, tuple(embargoes))
