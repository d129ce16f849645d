"""The status page in a real headless Chromium (Debian's, driven by Playwright): it shows
every check, follows a death and a heal live, shows a maintenance window's banners as it
opens and ends, heals a given-up service with the token, survives a daemon restart, and
passes axe-core's accessibility rules."""

from __future__ import annotations

import os
import re
import shutil
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.helpers import ROOT, free_port, listening, run_vigil, saved_pid

TOKEN = "page-token"
CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    assert shutil.which(CHROMIUM), "install the Debian package chromium"
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM,
                                              args=["--no-sandbox"])
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    # With http_token set, the page asks for a login: the token is its password (its
    # data and event stream then ride on the same login).
    context = browser.new_context(viewport={"width": 1200, "height": 900},
                                  http_credentials={"username": "me", "password": TOKEN})
    page = context.new_page()
    page.problems = []  # console errors and uncaught exceptions
    page.on("console", lambda m: page.problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: page.problems.append(str(e)))
    yield page
    context.close()


def stack(write_config, tmp_path: Path) -> tuple[Path, int]:
    """A web server vigil heals (a command service), a service that cannot start until
    it is "fixed", and a plain system check."""
    port, web, broken = free_port(), free_port(), free_port()
    fixed = tmp_path / "fixed"
    starter = (f"import os, sys; os.path.exists({str(fixed)!r}) or sys.exit(1); "
               f"os.execv(sys.executable, [sys.executable, '-m', 'http.server', '{broken}', "
               "'--bind', '127.0.0.1'])")
    config = write_config(f"""
        [daemon]
        state_dir = "state"
        http = "127.0.0.1:{port}"
        http_token = "{TOKEN}"
        slo_interval = "1s"
        [slos.web_up]
        check = "web"
        objective = "99.9%"
        [services.web]
        manager = "command"
        start = ["{sys.executable}", "-m", "http.server", "{web}", "--bind", "127.0.0.1"]
        [services.broken]
        manager = "command"
        start = ["{sys.executable}", "-c", "{starter}"]
        restarts = 1
        start_timeout = "3s"
        [checks.web]
        type = "tcp"
        port = {web}
        service = "web"
        interval = "1s"
        fall = 1
        rise = 1
        [checks.broken]
        type = "tcp"
        port = {broken}
        service = "broken"
        interval = "1s"
        fall = 1
        [checks.system]
        type = "system"
        interval = "2s"
    """)
    return config, port


