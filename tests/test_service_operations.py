"""Operations on both databases, without Ray: migrations, fair claiming, retry backoff,
cleaning up, campaign idempotency, quotas, cron limits and run compaction."""

# ruff: noqa: F811  (pytest fixtures imported from service_fixtures shadow their names)
from __future__ import annotations

import time
import uuid

import pytest
import sqlalchemy as sa
from service_fixtures import DATABASES, database_url

from service.artifacts import ArtifactStore
from service.auth import create_token
from service.config import Settings
from service.errors import (
    CampaignInvalid,
    CampaignQuotaExceeded,
    IdempotencyConflict,
    ResultExpired,
)
from service.store import QUEUED, SUCCEEDED, JobStore


@pytest.fixture(params=DATABASES)
def settings(request, tmp_path) -> Settings:
    return Settings(data_dir=tmp_path, db_url=database_url(request.param, tmp_path))


@pytest.fixture
def store(settings) -> JobStore:
    store = JobStore(settings.database_url)
    store.upgrade()
    return store


def _job(store, owner: str, **values) -> str:
    job_id = uuid.uuid4().hex
    row = {"id": job_id, "kind": "propose", "owner": owner, "status": QUEUED, "attempt": 0,
           "max_attempts": 3, "request": {"kind": "propose"}, "body_sha256": job_id,
           "created_at": time.time(), **values}  # fmt: skip
    store.insert_job(row, max_active=100)
    return job_id


# -- migrations --------------------------------------------------------------------------------


def test_a_database_of_the_previous_version_is_upgraded_with_its_rows(settings):
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    import service.campaigns.store  # noqa: F401  (its tables are part of the metadata)
    from service import migrate
    from service.store import engine_for, metadata

    engine = engine_for(settings.database_url)
    migrate.upgrade(engine, "0001")  # the schema sigmalab 0.1.0 made with create_all
    with engine.begin() as c:
        c.execute(sa.text("DROP TABLE alembic_version"))  # 0.1.0 had no migrations
        c.execute(
            sa.text(
                "INSERT INTO tokens (id, name, scope, token_sha256, max_active_jobs, created_at)"
                " VALUES ('t1', 'old', 'submit', 'h', 5, 1.0)"
            )
        )
        c.execute(
            sa.text(
                "INSERT INTO jobs (id, kind, owner, status, attempt, max_attempts, request,"
                " body_sha256, created_at) VALUES ('j1', 'propose', 't1', 'QUEUED', 0, 3,"
                " '{}', 'b', 2.0)"
            )
        )
    store = JobStore(settings.database_url)
    store.upgrade()  # stamps the 0.1.0 schema as 0001, then upgrades
    assert migrate.current(engine) == migrate.head()
    job = store.get_job("j1")
    assert job["status"] == "QUEUED" and job["not_before"] is None
    assert store.token("t1")["max_active_campaigns"] == 10
    store.upgrade()  # idempotent
    with engine.connect() as c:
        diffs = compare_metadata(MigrationContext.configure(c), metadata)
    assert diffs == []  # the tables in code and the migrations agree


# -- claiming ----------------------------------------------------------------------------------


def test_claiming_is_fair_across_owners(store):
    alice, _ = create_token(store, "alice", "submit")
    bob, _ = create_token(store, "bob", "submit")
    first = [_job(store, alice) for _ in range(10)]
    later = _job(store, bob)  # submitted after all of alice's
    picked = [j["id"] for j in store.claimable(2)]
    assert picked == [first[0], later]
    store.claim(first[0], 0, "d", 30)
    # Alice has one in flight, Bob none: Bob's job goes first.
    assert [j["id"] for j in store.claimable(1)] == [later]


def test_a_requeued_job_waits_for_its_backoff(store, settings):
    owner, _ = create_token(store, "o", "submit")
    job_id = _job(store, owner)
    assert store.claim(job_id, 0, "d", 30)
    delay = settings.retry_delay_s(1)
    assert store.requeue(job_id, 1, "infrastructure_lost", "lost", time.time() + delay)
    assert store.claimable(5) == []
    assert [j["id"] for j in store.claimable(5, now=time.time() + delay + 0.1)] == [job_id]
    assert settings.retry_delay_s(1) < settings.retry_delay_s(3) <= settings.retry_backoff_max_s


# -- cleaning up -------------------------------------------------------------------------------


