"""The CLI as a user meets it: one-line errors with exit code 2 before any work, --version,
--json, job ids by unique prefix, jobs logs --follow, visible retries, tables at 80 columns,
files with the user's umask, the service extra.

Commands run through ``service.cli.main`` (the console script's entry point) in this process.
"""

from __future__ import annotations

# ruff: noqa: F811  (pytest fixtures imported from service_fixtures shadow their names)
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from service_fixtures import free_port, live_server, ray_address  # noqa: F401  (fixtures)

from service.cli import main
from tests.conftest import INSTRUMENT_FILES, REPO

EXAMPLE = INSTRUMENT_FILES / "exampleData.csv"
STUDY = REPO / "datasets" / "emley2023"
SPECTRUM = STUDY / "eis" / "dry_PTFE-ion-1_30C.mpt"


def run(argv: list[str], capsys) -> tuple[int, str, str]:
    """Exit code, stdout and stderr of ``sigmalab ARGV``."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as stop:
        main([str(a) for a in argv])
    out = capsys.readouterr()
    return stop.value.code, out.out, out.err


def assert_one_line_error(code: int, err: str, *needles: str) -> None:
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert len(lines[0]) <= 80, lines[0]
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


@pytest.fixture(autouse=True)
def _eighty_columns(monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")


def _must_not_run(monkeypatch, target: str) -> None:
    """Replace ``module.name`` by a function that fails the test: no work may start."""
    module, name = target.rsplit(".", 1)

    def refuse(*args, **kwargs):
        raise AssertionError(f"{target} ran although the command should have stopped first")

    monkeypatch.setattr(f"{module}.{name}", refuse)


def test_version(capsys):
    from importlib.metadata import version

    code, out, _ = run(["--version"], capsys)
    assert code == 0 and out.strip() == f"sigmalab {version('sigmalab')}"


def test_output_paths_are_checked_before_any_work(tmp_path, capsys, monkeypatch):
    a_file = tmp_path / "a_file"
    a_file.write_text("not a folder")
    _must_not_run(monkeypatch, "inference.fit.fit_spectra")
    _must_not_run(monkeypatch, "inference.readers.read_records")
    code, _, err = run(["fit", EXAMPLE, "--out", "/proc/forbidden"], capsys)
    assert_one_line_error(code, err, "--out /proc/forbidden: cannot write in /proc")
    code, _, err = run(["fit", EXAMPLE, "--out", a_file], capsys)
    assert_one_line_error(code, err, "is a file")
    code, _, err = run(["fit", EXAMPLE, "--out", a_file / "below"], capsys)
    assert_one_line_error(code, err, "is below a file")

    _must_not_run(monkeypatch, "inference.analysis.analyze_study")
    code, _, err = run(["analyze", STUDY, "--out", a_file], capsys)
    assert_one_line_error(code, err, "is a file, not a folder")

    _must_not_run(monkeypatch, "optimizer.closed_loop.run_closed_loop")
    code, _, err = run(["campaign", "run", "--lab", "virtual", "--out", a_file], capsys)
    assert_one_line_error(code, err, "is a file")

    _must_not_run(monkeypatch, "service.commands.lab.simulate_preset")
    code, _, err = run(["lab", "simulate", "--preset", "emley2023", "--out", a_file], capsys)
    assert_one_line_error(code, err, "is a file")

    _must_not_run(monkeypatch, "service.client.Client.job")
    code, _, err = run(["jobs", "result", "abc", "--out", tmp_path], capsys)
    assert_one_line_error(code, err, "is a folder")
    deep = "/proc/forbidden/" + "very-long-folder-name/" * 4 + "result.nc"
    code, _, err = run(["jobs", "result", "abc", "--out", deep], capsys)
    assert_one_line_error(code, err, "/…/result.nc: cannot write in /proc")  # shortened


def test_a_checked_output_folder_is_not_created_when_the_command_fails(tmp_path, capsys):
    out = tmp_path / "new" / "fits"
    code, _, err = run(["fit", EXAMPLE, "--circuit", "R0-p(R1,CPE1", "--out", out], capsys)
    assert_one_line_error(code, err, "R0-p(R1,CPE1")
    assert not (tmp_path / "new").exists()


def test_usage_mistakes_are_one_line(capsys):
    code, _, err = run(["fit", EXAMPLE, "--bogus"], capsys)
    assert_one_line_error(code, err, "No such option: --bogus")
    code, _, err = run(["jobs", "show"], capsys)
    assert_one_line_error(code, err, "Missing argument")
    code, _, err = run(["fit", "no/such/file.mpt"], capsys)
    assert_one_line_error(code, err, "no such file")
    code, _, err = run(["fit", EXAMPLE, "--constant", "R0:10"], capsys)
    assert_one_line_error(code, err, "NAME=VALUE")


def test_a_refused_connection_is_said_at_once_and_retried_visibly(capsys, monkeypatch):
    waits = []
    monkeypatch.setattr("service.client.time.sleep", waits.append)  # count, don't wait
    url = f"http://127.0.0.1:{free_port()}"
    code, out, err = run(["jobs", "list", "--url", url], capsys)
    lines = err.strip().splitlines()
    assert waits == [0.5, 1.0, 2.0, 4.0, 8.0]  # the backoff the warnings announce
    assert len(lines) == 6
    for n, (line, wait) in enumerate(zip(lines[:5], waits, strict=True), start=1):
        assert line == f"warning: {url}: connection refused; retry {n}/5 in {wait:.1f} s"
    assert_one_line_error(code, lines[-1], f"cannot reach {url}: connection refused", "6 tries")
    assert out == ""


def test_inspect_and_fit_print_json_and_files_keep_the_umask(tmp_path, capsys):
    files = sorted(INSTRUMENT_FILES.glob("exampleData*"))
    code, out, _ = run(["inspect", *files, "--json"], capsys)
    infos = json.loads(out)
    assert code == 1  # one of them has no frequency column
    assert [i["path"] for i in infos] == [str(f) for f in files]
    assert {i["ok"] for i in infos} == {True, False}

    circuit = "R0-p(R1,CPE1)-p(R2,CPE2)-p(R3,CPE3)"
    argv = ["fit", SPECTRUM, "--circuit", circuit, "--method", "lsq", "--out", tmp_path]
    old = os.umask(0o027)
    try:
        code, out, _ = run([*argv, "--constant", "R0=0.9", "--json"], capsys)
        from optimizer.campaign import Campaign

        space = {"x": {"type": "real", "low": 0, "high": 1}}
        Campaign(space=space, objectives={"y": "maximize"}).save(tmp_path / "c.json")
    finally:
        os.umask(old)
    assert code == 0
    (doc,) = json.loads(out)
    assert doc["circuit"] == circuit and doc["method"] == "lsq"
    assert doc["parameters"]["R0"]["median"] == pytest.approx(0.9)
    assert doc["parameters"]["R0"]["q5"] == doc["parameters"]["R0"]["q95"]  # constant
    r3 = doc["parameters"]["R3"]
    assert r3["unit"] == "Ohm" and r3["q5"] < r3["median"] < r3["q95"]
    assert doc["kramers_kronig"]["kk_verdict"] == "pass" and doc["warnings"]
    written = [Path(doc["outputs"]["netcdf"]), Path(doc["outputs"]["plot"]), tmp_path / "c.json"]
    for path in written:  # mkstemp would make the .nc and the campaign 0600
        assert path.stat().st_mode & 0o777 == 0o640, path


def test_serve_without_the_service_extra_says_how_to_get_it(tmp_path, capsys, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "ray" else real(name, *a)
    )
    code, _, err = run(["serve", "--data-dir", tmp_path], capsys)
    assert_one_line_error(code, err, "pip install 'sigmalab[service]'", "ray")


def test_the_cli_and_client_import_without_the_service_extra():
    """A notebook install (no Ray, FastAPI, SQLAlchemy, croniter) still has CLI and client."""
    blocked = ["ray", "fastapi", "uvicorn", "multipart", "sqlalchemy", "alembic", "croniter"]
    code = (
        "import sys\n"
        f"for name in {blocked!r}: sys.modules[name] = None\n"
        "import service.client, service.cli\n"
        "from service.cli import main\n"
        "main(['--version'])\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("sigmalab ")


def test_jobs_by_unique_prefix_list_at_80_columns_and_follow_logs(live_server, capsys):
    from optimizer.campaign import Campaign

    space = {"binder_wt_pct": {"type": "real", "low": 0, "high": 3}}
    spec = Campaign(space=space, objectives={"sigma_ion": "maximize"}, seed=0)
    with live_server.client("bob") as client:
        job = client.submit_propose(spec, q=1)
    auth = ["--url", live_server.url, "--token", live_server.tokens["bob"]]
    code, out, _ = run(["jobs", "logs", job.id[:8], "--follow", *auth], capsys)
    assert code == 0 and "attempt 1" in out  # printed until the job ended
    code, out, _ = run(["jobs", "show", job.id[:8], *auth], capsys)
    assert (
        code == 0 and json.loads(out)["id"] == job.id and json.loads(out)["status"] == "SUCCEEDED"
    )
    code, out, _ = run(["jobs", "wait", job.id[:6], "--json", *auth], capsys)
    assert code == 0 and json.loads(out)["status"] == "SUCCEEDED"
    code, out, _ = run(["jobs", "list", *auth], capsys)
    assert code == 0 and job.id in out
    assert max(len(line) for line in out.splitlines()) <= 80
    code, out, _ = run(["jobs", "list", "--json", *auth], capsys)
    assert job.id in [j["id"] for j in json.loads(out)]
    code, _, err = run(["jobs", "show", "0" * 32, *auth], capsys)
    assert_one_line_error(code, err, "HTTP 404")
    code, _, err = run(["jobs", "show", "../health", *auth], capsys)
    assert_one_line_error(code, err, "is not a job id")


def test_an_ambiguous_prefix_names_the_candidates():
    from service.client import _unique
    from service.errors import AmbiguousId

    class Found:
        def __init__(self, id_):
            self.id = id_

    found = [Found("ab12" + "0" * 28), Found("ab12" + "f" * 28)]
    assert _unique("ab12", "job", found[:1]) is found[0]
    with pytest.raises(AmbiguousId, match="job id 'ab12' matches 2: ab120000…, ab12ffff…"):
        _unique("ab12", "job", found)
