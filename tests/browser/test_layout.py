"""No page grows wider than the window: long strings without spaces (ids, names, keys, lead values) wrap, and at a
phone's width (390 px) the header wraps, the agent tabs and wide tables scroll inside their own box, forms stack,
and Log out stays on screen."""
import pytest
from playwright.sync_api import expect

from tests import factories
from tests.services.experiments.test_results import build
from webapp.extensions import db
from webapp.models import Agent, Experiment
from webapp.services.runtime import service as runtime

from .conftest import login

LONG_NAME = "N" * 120  # the longest experiment and variant name allowed
LONG_ID = "i" * 200  # the longest runtime id allowed
TOLERANCE = 2  # px: sub-pixel rounding


@pytest.fixture
def long_strings(app, world):
    """Agent, experiment, variant names and a key at their longest (with results enough for verdicts naming the
    variants), a conversation and a lead with long ids and a 50 KB lead field value."""
    with app.app_context():
        db.session.get(Agent, world.agent_id).name = "A" * 120
        experiment_id = factories.experiment(world.agent_id, status="running", name=LONG_NAME,
                                             keys=["control", "k" * 64])
        for variant in db.session.get(Experiment, experiment_id).variants:
            variant.name = variant.key[0].upper() * 120
        db.session.commit()
        build(world.agent_id, experiment_id, 40, lead_rates=(0.1, 0.9))  # significant: the verdict names it
        ids = {"conversation_id": "c" + LONG_ID[1:], "visitor_id": "v" + LONG_ID[1:]}
        runtime.record_message(world.workspace_id, world.agent_id, {**ids, "role": "visitor"})
        runtime.record_lead(world.workspace_id, world.agent_id, {**ids, "fields": {"notes": "x" * 50_000,
                                                                                    "f" * 200: "short"}})
        db.session.remove()
    return experiment_id


def assert_no_horizontal_scroll(page, tolerance: int = TOLERANCE):
    width, inner = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert width <= inner + tolerance, f"{page.url} is {width} px wide in a {inner} px window"


def open_page(page, world, path: str) -> None:
    """Open a workspace page (absolute path) or one of the agent's (relative), its HTMX sections loaded."""
    page.goto(path if path.startswith("/") else f"/agents/{world.agent_id}/{path}".rstrip("/"))
    page.wait_for_load_state("networkidle")  # the experiment page loads its results section with HTMX


PAGES = {"agents": "/w/acme/agents", "leads": "leads", "conversations": "conversations", "experiments": "experiments",
         "experiment": "experiments/{e}", "results": "experiments/{e}/results",
         "preview": "experiments/{e}/preview?visitor_id=" + LONG_ID}


@pytest.mark.parametrize("name", PAGES)
def test_long_strings_wrap_within_the_window(page, world, long_strings, shot, name):
    login(page, "owner@acme.test")
    open_page(page, world, PAGES[name].format(e=long_strings))
    shot(page, "page")
    assert_no_horizontal_scroll(page)


def test_conversation_filter_selects_stay_narrow(page, world, long_strings, shot):
    login(page, "owner@acme.test")
    page.goto(f"/agents/{world.agent_id}/conversations")
    for name in ("experiment", "variant"):
        box = page.locator(f"select[name={name}]").bounding_box()
        assert box["width"] <= 400, f"the {name} select is {box['width']} px wide"
    page.select_option("select[name=experiment]", str(long_strings))
    page.click("#conversation-filter button")
    expect(page.locator("#conversations")).to_contain_text("c" + LONG_ID[1:])
    shot(page, "filtered")
    assert_no_horizontal_scroll(page)


PHONE = {"width": 390, "height": 844}


@pytest.fixture
def ordinary_data(app, world):
    """A running experiment with results and charts, a conversation and a lead."""
    with app.app_context():
        experiment_id = factories.experiment(world.agent_id, status="running", name="Warmer greeting")
        build(world.agent_id, experiment_id, 40, lead_rates=(0.1, 0.9))
        ids = {"conversation_id": "conv-1", "visitor_id": "visitor-1"}
        runtime.record_message(world.workspace_id, world.agent_id, {**ids, "role": "visitor", "text": "hi"})
        runtime.record_lead(world.workspace_id, world.agent_id, {**ids, "fields": {"email": "a@b.test", "vip": True}})
        db.session.remove()
    return experiment_id


@pytest.fixture
def phone(browser, live_server):
    context = browser.new_context(base_url=live_server, viewport=PHONE, device_scale_factor=1)
    context.set_default_timeout(10_000)
    page = context.new_page()
    yield page
    context.close()


PHONE_PAGES = {"agents": "/w/acme/agents", "members": "/w/acme/members", "api-keys": "/w/acme/api-keys",
               "overview": "", "conversations": "conversations", "leads": "leads", "settings": "settings",
               "experiments": "experiments", "experiment": "experiments/{e}", "results": "experiments/{e}/results",
               "new-experiment": "experiments/new"}


