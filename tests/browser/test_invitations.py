"""An invitation walked in Chromium: the owner's click, the link copied, a new person's password, their first page."""
import re

from playwright.sync_api import expect

from .conftest import login

STRONG = "quartz-lantern-meadow"


def both_widths(page, shot, name):
    for width in (1366, 390):
        page.set_viewport_size({"width": width, "height": 900})
        shot(page, f"{name}-{width}")
    page.set_viewport_size({"width": 1366, "height": 900})


def test_an_invitation_from_the_owners_click_to_the_new_members_first_page(page, browser, live_server, world, shot):
    login(page, "owner@acme.test")
    page.click(".workspace-nav >> text=Members")
    page.fill("input#email", "newcomer@example.test")
    page.select_option("select#role", "admin")
    page.click("button:has-text('Invite')")
    link = page.locator("#invitation-link")
    expect(link).to_contain_text("/invitations/")
    expect(page.locator("#pending-invitations")).to_contain_text("newcomer@example.test")
    both_widths(page, shot, "owner-link")
    url = link.inner_text().strip()
    assert url.startswith(live_server + "/invitations/")
    assert page.url.endswith("/w/acme/members")
    page.reload()  # shown once: a reload is a GET (htmx posted the form), it neither shows the link nor invites again
    expect(page.locator("#invitation-link")).to_have_count(0)
    expect(page.locator("#pending-invitations")).to_contain_text("newcomer@example.test")
    expect(page.locator("#workspace-activity")).not_to_contain_text("replaced")

    newcomer = browser.new_context(base_url=live_server, viewport={"width": 1366, "height": 900})
    newcomer.set_default_timeout(10_000)
    them = newcomer.new_page()
    them.goto(url)
    expect(them.locator("h1")).to_have_text("Join Acme")
    expect(them.locator("#invitation")).to_contain_text("as admin")
    both_widths(them, shot, "newcomer-join")
    them.fill("input[name=password]", "password12")
    them.fill("input[name=confirm]", "password12")
    them.click("button:has-text('Create my account and join')")
    expect(them.locator("#password-error")).to_contain_text("This is a very common password.")
    both_widths(them, shot, "newcomer-weak")
    them.fill("input[name=name]", "Nia Newcomer")
    them.fill("input[name=password]", STRONG)
    them.fill("input[name=confirm]", STRONG)
    them.click("button:has-text('Create my account and join')")
    them.wait_for_url(re.compile(r"/w/acme/agents$"))
    expect(them.locator(".flash-success")).to_contain_text("Welcome to Acme: you are admin.")
    expect(them.locator(".role-badge")).to_have_text("admin")
    expect(them.locator("text=Helper")).to_be_visible()
    both_widths(them, shot, "newcomer-first-page")
    them.click(".user-email")
    expect(them.locator("h1")).to_contain_text("Your account")
    expect(them.locator("#sessions [data-current]")).to_contain_text("this session")
    both_widths(them, shot, "newcomer-account")
    them.goto(url)  # used: a clear page
    expect(them.locator("#invitation")).to_contain_text("has been used already")
    newcomer.close()

    page.goto("/w/acme/members")
    expect(page.locator("#members")).to_contain_text("newcomer@example.test")
    expect(page.locator("#pending-invitations")).not_to_contain_text("newcomer@example.test")
    expect(page.locator("#workspace-activity")).to_contain_text("member invitation accepted")
    both_widths(page, shot, "owner-members")
