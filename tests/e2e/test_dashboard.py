"""The dashboard in a real browser: Debian's Chromium headless (Selenium, the system chromedriver)
against a running API and Celery worker on the embedded default (SQLite, filesystem broker).

One stack for the whole module. An officer signs in and files a request (approval required), a
reviewer approves it, the request page follows the real worker to `completed` without a reload by
hand, an auditor opens its report and verifies the audit log, and a reviewer is refused the admin
pages. With OBLIVIO_SCREENSHOTS=<folder> the main pages are saved there (docs/screenshots).
"""

import os
import shutil
import time
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select, WebDriverWait

from service.db.enums import Role
from tests.e2e.stack import launch
from tests.e2e.test_end_to_end import DEFAULTS, register_demo_data

pytestmark = pytest.mark.integration
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    stack = launch("embedded", tmp_path_factory.mktemp("dashboard"), {"OBLIVIO_REQUIRE_APPROVAL": "true"})
    try:
        register_demo_data(stack, gate=None, per_class=8)
        yield stack
    finally:
        stack.stop()


@pytest.fixture(scope="module")
def browser():
    assert shutil.which("chromium") and shutil.which("chromedriver"), "run scripts/ensure-browser.sh (make test does)"
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1000",
                "--disable-gpu", "--no-first-run"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.implicitly_wait(0)
    yield driver
    driver.quit()


class Pages:
    def __init__(self, driver, stack, shots: Path | None):
        self.driver, self.stack, self.shots = driver, stack, shots

    def go(self, path: str) -> None:
        self.driver.get(self.stack.url + path)

    def sign_in(self, role: Role) -> None:
        self.driver.delete_all_cookies()
        self.go("/ui/sign-in")
        field = self.driver.find_element(By.ID, "api_key")
        assert self.driver.find_element(By.CSS_SELECTOR, "label[for=api_key]").text == "API key"
        field.send_keys(self.stack.keys[role])
        field.send_keys(Keys.ENTER)  # the keyboard submits the form
        self.wait(lambda d: "/ui/requests" in d.current_url)
        assert f"({role.value})" in self.text("header")

    def text(self, css: str) -> str:
        return self.driver.find_element(By.CSS_SELECTOR, css).text

    def wait(self, condition, timeout: float = 30):
        try:
            return WebDriverWait(self.driver, timeout, poll_frequency=0.2).until(condition)
        except TimeoutException:
            raise AssertionError(f"timed out on {self.driver.current_url}:\n{self.text('body')[:3000]}\n"
                                 f"{self.stack.log_tail()}") from None

    def shot(self, name: str) -> None:
        if self.shots is not None:
            self.driver.save_screenshot(str(self.shots / f"{name}.png"))


@pytest.fixture(scope="module")
def pages(browser, stack):
    target = os.environ.get("OBLIVIO_SCREENSHOTS")
    shots = Path(target) if target else None
    if shots:
        shots.mkdir(parents=True, exist_ok=True)
    return Pages(browser, stack, shots)


def test_file_approve_watch_report_and_verify_in_the_browser(pages, stack):
    driver = pages.driver
    pages.sign_in(Role.officer)
    Select(driver.find_element(By.ID, "n-model")).select_by_visible_text("tiny")
    driver.find_element(By.ID, "n-classes").send_keys("circle")
    driver.find_element(By.ID, "n-external").send_keys("dsr-2026-0042")
    driver.find_element(By.ID, "file-request").click()
    pages.wait(lambda d: "/ui/requests/" in d.current_url)
    request_path = driver.current_url.removeprefix(stack.url)
    assert "pending_approval" in pages.text("#progress")
    assert "request.pending_approval" in pages.text("#history")
    assert "left" in pages.text(".due")  # days left shown
    pages.go("/ui/requests")
    assert "dsr-2026-0042" in pages.text("#requests")
    pages.shot("requests")

    pages.sign_in(Role.reviewer)
    pages.go("/ui/review")
    assert "dsr-2026-0042" in pages.text("#review")
    pages.shot("review")
    driver.find_element(By.LINK_TEXT, "approve or reject").click()
    driver.find_element(By.ID, "approve").click()

    pages.wait(lambda d: "queued" in pages.text("#progress") or "running" in pages.text("#progress")
               or "completed" in pages.text("#progress"))
    seen = set()

    def finished(d) -> bool:  # live.js swaps the fragment in; nobody reloads the page by hand
        state = pages.text("#progress")
        seen.add(state.split()[0] if state else "")
        return "completed" in state and "Outcome" in pages.text("#receipt-h + table, #receipt")

    pages.wait(finished, timeout=180)
    assert pages.text("#receipt").startswith("Outcome published"), stack.log_tail()
    assert "request.approved" in pages.text("#history") and "report.signed" in pages.text("#history")
    pages.shot("request")

    pages.sign_in(Role.auditor)
    pages.go(request_path)
    driver.find_element(By.ID, "open-report").click()
    pages.wait(lambda d: "/report" in d.current_url)
    assert "Oblivio audit report" in driver.title and "Publish gate" in driver.page_source
    pages.shot("report")
    pages.go("/ui/audit")
    driver.find_element(By.ID, "verify").send_keys(Keys.ENTER)  # keyboard again
    pages.wait(lambda d: d.find_elements(By.ID, "verdict"))
    assert "Verified: the log is intact." in pages.text("#verdict")
    pages.shot("audit")
    pages.go("/ui/models/tiny")
    assert "v2" in pages.text("#versions") and "superseded" in pages.text("#versions")
    pages.shot("models")


def test_a_reviewer_cannot_reach_admin_pages(pages):
    pages.sign_in(Role.reviewer)
    nav = pages.text("nav")
    assert "API keys" not in nav and "Audit log" not in nav and "Review queue" in nav
    for path in ("/ui/keys", "/ui/audit"):
        pages.go(path)
        assert pages.text("h1") == "Not allowed"
        assert "may not do this" in pages.text("main")
    pages.sign_in(Role.admin)
    pages.go("/ui/keys")
    assert pages.text("h1") == "API keys"
    pages.shot("keys")
    pages.driver.find_element(By.CSS_SELECTOR, "header button[type=submit]").click()  # sign out
    pages.wait(lambda d: "/ui/sign-in" in d.current_url)
    pages.go("/ui/keys")
    assert "/ui/sign-in" in pages.driver.current_url