def test_the_page_follows_a_death_and_a_heal_live(write_config, daemon, tmp_path,
                                                   page) -> None:
    config, port = stack(write_config, tmp_path)
    d = daemon(config).start()
    d.wait_for("heal.succeeded", service="web", timeout=20)
    d.wait_for("heal.gave_up", service="broken", timeout=30)
    page.goto(f"http://127.0.0.1:{port}/")
    assert page.url.endswith("/status")
    page.wait_for_selector("#live.on", timeout=5000)
    names = page.locator(".check h3").all_text_contents()
    assert sorted(names) == ["broken", "system", "web"]
    # The objective's panel, and the card of the check that feeds it.
    expect(page.locator("#slo-web_up .gauge")).to_be_visible()
    expect(page.locator("#slo-web_up .burndown")).to_be_visible()
    expect(page.locator("#check-web .facts")).to_contain_text("web_up")
    web = page.locator("#check-web")
    expect(web).to_have_attribute("data-state", "OK", timeout=10000)

    # Killed: the open page says FAILING within 3 s, and OK again once healed.
    os.kill(saved_pid(tmp_path / "state", "web"), signal.SIGKILL)
    expect(web).to_have_attribute("data-state", "FAILING", timeout=3000)
    assert "FAILING" in web.locator(".state").text_content()
    expect(web).to_have_attribute("data-state", "OK", timeout=15000)
    assert int(page.locator("#check-web .beats").get_attribute("data-count")) > 3

    # Hover or focus on a beat says what it was, its summary fetched then.
    page.locator("#check-web .beats").focus()
    expect(page.locator("#check-web .beat-info")).to_contain_text(" ms · 127.0.0.1:")
    page.locator("#check-web .beats").press("ArrowLeft")
    expect(page.locator("#check-web .beats .current.shown")).to_have_count(1)

    # Given up: a banner, and the button heals it once the operator fixed it.
    broken = page.locator("#service-broken")
    assert "gave up" in broken.locator(".gave-up").text_content()
    (tmp_path / "fixed").touch()
    page.fill("#token", TOKEN)
    page.dispatch_event("#token", "change")
    broken.locator("button.heal").click()
    expect(broken.locator(".heal-result")).to_have_text(re.compile(r"^healed in \d+\.\d s$"),
                                                       timeout=15000)
    expect(page.locator("#check-broken")).to_have_attribute("data-state", "OK", timeout=10000)
    expect(broken.locator(".gave-up")).to_have_count(0)
    expect(page.locator('[data-count="gave-up"]')).to_have_text("0")

    # The README's picture of the page.
    (ROOT / "docs").mkdir(exist_ok=True)
    page.screenshot(path=str(ROOT / "docs" / "status-page.png"), full_page=True)

    # Filters hide what does not match.
    page.fill("#filter-name", "sys")
    assert page.locator(".check:not(.hidden) h3").all_text_contents() == ["system"]
    page.fill("#filter-name", "")

    assert not page.problems, page.problems

    # A daemon restart: the page reconnects by itself and goes on updating.
    assert d.stop() == 0
    page.wait_for_selector("#live:not(.on)", timeout=10000)
    again = daemon(config).start()
    page.wait_for_selector("#live.on", timeout=15000)
    before = page.locator("#check-system").get_attribute("data-updated")
    again.wait_for("check.result", count=2, check="system")
    expect(page.locator("#check-system")).not_to_have_attribute("data-updated", before or "",
                                                                timeout=10000)
    assert not page.problems, page.problems


