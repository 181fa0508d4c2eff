"""When a campaign's rounds fire: cron and measurement triggers, catch-up and overlap policies.

Everything here is a pure function of its arguments (times are Unix seconds, UTC), so the
scheduler loop (:mod:`service.scheduler`) stays a thin shell and the policies can be tested
without a server. Every invalid value raises :class:`~service.errors.CampaignInvalid` naming
its field (``schedule.cron``, ``overlap``…).

Schedules
    ``{"cron": "*/20 * * * * *", "timezone": "Europe/Berlin"}``
        croniter syntax: five fields (minute hour day month weekday), or six with **seconds
        as the sixth, last field** (croniter's convention, not Quartz's). The expression is
        read in ``timezone`` (IANA name, default UTC), so ``0 8 * * *`` fires at 08:00 local
        time across daylight-saving changes.
    ``{"measurements": N}``
        fire as soon as ``N`` measured recipes have arrived since the last round took its
        measurements. The fire time is the arrival time of the measurement that completed the
        count, so every loop that looks at the same rows derives the same fire time.

Catch-up (fires of a cron schedule that were due while no scheduler ran, i.e. older than
``grace_s`` when first seen)
    ``skip``  record them all as ``missed``; only on-time fires run.
    ``once``  one run for all of them: the latest missed fire runs (unless an on-time fire
              runs anyway), the others are recorded as ``missed`` (Kubernetes CronJob's
              behaviour).
    ``all``   run each of them, oldest first, but at most ``max_catch_up``; older ones are
              ``missed``.

Overlap (a fire while another round of the campaign is still queued or running), named as in
Kubernetes CronJob's ``concurrencyPolicy``
    ``allow``    start the new round beside the old one.
    ``forbid``   record the fire as ``skipped``; a catch-up backlog (``all``) queues instead
                 and runs one round after the other. A measurement trigger simply waits: its
                 measurements stay new and fire once the running round ends.
    ``replace``  cancel the running round (its jobs are cancelled; measurements it had not yet
                 told go back to the pool) and start the new one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from service.errors import CampaignInvalid

OVERLAP_POLICIES = ("allow", "forbid", "replace")
CATCH_UP_POLICIES = ("skip", "once", "all")
#: A cron fire seen later than this after its time is "missed" (s).
DEFAULT_GRACE_S = 10.0
DEFAULT_MAX_CATCH_UP = 10
#: At most this many past fires are enumerated per look (older ones are dropped unrecorded).
MAX_ENUMERATED = 1000

RUN, MISSED = "run", "missed"
START, SKIP, REPLACE, QUEUE = "start", "skip", "replace", "queue"


@dataclass(frozen=True)
class Schedule:
    """A parsed schedule: ``cron`` + ``timezone``, or ``measurements`` (a count)."""

    cron: str | None = None
    timezone: str = "UTC"
    measurements: int | None = None

    def to_dict(self) -> dict:
        if self.cron is not None:
            return {"cron": self.cron, "timezone": self.timezone}
        return {"measurements": self.measurements}


def parse_schedule(spec, min_interval_s: float = 0.0) -> Schedule:
    """Check a schedule spec (see the module docstring).

    Parameters
    ----------
    spec : the ``schedule`` value of a campaign spec.
    min_interval_s : a cron schedule may not fire more often than this (s): a per-second
        schedule would write 86 400 run rows a day.

    Raises
    ------
    CampaignInvalid
        Not a mapping, both or neither of ``cron``/``measurements``, an invalid cron
        expression, fires closer than ``min_interval_s``, an unknown time zone or a count
        below 1.
    """
    if not isinstance(spec, dict):
        raise CampaignInvalid(
            "schedule", f"expected {{'cron': …}} or {{'measurements': N}}, got {spec!r}"
        )
    unknown = set(spec) - {"cron", "timezone", "measurements"}
    if unknown:
        raise CampaignInvalid(
            f"schedule.{sorted(unknown)[0]}", "unknown key; expected cron, timezone or measurements"
        )
    if ("cron" in spec) == ("measurements" in spec):
        raise CampaignInvalid("schedule", "give exactly one of 'cron' or 'measurements'")
    if "measurements" in spec:
        n = spec["measurements"]
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise CampaignInvalid("schedule.measurements", f"expected an integer ≥ 1, got {n!r}")
        if "timezone" in spec:
            raise CampaignInvalid("schedule.timezone", "only a cron schedule takes a time zone")
        return Schedule(measurements=n)
    expression, tz = spec["cron"], spec.get("timezone", "UTC")
    if not isinstance(expression, str) or len(expression.split()) not in (5, 6):
        raise CampaignInvalid(
            "schedule.cron",
            f"expected 5 fields (min hour day month weekday) or 6 (… seconds), got {expression!r}",
        )
    if not croniter.is_valid(expression):
        raise CampaignInvalid("schedule.cron", f"{expression!r} is not a valid cron expression")
    if not isinstance(tz, str):
        raise CampaignInvalid("schedule.timezone", f"expected an IANA time zone name, got {tz!r}")
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise CampaignInvalid("schedule.timezone", f"unknown time zone {tz!r}") from None
    schedule = Schedule(cron=" ".join(expression.split()), timezone=tz)
    gap = min_gap_s(schedule)
    if gap < min_interval_s:
        raise CampaignInvalid(
            "schedule.cron",
            f"{expression!r} fires {gap:g} s apart; this server allows one fire per "
            f"{min_interval_s:g} s at most",
        )
    return schedule


def min_gap_s(schedule: Schedule, n: int = 200) -> float:
    """The shortest time between two fires among the next ``n`` (s); five-field
    expressions fire at most once a minute."""
    if len(schedule.cron.split()) == 5:
        return 60.0
    it = croniter(schedule.cron, datetime.now(tz=ZoneInfo(schedule.timezone)))
    fires = [it.get_next(float) for _ in range(n)]
    return min(b - a for a, b in zip(fires, fires[1:], strict=False))


def check_policy(field: str, value, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise CampaignInvalid(field, f"expected one of {', '.join(allowed)}, got {value!r}")
    return value


def cron_fires(
    schedule: Schedule, after: float, until: float, limit: int = MAX_ENUMERATED
) -> list[float]:
    """Fire times in ``(after, until]`` (Unix s), oldest first; the latest ``limit`` of them."""
    start = datetime.fromtimestamp(after, tz=ZoneInfo(schedule.timezone))
    it = croniter(schedule.cron, start)
    fires: list[float] = []
    while True:
        t = it.get_next(float)
        if t > until:
            return fires
        fires.append(t)
        if len(fires) > limit:
            fires.pop(0)


def next_cron_fire(schedule: Schedule, after: float) -> float:
    """The first fire time strictly after ``after`` (Unix s)."""
    start = datetime.fromtimestamp(after, tz=ZoneInfo(schedule.timezone))
    return croniter(schedule.cron, start).get_next(float)


def plan_catch_up(
    due: list[float],
    now: float,
    policy: str,
    *,
    grace_s: float = DEFAULT_GRACE_S,
    max_catch_up: int = DEFAULT_MAX_CATCH_UP,
) -> list[tuple[float, str, bool]]:
    """Decide which due cron fires run.

    Parameters
    ----------
    due : fire times not yet recorded, oldest first.
    now : the current time (s).
    policy : ``skip``, ``once`` or ``all``.
    grace_s : a fire no older than this is on time.
    max_catch_up : ``all`` runs at most this many missed fires.

    Returns
    -------
    ``(fire_time, "run" | "missed", late)`` for every due fire, oldest first; ``late`` marks a
    catch-up fire.
    """
    late = [t for t in due if t < now - grace_s]
    on_time = [t for t in due if t >= now - grace_s]
    plan: list[tuple[float, str, bool]] = []
    if policy == "skip":
        plan += [(t, MISSED, True) for t in late]
    elif policy == "once":
        keep = late[-1] if late and not on_time else None
        plan += [(t, RUN if t == keep else MISSED, True) for t in late]
    elif policy == "all":
        kept = set(late[-max_catch_up:]) if max_catch_up > 0 else set()
        plan += [(t, RUN if t in kept else MISSED, True) for t in late]
    else:
        raise ValueError(f"unknown catch-up policy {policy!r}")
    return plan + [(t, RUN, False) for t in on_time]


def overlap_action(policy: str, active_runs: int, *, late: bool = False) -> str:
    """What to do with a fire to run while ``active_runs`` rounds are queued or running.

    Returns
    -------
    ``"start"`` (queue it to start now), ``"queue"`` (queue it behind the active ones),
    ``"skip"`` (record it as skipped) or ``"replace"`` (cancel the active ones, then start).
    """
    if active_runs == 0 or policy == "allow":
        return START
    if policy == "forbid":
        return QUEUE if late else SKIP
    if policy == "replace":
        return REPLACE
    raise ValueError(f"unknown overlap policy {policy!r}")


def measurement_fire(arrivals: list[float], n: int) -> float | None:
    """Fire time of a ``{"measurements": n}`` trigger: the arrival time (s) of the ``n``-th
    new measured recipe, or None while fewer than ``n`` arrived. ``arrivals``: one time per new
    measured recipe, in any order."""
    if len(arrivals) < n:
        return None
    return sorted(arrivals)[n - 1]
