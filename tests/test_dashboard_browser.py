"""The dashboard in a real headless browser: Debian's chromium driven by Playwright (never a downloaded
browser). The page loads without console errors, shows mappings created in the test, draws a lag chart that
rises while records wait for a disabled mapping and falls once it is enabled, shows a PROBLEM's fix, shows
markup-looking text as text, signs its requests in the browser when the API requires SigV4, and is usable
with the keyboard, in light and dark themes, at 1280×800 and at 375 px.

``TRIGGERFISH_DASHBOARD_SCREENSHOTS=docs/dashboard`` makes the main test write the README's screenshots.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import uuid as uuidlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Dialog, Page, ViewportSize, sync_playwright

from dashboard_support import DashStack, kafka_mapping
from esm_helpers import RECORDER, function_dict, produce, wait_until, write_config, write_handler
from fleet_helpers import Fleet
from triggerfish.api.app import create_app
from triggerfish.api.engine import EngineBackend
from triggerfish.api.server import ApiServer
from triggerfish.api.sigv4 import AccessKey
from triggerfish.functions.runtime import FunctionRuntime

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOTS = os.environ.get("TRIGGERFISH_DASHBOARD_SCREENSHOTS")
DESKTOP: ViewportSize = {"width": 1280, "height": 800}
PHONE: ViewportSize = {"width": 375, "height": 812}


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium is missing: apt-get install -y chromium (.ci/run installs it)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        yield launched
        launched.close()


class Watched:
    """A page with every console error, uncaught exception and dialog (an injected ``alert``) collected."""

    def __init__(self, browser: Browser, viewport: ViewportSize = DESKTOP, scheme: Any = "light") -> None:
        self.context = browser.new_context(viewport=viewport, color_scheme=scheme)
        self.page: Page = self.context.new_page()
        self.errors: list[str] = []
        self.requests: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("dialog", self._dialog)
        self.page.on("request", lambda r: self.requests.append(f"{r.url} {r.headers}"))

    def _dialog(self, dialog: Dialog) -> None:  # alert() from injected markup would land here
        self.errors.append(f"dialog: {dialog.message}")
        dialog.dismiss()

    def close(self) -> None:
        self.context.close()


def lag_now(page: Page, uuid: str) -> list[int]:
    found: list[int] = page.locator(f'article[data-uuid="{uuid}"] li.lag-text').evaluate_all(
        "items => items.map(i => Number(i.dataset.lagNow))")
    return found


def lag_max(page: Page, uuid: str) -> list[int]:
    found: list[int] = page.locator(f'article[data-uuid="{uuid}"] li.lag-text').evaluate_all(
        "items => items.map(i => Number(i.dataset.lagMax))")
    return found


@pytest.mark.kafka
def test_dashboard_in_a_browser(kafka: Any, make_topic: Callable[..., str], tmp_path: Path, browser: Browser) -> None:
    stack = DashStack(tmp_path)
    watched = Watched(browser)
    page = watched.page
    try:
        topic, dlq = make_topic(partitions=2), make_topic()
        quiet = stack.client.create_event_source_mapping(**kafka_mapping(topic, kafka.bootstrap, Enabled=False))["UUID"]
        missing = stack.client.create_event_source_mapping(**kafka_mapping("<b", kafka.bootstrap))["UUID"]
        failing_topic = make_topic()
        failing = stack.client.create_event_source_mapping(**kafka_mapping(
            failing_topic, kafka.bootstrap, "boom", MaximumRetryAttempts=0,
            DestinationConfig={"OnFailure": {"Destination": f"kafka://{dlq}"}}))["UUID"]

        page.goto(stack.url + "/?refresh=400")
        card = page.locator(f'article[data-uuid="{quiet}"]')
        card.wait_for()
        assert card.locator('[data-field="State"]').inner_text() == "Disabled"
        assert topic in card.locator("h3").inner_text()

        # records wait for the disabled mapping: the chart rises
        produce(kafka.bootstrap, topic, [b"a"] * 12, partition=0)
        wait_until(lambda: lag_now(page, quiet) == [12, 0], message="lag of partition 0 shown")
        produce(kafka.bootstrap, topic, [b"b"] * 8, partition=1)
        wait_until(lambda: lag_now(page, quiet) == [12, 8], message="lag of partition 1 shown")
        assert card.locator("svg polyline").count() == 2
        text = card.locator("figcaption").inner_text()
        assert f"{topic}-0: lag now 12" in text and f"{topic}-1: lag now 8" in text

        # enabled: the records are processed and the chart falls, keeping its peak
        stack.client.update_event_source_mapping(UUID=quiet, Enabled=True)
        wait_until(lambda: lag_now(page, quiet) == [0, 0], message="lag falls to 0 once enabled")
        assert lag_max(page, quiet) == [12, 8]
        wait_until(lambda: card.locator('[data-field="State"]').inner_text() == "Enabled")

        # a PROBLEM shows its fix; a markup-looking topic name is text
        problem = page.locator(f'article[data-uuid="{missing}"] .problem')
        problem.wait_for()
        expected = stack.mapping(missing)["Problem"]
        assert problem.locator('[data-field="Fix"]').inner_text() == f"Fix: {expected['Fix']}"
        assert expected["Detail"] in problem.locator('[data-field="Detail"]').inner_text()
        heading = page.locator(f'article[data-uuid="{missing}"] h3')
        assert heading.inner_text() == "rec ← <b" and heading.locator("b").count() == 0

        # error text that looks like markup stays text: no image, no script ran
        produce(kafka.bootstrap, failing_topic, [b"poison"])
        detail = page.locator(f'article[data-uuid="{failing}"] [data-field="Detail"]')
        wait_until(lambda: "<img src=x onerror=alert(1)>" in (detail.inner_text() if detail.count() else ""),
                   message="the handler's error text shown")
        row = page.locator("#failures-body tr", has_text=failing)
        row.wait_for()
        assert "RetryAttemptsExhausted" in row.inner_text() and f"kafka://{dlq}" in row.inner_text()
        assert f"{failing_topic}-0 0–0 (1)" in row.inner_text()
        assert page.locator("img").count() == 0
        summary = page.locator("ul.overview")
        # the failed record's offset is committed after its document is sent: the lag falls a moment later
        wait_until(lambda: "total lag 0" in summary.inner_text(), message="total lag 0 in the overview")
        assert "3 mapping(s)" in summary.inner_text() and "2 with a PROBLEM" in summary.inner_text()

        # keyboard: the skip link, then into the mappings and their tables, with a visible focus ring
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.className") == "skip"
        page.keyboard.press("Enter")
        assert page.evaluate("document.activeElement.id") == "mappings"
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.tagName") == "ARTICLE"
        ring = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
        assert ring not in ("", "none")
        focused = page.evaluate("document.activeElement.dataset.key")
        page.wait_for_timeout(900)  # two refreshes later the same card still has the focus
        assert page.evaluate("document.activeElement.dataset.key") == focused

        shots = [("desktop", DESKTOP, "light"), ("desktop", DESKTOP, "dark"), ("phone", PHONE, "light"),
                 ("phone", PHONE, "dark")]
        for name, viewport, scheme in shots:
            other = Watched(browser, viewport, scheme)
            try:
                other.page.goto(stack.url + "/?refresh=400")
                other.page.locator(f'article[data-uuid="{quiet}"] svg polyline').first.wait_for()
                other.page.locator("#failures-body td").first.wait_for()
                background = other.page.evaluate("getComputedStyle(document.body).backgroundColor")
                assert background == ("rgb(255, 255, 255)" if scheme == "light" else "rgb(13, 17, 23)")
                wide = other.page.evaluate("document.documentElement.scrollWidth")
                assert wide <= viewport["width"], f"{name}: the page scrolls sideways ({wide} px)"
                if SCREENSHOTS:
                    Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
                    other.page.screenshot(path=str(Path(SCREENSHOTS) / f"{name}-{scheme}.png"))
                assert other.errors == []
            finally:
                other.close()
        assert watched.errors == []
    finally:
        watched.close()
        stack.stop()


def test_signed_in_page_signs_its_requests_and_never_sends_the_secret(browser: Browser) -> None:
    key = AccessKey("AKIDBROWSER", "browser-secret-0123456789")
    server = ApiServer(create_app(EngineBackend(FunctionRuntime([])), access_key=key), port=0)
    url = server.start()
    watched = Watched(browser)
    page = watched.page
    try:
        page.goto(url + "/?refresh=400")
        page.locator("#login").wait_for()
        assert page.locator("#status").inner_text() == "Sign in to see the dashboard."
        # the script's own SHA-256 and HMAC agree with Python's
        for text in ("", "abc" * 40, "ünïcødé"):
            assert page.evaluate("t => triggerfishDashboard.sha256(t)", text) == hashlib.sha256(text.encode()).hexdigest()
        page.fill("#key-id", key.access_key_id)
        page.fill("#key-secret", "wrong")
        page.click("#login button[type=submit]")
        page.locator("#login-error", has_text="Refused").wait_for()
        page.fill("#key-id", key.access_key_id)
        page.fill("#key-secret", key.secret_access_key)
        page.click("#login button[type=submit]")
        page.locator("#status", has_text="Updated").wait_for()
        assert page.locator("#mappings-body", has_text="No event source mappings.").count() == 1
        assert all(key.secret_access_key not in r for r in watched.requests)
        page.click("#signout")
        page.locator("#login").wait_for()
        # the 403 of the wrong secret is the only console error (the browser reports refused fetches)
        assert all("403" in e for e in watched.errors)
    finally:
        watched.close()
        server.stop()


@pytest.mark.kafka
def test_fleet_replicas_and_the_partitions_they_own(kafka: Any, make_topic: Callable[..., str], tmp_path: Path,
                                                    browser: Browser) -> None:
    code = write_handler(tmp_path, "rec", RECORDER)
    fn = function_dict(code, "rec.handler", Environment={"Variables": {"OUT": str(tmp_path / "out.jsonl")}})
    fleet = Fleet(write_config(tmp_path / "triggerfish.yaml", [fn], []), tmp_path,
                  cluster=f"dash-{uuidlib.uuid4().hex[:8]}", bootstrap=kafka.bootstrap)
    watched = Watched(browser)
    try:
        fleet.start(2)
        topic = make_topic(partitions=2)
        uuid = fleet.client(1).create_event_source_mapping(**kafka_mapping(topic, kafka.bootstrap, "f"))["UUID"]

        def owners() -> dict[str, list[str]]:
            doc = httpx.get(fleet.replicas[2].url + "/dashboard/state.json", timeout=10).json()
            cluster = doc["Cluster"] or {"Replicas": []}
            return {r["Id"]: sorted(f"{p['Topic']}-{p['Partition']}" for p in r["Partitions"] if p["MappingUUID"] == uuid)
                    for r in cluster["Replicas"]}

        owned = wait_until(lambda: (o := owners()) and sorted(o) == ["r1", "r2"] and all(o.values()) and o,
                           timeout=60, message="each replica owns a partition, seen from r2")
        assert sorted(owned["r1"] + owned["r2"]) == [f"{topic}-0", f"{topic}-1"]

        page = watched.page
        page.goto(fleet.replicas[2].url + "/?refresh=500")
        for replica, parts in owned.items():
            row = page.locator("#cluster-body tr", has_text=replica)
            row.wait_for()
            assert ", ".join(parts) in row.inner_text()
        partitions = page.locator(f'article[data-uuid="{uuid}"] table')
        partitions.wait_for()
        assert "Owner" in partitions.inner_text()
        assert watched.errors == []
    finally:
        watched.close()
        fleet.stop()