def test_the_page_takes_the_state_anew_at_a_reconnect_and_follows_filters_and_reloads(
        write_config, daemon, tmp_path, page) -> None:
    port, flip, slow = free_port(), free_port(), free_port()
    # Listens two seconds after it is started: a heal long enough to be seen.
    starter = (f"import os, sys, time; time.sleep(2); os.execv(sys.executable, [sys.executable, "
               f"'-m', 'http.server', '{slow}', '--bind', '127.0.0.1'])")
    warn = "import sys; print('degraded'); sys.exit(1)"
    body = f"""
        [daemon]
        state_dir = "state"
        http = "127.0.0.1:{port}"
        [services.slow]
        manager = "command"
        start = ["{sys.executable}", "-c", "{starter}"]
        [checks.flip]
        type = "tcp"
        port = {flip}
        interval = "300ms"
        fall = 1
        rise = 1
        [checks.slow]
        type = "tcp"
        port = {slow}
        service = "slow"
        interval = "300ms"
        fall = 1
        [checks.warn]
        type = "exec"
        command = ["{sys.executable}", "-c", "{warn}"]
        interval = "1s"
    """
    config = write_config(body)
    d = daemon(config).start()
    d.wait_for("heal.succeeded", service="slow", timeout=20)
    d.wait_for("check.result", check="warn")
    page.goto(f"http://127.0.0.1:{port}/status")
    page.wait_for_selector("#live.on", timeout=5000)
    flipped = page.locator("#check-flip")
    expect(flipped).to_have_attribute("data-state", "FAILING", timeout=5000)
    # Each check counted once: a WARN is not an OK too.
    expect(page.locator("#summary")).to_contain_text("1 OK · 1 WARN · 1 FAILING · 0 pending",
                                                    timeout=5000)
    page.select_option("#filter-state", "WARN")
    assert page.locator(".check:not(.hidden) h3").all_text_contents() == ["warn"]

    # The filter follows live changes: with FAILING picked, a check that fails shows.
    page.select_option("#filter-state", "FAILING")
    assert page.locator(".check:not(.hidden) h3").all_text_contents() == ["flip"]
    os.kill(saved_pid(tmp_path / "state", "slow"), signal.SIGKILL)
    expect(page.locator("#check-slow")).not_to_have_class(re.compile("hidden"), timeout=5000)
    # Healing is counted while it lasts (the service listens 2 s after its start).
    expect(page.locator('[data-count="healing"]')).to_have_text("1", timeout=5000)
    expect(page.locator('[data-count="healing"]')).to_have_text("0", timeout=15000)
    expect(page.locator("#service-slow .heals li").first).to_have_text(
        re.compile(r"^just now: healed in \d+\.\d s$"))
    page.select_option("#filter-state", "")

    # A restart while flip recovers: the page takes the state anew when it reconnects.
    assert d.stop() == 0
    page.wait_for_selector("#live:not(.on)", timeout=10000)
    with listening(flip):
        again = daemon(config).start()
        again.wait_for("check.state_changed", check="flip", to="OK")
        page.wait_for_selector("#live.on", timeout=15000)
        expect(flipped).to_have_attribute("data-state", "OK", timeout=5000)
        expect(page.locator('[data-count="FAILING"]')).to_have_text("0")

        # A check added by a reload appears.
        write_config(body + f"""
        [checks.added]
        type = "tcp"
        port = {flip}
        interval = "1s"
        """)
        again.signal(signal.SIGHUP)
        again.wait_for("config.reloaded")
        expect(page.locator("#check-added")).to_have_count(1, timeout=5000)
        expect(page.locator("#check-added")).to_have_attribute("data-state", "OK",
                                                               timeout=5000)
    assert not page.problems, page.problems


def test_a_maintenance_window_shows_its_banner_on_the_open_page_and_goes_when_ended(
        write_config, daemon, page) -> None:
    """`vigil maintenance start` on a service: its card and its check's say so on the
    page already open (no reload: a mark set in the page survives), the other check's
    does not; `vigil maintenance end` takes the banners away."""
    port, web = free_port(), free_port()
    config = write_config(f"""
        [daemon]
        state_dir = "state"
        http = "127.0.0.1:{port}"
        http_token = "{TOKEN}"
        [services.web]
        manager = "command"
        start = ["{sys.executable}", "-m", "http.server", "{web}", "--bind", "127.0.0.1"]
        [checks.web]
        type = "tcp"
        port = {web}
        service = "web"
        interval = "1s"
        fall = 1
        rise = 1
        [checks.other]
        type = "tcp"
        port = {web}
        interval = "1s"
    """)
    d = daemon(config).start()
    d.wait_for("heal.succeeded", service="web", timeout=20)
    page.goto(f"http://127.0.0.1:{port}/status")
    page.wait_for_selector("#live.on", timeout=5000)
    check, service = page.locator("#check-web"), page.locator("#service-web")
    expect(check).to_have_attribute("data-state", "OK", timeout=10000)
    expect(page.locator(".maintenance")).to_have_count(0)
    page.evaluate("window.vigilTestMark = 'kept'")

    started = run_vigil("maintenance", "start", "web", "--for", "30m", "--reason",
                        "upgrade to 16", "-c", str(config))
    assert started.returncode == 0, started.stderr
    banner = re.compile(r"^Under maintenance for \d+[sm] more \(by vigil maintenance\): "
                        r"upgrade to 16$")
    expect(check.locator(".maintenance")).to_have_text(banner, timeout=10000)
    expect(service.locator(".maintenance")).to_have_text(banner)
    expect(check).to_have_attribute("data-state", "MAINTENANCE")
    expect(page.locator("#check-other .maintenance")).to_have_count(0)
    expect(page.locator('[data-count="MAINTENANCE"]')).to_have_text("1")

    ended = run_vigil("maintenance", "end", "web", "-c", str(config))
    assert ended.returncode == 0, ended.stderr
    expect(page.locator(".maintenance")).to_have_count(0, timeout=10000)
    expect(check).to_have_attribute("data-state", "OK", timeout=10000)
    expect(page.locator('[data-count="MAINTENANCE"]')).to_have_text("0")
    assert page.evaluate("window.vigilTestMark") == "kept", "the page was reloaded"
    assert not page.problems, page.problems
    assert d.stop() == 0


