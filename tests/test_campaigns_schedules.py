"""Schedules, catch-up and overlap policies as pure functions (no server)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from service.campaigns import schedules
from service.campaigns.schedules import MISSED, RUN
from service.errors import CampaignInvalid


def ts(*args) -> float:
    return datetime(*args, tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"cron": "61 * * * *"}, "schedule.cron"),
        ({"cron": "every minute"}, "schedule.cron"),
        ({"cron": "* * *"}, "schedule.cron"),
        ({"cron": "* * * * *", "timezone": "Mars/Olympus"}, "schedule.timezone"),
        ({"cron": "* * * * *", "measurements": 3}, "schedule"),
        ({}, "schedule"),
        ({"measurements": 0}, "schedule.measurements"),
        ({"measurements": 2, "timezone": "UTC"}, "schedule.timezone"),
        ({"cron": "* * * * *", "every": 3}, "schedule.every"),
    ],
)
def test_bad_schedules_name_their_field(spec, field):
    with pytest.raises(CampaignInvalid) as err:
        schedules.parse_schedule(spec)
    assert err.value.field == field
    assert "\n" not in str(err.value)


def test_six_fields_mean_seconds_last():
    schedule = schedules.parse_schedule({"cron": "* * * * * */5"})
    start = ts(2024, 3, 1, 12, 0, 0)
    fires = schedules.cron_fires(schedule, start, start + 20)
    assert [f - start for f in fires] == [5, 10, 15, 20]
    assert schedules.next_cron_fire(schedule, start + 20) == start + 25


def test_cron_is_read_in_its_time_zone_across_daylight_saving():
    # 08:00 in Berlin is 07:00 UTC in winter (CET, UTC+1) and 06:00 UTC in summer (CEST, UTC+2).
    schedule = schedules.parse_schedule({"cron": "0 8 * * *", "timezone": "Europe/Berlin"})
    assert schedules.next_cron_fire(schedule, ts(2024, 1, 15, 0, 0)) == ts(2024, 1, 15, 7, 0)
    assert schedules.next_cron_fire(schedule, ts(2024, 7, 15, 0, 0)) == ts(2024, 7, 15, 6, 0)


def test_enumeration_keeps_the_latest_fires_only():
    schedule = schedules.parse_schedule({"cron": "* * * * * *"})  # every second
    start = ts(2024, 3, 1)
    fires = schedules.cron_fires(schedule, start, start + 50, limit=10)
    assert fires == [start + s for s in range(41, 51)]


NOW = 1000.0
LATE = [NOW - 30, NOW - 20, NOW - 10]
ON_TIME = [NOW - 0.5]


def test_catch_up_skip_runs_only_on_time_fires():
    plan = schedules.plan_catch_up(LATE + ON_TIME, NOW, "skip", grace_s=5)
    assert [a for _, a, _ in plan] == [MISSED, MISSED, MISSED, RUN]
    assert [late for *_, late in plan] == [True, True, True, False]


def test_catch_up_once_runs_one_fire_for_all_missed():
    plan = schedules.plan_catch_up(LATE, NOW, "once", grace_s=5)
    assert [(t, a) for t, a, _ in plan] == [(LATE[0], MISSED), (LATE[1], MISSED), (LATE[2], RUN)]
    # An on-time fire runs anyway; then the missed ones need no extra run.
    plan = schedules.plan_catch_up(LATE + ON_TIME, NOW, "once", grace_s=5)
    assert [a for _, a, _ in plan] == [MISSED, MISSED, MISSED, RUN]


def test_catch_up_all_is_bounded():
    plan = schedules.plan_catch_up(LATE, NOW, "all", grace_s=5, max_catch_up=2)
    assert [a for _, a, _ in plan] == [MISSED, RUN, RUN]
    plan = schedules.plan_catch_up(LATE + ON_TIME, NOW, "all", grace_s=5, max_catch_up=10)
    assert [a for _, a, _ in plan] == [RUN] * 4


def test_overlap_actions():
    assert schedules.overlap_action("forbid", 0) == schedules.START
    assert schedules.overlap_action("forbid", 1) == schedules.SKIP
    assert schedules.overlap_action("forbid", 1, late=True) == schedules.QUEUE
    assert schedules.overlap_action("allow", 2) == schedules.START
    assert schedules.overlap_action("replace", 1) == schedules.REPLACE
    with pytest.raises(CampaignInvalid) as err:
        schedules.check_policy("overlap", "sometimes", schedules.OVERLAP_POLICIES)
    assert err.value.field == "overlap"


def test_measurement_trigger_fires_at_the_nth_arrival():
    assert schedules.measurement_fire([5.0, 1.0], 3) is None
    assert schedules.measurement_fire([5.0, 1.0, 3.0, 9.0], 3) == 5.0
