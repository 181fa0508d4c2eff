"""Python client of the sigmalab service (httpx + pydantic).

>>> from service.client import Client
>>> with Client() as client:  # $SIGMALAB_URL (default http://127.0.0.1:8000), $SIGMALAB_TOKEN
...     job = client.submit_fit("cell.mpt", "R0-p(R1,CPE1)", draws=500).wait()
...     result = job.result()                             # xarray DataTree, SHA-256 checked
...     result["posterior"]["R1"]                         # draws of R1 (chain, draw)

``Job.wait()`` shows a progress bar (on stderr), raises ``JobFailed``/``JobCancelled`` and
returns the job itself, so ``submit_…(…).wait().result()`` chains. Jobs and campaigns are
named by their full id or any unique prefix of it (the 8 characters the progress bar shows).

httpx is imported when the first :class:`Client` is made, so ``import service.client`` stays
light (no PyMC, PyTensor, JAX or Ray either: the error types are dependency-free).

Retries: connection errors and 429/502/503/504 answers are retried with exponential backoff
(a ``Retry-After`` header sets the wait) — GET requests always, POST requests only because
each carries an ``Idempotency-Key`` that is generated once per call and reused on every
retry, so a retried submission can never create a second job. Each retry is announced at
once (``on_retry``; by default a warning of the ``sigmalab.client`` logger, which Python
prints on stderr), never waited out silently: ``http://127.0.0.1:8000: connection refused;
retry 1/5 in 0.5 s``. Errors: :mod:`service.errors`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from service.errors import (
    AmbiguousId,
    IntegrityError,
    JobCancelled,
    JobFailed,
    NotFound,
    ServiceError,
    TransportError,
    WaitTimeout,
    error_for,
)
from service.models import (
    CampaignInfo,
    JobInfo,
    JobPage,
    MeasurementInfo,
    Problem,
    ProposalInfo,
    RunInfo,
)

if TYPE_CHECKING:
    import httpx

RETRY_STATUS = (429, 502, 503, 504)
_RETRY_EXC_NAMES = ("ConnectError", "ConnectTimeout", "ReadTimeout", "ReadError",
                    "RemoteProtocolError", "WriteError", "PoolTimeout")  # fmt: skip
DEFAULT_URL = "http://127.0.0.1:8000"
#: Job and campaign ids are hex; a prefix of one is resolved by listing (see ``Client.job``).
_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
log = logging.getLogger("sigmalab.client")


class Client:
    """A connection to one sigmalab server.

    Parameters
    ----------
    url : the server; default ``$SIGMALAB_URL``, else ``http://127.0.0.1:8000``.
    token : bearer token; default ``$SIGMALAB_TOKEN``.
    timeout_s : per-request timeout (s); downloads use it between chunks.
    retries : how often a retryable request is retried.
    backoff_s : first retry delay (s), doubled per retry, capped at 30 s.
    on_retry : called with one line (what failed, which retry, the wait) before each retry's
        wait; default: a warning of the ``sigmalab.client`` logger.
    """

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        *,
        timeout_s: float = 30.0,
        retries: int = 5,
        backoff_s: float = 0.5,
        on_retry: Callable[[str], None] | None = None,
    ):
        url = url or os.environ.get("SIGMALAB_URL") or DEFAULT_URL
        token = token or os.environ.get("SIGMALAB_TOKEN")
        headers = {"User-Agent": "sigmalab-client"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        import httpx

        self.url = url.rstrip("/")
        self.retries, self.backoff_s = retries, backoff_s
        self.on_retry = on_retry or log.warning
        self._retry_exc = tuple(getattr(httpx, name) for name in _RETRY_EXC_NAMES)
        self._http = httpx.Client(
            base_url=url.rstrip("/") + "/v1",
            headers=headers,
            timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 10.0)),
        )

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # -- transport ------------------------------------------------------------------------------

    def request(self, method: str, path: str, **kwargs) -> httpx.Response:
        """Send a request with the retry policy; a problem answer raises its APIError."""
        headers = kwargs.get("headers") or {}
        retryable = method in ("GET", "HEAD") or "Idempotency-Key" in headers
        started = time.monotonic()
        for attempt in range(self.retries + 1):
            last = attempt == self.retries or not retryable
            try:
                response = self._http.request(method, path, **kwargs)
            except self._retry_exc as exc:
                reason = _reason(exc)
                if last:
                    raise TransportError(
                        f"cannot reach {self.url}: {reason} ({attempt + 1} tries, "
                        f"{time.monotonic() - started:.0f} s)"
                    ) from exc
                self._sleep(attempt, None, f"{self.url}: {reason}")
                continue
            if response.status_code in RETRY_STATUS and not last:
                what = f"{self.url} answered {response.status_code}"
                self._sleep(attempt, response.headers.get("Retry-After"), what)
                continue
            if response.status_code >= 400:
                raise error_for(response.status_code, _problem(response))
            return response
        raise AssertionError("unreachable")

    def _sleep(self, attempt: int, retry_after: str | None, what: str) -> None:
        delay = min(self.backoff_s * 2**attempt, 30.0)
        if retry_after is not None:
            # An HTTP-date (not seconds) keeps the backoff delay.
            with contextlib.suppress(ValueError):
                delay = max(float(retry_after), 0.0)
        self.on_retry(f"{what}; retry {attempt + 1}/{self.retries} in {delay:.1f} s")
        time.sleep(delay)

    # -- submitting -----------------------------------------------------------------------------

    def submit(
        self,
        request: dict,
        files: list[tuple[str, bytes]] | None = None,
        idempotency_key: str | None = None,
    ) -> Job:
        """Submit a job request (see the server's ``JobRequest`` schema) with optional files."""
        headers = {"Idempotency-Key": idempotency_key or uuid.uuid4().hex}
        if files:
            parts = [
                ("files", (name, content, "application/octet-stream")) for name, content in files
            ]
            response = self.request(
                "POST",
                "/jobs",
                headers=headers,
                data={"request": json.dumps(request)},
                files=parts,
            )
        else:
            response = self.request("POST", "/jobs", headers=headers, json=request)
        return Job(self, JobInfo.model_validate(response.json()))

    def submit_fit(
        self,
        path: str | Path,
        circuit: str,
        *,
        method: str = "nuts",
        draws: int = 1000,
        chains: int = 2,
        tune: int = 1000,
        seed: int | None = None,
        timeout_s: float | None = None,
        idempotency_key: str | None = None,
    ) -> Job:
        """Fit one instrument file with an equivalent circuit (``fit_spectrum``)."""
        path = Path(path)
        request = {
            "kind": "fit_spectrum",
            "file": path.name,
            "circuit": circuit,
            "method": method,
            "draws": draws,
            "chains": chains,
            "tune": tune,
            "seed": seed,
            "timeout_s": timeout_s,
        }
        return self.submit(request, [(path.name, path.read_bytes())], idempotency_key)

    def submit_study(
        self,
        directory: str | Path | None = None,
        *,
        dataset: str | None = None,
        method: str = "nuts",
        seed: int | None = None,
        timeout_s: float | None = None,
        idempotency_key: str | None = None,
    ) -> Job:
        """Analyse a study: upload ``directory`` (files + manifest) or name a server ``dataset``."""
        request = {
            "kind": "analyze_study",
            "dataset": dataset,
            "method": method,
            "seed": seed,
            "timeout_s": timeout_s,
        }
        files = []
        if directory is not None:
            root = Path(directory)
            if not root.is_dir():
                raise ServiceError(f"{root}: not a directory")
            files = [
                (p.relative_to(root).as_posix(), p.read_bytes())
                for p in sorted(root.rglob("*"))
                if p.is_file() and not any(s.startswith(".") for s in p.relative_to(root).parts)
            ]
        return self.submit(request, files, idempotency_key)

    def submit_propose(
        self,
        campaign: Any,
        q: int = 1,
        *,
        timeout_s: float | None = None,
        idempotency_key: str | None = None,
    ) -> Job:
        """Ask for ``q`` proposals; ``campaign``: a Campaign, its saved JSON file or its dict."""
        if isinstance(campaign, str | Path):
            state = json.loads(Path(campaign).read_text())
        elif isinstance(campaign, dict):
            state = campaign
        else:
            with tempfile.TemporaryDirectory() as tmp:
                campaign.save(Path(tmp) / "campaign.json")
                state = json.loads((Path(tmp) / "campaign.json").read_text())
        request = {"kind": "propose", "campaign": state, "q": q, "timeout_s": timeout_s}
        return self.submit(request, None, idempotency_key)

    # -- reading --------------------------------------------------------------------------------

    def job(self, job_id: str) -> Job:
        """The job with this id or unique id prefix.

        Raises
        ------
        NotFound
            No visible job has this id or an id starting with it.
        AmbiguousId
            Several jobs' ids start with it.
        """
        _check_id(job_id, "job")
        try:
            return Job(self, self._info(job_id))
        except NotFound:
            return _unique(job_id, "job", [j for j in self.jobs() if j.id.startswith(job_id)])

    def jobs(
        self, status: str | list[str] | None = None, kind: str | None = None, page_size: int = 50
    ) -> Iterator[Job]:
        """All visible jobs, newest first, following the pages."""
        params: dict[str, Any] = {"limit": page_size}
        if status:
            params["status"] = [status] if isinstance(status, str) else list(status)
        if kind:
            params["kind"] = kind
        while True:
            page = JobPage.model_validate(self.request("GET", "/jobs", params=params).json())
            for info in page.items:
                yield Job(self, info)
            if page.next_cursor is None:
                return
            params["cursor"] = page.next_cursor

    def health(self) -> dict:
        return self.request("GET", "/health").json()

    # -- campaigns ------------------------------------------------------------------------------

    def create_campaign(
        self,
        space: dict,
        objectives: dict[str, str],
        schedule: dict,
        *,
        q: int = 4,
        overlap: str = "forbid",
        catch_up: str = "once",
        connector: dict | None = None,
        analysis: dict | None = None,
        name: str | None = None,
        seed: int = 0,
        **options,
    ) -> RemoteCampaign:
        """Create a campaign on the server (see ``docs/campaigns.md``); its first round, the
        initial design, is queued at once. ``options``: ``n_initial``, ``grace_s``,
        ``max_catch_up``, ``idempotency_key``."""
        key = options.pop("idempotency_key", None) or uuid.uuid4().hex
        body = {"space": space, "objectives": objectives, "schedule": schedule, "q": q,
                "overlap": overlap, "catch_up": catch_up, "connector": connector,
                "analysis": analysis or {}, "name": name, "seed": seed, **options}  # fmt: skip
        response = self.request("POST", "/campaigns", headers={"Idempotency-Key": key}, json=body)
        return RemoteCampaign(self, CampaignInfo.model_validate(response.json()))

    def campaign(self, campaign_id: str) -> RemoteCampaign:
        """The campaign with this id or unique id prefix (raises NotFound, AmbiguousId)."""
        _check_id(campaign_id, "campaign")
        try:
            response = self.request("GET", f"/campaigns/{campaign_id}")
        except NotFound:
            found = [c for c in self.campaigns() if c.id.startswith(campaign_id)]
            return _unique(campaign_id, "campaign", found)
        return RemoteCampaign(self, CampaignInfo.model_validate(response.json()))

    def campaigns(self) -> list[RemoteCampaign]:
        """All visible campaigns, oldest first."""
        rows = self.request("GET", "/campaigns").json()
        return [RemoteCampaign(self, CampaignInfo.model_validate(r)) for r in rows]

    def _info(self, job_id: str) -> JobInfo:
        return JobInfo.model_validate(self.request("GET", f"/jobs/{job_id}").json())


class Job:
    """Handle on one job; ``info`` is its state as last fetched."""

    def __init__(self, client: Client, info: JobInfo):
        self.client, self.info = client, info

    @property
    def id(self) -> str:
        return self.info.id

    def __repr__(self) -> str:
        return f"Job({self.id!r}, kind={self.info.kind!r}, status={self.info.status!r})"

    def refresh(self) -> JobInfo:
        self.info = self.client._info(self.id)
        return self.info

    def status(self) -> str:
        """The job's current status (QUEUED … SUCCEEDED/FAILED/CANCELLED)."""
        return self.refresh().status

    def cancel(self) -> JobInfo:
        """Ask the server to stop the job (it ends CANCELLED within the grace period)."""
        headers = {"Idempotency-Key": uuid.uuid4().hex}
        response = self.client.request("POST", f"/jobs/{self.id}/cancel", headers=headers)
        self.info = JobInfo.model_validate(response.json())
        return self.info

    def wait(
        self, timeout: float | None = None, progress: bool = True, poll_s: float = 0.25
    ) -> Job:
        """Block until the job finishes; show a progress bar (stderr) fed by the server.

        Returns the job itself, ``info`` up to date, so that calls chain:
        ``client.submit_study(…).wait().summary()``.

        Raises
        ------
        JobFailed, JobCancelled
            The job ended without success.
        WaitTimeout
            ``timeout`` seconds passed first (the job keeps running).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        bar = _Bar(self.id) if progress else None
        delay = poll_s
        try:
            while True:
                info = self.refresh()
                if bar is not None:
                    bar.update(info)
                if info.done:
                    break
                if deadline is not None and time.monotonic() >= deadline:
                    raise WaitTimeout(f"job {self.id} still {info.status} after {timeout} s")
                pause = delay if deadline is None else min(delay, deadline - time.monotonic())
                time.sleep(max(pause, 0.0))
                delay = min(delay * 1.5, 2.0)
        finally:
            if bar is not None:
                bar.close()
        if info.status == "FAILED":
            raise JobFailed(info)
        if info.status == "CANCELLED":
            raise JobCancelled(info)
        return self

    def result(self, path: str | Path | None = None):
        """The result: an ``xarray.DataTree`` (fits, studies) or the proposals (a list).

        The file is downloaded (to ``path`` if given, else a temporary file), its SHA-256
        compared with the server's ETag, then opened and loaded into memory.

        Raises
        ------
        Conflict
            The job has not SUCCEEDED.
        IntegrityError
            The download does not match its ETag.
        """
        with tempfile.TemporaryDirectory() as tmp:
            target = Path(path) if path is not None else Path(tmp) / f"{self.id}.download"
            self._download(target)
            if self.info.kind == "propose":
                return json.loads(target.read_text())
            import xarray as xr

            with xr.open_datatree(target) as tree:
                return tree.load()

    def _download(self, target: Path) -> None:
        for attempt in range(self.client.retries + 1):
            try:
                with self.client._http.stream("GET", f"/jobs/{self.id}/result") as response:
                    if response.status_code >= 400:
                        response.read()
                        raise error_for(response.status_code, _problem(response))
                    expected = response.headers.get("ETag", "").strip('"')
                    h = hashlib.sha256()
                    with open(target, "wb") as f:
                        for chunk in response.iter_bytes(1 << 20):
                            h.update(chunk)
                            f.write(chunk)
            except self.client._retry_exc as exc:
                if attempt == self.client.retries:
                    raise TransportError(
                        f"download of job {self.id} failed: {_reason(exc)}"
                    ) from exc
                self.client._sleep(attempt, None, f"download of job {self.id}: {_reason(exc)}")
                continue
            if h.hexdigest() != expected:
                raise IntegrityError(
                    f"job {self.id}: downloaded SHA-256 {h.hexdigest()} differs from the "
                    f"ETag {expected}"
                )
            return

    def summary(self) -> dict:
        """The job's ``summary.json``."""
        return self.client.request("GET", f"/jobs/{self.id}/summary").json()

    def logs(self) -> str:
        """The job's log (dispatcher events and captured worker log records)."""
        return self.client.request("GET", f"/jobs/{self.id}/logs").text

    def follow_logs(self, poll_s: float = 1.0) -> Iterator[str]:
        """The log as it grows: yields each new piece of text until the job has finished."""
        seen = 0
        while True:
            done = self.refresh().done
            text = self.logs()  # append-only: what was read before is a prefix of it
            if len(text) > seen:
                yield text[seen:]
                seen = len(text)
            if done:
                return
            time.sleep(poll_s)


class RemoteCampaign:
    """Handle on one server-side campaign; ``info`` is its state as last fetched."""

    def __init__(self, client: Client, info: CampaignInfo):
        self.client, self.info = client, info

    @property
    def id(self) -> str:
        return self.info.id

    def __repr__(self) -> str:
        return f"RemoteCampaign({self.id!r}, name={self.info.name!r}, status={self.info.status!r})"

    def refresh(self) -> CampaignInfo:
        """State, history, best, Pareto front and next fire time, fetched now."""
        self.info = self.client.campaign(self.id).info
        return self.info

    def runs(self) -> list[RunInfo]:
        """Every fire of the campaign, oldest first (rounds, skipped and missed fires)."""
        rows = self.client.request("GET", f"/campaigns/{self.id}/runs").json()
        return [RunInfo.model_validate(r) for r in rows]

    def proposals(self, status: str | None = None) -> list[ProposalInfo]:
        """Proposals (``pending``, ``measured``, ``told``, ``failed`` or all)."""
        params = {"status": status} if status else None
        rows = self.client.request("GET", f"/campaigns/{self.id}/proposals", params=params).json()
        return [ProposalInfo.model_validate(r) for r in rows]

    def add_measurements(self, directory: str | Path, batch: str | None = None) -> MeasurementInfo:
        """Upload a study folder (``manifest.toml`` + instrument files) as a batch; recipes
        named like proposal ids (or with ``proposal = "<id>"``) measure those proposals.

        The batch name (default: a new unique one) makes a retried upload store it once."""
        root = Path(directory)
        if not (root / "manifest.toml").is_file():
            raise ServiceError(f"{root}: no manifest.toml in this folder")
        files = [
            ("files", (p.relative_to(root).as_posix(), p.read_bytes(), "application/octet-stream"))
            for p in sorted(root.rglob("*"))
            if p.is_file() and not any(s.startswith(".") for s in p.relative_to(root).parts)
        ]
        batch = batch or f"upload-{uuid.uuid4().hex[:12]}"
        response = self.client.request(
            "POST",
            f"/campaigns/{self.id}/measurements",
            headers={"Idempotency-Key": batch},
            data={"batch": batch},
            files=files,
        )
        return MeasurementInfo.model_validate(response.json())

    def report(self, path: str | Path | None = None) -> str:
        """The campaign's HTML report (also written to ``path`` if given)."""
        html = self.client.request("GET", f"/campaigns/{self.id}/report").text
        if path is not None:
            Path(path).write_text(html)
        return html

    def pause(self) -> CampaignInfo:
        return self._post(":pause")

    def resume(self) -> CampaignInfo:
        return self._post(":resume")

    def _post(self, action: str) -> CampaignInfo:
        headers = {"Idempotency-Key": uuid.uuid4().hex}  # pause/resume are idempotent
        response = self.client.request("POST", f"/campaigns/{self.id}{action}", headers=headers)
        self.info = CampaignInfo.model_validate(response.json())
        return self.info

    def wait_rounds(self, n: int, timeout: float = 600.0, poll_s: float = 1.0) -> CampaignInfo:
        """Block until ``n`` rounds have stored proposals (raises WaitTimeout)."""
        deadline = time.monotonic() + timeout
        while len(self.refresh().history) < n:
            if time.monotonic() >= deadline:
                raise WaitTimeout(
                    f"campaign {self.id}: {len(self.info.history)} of {n} rounds after {timeout} s"
                )
            time.sleep(poll_s)
        return self.info


class _Bar:
    """A rich progress bar (stderr) over the current phase's draws; the label says status and
    phase, the columns draws done, divergences and the server's ETA."""

    def __init__(self, job_id: str):
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[extra]}"),
            console=Console(stderr=True),
        )
        self._task = self._progress.add_task(job_id[:8], total=None, extra="")
        self._progress.start()

    def update(self, info: JobInfo) -> None:
        p = info.progress
        phase = (p.phase if p else None) or info.phase
        label = f"{info.id[:8]} {info.status.lower()}" + (f" {phase}" if phase else "")
        if info.attempt > 1:
            label += f" (attempt {info.attempt})"
        extra = []
        if p is not None and p.divergences:
            extra.append(f"{p.divergences} divergences")
        if p is not None and p.eta_s is not None:
            extra.append(f"ETA {p.eta_s:.0f} s")
        done = p.done if p is not None and p.done is not None else 0
        total = p.total if p is not None and p.total else None
        self._progress.update(
            self._task, description=label, completed=done, total=total, extra=", ".join(extra)
        )

    def close(self) -> None:
        self._progress.stop()


def _reason(exc: Exception) -> str:
    """A short reason for a transport error: "connection refused", "timed out"…"""
    text = re.sub(r"^\[Errno -?\d+\]\s*", "", str(exc)).strip()
    return (text or type(exc).__name__).rstrip(".").lower()


def _check_id(value: str, what: str) -> None:
    if not _ID.fullmatch(value or ""):
        raise NotFound(
            404, Problem(title="Not Found", status=404, detail=f"{value!r} is not a {what} id")
        )


def _unique(prefix: str, what: str, found: list):
    """The one job/campaign whose id starts with ``prefix``; NotFound or AmbiguousId else."""
    if len(found) == 1:
        return found[0]
    if not found:
        detail = f"no {what} {prefix!r} (nor one whose id starts with it)"
        raise NotFound(404, Problem(title="Not Found", status=404, detail=detail))
    raise AmbiguousId(prefix, what, [f.id for f in found])


def _problem(response: httpx.Response) -> Problem:
    try:
        return Problem.model_validate(response.json())
    except (ValueError, ValidationError):
        return Problem(title=response.reason_phrase or "Error", status=response.status_code,
                       detail=response.text[:200])  # fmt: skip
