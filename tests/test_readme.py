"""The README runs: every fenced code block is executed (or parsed) as the README shows it.

Convention (also stated at the end of README.md):

- Every fenced block names its language. ``python`` blocks are executed, each in a fresh
  namespace; ``bash`` blocks are run line by line (``sigmalab …`` lines through sigmalab's own
  entry point in this process, other lines with bash) and every line must exit 0; ``toml`` and
  ``json`` blocks must parse; ``text`` blocks are prose (trees, sample output) and are not run.
- An HTML comment on the line before a block changes that: ``<!-- readme-test: skip REASON -->``
  (the block is not run; the reason is required) or ``<!-- readme-test: file NAME -->`` (the
  block is written to NAME in the examples' folder, for the blocks after it to use).
- Blocks run in order in one scratch folder that holds what the examples name:
  ``cell1_30C.mpt`` (a simulated three-arc cell, which the examples' 3-arc circuit describes),
  ``data/*.mpt`` (three spectra of the bundled study) and
  ``datasets/emley2023`` — a *subset* of the bundled study (dry_PTFE and wet_NBR, one ion- and
  one electron-blocking cell each, at 30 and 75 °C) so that analysing it takes seconds —
  and ``tests/data`` (the repository's instrument files, linked).
  ``SIGMALAB_URL`` and ``SIGMALAB_TOKEN`` point at the test server (a real uvicorn + Ray).
"""

from __future__ import annotations

# ruff: noqa: F811  (pytest fixtures imported from service_fixtures shadow their names)
import contextlib
import glob
import json
import re
import shlex
import shutil
import subprocess
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest
from service_fixtures import live_server, ray_address  # noqa: F401  (fixtures)

from inference.summary import validate_summary
from optimizer.virtual_lab.writers import write_three_arc_cell
from tests.conftest import REPO

README = REPO / "README.md"
BUNDLED = REPO / "datasets" / "emley2023"
LANGUAGES = {"python", "bash", "toml", "json", "text"}
#: The subset of the bundled study the examples analyse: recipes, cells and temperatures kept.
SUBSET_RECIPES = ("dry_PTFE", "wet_NBR")
SUBSET_CELLS = ("-ion-1", "-electron-1")
SUBSET_TEMPERATURES_C = (30.0, 75.0)
_FENCE = re.compile(r"^```(\S*)\s*$")
_DIRECTIVE = re.compile(r"<!--\s*readme-test:\s*(skip|file)\s*(.*?)\s*-->")


@dataclass
class Block:
    line: int
    language: str
    code: str
    directive: str = ""
    argument: str = ""

    @property
    def name(self) -> str:
        return f"README.md:{self.line} ({self.language})"


def readme_blocks(text: str) -> list[Block]:
    """The fenced blocks of ``text`` with their language and directive, in order."""
    lines = text.splitlines()
    blocks, i = [], 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        start = i
        j = i + 1
        while j < len(lines) and lines[j].rstrip() != "```":
            j += 1
        before = next((lines[k] for k in range(start - 1, -1, -1) if lines[k].strip()), "")
        d = _DIRECTIVE.search(before)
        blocks.append(
            Block(
                line=start + 1,
                language=m.group(1),
                code="\n".join(lines[start + 1 : j]) + "\n",
                directive=d.group(1) if d else "",
                argument=d.group(2) if d else "",
            )
        )
        i = j + 1
    return blocks


BLOCKS = readme_blocks(README.read_text(encoding="utf-8"))


def _subset_study(target: Path) -> None:
    """Copy the bundled study's files of SUBSET_RECIPES × SUBSET_CELLS at SUBSET_TEMPERATURES_C,
    with a manifest that lists only those (and the study's paper values and truth)."""
    import tomli_w

    manifest = tomllib.loads((BUNDLED / "manifest.toml").read_text())
    manifest["recipes"] = {k: v for k, v in manifest["recipes"].items() if k in SUBSET_RECIPES}
    keep = {
        c["id"]
        for c in manifest["cells"]
        if c["id"].endswith(SUBSET_CELLS) and c["recipe"] in SUBSET_RECIPES
    }
    manifest["cells"] = [c for c in manifest["cells"] if c["id"] in keep]
    manifest["files"] = [
        f
        for f in manifest["files"]
        if f["cell"] in keep and f.get("temperature_C") in SUBSET_TEMPERATURES_C
    ]
    for f in manifest["files"]:
        (target / f["path"]).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(BUNDLED / f["path"], target / f["path"])
    for name in ("paper_values.toml", "truth.json"):
        shutil.copy(BUNDLED / name, target / name)
    (target / "manifest.toml").write_text(tomli_w.dumps(manifest))


