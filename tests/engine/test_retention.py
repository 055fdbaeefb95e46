"""GFS retention (engine/retention.py): calendar buckets, chains, grace, and its invariants."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backup_pipeline.engine.retention import BackupEntry, Decision, RetentionPolicy, decide, parse_duration
from backup_pipeline.errors import UsageError

UTC = timezone.utc


def at(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def full(bid: str, when: datetime) -> BackupEntry:
    return BackupEntry(bid, "complete", "full", None, [bid], when)


def incr(bid: str, when: datetime, parent: BackupEntry) -> BackupEntry:
    return BackupEntry(bid, "complete", "incremental", parent.id, parent.chain + [bid], when)


def partial(bid: str, when: datetime, state: str = "incomplete") -> BackupEntry:
    return BackupEntry(bid, state, "full", None, [], when)


def by_id(decisions: list[Decision]) -> dict[str, Decision]:
    return {d.id: d for d in decisions}


def kept(decisions: list[Decision]) -> set[str]:
    return {d.id for d in decisions if d.action == "keep"}


# -- durations ------------------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("36h", timedelta(hours=36)), ("7d", timedelta(days=7)), ("2w", timedelta(days=14)),
    ("1m", timedelta(days=30)), ("1y", timedelta(days=365)), ("1y2m3d", timedelta(days=365 + 60 + 3)),
    ("1d12h", timedelta(hours=36)), (" 7D ", timedelta(days=7)), ("0h", timedelta(0)),
])
def test_parse_duration(text, expected):
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "7", "d", "7x", "-7d", "7d7d", "1.5d", "7 d", "7dd", "abc", "7d garbage"])
def test_parse_duration_rejects_bad_input_with_a_usage_error(text):
    with pytest.raises(UsageError, match="duration|unit"):
        parse_duration(text)


def test_policy_validation():
    with pytest.raises(UsageError, match="timezone"):
        RetentionPolicy(keep_last=1, timezone="Mars/Olympus_Mons")
    with pytest.raises(UsageError, match="keep-daily"):
        RetentionPolicy(keep_daily=-1)
    with pytest.raises(UsageError, match="timezone-aware"):
        decide([], RetentionPolicy(keep_last=1), datetime(2026, 1, 1))
    with pytest.raises(UsageError, match="twice"):
        decide([full("a", at(2026, 1, 1)), full("a", at(2026, 1, 2))], RetentionPolicy(keep_last=1), at(2026, 2, 1))


# -- one rule at a time ---------------------------------------------------------------------

NOW = at(2026, 6, 30, 12)


def test_keep_last_keeps_the_n_newest_complete_and_says_so():
    bs = [full(f"b{i}", at(2026, 6, 1 + i)) for i in range(5)]
    d = decide(bs, RetentionPolicy(keep_last=2), NOW)
    assert [x.id for x in d] == ["b4", "b3", "b2", "b1", "b0"]  # newest first
    assert [x.action for x in d] == ["keep", "keep", "remove", "remove", "remove"]
    assert d[0].reasons == ["newest", "last #1"] and d[1].reasons == ["last #2"]
    assert d[2].reasons == ["no rule keeps it"]


def test_keep_daily_keeps_the_newest_of_each_day():
    bs = [full("mon-09", at(2026, 6, 1, 9)), full("mon-18", at(2026, 6, 1, 18)),
          full("tue-09", at(2026, 6, 2, 9)), full("tue-18", at(2026, 6, 2, 18)),
          full("thu-01", at(2026, 6, 4, 1))]
    d = by_id(decide(bs, RetentionPolicy(keep_daily=3), NOW))
    assert kept(d.values()) == {"thu-01", "tue-18", "mon-18"}
    assert d["thu-01"].reasons == ["newest", "daily #1"]
    assert d["tue-18"].reasons == ["daily #2"] and d["mon-18"].reasons == ["daily #3"]
    assert d["mon-09"].action == d["tue-09"].action == "remove"


def test_keep_hourly():
    bs = [full(f"m{m:02d}", at(2026, 6, 1, 10, m)) for m in (0, 30)] + [full("h11", at(2026, 6, 1, 11, 5))]
    d = by_id(decide(bs, RetentionPolicy(keep_hourly=5), NOW))
    assert kept(d.values()) == {"h11", "m30"}
    assert d["m30"].reasons == ["hourly #2"]


def test_keep_weekly_and_yearly_across_the_iso_week_year_boundary():
    # 2026 has 53 ISO weeks: Mon 2026-12-28 .. Sun 2027-01-03 is week 2026-W53; Mon 2027-01-04 is 2027-W01.
    bs = [full("dec28", at(2026, 12, 28, 12)), full("jan03", at(2027, 1, 3, 12)), full("jan04", at(2027, 1, 4, 12))]
    now = at(2027, 1, 5)
    d = by_id(decide(bs, RetentionPolicy(keep_weekly=2), now))
    assert d["jan04"].reasons == ["newest", "weekly #1"]
    assert d["jan03"].reasons == ["weekly #2"]  # a 2027 date in 2026's last ISO week
    assert d["dec28"].action == "remove"  # same ISO week as jan03, which is newer
    d = by_id(decide(bs, RetentionPolicy(keep_yearly=2), now))
    assert d["jan04"].reasons == ["newest", "yearly #1"]
    assert d["dec28"].reasons == ["yearly #2"]  # calendar years, not ISO years
    assert d["jan03"].action == "remove"


def test_keep_monthly():
    bs = [full("jan", at(2026, 1, 31, 23)), full("feb-a", at(2026, 2, 1)), full("feb-b", at(2026, 2, 28)),
          full("apr", at(2026, 4, 2))]
    d = by_id(decide(bs, RetentionPolicy(keep_monthly=3), NOW))
    assert kept(d.values()) == {"apr", "feb-b", "jan"}
    assert d["jan"].reasons == ["monthly #3"]


def test_rules_combine_and_each_says_why():
    bs = [full(f"d{i}", at(2026, 6, 1 + i, 3)) for i in range(29)]  # June 1..29
    d = by_id(decide(bs, RetentionPolicy(keep_last=1, keep_daily=2, keep_weekly=2, keep_monthly=2), NOW))
    assert d["d28"].reasons == ["newest", "last #1", "daily #1", "weekly #1", "monthly #1"]
    # 2026-06-29 (d28) is a Monday: the previous ISO week ends Sunday 2026-06-28 (d27)
    assert d["d27"].reasons == ["daily #2", "weekly #2"]
    assert d["d26"].action == "remove"
    assert sum("monthly" in r for x in d.values() for r in x.reasons) == 1  # one month only: June


def test_keep_within_is_relative_to_now():
    bs = [full("old", at(2026, 6, 20)), full("edge", NOW - timedelta(days=7)), full("new", at(2026, 6, 29))]
    d = by_id(decide(bs, RetentionPolicy(keep_within=timedelta(days=7)), NOW))
    assert d["new"].reasons == ["newest", "within 7d"]
    assert d["edge"].reasons == ["within 7d"]
    assert d["old"].action == "remove"
    d = by_id(decide(bs, RetentionPolicy(keep_within=timedelta(hours=36)), NOW))
    assert d["new"].reasons == ["newest", "within 36h"]


def test_the_newest_complete_is_never_removed():
    bs = [full("a", at(2025, 1, 1)), full("b", at(2025, 1, 2)), partial("p", NOW - timedelta(hours=1))]
    d = by_id(decide(bs, RetentionPolicy(keep_within=timedelta(hours=1)), NOW))
    assert d["b"].reasons == ["newest"] and d["a"].action == "remove"
    assert d["p"].reasons == ["incomplete, within grace"]  # not complete: does not displace "newest"


def test_kept_incremental_keeps_its_whole_chain():
    f = full("f", at(2026, 6, 1))
    i1 = incr("i1", at(2026, 6, 2), f)
    i2 = incr("i2", at(2026, 6, 3), i1)
    other = full("g", at(2026, 5, 1))
    d = by_id(decide([other, f, i1, i2], RetentionPolicy(keep_last=1), NOW))
    assert d["i2"].reasons == ["newest", "last #1"]
    assert d["i1"].reasons == ["needed by incremental i2"]
    assert d["f"].reasons == ["needed by incremental i2", "needed by incremental i1"]
    assert d["g"].action == "remove"


def test_chain_is_rebuilt_from_parents_when_not_recorded():
    f = full("f", at(2026, 6, 1))
    i1 = BackupEntry("i1", "complete", "incremental", "f", [], at(2026, 6, 2))
    i2 = BackupEntry("i2", "complete", "incremental", "i1", [], at(2026, 6, 3))
    assert kept(decide([f, i1, i2], RetentionPolicy(keep_last=1), NOW)) == {"f", "i1", "i2"}


def test_incomplete_and_failed_follow_the_grace_period():
    bs = [full("f", at(2026, 6, 1)), partial("inc-old", NOW - timedelta(hours=25)),
          partial("inc-new", NOW - timedelta(hours=23)), partial("fail-old", NOW - timedelta(days=3), "failed"),
          partial("fail-new", NOW - timedelta(hours=1), "failed"), partial("edge", NOW - timedelta(hours=24))]
    d = by_id(decide(bs, RetentionPolicy(keep_last=5), NOW))
    assert d["inc-old"].action == "remove" and d["inc-old"].reasons == ["incomplete, older than grace 24h"]
    assert d["fail-old"].action == "remove" and d["fail-old"].reasons == ["failed, older than grace 24h"]
    assert d["inc-new"].reasons == ["incomplete, within grace"]
    assert d["fail-new"].reasons == ["failed, within grace"]
    assert d["edge"].action == "keep"
    assert d["f"].reasons == ["newest", "last #1"]  # incomplete ones are not counted by keep_last
    d = by_id(decide(bs, RetentionPolicy(keep_last=5, incomplete_grace=timedelta(days=7)), NOW))
    assert d["fail-old"].reasons == ["failed, within grace"]


def test_no_policy_keeps_everything():
    bs = [full("a", at(2020, 1, 1)), full("b", at(2026, 1, 1)), partial("p", at(2020, 1, 1))]
    d = decide(bs, RetentionPolicy(), NOW)
    assert all(x.action == "keep" and x.reasons == ["no policy"] for x in d)
    assert RetentionPolicy().empty and not RetentionPolicy(keep_within=timedelta(0)).empty


def test_ties_sort_by_id_and_decision_json():
    bs = [full("b", at(2026, 6, 1)), full("a", at(2026, 6, 1))]
    d = decide(bs, RetentionPolicy(keep_last=1), NOW)
    assert [x.id for x in d] == ["b", "a"] and d[0].reasons == ["newest", "last #1"]
    assert d[0].as_json() == {"id": "b", "action": "keep", "reasons": ["newest", "last #1"], "state": "complete",
                              "type": "full", "started_at": "2026-06-01T00:00:00+00:00", "locked_until": None}


# -- timezones and DST ----------------------------------------------------------------------

NY = "America/New_York"


def test_daily_buckets_follow_the_policy_timezone():
    # 03:00 UTC is 23:00 (EDT) the day before in New York.
    bs = [full("a", at(2026, 6, 10, 3)), full("b", at(2026, 6, 10, 20)), full("c", at(2026, 6, 11, 3))]
    assert kept(decide(bs, RetentionPolicy(keep_daily=3), NOW)) == {"b", "c"}  # UTC: a, b both June 10
    assert kept(decide(bs, RetentionPolicy(keep_daily=3, timezone=NY), NOW)) == {"a", "c"}  # NY: b, c both June 10


def test_dst_fall_back_repeated_hour_is_one_hourly_bucket():
    # 2026-11-01 New York: 01:00-01:59 happens twice (EDT, then EST).
    bs = [full("0030edt", at(2026, 11, 1, 4, 30)), full("0130edt", at(2026, 11, 1, 5, 30)),
          full("0130est", at(2026, 11, 1, 6, 30))]
    now = at(2026, 11, 2)
    assert kept(decide(bs, RetentionPolicy(keep_hourly=2), now)) == {"0130est", "0130edt"}  # UTC: 3 hours
    d = by_id(decide(bs, RetentionPolicy(keep_hourly=2, timezone=NY), now))
    assert d["0130est"].reasons == ["newest", "hourly #1"]
    assert d["0130edt"].action == "remove"  # same wall-clock hour as 01:30 EST
    assert d["0030edt"].reasons == ["hourly #2"]
    # the 25-hour day is one daily bucket
    bs.append(full("2330est", at(2026, 11, 2, 4, 30)))
    d = by_id(decide(bs, RetentionPolicy(keep_daily=5, timezone=NY), now))
    assert kept(d.values()) == {"2330est"}


def test_dst_spring_forward_23_hour_day():
    # 2026-03-08 New York: 02:00 EST jumps to 03:00 EDT; the day runs 05:00 UTC .. 03:59 UTC next day.
    bs = [full("mar7-2359", at(2026, 3, 8, 4, 59)), full("mar8-0000", at(2026, 3, 8, 5, 0)),
          full("mar8-2359", at(2026, 3, 9, 3, 59)), full("mar9-0000", at(2026, 3, 9, 4, 0))]
    d = by_id(decide(bs, RetentionPolicy(keep_daily=3, timezone=NY), at(2026, 3, 10)))
    assert d["mar9-0000"].reasons == ["newest", "daily #1"]
    assert d["mar8-2359"].reasons == ["daily #2"]
    assert d["mar7-2359"].reasons == ["daily #3"]
    assert d["mar8-0000"].action == "remove"
    # in UTC the same backups fall on other days
    d = by_id(decide(bs, RetentionPolicy(keep_daily=3), at(2026, 3, 10)))
    assert kept(d.values()) == {"mar9-0000", "mar8-0000"}


def test_weekly_in_a_timezone_east_of_utc():
    # Sunday 2026-06-28 22:30 UTC is already Monday 2026-06-29 in Tokyo: a new ISO week there.
    bs = [full("sun-utc", at(2026, 6, 28, 22, 30)), full("sat", at(2026, 6, 27, 12))]
    assert kept(decide(bs, RetentionPolicy(keep_weekly=2), NOW)) == {"sun-utc"}
    assert kept(decide(bs, RetentionPolicy(keep_weekly=2, timezone="Asia/Tokyo"), NOW)) == {"sun-utc", "sat"}


# -- properties -----------------------------------------------------------------------------

BASE = at(2025, 1, 1)
TIMEZONES = ["UTC", "America/New_York", "Europe/Paris", "Asia/Tokyo", "Australia/Lord_Howe", "Pacific/Chatham"]


@st.composite
def repositories(draw):
    """A plausible history: fulls, incrementals on any earlier complete backup, incomplete and failed."""
    n = draw(st.integers(0, 30))
    gaps = draw(st.lists(st.integers(0, 60 * 24 * 20), min_size=n, max_size=n))  # minutes, up to 20 days
    entries: list[BackupEntry] = []
    t = BASE
    for i, gap in enumerate(gaps):
        t = t + timedelta(minutes=gap)
        kind = draw(st.sampled_from(["full", "incremental", "incremental", "incomplete", "failed"]))
        bid = f"b{i:02d}"
        complete = [e for e in entries if e.state == "complete"]
        if kind == "incremental" and complete:
            entries.append(incr(bid, t, draw(st.sampled_from(complete))))
        elif kind in ("incomplete", "failed"):
            entries.append(partial(bid, t, kind))
        else:
            entries.append(full(bid, t))
    return entries


@st.composite
def policies(draw):
    counts = st.integers(0, 4)
    return RetentionPolicy(
        keep_last=draw(counts), keep_hourly=draw(counts), keep_daily=draw(counts), keep_weekly=draw(counts),
        keep_monthly=draw(counts), keep_yearly=draw(counts),
        keep_within=draw(st.none() | st.integers(0, 60 * 24 * 90).map(lambda m: timedelta(minutes=m))),
        timezone=draw(st.sampled_from(TIMEZONES)),
        incomplete_grace=draw(st.integers(0, 72).map(lambda h: timedelta(hours=h))),
    )


def nows(entries):
    last = max((e.started_at for e in entries), default=BASE)
    return st.integers(-60 * 24, 60 * 24 * 60).map(lambda m: last + timedelta(minutes=m))


PROPS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def summary(decisions):
    return [(d.id, d.action, d.reasons) for d in decisions]


@PROPS
@given(st.data(), repositories(), policies())
def test_every_kept_incremental_keeps_its_chain(data, entries, policy):
    now = data.draw(nows(entries))
    decisions = decide(entries, policy, now)
    keep = kept(decisions)
    assert sorted(d.id for d in decisions) == sorted(e.id for e in entries)
    for e in entries:
        if e.id in keep and e.state == "complete":
            assert set(e.chain) <= keep, (e.id, e.chain)
            for anc in e.chain[:-1]:
                assert f"needed by incremental {e.id}" in by_id(decisions)[anc].reasons
    for d in decisions:
        assert d.reasons
        if d.action == "remove":
            assert len(d.reasons) == 1
            assert d.reasons[0] == "no rule keeps it" or " older than grace " in d.reasons[0]


@PROPS
@given(st.data(), repositories(), policies())
def test_result_does_not_depend_on_input_order(data, entries, policy):
    now = data.draw(nows(entries))
    shuffled = data.draw(st.permutations(entries))
    first = decide(entries, policy, now)
    assert summary(decide(shuffled, policy, now)) == summary(first)
    keys = [(d.started_at, d.id) for d in first]
    assert keys == sorted(keys, reverse=True)  # newest first


@PROPS
@given(st.data(), repositories(), policies())
def test_applying_the_policy_again_removes_nothing_more(data, entries, policy):
    now = data.draw(nows(entries))
    first = decide(entries, policy, now)
    keep = kept(first)
    second = decide([e for e in entries if e.id in keep], policy, now)
    assert all(d.action == "keep" for d in second)
    assert summary(second) == [s for s in summary(first) if s[1] == "keep"]  # and for the same reasons


@PROPS
@given(st.data(), repositories(), policies())
def test_newest_complete_and_incomplete_within_grace_are_always_kept(data, entries, policy):
    now = data.draw(nows(entries))
    d = by_id(decide(entries, policy, now))
    complete = sorted((e for e in entries if e.state == "complete"), key=lambda e: (e.started_at, e.id))
    if complete:
        assert d[complete[-1].id].action == "keep"
    for e in entries:
        if e.state != "complete" and now - e.started_at <= policy.incomplete_grace:
            assert d[e.id].action == "keep"
        if e.state != "complete" and now - e.started_at > policy.incomplete_grace and not policy.empty:
            # removed unless an incremental needs it (never: they have no descendants)
            assert d[e.id].action == "remove"


@PROPS
@given(st.data(), repositories(), policies())
def test_each_rule_keeps_at_most_n_one_per_period(data, entries, policy):
    now = data.draw(nows(entries))
    decisions = decide(entries, policy, now)
    for name, limit in (("last", policy.keep_last), ("hourly", policy.keep_hourly), ("daily", policy.keep_daily),
                        ("weekly", policy.keep_weekly), ("monthly", policy.keep_monthly),
                        ("yearly", policy.keep_yearly)):
        tags = [r for d in decisions for r in d.reasons if r.startswith(f"{name} #")]
        assert len(tags) <= limit
        assert sorted(tags, key=lambda r: int(r.split("#")[1])) == [f"{name} #{i}" for i in range(1, len(tags) + 1)]


# -- object lock: what the policy lets go is kept while locked --------------------------------
def test_a_locked_backup_the_policy_drops_is_kept_saying_until_when():
    old, new = full("old", at(2026, 6, 1)), full("new", at(2026, 6, 29))
    until = at(2026, 7, 2, 8)
    d = {x.id: x for x in decide([old, new], RetentionPolicy(keep_last=1), NOW, locked={"old": until, "new": until})}
    assert d["old"].action == "keep" and d["old"].held_by_lock and d["old"].locked_until == until
    assert d["old"].reasons == ["locked until 2026-07-02T08:00:00Z (then removed: no rule keeps it)"]
    assert d["old"].as_json()["locked_until"] == "2026-07-02T08:00:00+00:00"
    # the policy keeps `new` anyway: no lock reason, and its lock is the policy's to extend
    assert d["new"].reasons == ["newest", "last #1"] and not d["new"].held_by_lock and d["new"].locked_until is None
    # after the date, removed as the policy says
    later = decide([old, new], RetentionPolicy(keep_last=1), at(2026, 7, 2, 8), locked={"old": until})
    assert {x.id: x.action for x in later} == {"old": "remove", "new": "keep"}


def test_a_locked_incremental_keeps_its_expired_parent():
    base = full("base", at(2026, 6, 1))
    child = incr("child", at(2026, 6, 2), base)
    new = full("new", at(2026, 6, 29))
    d = {x.id: x for x in decide([base, child, new], RetentionPolicy(keep_last=1), NOW,
                                 locked={"child": at(2026, 7, 1)})}
    assert d["child"].action == "keep" and d["child"].held_by_lock
    assert d["base"].action == "keep" and d["base"].reasons == ["needed by incremental child"]
    assert d["base"].held_by_lock and d["base"].locked_until is None  # kept for the lock: never extended


def test_a_locked_unfinished_backup_past_grace_is_kept():
    stale = BackupEntry(id="stale", state="incomplete", type="full", parent=None, chain=[],
                        started_at=at(2026, 6, 1), last_activity=at(2026, 6, 1))
    d = {x.id: x for x in decide([stale, full("new", at(2026, 6, 29))], RetentionPolicy(keep_last=1), NOW,
                                 locked={"stale": at(2026, 7, 1)})}
    assert d["stale"].action == "keep"
    assert d["stale"].reasons == ["locked until 2026-07-01T00:00:00Z (then removed: incomplete, older than grace 24h)"]
