"""Screenshots of a study report in headless Chromium, at desktop and phone widths.

    python scripts/screenshot_report.py out/emley2023/report.html docs/

(``make screenshots`` runs the demo analysis first and installs Debian's ``chromium`` when it
is missing.) Writes ``report-desktop.png`` (the top of the report), ``report-nyquist.png`` (the
first recipe's impedance fits), ``report-table.png`` (the per-spectrum table) and
``report-phone.png`` / ``report-phone-table.png`` (the top and the table at 390 px). A section is
shot from a copy of the report that holds only that section (same styles), so every shot
starts at its section whatever the page length.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

#: (file name, window width × height in px, section start marker or None, section end marker).
SHOTS = [
    ("report-desktop.png", (1280, 1500), None, None),
    ("report-nyquist.png", (1280, 1350), '<h2 id="impedance-fits"', "<h3>", 2),
    ("report-table.png", (1280, 1000), '<h3 id="per-spectrum"', "<h2", 1),
    ("report-phone.png", (390, 1400), None, None),
    ("report-phone-table.png", (390, 900), '<h3 id="per-spectrum"', "<h2", 1),
]


def section(html: str, start: str | None, end: str | None, skip: int = 1) -> str:
    """The report with its body cut to [start, the ``skip``-th ``end`` after it)."""
    if start is None:
        return html
    head, body = html.split("<main>", 1)
    body, tail = body.rsplit("</main>", 1)
    begin = body.index(start)
    stop = begin
    for _ in range(skip):
        found = body.find(end, stop + 1)
        stop = found if found >= 0 else len(body)
    return f"{head}<main>{body[begin:stop]}</main>{tail}"


def shoot(html: str, out: Path, size: tuple[int, int], browser: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        page = Path(tmp) / "page.html"
        page.write_text(html, encoding="utf-8")
        subprocess.run(
            [browser, "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
             f"--window-size={size[0]},{size[1]}", f"--screenshot={out}", page.as_uri()],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip


def main(report: str, out_dir: str) -> None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        sys.exit("error: chromium not found (Debian: apt-get install chromium)")
    html = Path(report).read_text(encoding="utf-8")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for name, size, start, *rest in SHOTS:
        end, skip = (rest + [None, 1])[:2] if rest else (None, 1)
        shoot(section(html, start, end, skip or 1), out / name, size, browser)
        print(f"wrote {out / name}")
    title = re.search(r"<h1>(.*?)</h1>", html)
    print(f"report: {title.group(1) if title else report}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__.splitlines()[2].strip())
    main(sys.argv[1], sys.argv[2])