def test_gc_removes_expired_results_and_orphans(store, settings):
    from service.gc import collect_garbage
    from service.manager import JobManager

    owner, _ = create_token(store, "o", "submit")
    job_id = _job(store, owner)
    store.claim(job_id, 0, "d", 30)
    artifacts = ArtifactStore(settings.artifacts_dir)
    folder = artifacts.attempt_dir(job_id, 1)
    folder.mkdir(parents=True)
    (folder / "proposals.json").write_text("{}")
    artifacts.publish(job_id, 1, primary="proposals.json")
    store.finish(job_id, 1, SUCCEEDED, artifact_path=f"{job_id}/1/proposals.json")
    orphan = settings.uploads_dir / uuid.uuid4().hex  # a crash left it: no such job
    orphan.mkdir(parents=True)
    (orphan / "x.csv").write_text("1,2,3\n")
    report = collect_garbage(settings, store, artifacts, now=time.time() + 1)
    assert report.removed_inputs == 0  # it may be a submission being queued right now
    report = collect_garbage(settings, store, artifacts, now=time.time() + 3700)
    assert report.removed_inputs == 1 and not orphan.exists()
    assert report.purged_jobs == 0  # 30 days are not over
    later = time.time() + settings.artifact_ttl_s + 10
    report = collect_garbage(settings, store, artifacts, now=later)
    assert report.purged_jobs == 1 and report.freed_bytes > 0
    assert not (settings.artifacts_dir / job_id).exists()
    manager = JobManager(settings, store, artifacts)
    with pytest.raises(ResultExpired):
        manager.artifact_file(store.get_job(job_id))


# -- campaigns ---------------------------------------------------------------------------------

SPACE = {"binder_wt_pct": {"type": "real", "low": 0, "high": 3}}


def _campaigns(settings, store):
    from service.campaigns.manager import CampaignManager
    from service.manager import JobManager

    return CampaignManager(JobManager(settings, store, ArtifactStore(settings.artifacts_dir)))


def _who(store, max_active_campaigns=10):
    from service.auth import authenticate

    _, token = create_token(store, "c", "submit", 5, max_active_campaigns)
    return authenticate(store, f"Bearer {token}")


def _spec(**change):
    from service.campaigns.manager import CampaignSpec

    body = {"space": SPACE, "objectives": {"sigma_ion": "maximize"},
            "schedule": {"measurements": 2}, **change}  # fmt: skip
    return CampaignSpec.model_validate(body)


def test_campaign_idempotency_compares_the_body(settings, store):
    manager = _campaigns(settings, store)
    who = _who(store)
    first, created = manager.create(who, _spec(q=2), "key-1")
    again, replayed = manager.create(who, _spec(q=2), "key-1")
    assert created and not replayed and again.id == first.id
    with pytest.raises(IdempotencyConflict):
        manager.create(who, _spec(q=3), "key-1")


def test_campaigns_per_token_are_bounded(settings, store):
    manager = _campaigns(settings, store)
    who = _who(store, max_active_campaigns=1)
    first, _ = manager.create(who, _spec(), None)
    with pytest.raises(CampaignQuotaExceeded) as err:
        manager.create(who, _spec(), None)
    assert err.value.status == 429
    manager.set_status(who, first.id, "paused")
    second, _ = manager.create(who, _spec(), None)  # a paused campaign frees its place
    with pytest.raises(CampaignQuotaExceeded):
        manager.set_status(who, first.id, "active")
    assert second.status == "active"


def test_cron_schedules_fire_at_most_once_a_minute_by_default(settings, store):
    manager = _campaigns(settings, store)
    who = _who(store)
    with pytest.raises(CampaignInvalid) as err:
        manager.create(who, _spec(schedule={"cron": "* * * * * *"}), None)
    assert err.value.field == "schedule.cron" and "60 s" in err.value.problem
    info, _ = manager.create(who, _spec(schedule={"cron": "*/5 * * * *"}), None)
    assert info.next_fire_at is not None


def test_old_skipped_and_missed_fires_are_compacted_into_counts(settings, store):
    from service.status import RunStatus

    manager = _campaigns(settings, store)
    info, _ = manager.create(_who(store), _spec(), None)
    cstore = manager.store
    now = time.time()
    for i in range(30):
        status = RunStatus.SKIPPED if i % 2 else RunStatus.MISSED
        cstore.claim_fire(info.id, now - 10_000 + i, "cron", status, "test")
    assert cstore.compact(info.id, keep=10, older_than=now - 5000) == 20
    statuses = [r["status"] for r in cstore.runs(info.id)]
    assert len(statuses) == 11 and statuses.count("queued") == 1  # the initial round stays
    assert cstore.get(info.id)["compacted"] == {"skipped": 10, "missed": 10}
    assert cstore.compact(info.id, keep=10, older_than=now - 5000) == 0