@pytest.mark.parametrize("name", PHONE_PAGES)
def test_pages_fit_a_phone_screen(phone, world, ordinary_data, shot, name):
    login(phone, "owner@acme.test")
    open_page(phone, world, PHONE_PAGES[name].format(e=ordinary_data))
    shot(phone, "phone")
    assert_no_horizontal_scroll(phone, tolerance=1)
    log_out = phone.locator("header button:text('Log out')")
    expect(log_out).to_be_in_viewport(ratio=1)
    box = log_out.bounding_box()
    assert 0 <= box["x"] and box["x"] + box["width"] <= PHONE["width"]


def test_agent_tabs_scroll_within_their_bar(phone, world, ordinary_data, shot):
    login(phone, "owner@acme.test")
    phone.goto(f"/agents/{world.agent_id}/settings")
    tabs = phone.locator("nav.tabs")
    assert tabs.evaluate("t => t.scrollWidth > t.clientWidth && getComputedStyle(t).overflowX === 'auto'")
    expect(tabs.locator("a.active")).to_be_in_viewport(ratio=0.95)  # the current tab is scrolled into view
    tabs.locator("a:text('Overview')").click()
    phone.wait_for_url(f"**/agents/{world.agent_id}")
    shot(phone, "overview")


def test_the_outcome_column_wraps_between_words_on_a_laptop(app, browser, live_server, world, shot):
    """"Shipped Treatment" at 1366 px: the arm's name keeps its letters on one line (it once broke as "Treatme/nt")."""
    with app.app_context():
        experiment_id = factories.experiment(world.agent_id, status="stopped", name="CTA test", kind="cta")
        experiment = db.session.get(Experiment, experiment_id)
        experiment.outcome_result, experiment.outcome_variant_key = "shipped", "treatment"
        for i in range(4):  # the other columns at their widest: long names and times in every row
            factories.experiment(world.agent_id, status="stopped", name=f"Aria vs Sam: warmer persona {i}")
        db.session.commit()
        db.session.remove()
    context = browser.new_context(base_url=live_server, viewport={"width": 1366, "height": 900})
    page = context.new_page()
    login(page, "owner@acme.test")
    page.goto(f"/agents/{world.agent_id}/experiments")
    outcome = page.locator(f"#experiment-{experiment_id} .outcome-cell strong")
    expect(outcome).to_have_text("Shipped Treatment")
    # Each word's text on one line: a range over a word broken across lines has one client rect per line.
    lines = outcome.evaluate("""el => el.textContent.split(' ').map((word, i, words) => {
        const range = document.createRange(), start = words.slice(0, i).join(' ').length + (i ? 1 : 0);
        range.setStart(el.firstChild, start); range.setEnd(el.firstChild, start + word.length);
        return range.getClientRects().length; })""")
    shot(page, "list")
    fits = page.locator("#experiments").evaluate("t => t.parentElement.scrollWidth <= t.parentElement.clientWidth + 1")
    context.close()
    assert lines == [1, 1] and fits


def test_the_workspace_activity_reads_on_a_phone(phone, auth, world, ordinary_data, shot):
    """At 390 px each event is a card (its time, then who, what and the details): nothing hidden sideways."""
    auth.login(world.emails["owner"])
    assert auth.post("/w/acme/members", {"email": "newbie@example.com", "role": "editor"}).status_code == 201
    login(phone, "owner@acme.test")
    phone.goto("/w/acme/members")
    table = phone.locator("#workspace-activity .table-scroll")
    assert table.evaluate("t => t.scrollWidth <= t.clientWidth + 1")
    row = phone.locator("#workspace-activity tbody tr").first
    for label in ("Who", "What", "Details"):
        cell = row.locator(f"td[data-label={label}]")
        if cell.evaluate("c => c.textContent.trim() !== ''"):
            expect(cell).to_be_visible()
            box = cell.bounding_box()
            assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], label
    phone.locator("#workspace-activity").scroll_into_view_if_needed()
    shot(phone, "activity")
    assert_no_horizontal_scroll(phone, tolerance=1)


def test_members_and_pending_invitations_read_on_a_phone(phone, auth, world, ordinary_data, shot):
    """At 390 px each member and each pending invitation is a card: its Remove / Revoke button on screen, not behind a
    sideways scroll (as they were), and an email on a line of its own, not broken mid-word."""
    auth.login(world.emails["owner"])
    assert auth.post("/w/acme/members", {"email": "newbie@example.com", "role": "editor"}).status_code == 201
    login(phone, "owner@acme.test")
    phone.goto("/w/acme/members")
    for table in ("#members", "#pending-invitations table"):
        assert phone.locator(table).evaluate("t => t.parentElement.scrollWidth <= t.parentElement.clientWidth + 1")
    for button in phone.locator("#members button:text('Remove'), #pending-invitations button:text('Revoke')").all():
        button.scroll_into_view_if_needed()
        box = button.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
    email = phone.locator("#members tr[data-email='editor@acme.test'] td.arm-name")
    assert email.evaluate("c => c.getClientRects().length && c.getBoundingClientRect().height < 40")  # one line
    shot(phone, "members")
    assert_no_horizontal_scroll(phone, tolerance=1)
