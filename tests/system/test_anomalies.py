"""Baselines in a real daemon: an HTTP server whose answers take five times as long for
a while, after a baseline learnt from the history already in the state database: the
anomaly is logged, flagged on /metrics and on the page, and cleared once it is over."""

from __future__ import annotations

import json
import math
import random
import time
import urllib.request

from tests.helpers import (
    free_port,
    run_times,
    run_vigil,
    slow_http,
    wait_until,
    write_history,
)

#: The server's usual delay (s), and the check's usual duration around it (ms).
DELAY, USUAL_MS = 0.04, 42.0


def metric(http: int, name: str) -> float | None:
    with urllib.request.urlopen(f"http://127.0.0.1:{http}/metrics", timeout=5) as got:
        for line in got.read().decode().splitlines():
            if line.startswith(name):
                return float(line.split()[-1])
    return None


def test_five_times_slower_is_an_anomaly_until_it_is_over(write_config, daemon,
                                                           tmp_path) -> None:
    port, http = free_port(), free_port()
    now = time.time()
    rng = random.Random(28)
    # Three days of the usual, as the daemon would have kept them (c0 is the check).
    write_history(tmp_path / "state", 1, run_times(300, 3, now), lambda n, at: 0, now,
                  lambda i: USUAL_MS * math.exp(rng.gauss(0, 0.08))).close()
    config = write_config(f"""
        [daemon]
        state_dir = "state"
        http = "127.0.0.1:{http}"
        baseline_window = "10s"
        [checks.c0]
        type = "http"
        url = "http://127.0.0.1:{port}/"
        interval = "1s"
        baseline = ["duration"]
    """)
    flagged = 'vigil_check_anomalous{check="c0",series="duration"}'
    with slow_http(port, DELAY) as switch:
        d = daemon(config).start()
        d.wait_for("check.result", count=25, check="c0", timeout=40)  # two windows or so
        assert not d.events("check.anomaly")
        assert metric(http, flagged) == 0.0

        switch["delay"] = DELAY * 5
        [found] = d.wait_for("check.anomaly", check="c0", series="duration", timeout=40)
        assert found["value"] > 1.5 * USUAL_MS and 30 < found["usual"] < 60  # may be half slow
        assert found["score"] >= 5.5 and found["season"] == "day"
        assert metric(http, flagged) == 1.0
        with urllib.request.urlopen(f"http://127.0.0.1:{http}/status", timeout=5) as got:
            page = got.read().decode()
        assert "Unusual duration: score" in page and 'data-high="' in page

        switch["delay"] = DELAY
        [ended] = d.wait_for("check.anomaly_ended", check="c0", series="duration",
                             timeout=60)
        assert ended["value"] < 2 * USUAL_MS
        assert metric(http, flagged) == 0.0
        # The page's data marks the windows the anomaly spanned (its script shades
        # the results inside it on the chart).
        def marked() -> list[list[int | None]]:
            with urllib.request.urlopen(f"http://127.0.0.1:{http}/status", timeout=5) as got:
                page = got.read().decode()
            data = page.split('id="vigil-data" type="application/json">')[1]
            return json.loads(data.split("</script>")[0])["checks"]["c0"]["a"]

        # Saved by the store's writer within a second or so.
        wait_until(lambda: [span[1] is not None for span in marked()] == [True], 10,
                   "the ended anomaly on the page")
        [[start, end]] = marked()
        assert start is not None and end is not None and start < end
        assert d.stop() == 0

    listed = run_vigil("history", "c0", "--anomalies", "--json", "-c", str(config))
    assert listed.returncode == 0, listed.stderr
    [row] = json.loads(listed.stdout)["anomalies"]
    assert row["series"] == "duration" and row["end"] is not None
    assert row["start"] <= row["end"] and row["score"] >= 5.5 and 30 < row["usual"] < 60
    text = run_vigil("history", "c0", "--anomalies", "-c", str(config)).stdout
    assert text.startswith("c0: 1 anomaly since") and "duration: " in text
