"""The app works from the keyboard alone, and a refused form takes the focus to its problems."""

from __future__ import annotations

from selenium.webdriver.common.keys import Keys

from tests.web.browser import Browser
from tests.web.conftest import Person


def _focused(b: Browser) -> str:
    return str(
        b.driver.execute_script(
            "return document.activeElement.id || document.activeElement.className"
        )
    )


def test_a_person_signs_in_and_fills_a_form_with_the_keyboard_only(
    browser: Browser, coordinator: Person
) -> None:
    b = browser
    b.driver.delete_all_cookies()
    b.go("/app/login")
    assert _focused(b) == "email"  # the one thing to do here has the focus
    active = b.driver.switch_to.active_element
    active.send_keys(coordinator.email, Keys.TAB)
    b.driver.switch_to.active_element.send_keys(coordinator.password, Keys.ENTER)
    b.wait(lambda: b.path == "/app/", what="the start page")

    b.go("/app/companies")
    b.find("body").send_keys(Keys.TAB)
    assert _focused(b) == "skip-link"  # the first stop skips the menu
    b.driver.switch_to.active_element.send_keys(Keys.ENTER)
    b.fill("#cvr", "123")  # no name, a bad CVR number
    b.driver.switch_to.active_element.send_keys(Keys.ENTER)
    b.wait(lambda: bool(b.all("#error-summary")), what="the refused form")
    assert _focused(b) == "error-summary"
    assert b.find("#name").get_attribute("aria-invalid") == "true"
    assert b.find("#cvr").get_attribute("aria-describedby") == "cvr-hint cvr-error"