def test_the_page_speaks_words_and_fits_a_phone(write_config, daemon, page) -> None:
    port = free_port()
    perf = ("import sys; print('fine | load1=0.754883 "
            "a_really_long_metric_name_for_a_phone_screen_bytes=123456789012.5'); sys.exit(0)")
    config = write_config(f"""
        [daemon]
        state_dir = "state"
        http = "127.0.0.1:{port}"
        [checks.figures]
        type = "exec"
        command = ["{sys.executable}", "-c", "{perf}"]
        interval = "1s"
    """)
    d = daemon(config).start()
    d.wait_for("check.result", check="figures")
    page.set_viewport_size({"width": 375, "height": 800})
    page.goto(f"http://127.0.0.1:{port}/status")
    page.wait_for_selector("#live.on", timeout=5000)
    panel = page.locator("#check-figures .panel")
    assert panel.locator("td").all_text_contents() == ["123,456,789,012", "0.755"]
    # Nothing cut off: the table fits its card, and the card the screen.
    assert panel.evaluate("el => el.scrollWidth <= el.clientWidth"), "the table overflows"
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    assert page.locator("#services-list").text_content().startswith("No services")
    expect(page.locator("#check-figures .scale")).to_contain_text(
        re.compile(r"^response time, top \d+\.\d ms$"))
    assert not page.problems, page.problems


def test_a_check_named_like_markup_leaves_the_page_working(write_config, daemon,
                                                           page) -> None:
    # Its name inlined in the page's JSON must not end the script or open a comment.
    port = free_port()
    config = write_config(f"""
        [daemon]
        state_dir = "state"
        http = "127.0.0.1:{port}"
        [checks."x<!--<script>"]
        type = "tcp"
        port = 1
        interval = "1s"
        [checks."</script><b>bold</b>"]
        type = "tcp"
        port = 1
        interval = "1s"
    """)
    d = daemon(config).start()
    d.wait_for("check.result", check="x<!--<script>")
    page.goto(f"http://127.0.0.1:{port}/status")
    page.wait_for_selector("#live.on", timeout=5000)  # the script ran, and listens
    names = page.locator(".checks h3, .checks .name").all_text_contents()
    assert any("x<!--<script>" in n for n in names), names
    assert page.locator("b", has_text="bold").count() == 0
    assert not page.problems, page.problems


def test_the_page_has_no_serious_accessibility_violation(write_config, daemon, tmp_path,
                                                         page) -> None:
    from axe_playwright_python.sync_playwright import Axe

    config, port = stack(write_config, tmp_path)
    d = daemon(config).start()
    d.wait_for("heal.gave_up", service="broken", timeout=30)
    for scheme in ("light", "dark"):
        page.emulate_media(color_scheme=scheme)
        page.goto(f"http://127.0.0.1:{port}/status")
        page.wait_for_selector("#live.on", timeout=5000)
        found = Axe().run(page).response["violations"]
        serious = [(v["id"], v["help"], len(v["nodes"])) for v in found
                   if v["impact"] in ("serious", "critical")]
        assert not serious, f"{scheme}: {serious}"
    # On a phone: one column, nothing wider than the screen.
    page.set_viewport_size({"width": 375, "height": 800})
    page.reload()
    page.wait_for_selector("#live.on", timeout=5000)
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    assert not page.problems, page.problems
