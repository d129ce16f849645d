"""Load time and size of the status page with 200 checks, each with a full heartbeat bar,
in a real headless Chromium (Debian's, through Playwright).

    .venv/bin/python -m tests.benchmarks.statuspage [--checks 200] [--loads 5]

Target (issue 14): the page under 1 MB; its load (navigation to the load event) under
1 s, median over the loads.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

from tests.benchmarks import announce, verdict, vigil_serving


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checks", type=int, default=200)
    parser.add_argument("--loads", type=int, default=5)
    args = parser.parse_args()
    announce(__doc__)
    from playwright.sync_api import sync_playwright

    with vigil_serving(args.checks, "500ms") as port:
        time.sleep(33)  # 60 results a check: every bar full
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium",
                                                 args=["--no-sandbox"])
            page = browser.new_page()
            times, sizes, served = [], [], []
            for _ in range(args.loads):
                answer = page.goto(f"http://127.0.0.1:{port}/status", wait_until="load")
                assert answer is not None
                sizes.append(len(answer.body()))
                timing = json.loads(page.evaluate(
                    "JSON.stringify(performance.getEntriesByType('navigation')[0])"))
                times.append(timing["loadEventEnd"])
                served.append(timing["responseEnd"] - timing["requestStart"])
                bars = sum(int(n) for n in page.eval_on_selector_all(
                    ".beats", "bars => bars.map(b => b.dataset.count)"))
            browser.close()
    print(f"{args.checks} checks, {bars} beats drawn; load {max(times):.0f} ms at most "
          f"over {args.loads} loads, of which the server's answer "
          f"{statistics.median(served):.0f} ms (median)")
    return verdict([
        (max(sizes) < 1e6, f"page {max(sizes) / 1e6:.2f} MB (target < 1)"),
        (statistics.median(times) < 1000,
         f"load {statistics.median(times):.0f} ms median (target < 1000)"),
    ])


if __name__ == "__main__":
    sys.exit(main())