@pytest.fixture(scope="module")
def examples_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("readme")
    write_three_arc_cell(root / "cell1_30C.mpt")
    eis = sorted((BUNDLED / "eis").glob("dry_PTFE-ion-1_*.mpt"))
    (root / "data").mkdir()
    for path in eis[:3]:
        shutil.copy(path, root / "data" / path.name)
    _subset_study(root / "datasets" / "emley2023")
    (root / "tests").mkdir()
    (root / "tests" / "data").symlink_to(REPO / "tests" / "data", target_is_directory=True)
    return root


def _run_bash(block: Block, cwd: Path) -> None:
    from service.cli import main

    commands = block.code.replace("\\\n", " ").splitlines()
    for line in commands:
        argv = shlex.split(line, comments=True)
        if not argv:
            continue
        if argv[0] == "sigmalab":
            target = None
            if len(argv) > 2 and argv[-2] == ">":  # `sigmalab … > FILE`
                argv, target = argv[:-2], cwd / argv[-1]
            expanded = [m for a in argv[1:] for m in (sorted(glob.glob(a)) or [a])]
            with (
                pytest.raises(SystemExit) as stop,
                open(target, "w") if target else contextlib.nullcontext() as out,
                contextlib.redirect_stdout(out) if out else contextlib.nullcontext(),
            ):
                main(expanded)
            code = stop.value.code
            if argv[1] == "analyze" and code == 1:
                # documented: results written, verdict warning (e.g. a divergence in the small
                # subset's Arrhenius layer); the summary must say so
                summary = json.loads(
                    (cwd / argv[argv.index("--out") + 1] / "summary.json").read_text()
                )
                assert summary["diagnostics"]["verdict"] == "warning", block.name
                continue
            assert code == 0, f"{block.name}: `{line}` exited {code}"
        else:
            done = subprocess.run(["bash", "-c", line], cwd=cwd, capture_output=True, text=True)
            assert done.returncode == 0, f"{block.name}: `{line}`: {done.stderr}"


def test_every_block_names_a_known_language_and_skips_say_why():
    for block in BLOCKS:
        assert block.language in LANGUAGES, f"{block.name}: language {block.language!r}"
        if block.directive == "skip":
            assert block.argument, f"{block.name}: a skipped block must say why"
        if block.directive == "file":
            assert block.argument and "/" not in block.argument, block.name


def test_readme_summary_example_meets_the_summary_contract():
    example = next(b for b in BLOCKS if b.language == "json" and '"conductivity"' in b.code)
    validate_summary(json.loads(example.code))


@pytest.fixture
def in_examples(examples_dir, live_server, monkeypatch) -> Path:
    monkeypatch.chdir(examples_dir)
    monkeypatch.setenv("SIGMALAB_URL", live_server.url)
    monkeypatch.setenv("SIGMALAB_TOKEN", live_server.tokens["alice"])
    monkeypatch.setenv("COLUMNS", "100")
    return examples_dir


@pytest.mark.slow
# A user's walk through the README meets the default database; PostgreSQL is the service tests'.
@pytest.mark.parametrize("live_server", ["sqlite"], indirect=True)
@pytest.mark.parametrize("block", BLOCKS, ids=[b.name for b in BLOCKS])
def test_readme_block_runs(block, in_examples):
    """Blocks run in README order (pytest keeps parameter order) in one folder."""
    if block.directive == "skip":
        pytest.skip(block.argument)
    if block.directive == "file":
        (in_examples / block.argument).write_text(block.code)
    if block.language == "toml":
        tomllib.loads(block.code)
    elif block.language == "json":
        json.loads(block.code)
    elif block.language == "python":
        exec(compile(block.code, block.name, "exec"), {"__name__": "__readme__"})
    elif block.language == "bash":
        _run_bash(block, in_examples)
