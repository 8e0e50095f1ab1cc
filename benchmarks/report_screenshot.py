"""A report.html as a reader's browser shows it: a headless-Chromium screenshot of its first screen
at a given width, and whether anything widens the page past that width (a sideways scroll).

    python benchmarks/report_screenshot.py results/report/report.html --out results/report/first-screen.png

Chromium is not a project dependency (`apt-get install chromium` or any Chrome). The width check
loads a copy of the page with one line of script that writes the document's scroll width into
its title, and reads it back from Chromium's --dump-dom: no driver library needed.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

PROBE = ("<script>window.addEventListener('load', () => { document.title = 'scroll ' + "
         "document.documentElement.scrollWidth + ' of ' + window.innerWidth; });</script>")


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        found = shutil.which(name)
        if found:
            return found
    raise SystemExit("report_screenshot: no Chromium or Chrome on PATH (apt-get install chromium)")


def run(browser: str, args: list[str]) -> str:
    base = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"]
    return subprocess.run([*base, *args], capture_output=True, text=True, timeout=120, check=True).stdout


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("page", type=Path)
    parser.add_argument("--out", type=Path, required=True, help="the PNG of the first screen")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=800, help="one screen of a laptop")
    args = parser.parse_args(argv)
    if not args.page.is_file():
        print(f"report_screenshot: {args.page}: no such file", file=sys.stderr)
        return 2
    browser = chromium()
    size = f"--window-size={args.width},{args.height}"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    run(browser, [size, f"--screenshot={args.out.resolve()}", args.page.resolve().as_uri()])
    with tempfile.TemporaryDirectory() as tmp:
        probe = Path(tmp) / "page.html"
        head, found, tail = args.page.read_text().rpartition("</body>")
        probe.write_text(head + PROBE + found + tail if found else tail + PROBE)
        dom = run(browser, [size, "--virtual-time-budget=5000", "--dump-dom", probe.as_uri()])
    found = re.search(r"<title>scroll (\d+) of (\d+)</title>", dom)
    if not found:
        print("report_screenshot: the page's width could not be read back", file=sys.stderr)
        return 1
    scroll, inner = map(int, found.groups())
    verdict = ("nothing scrolls the page sideways" if scroll <= inner
               else f"the page scrolls sideways by {scroll - inner} px")
    print(f"{args.out}: first screen at {args.width}x{args.height}; page width {scroll} px in a {inner} px "
          f"window: {verdict}")
    return 0 if scroll <= inner else 1


if __name__ == "__main__":
    sys.exit(main())
