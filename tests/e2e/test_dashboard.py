"""The dashboard in a real browser: Debian's Chromium headless (Selenium, the system chromedriver)
against a running API and Celery worker on the embedded default (SQLite, filesystem broker).

One stack for the whole module. An officer signs in and files a request (approval required), a
reviewer approves it, the request page follows the real worker to `completed` without a reload by
hand, an auditor opens its report and verifies the audit log, and a reviewer is refused the admin
pages. With OBLIVIO_SCREENSHOTS=<folder> the main pages are saved there (docs/screenshots).
"""

import os
import shutil
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException, TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select, WebDriverWait

from service.db.enums import Role
from service.db.models import UnlearnRequest
from service.db.session import make_engine, make_sessionmaker
from tests.e2e.stack import launch
from tests.e2e.test_end_to_end import register_demo_data

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
            return WebDriverWait(self.driver, timeout, poll_frequency=0.2,  # live.js swaps nodes under our feet
                                 ignored_exceptions=(NoSuchElementException, StaleElementReferenceException)).until(condition)
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
    assert seen - {"completed"}, seen  # it was seen in flight, then followed to the end
    assert pages.text("#receipt").startswith("Outcome published"), stack.log_tail()
    assert "request.approved" in pages.text("#history") and "report.signed" in pages.text("#history")
    pages.shot("request")

    pages.sign_in(Role.auditor)
    pages.go(request_path)
    driver.find_element(By.ID, "open-report").click()
    pages.wait(lambda d: "/report" in d.current_url)
    assert "Oblivio audit report" in driver.title and "Publish gate" in driver.page_source
    pages.shot("report")
    signed = driver.find_element(By.PARTIAL_LINK_TEXT, "signed report (JSON)").get_attribute("href")
    assert signed.endswith("/report.json")
    driver.find_element(By.LINK_TEXT, "Back to the request").click()
    pages.wait(lambda d: d.current_url.endswith(request_path))
    # The download, fetched with the session (the report page's own policy allows no fetch at all).
    document = driver.execute_script("return fetch(arguments[0]).then(r => r.json())", signed)
    assert set(document) == {"body", "digest", "signature"} and document["body"]["outcome"] == "published"
    pages.go("/ui/audit")
    driver.find_element(By.ID, "verify").send_keys(Keys.ENTER)  # keyboard again
    pages.wait(lambda d: d.find_elements(By.ID, "verdict"))
    assert "Verified: the log is intact." in pages.text("#verdict")
    pages.shot("audit")
    pages.go("/ui/models/tiny")
    assert "v2" in pages.text("#versions") and "superseded" in pages.text("#versions")
    pages.shot("models")


def test_deadlines_are_highlighted_readable_and_reachable_by_keyboard(pages, stack):
    officer = stack.client(Role.officer)
    soon = (datetime.now(UTC) + timedelta(days=3, hours=1)).isoformat()
    ids = [officer.post("/unlearn-requests", json={"model": "tiny", "samples": [key], "external_id": ref, **extra}).json()["id"]
           for key, ref, extra in (("tr-square-001", "dsr-soon", {"due_at": soon}), ("tr-stripe-001", "dsr-late", {}))]
    with make_sessionmaker(make_engine(stack.settings())).begin() as session:
        session.get(UnlearnRequest, uuid.UUID(ids[1])).due_at = datetime.now(UTC) - timedelta(days=2, hours=1)
    pages.sign_in(Role.auditor)
    rows = [r.text for r in pages.driver.find_elements(By.CSS_SELECTOR, "#requests tbody tr")]
    assert "overdue by 3 days" in rows[0]
    assert "dsr-late" in rows[0] and "3 days left" in rows[1] and "dsr-soon" in rows[1]
    pages.shot("requests")
    contrast = pages.driver.execute_script(CONTRAST_JS, ["main p", "#requests td", ".due.overdue", ".due.soon", "main a",
                                                         "header a", "button", "label"])
    assert len(contrast) == 8 and all(ratio >= 4.5 for ratio in contrast.values()), contrast
    body = pages.driver.find_element(By.TAG_NAME, "body")
    body.send_keys(Keys.TAB)
    focused = pages.driver.switch_to.active_element
    assert focused.text == "Skip to content"
    assert focused.value_of_css_property("outline-style") != "none"
    focused.send_keys(Keys.ENTER)
    assert pages.driver.find_element(By.TAG_NAME, "html").get_attribute("lang") == "en"
    unlabelled = pages.driver.execute_script(
        "return [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]"
        ".filter(e => !document.querySelector(`label[for='${e.id}']`)).map(e => e.name)")
    assert unlabelled == []


# WCAG relative-luminance contrast of each selector's first element against its nearest opaque background.
CONTRAST_JS = """
const lum = c => { const [r, g, b] = c.match(/[\\d.]+/g).slice(0, 3).map(v => { v /= 255;
  return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); }); return 0.2126 * r + 0.7152 * g + 0.0722 * b; };
const bg = e => { for (; e; e = e.parentElement) { const c = getComputedStyle(e).backgroundColor;
  const a = c.match(/[\\d.]+/g); if (a && (a.length < 4 || +a[3] > 0.5)) return c; } return 'rgb(255, 255, 255)'; };
const out = {};
for (const sel of arguments[0]) { const e = document.querySelector(sel); if (!e) continue;
  const [l1, l2] = [lum(getComputedStyle(e).color), lum(bg(e))];
  out[sel] = (Math.max(l1, l2) + 0.05) / (Math.min(l1, l2) + 0.05); }
return out;
"""


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
