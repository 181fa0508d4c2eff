"""Service through real HTTP: auth, validation, idempotency, concurrency, results, pagination.

A real uvicorn on 127.0.0.1, a real SQLite file, the session's real Ray; fits use
``method="lsq"`` (Laplace draws) where the test is about the service, not the sampler.
"""

# ruff: noqa: F811  (pytest fixtures imported from service_fixtures shadow their names)
from __future__ import annotations

import hashlib
import json
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import xarray as xr
from service_fixtures import (  # noqa: F401  (fixtures)
    CIRCUIT,
    TRUTH,
    live_server,
    ray_address,
    spectrum_file,
)

from service.api import create_app
from service.client import Client
from service.errors import AuthError, Conflict, InvalidRequest, NotFound, RateLimited

PROBLEM = "application/problem+json"


def fit_request(name="cell01.csv", **overrides):
    body = {"kind": "fit_spectrum", "file": name, "circuit": CIRCUIT, "method": "lsq",
            "draws": 50, "chains": 2}  # fmt: skip
    return {**body, **overrides}


def post_fit(server, token, content: bytes, request: dict, filename="cell01.csv", **headers):
    return httpx.post(
        f"{server.url}/v1/jobs",
        headers={"Authorization": f"Bearer {token}", **headers},
        data={"request": json.dumps(request)},
        files=[("files", (filename, content, "text/csv"))],
        timeout=30,
    )


