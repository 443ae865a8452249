from playwright.sync_api import expect

from .conftest import login


def test_owner_logs_in_and_reaches_agent_tabs(page, world, shot):
    page.goto("/w/acme/agents")

    assert "/login" in page.url
    login(page, "owner@acme.test")
    expect(page.locator("h1")).to_contain_text("Agents")
    shot(page, "agents")
    page.click("text=Helper")
    for tab in ("Conversations", "Leads", "A/B experiments", "Settings", "Overview"):
        page.click(f"nav.tabs >> text={tab}")
        expect(page.locator("nav.tabs a.active")).to_have_text(tab)
    shot(page, "overview")


def test_wrong_password_shows_message(page, world, shot):
    page.goto("/login")
    page.fill("input[name=email]", "owner@acme.test")
    page.fill("input[name=password]", "nope-nope")
    page.click("button[type=submit]")
    expect(page.locator(".error")).to_contain_text("Wrong email or password")
    shot(page, "wrong-password")


def test_editor_sees_no_admin_controls(page, world, shot):
    login(page, "editor@acme.test")
    expect(page.locator("text=New agent")).to_have_count(0)
    expect(page.locator(".workspace-nav >> text=API keys")).to_have_count(0)
    page.goto(f"/agents/{world.agent_id}/settings")
    page.fill("input[name=persona_tone]", "calm")
    page.click("button:has-text('Save settings')")
    expect(page.locator(".flash-success")).to_contain_text("Settings saved")
    shot(page, "editor-settings")


def test_owner_creates_api_key_shown_once(page, world, shot):
    login(page, "owner@acme.test")
    page.goto("/w/acme/api-keys")
    page.fill("input[name=name]", "widget")
    page.click("button:has-text('Create key')")
    key = page.locator("#new-key").inner_text()
    assert key.startswith("abx_")
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.click("button:has-text('Copy key')")
    expect(page.locator("#new-key-copied")).to_have_text("Copied.")
    assert page.evaluate("navigator.clipboard.readText()") == key
    shot(page, "api-key")
    expect(page.locator("#api-keys-component table")).to_contain_text("widget")
    page.reload()  # the key came by HTMX: a reload is a GET and shows it no more
    expect(page.locator("#new-key")).to_have_count(0)
    expect(page.locator("#api-keys-component table")).to_contain_text("widget")


def test_too_many_failed_logins_say_how_long_to_wait(page, world, shot):
    for _ in range(6):
        page.goto("/login")
        page.fill("input[name=email]", "owner@acme.test")
        page.fill("input[name=password]", "nope-nope")
        page.click("button[type=submit]")
    expect(page.locator("[data-error-message]")).to_have_text(
        "Too many failed logins for this email. Try again in 1 minute.")
    expect(page.locator("input[name=password]")).to_be_visible()
    for width in (1366, 390):
        page.set_viewport_size({"width": width, "height": 800})
        shot(page, f"throttled-{width}")
