"""The Content-Security-Policy (script-src 'self') refuses nothing the pages use: no violation on the pages, the
vendored htmx and Chart.js draw, and the confirmations and the workspace switcher (app.js, no inline handlers) work."""
from playwright.sync_api import expect

from tests import factories
from tests.services.experiments.test_results import build

from .conftest import login


def test_pages_run_under_the_content_security_policy(app, page, world, shot):
    violations = []
    page.on("console", lambda message: violations.append(message.text)
            if "Content Security Policy" in message.text else None)
    with app.app_context():
        factories.user("owner@acme.test", "other", "editor")  # a second workspace: the switcher shows
        experiment_id = factories.experiment(world.agent_id, status="running")
        build(world.agent_id, experiment_id, 40, lead_rates=(0.1, 0.3))
    login(page, "owner@acme.test")
    page.goto(f"/agents/{world.agent_id}/experiments/{experiment_id}")
    expect(page.locator("canvas[data-chart][data-drawn=true]").first).to_be_visible()  # Chart.js ran
    page.click("#status-component a:has-text('Stop…')")  # htmx swaps in the in-page confirmation
    page.click("#status-component button:has-text('Stop experiment')")  # an htmx POST and swap
    expect(page.locator("#status-component")).to_contain_text("stopped")

    page.goto("/w/acme/api-keys")
    page.fill("input[name=name]", "widget")
    page.click("button:has-text('Create key')")
    expect(page.locator("#new-key")).to_be_visible()
    page.goto("/w/acme/api-keys")
    widget = page.locator("#api-keys-component tr", has_text="widget")
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    widget.locator("button:has-text('Revoke')").click()  # asks in the page, not with the browser's confirm()
    question = widget.locator("[role=alertdialog]")
    expect(question).to_contain_text("Revoke this key? Runtimes using it will get 401.")
    expect(question.locator("button:has-text('Revoke')")).to_be_focused()
    expect(widget.locator("form")).to_be_hidden()  # the question takes the form's place
    shot(page, "revoke-confirm")
    question.locator("button:has-text('Cancel')").click()
    expect(question).to_have_count(0)
    expect(widget.locator("button:has-text('Revoke')")).to_be_focused()
    expect(widget.locator(".badge-running")).to_have_text("active")  # cancelled: nothing revoked
    widget.locator("button:has-text('Revoke')").click()
    question.locator("button:has-text('Revoke')").click()
    expect(widget.locator(".badge-stopped")).to_have_text("revoked")

    page.goto("/w/acme/members")
    editor = page.locator("tr:has(button:has-text('Remove'))", has_text="editor@acme.test")
    editor.locator("button:has-text('Remove')").click()
    question = editor.locator("[role=alertdialog]")
    expect(question).to_contain_text("Remove editor@acme.test from this workspace?")
    page.keyboard.press("Escape")
    expect(question).to_have_count(0)
    expect(editor).to_have_count(1)  # cancelled: still a member
    editor.locator("button:has-text('Remove')").click()
    question.locator("button:has-text('Remove')").click()
    expect(page.locator("#flashes")).to_contain_text("Member removed.")
    expect(editor).to_have_count(0)
    assert dialogs == []

    page.select_option("select[aria-label='Switch workspace']", label="Other (editor)")
    page.wait_for_url("**/w/other/agents")
    shot(page, "switched-workspace")
    assert violations == []