def test_openapi_document_builds_without_arguments(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    schema = create_app().openapi()
    assert {"/v1/jobs", "/v1/jobs/{job_id}/result", "/v1/health"} <= set(schema["paths"])
    kinds = schema["components"]["schemas"]["JobRequest"]["discriminator"]["mapping"]
    assert set(kinds) == {"fit_spectrum", "analyze_study", "propose"}
    assert "multipart/form-data" in schema["paths"]["/v1/jobs"]["post"]["requestBody"]["content"]
    assert list(tmp_path.iterdir()) == []  # building the app touched no disk


def test_auth_and_isolation(live_server, spectrum_file):
    url = f"{live_server.url}/v1"
    no_token = httpx.get(f"{url}/jobs")
    assert no_token.status_code == 401
    assert no_token.headers["content-type"] == PROBLEM
    assert no_token.headers["www-authenticate"].startswith("Bearer")
    for bad in ("Bearer slb_nothere_x", "Basic abc", "Bearer"):
        r = httpx.get(f"{url}/jobs", headers={"Authorization": bad})
        assert r.status_code == 401 and r.json()["status"] == 401

    with live_server.client("reader") as reader, pytest.raises(AuthError) as err:
        reader.submit_fit(spectrum_file, CIRCUIT, method="lsq", draws=50)
    assert err.value.status == 403

    with live_server.client("alice") as alice, live_server.client("bob") as bob:
        job = alice.submit_fit(spectrum_file, CIRCUIT, method="lsq", draws=50)
        never = uuid.uuid4().hex
        for path in ("", "/result", "/summary", "/logs"):
            mine = httpx.get(f"{url}/jobs/{job.id}{path}", headers=_auth(live_server, "bob"))
            missing = httpx.get(f"{url}/jobs/{never}{path}", headers=_auth(live_server, "bob"))
            assert mine.status_code == missing.status_code == 404
            # Nothing distinguishes someone else's job from a job that does not exist.
            # (`instance` echoes the caller's own request path.)
            assert {**mine.json(), "instance": ""} == {**missing.json(), "instance": ""}
        with pytest.raises(NotFound):
            bob.job(job.id).cancel()
        assert job.id not in {j.id for j in bob.jobs()}
        assert job.id in {j.id for j in alice.jobs()}
        job.wait(timeout=120, progress=False)


def _auth(server, name):
    return {"Authorization": f"Bearer {server.tokens[name]}"}


@pytest.mark.parametrize(
    ("content", "request_body", "filename", "status", "field"),
    [
        (None, {"kind": "fit_spectrum"}, None, 422, "circuit"),
        (None, {"kind": "nonsense"}, None, 422, "kind"),
        (None, fit_request(draws=-5), None, 422, "draws"),
        (None, fit_request(circuit="R0-p(R1,"), None, 422, "circuit"),
        (b"this is not\nan instrument file\n", fit_request(), None, 422, "files[0]"),
        (b"1,2,3\n", fit_request(), None, 422, "files[0]"),
        (None, fit_request(name="../../etc/passwd"), "../../etc/passwd", 422, "files[0]"),
        (None, {"kind": "analyze_study", "dataset": "../secrets"}, None, 422, "dataset"),
        (None, {"kind": "analyze_study", "dataset": "nope"}, None, 422, "dataset"),
        (None, {"kind": "propose", "campaign": {"format": "x"}, "q": 2}, None, 422, "campaign"),
        (None, {"kind": "propose", "campaign": {}, "q": 0}, None, 422, "q"),
    ],
)
def test_invalid_submissions_are_4xx_problems_naming_the_field(
    live_server, spectrum_file, content, request_body, filename, status, field
):
    headers = {"Authorization": f"Bearer {live_server.tokens['alice']}"}
    if request_body["kind"] == "fit_spectrum" and "circuit" in request_body:
        data = content if content is not None else spectrum_file.read_bytes()
        r = post_fit(live_server, live_server.tokens["alice"], data, request_body,
                     filename or request_body["file"])  # fmt: skip
    else:
        r = httpx.post(f"{live_server.url}/v1/jobs", headers=headers, json=request_body)
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == PROBLEM
    problem = r.json()
    assert problem["status"] == status
    assert field in [e["field"] for e in problem["errors"]]


def test_malformed_bodies_are_4xx_never_500(live_server):
    headers = {"Authorization": f"Bearer {live_server.tokens['alice']}"}
    url = f"{live_server.url}/v1/jobs"
    cases = [
        httpx.post(url, headers={**headers, "Content-Type": "application/json"}, content=b"{oops"),
        httpx.post(url, headers={**headers, "Content-Type": "text/plain"}, content=b"hello"),
        httpx.post(url, headers={**headers, "Content-Type": "application/json"}, content=b"[1]"),
        httpx.post(url, headers=headers, data={"request": "{not json"}, files={"files": b"x"}),
        httpx.post(url, headers=headers, data={"other": "1"}, files={"files": ("a.csv", b"x")}),
        httpx.post(
            url,
            headers={**headers, "Content-Type": "multipart/form-data; boundary=zzz"},
            content=b"--zzz\r\ngarbage",
        ),
        httpx.get(f"{live_server.url}/v1/jobs", headers=headers, params={"cursor": "!!"}),
        httpx.get(f"{live_server.url}/v1/jobs", headers=headers, params={"status": "DONE"}),
        httpx.get(f"{live_server.url}/v1/jobs", headers=headers, params={"limit": "x"}),
    ]
    for r in cases:
        assert 400 <= r.status_code < 500, (r.status_code, r.text)
        assert r.headers["content-type"] == PROBLEM
        assert r.json()["status"] == r.status_code


def test_twenty_concurrent_jobs_all_succeed_once(live_server, spectrum_file):
    """4 client threads submit 20 jobs; each succeeds once and opens as an ArviZ DataTree."""
    from service.auth import create_token

    _, token = create_token(live_server.manager.store, "batch", "submit")

    def submit_five(thread: int) -> list[str]:
        with Client(live_server.url, token) as client:
            return [
                client.submit_fit(
                    spectrum_file, CIRCUIT, method="lsq", draws=40 + thread, seed=10 * thread + i
                ).id  # fmt: skip
                for i in range(5)
            ]

    with ThreadPoolExecutor(4) as pool:
        ids = [i for batch in pool.map(submit_five, range(4)) for i in batch]
    assert len(set(ids)) == 20

    with Client(live_server.url, token) as client:
        for job_id in ids:
            job = client.job(job_id)
            info = job.wait(timeout=240, progress=False).info
            assert info.status == "SUCCEEDED"
            tree = job.result()
            assert isinstance(tree, xr.DataTree)
            r1 = tree["posterior"]["R1"]
            assert r1.dims == ("chain", "draw")
            assert r1.sizes == {"chain": 2, "draw": info.request["draws"]}
            # The simulated cell has R1 = 150 Ω; a least-squares fit of 1 % noise finds it.
            assert abs(float(r1.median()) / TRUTH["R1"] - 1) < 0.05
        listed = [j.id for j in client.jobs()]
    assert sorted(listed) == sorted(ids)  # nothing duplicated, nothing lost


def test_idempotency_key(live_server, spectrum_file):
    with live_server.client("alice") as client:
        key = uuid.uuid4().hex
        first = client.submit_fit(spectrum_file, CIRCUIT, method="lsq", draws=50, seed=1,
                                  idempotency_key=key)  # fmt: skip
        again = client.submit_fit(spectrum_file, CIRCUIT, method="lsq", draws=50, seed=1,
                                  idempotency_key=key)  # fmt: skip
        assert again.id == first.id
        with pytest.raises(InvalidRequest) as err:
            client.submit_fit(spectrum_file, CIRCUIT, method="lsq", draws=60, seed=1,
                              idempotency_key=key)  # fmt: skip
        assert err.value.status == 422
        assert "idempotency" in err.value.problem.type
        first.wait(timeout=120, progress=False)


def test_result_download_is_checked_against_its_etag(live_server, spectrum_file):
    url = f"{live_server.url}/v1/jobs"
    with live_server.client("alice") as client:
        job = client.submit_fit(spectrum_file, CIRCUIT, method="lsq", draws=50)
        with pytest.raises(Conflict):
            job.result()  # not finished yet (or not even claimed): 409, not a partial file
        job.wait(timeout=120, progress=False)
        r = httpx.get(f"{url}/{job.id}/result", headers=_auth(live_server, "alice"))
        assert r.status_code == 200
        assert r.headers["etag"] == f'"{hashlib.sha256(r.content).hexdigest()}"'
        assert r.headers["etag"].strip('"') == job.refresh().result_sha256
        headers = {**_auth(live_server, "alice"), "If-None-Match": r.headers["etag"]}
        assert httpx.get(f"{url}/{job.id}/result", headers=headers).status_code == 304
        summary = job.summary()
        assert summary["kind"] == "fit_spectrum"
        assert set(summary["parameters"]) >= set(TRUTH)
        logs = job.logs()
    assert "attempt 1 submitted to Ray" in logs and "attempt 1 succeeded" in logs


def test_pagination_visits_every_job_once(live_server, spectrum_file):
    from service.auth import create_token

    _, token = create_token(live_server.manager.store, "pager", "submit")
    with Client(live_server.url, token) as client:
        ids = {client.submit_fit(spectrum_file, CIRCUIT, method="lsq", draws=20).id
               for _ in range(5)}  # fmt: skip
        paged = [j.id for j in client.jobs(page_size=2)]
        assert sorted(paged) == sorted(ids)
        assert len(paged) == 5
        for job_id in ids:
            client.job(job_id).wait(timeout=120, progress=False)
        assert {j.id for j in client.jobs(status="SUCCEEDED", page_size=2)} == ids
        assert list(client.jobs(status=["FAILED", "CANCELLED"])) == []
        assert list(client.jobs(kind="propose")) == []


def test_per_token_limit_answers_429_with_retry_after(live_server, spectrum_file):
    token = live_server.tokens["limited"]  # at most 1 unfinished job
    first = post_fit(live_server, token, spectrum_file.read_bytes(), fit_request(draws=20))
    assert first.status_code == 202
    second = post_fit(live_server, token, spectrum_file.read_bytes(), fit_request(draws=20))
    assert second.status_code == 429
    assert second.headers["content-type"] == PROBLEM
    assert int(second.headers["retry-after"]) > 0
    with Client(live_server.url, token, retries=0) as impatient:
        job_id = first.json()["id"]
        if impatient.job(job_id).info.done is False:
            with pytest.raises(RateLimited):
                impatient.submit_fit(spectrum_file, CIRCUIT, method="lsq", draws=20)
    with Client(live_server.url, token, retries=8) as patient:
        # Retrying after Retry-After gets in once the first job is done.
        job = patient.submit_fit(spectrum_file, CIRCUIT, method="lsq", draws=20)
        assert job.wait(timeout=120, progress=False).info.status == "SUCCEEDED"


def test_propose_job_returns_proposals_inside_the_space(live_server):
    from optimizer.campaign import Campaign

    space = {"binder_wt_pct": {"type": "real", "low": 0, "high": 3},
             "process": {"type": "categorical", "choices": ["dry", "wet"]}}  # fmt: skip
    campaign = Campaign(space=space, objectives={"sigma_ion": "maximize"}, seed=0)
    with live_server.client("alice") as client:
        job = client.submit_propose(campaign, q=3)
        job.wait(timeout=120, progress=False)
        result = job.result()
    assert len(result["proposals"]) == 3
    for p in result["proposals"]:
        assert 0 <= p["params"]["binder_wt_pct"] <= 3
        assert p["params"]["process"] in ("dry", "wet")
    # The returned campaign state knows the three as pending experiments.
    assert len(result["campaign"]["pending"]) == 3


@pytest.mark.parametrize("live_server", ["sqlite"], indirect=True)  # the database plays no part
def test_analyze_study_job_by_dataset_name(live_server):
    from inference.summary import validate_summary
    from optimizer.virtual_lab import LabSettings, simulate_study

    recipes = {
        "dry": {"binder": "PTFE", "binder_wt_pct": 0.5, "process": "dry"},
        "wet": {"binder": "NBR", "binder_wt_pct": 0.5, "process": "wet"},
    }
    settings = LabSettings(
        temperatures_C=(30.0, 60.0), ion_cells_per_recipe=1, electron_cells_per_recipe=1
    )
    simulate_study(
        recipes,
        live_server.settings.datasets_dir / "small",
        seed=3,
        settings=settings,
        name="small",
    )
    with live_server.client("alice") as client:
        job = client.submit_study(dataset="small", method="lsq", seed=0)
        assert job.wait(timeout=600, progress=False).info.status == "SUCCEEDED"
        tree = job.result()
        assert set(tree["arrhenius"].children) == {"ionic", "electronic"}
        summary = job.summary()
        validate_summary(summary)
        assert {(c["recipe"], c["kind"]) for c in summary["conductivity"]} == {
            (r, k) for r in recipes for k in ("ionic", "electronic")
        }
    # No result file (NetCDF, summary, report) names the server's folders.
    data_dir = str(live_server.settings.data_dir).encode()
    files = [p for p in (live_server.settings.artifacts_dir / job.id).rglob("*") if p.is_file()]
    assert {p.name for p in files} >= {"result.nc", "summary.json", "report.html"}
    for path in files:
        assert data_dir not in path.read_bytes(), path.name


def test_health_needs_no_token(live_server):
    r = httpx.get(f"{live_server.url}/v1/health")
    assert r.status_code == 200
    assert r.json()["database"] == "ok" and r.json()["ray"] == "connected"
