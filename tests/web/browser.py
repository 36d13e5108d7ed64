"""One headless Chromium for the whole test session, driven by Selenium, and page helpers."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import Select

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--lang=da-DK",
    "--window-size=1280,900",
)


def chromium_paths() -> tuple[str, str] | None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


def start_chromium(user_data_dir: str) -> WebDriver:
    paths = chromium_paths()
    assert paths is not None
    options = webdriver.ChromeOptions()
    options.binary_location = paths[0]
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={user_data_dir}")
    options.add_experimental_option("prefs", {"intl.accept_languages": "da-DK,da"})
    # The console, for `console_problems`: the CSP test reads every violation the page caused.
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # Chromium on Linux takes its UI language (date fields' format) from LANGUAGE, not --lang.
    env = {**os.environ, "LANGUAGE": "da", "LANG": "da_DK.UTF-8"}
    return webdriver.Chrome(options=options, service=Service(paths[1], env=env))


def fresh_profile() -> str:
    return tempfile.mkdtemp(prefix="ldl-chromium-")


@dataclass
class Browser:
    """The session's browser pointed at one test's server; counts the pages a person visits."""

    driver: WebDriver
    base_url: str
    visits: int = 0
    visited: list[str] = field(default_factory=list)

    def go(self, path: str) -> None:
        self.driver.get(self.base_url + path)
        self._count()

    def _count(self) -> None:
        self.visits += 1
        self.visited.append(self.driver.current_url.removeprefix(self.base_url))

    def find(self, css: str) -> WebElement:
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def all(self, css: str) -> list[WebElement]:
        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def fill(self, css: str, value: str) -> None:
        element = self.find(css)
        element.clear()
        element.send_keys(value)

    def set_value(self, css: str, value: str) -> None:
        """For date and datetime-local inputs, whose typing format depends on the browser's locale."""
        self.driver.execute_script("arguments[0].value = arguments[1]", self.find(css), value)

    def choose(self, css: str, *, value: str | None = None, text: str | None = None) -> None:
        select = Select(self.find(css))
        if value is not None:
            select.select_by_value(value)
        else:
            assert text is not None
            select.select_by_visible_text(text)

    def check(self, css: str) -> None:
        box = self.find(css)
        if not box.is_selected():
            box.click()

    def submit(self, css: str = "main form button[type=submit]") -> None:
        """Click a form's button and wait for the next page (a navigation, not an htmx swap)."""
        old = self.find("html")
        self.find(css).click()
        self.wait(lambda: _stale(old), what="the next page")
        self._count()

    def click_link(self, text: str) -> None:
        old = self.find("html")
        self.driver.find_element(By.LINK_TEXT, text).click()
        self.wait(lambda: _stale(old), what=f"the page behind '{text}'")
        self._count()

    def wait(self, predicate: Callable[[], bool], timeout: float = 10, what: str = "") -> None:
        deadline = time.monotonic() + timeout
        while not _holds(predicate):
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout}s waiting for {what}")
            time.sleep(0.05)

    def console_problems(self) -> list[str]:
        """The console's warnings and errors since the last call (reading empties it)."""
        # chromedriver's log endpoint, which Selenium's generic WebDriver type does not declare
        entries = self.driver.get_log("browser")  # type: ignore[attr-defined]
        return [str(e["message"]) for e in entries if e["level"] in ("WARNING", "SEVERE")]

    @property
    def path(self) -> str:
        return self.driver.current_url.removeprefix(self.base_url)

    @property
    def text(self) -> str:
        return self.find("main").text

    def sign_in(self, email: str, password: str) -> None:
        self.driver.delete_all_cookies()
        self.go("/app/login")
        self.fill("#email", email)
        self.fill("#password", password)
        self.submit()


def _holds(predicate: Callable[[], bool]) -> bool:
    """False while the element read is being replaced (htmx swaps a panel every few seconds)."""
    try:
        return predicate()
    except StaleElementReferenceException:
        return False


def _stale(element: WebElement) -> bool:
    try:
        element.is_enabled()
    except Exception:  # StaleElementReferenceException: the old page is gone
        return True
    return False
