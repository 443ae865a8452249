"""The experiments tab in Chromium, clicked through as a new owner and as an editor would."""
import re

from playwright.sync_api import expect

from tests import factories
from webapp.extensions import db

from .conftest import login, settled


def shares(page) -> list[str]:
    return page.locator(".variant-row [data-share]").all_inner_texts()


def test_owner_designs_starts_replaces_stops_and_deletes_experiments(app, page, world, shot):
    login(page, "owner@acme.test")
    page.goto(f"/agents/{world.agent_id}")
    page.click("nav.tabs >> text=A/B experiments")
    expect(page.locator(".empty")).to_contain_text("No experiments yet")
    page.click("text=New experiment")
    expect(page.locator(".variant-row")).to_have_count(2)
    assert shares(page) == ["50.0%", "50.0%"]
    shot(page, "1-new-form")

    page.fill("input[name=name]", "Warmer persona")
    page.fill("textarea[name=hypothesis]", "A warmer persona gets more leads.")
    page.fill("input[name='variants-1-persona_name']", "Aria")
    page.fill("input[name='variants-1-persona_tone']", "warm and concise")
    page.click("text=+ Add variant")
    expect(page.locator(".variant-row")).to_have_count(3)
    page.click("text=+ Add variant")
    expect(page.locator(".variant-row")).to_have_count(4)
    assert shares(page) == ["25.0%"] * 4
    page.click("button[aria-label='Remove variant 4']")
    expect(page.locator(".variant-row")).to_have_count(3)
    expect(page.locator("input[name='variants-1-persona_name']")).to_have_value("Aria")  # typed values survive
    page.fill("input[name='variants-2-persona_name']", "Bo")
    shot(page, "2-three-variants")

    slider = page.locator(".variant-row").nth(0).locator("input[type=range]")
    slider.focus()
    page.keyboard.press("End")  # the slider's maximum, 100
    expect(page.locator("input[name='variants-0-weight']")).to_have_value("100")
    assert shares(page) == ["50.0%", "25.0%", "25.0%"]
    page.keyboard.press("Home")
    expect(page.locator("input[name='variants-0-weight']")).to_have_value("1")
    assert shares(page) == ["1.0%", "49.5%", "49.5%"]
    shot(page, "3-slider-moved")

    config = page.locator("textarea[name='variants-1-config']")
    assert '"name":"Aria"' in config.input_value() and '"tone":"warm and concise"' in config.input_value()

    page.fill("input[name='variants-2-weight']", "0")
    page.click("text=Create draft")
    expect(page.locator("[data-field='variants-2-weight']")).to_contain_text("from 1 to 10,000")
    expect(page.locator("input[name='variants-2-weight']")).to_have_attribute("aria-invalid", "true")
    shot(page, "4-bad-weight")

    page.fill("input[name='variants-2-weight']", "50")
    page.click("text=Create draft")
    expect(page.locator(".experiment-head h2")).to_contain_text("Warmer persona")
    expect(page.locator("#variants tbody tr")).to_have_count(3)
    expect(page.locator("#audit-trail")).to_contain_text("created")
    page.click("#status-component button:has-text('Start')")
    expect(page.locator("#experiment-badges [data-active]")).to_have_text("active")
    expect(page.locator("#status-component [data-status]")).to_have_text("running")
    expect(page.locator("#flashes")).to_contain_text("is running")
    shot(page, "5-started-active")
    first_url = page.url

    page.click("nav.tabs >> text=A/B experiments")
    page.click("text=New experiment")
    # A link's click returns once the navigation starts: the kind's change must wait for htmx (a deferred script)
    # to wire the select, or it posts nothing and the persona rows stay (a flake seen 3 times in a row).
    page.wait_for_load_state()
    page.fill("input[name=name]", "Book-a-demo button")
    page.select_option("select[name=kind]", "cta")
    expect(page.locator("input[name='variants-0-persona_name']")).to_be_hidden()
    expect(page.locator("textarea[name='variants-0-config']")).to_have_value("{}")  # the persona block is dropped
    page.fill("textarea[name='variants-1-config']", '{"label": "Book a demo"}')
    page.click("text=Create draft")
    page.click("#status-component button:has-text('Start')")
    confirm = page.locator("#status-component .confirm")
    expect(confirm).to_contain_text("“Warmer persona” is already running")
    expect(confirm.locator("button:has-text('Stop it and start this one')")).to_be_focused()
    shot(page, "6-start-confirmation")
    confirm.locator("button:has-text('Stop it and start this one')").click()
    expect(page.locator("#experiment-badges [data-active]")).to_have_text("active")
    page.click("nav.tabs >> text=A/B experiments")
    expect(page.locator("#experiments tr:has-text('Book-a-demo button') [data-active]")).to_be_visible()
    expect(page.locator("#experiments tr:has-text('Warmer persona')")).to_contain_text("stopped")
    shot(page, "7-list-after-stop-and-start")

    page.click("text=Book-a-demo button")
    page.click("#status-component a:has-text('Stop…')")  # an in-page confirmation asks for the outcome
    page.check("#status-component input[name=outcome][value=inconclusive]")
    page.click("#status-component button:has-text('Stop experiment')")
    expect(page.locator("#status-component [data-status]")).to_have_text("stopped")
    expect(page.locator("#status-component #outcome")).to_contain_text("Inconclusive")
    expect(page.locator("#experiment-badges [data-active]")).to_have_count(0)
    page.click("text=Delete…")
    expect(page.locator("#status-component .confirm")).to_contain_text("keep their variant stamps")
    shot(page, "8-delete-confirmation")
    page.click("button:has-text('Delete experiment')")
    page.wait_for_url("**/experiments")
    expect(page.locator("#flashes")).to_contain_text("deleted")
    expect(page.locator("#experiments tbody tr")).to_have_count(1)
    shot(page, "9-after-delete")

    page.goto(first_url)  # a deep link still renders the whole page
    expect(page.locator("#audit-trail")).to_contain_text("stopped")
    expect(page.locator("#audit-trail")).to_contain_text("replaced by")
    shot(page, "10-audit-trail")


def test_switching_kind_back_to_persona_keeps_the_typed_names(app, page, world, shot):
    login(page, "owner@acme.test")
    page.goto(f"/agents/{world.agent_id}/experiments/new")
    page.fill("input[name=name]", "Kind switch")
    page.fill("input[name='variants-1-persona_name']", "Aria")
    page.fill("input[name='variants-1-persona_tone']", "warm")
    page.select_option("select[name=kind]", "cta")
    expect(page.locator("input[name='variants-1-persona_name']")).to_be_hidden()
    expect(page.locator("textarea[name='variants-1-config']")).to_have_value("{}")
    page.select_option("select[name=kind]", "persona")
    expect(page.locator("input[name='variants-1-persona_name']")).to_be_visible()
    expect(page.locator("input[name='variants-1-persona_name']")).to_have_value("Aria")
    expect(page.locator("input[name='variants-1-persona_tone']")).to_have_value("warm")
    assert '"name": "Aria"' in page.locator("textarea[name='variants-1-config']").input_value()
    shot(page, "back-to-persona")
    page.click("text=Create draft")
    expect(page.locator("#variants")).to_contain_text("Aria")


def test_no_tone_on_purpose_survives_editing_the_persona_fields(app, page, world, shot):
    """A blank tone field keeps the agent's tone (no "tone" key), but a JSON "tone": "" (no tone at all) stays
    when the name is edited; a typed tone then cleared again goes back to the agent's."""
    login(page, "owner@acme.test")
    page.goto(f"/agents/{world.agent_id}/experiments/new")
    page.locator(".variant-row").nth(1).locator("summary").click()  # open its "Config JSON"
    config = page.locator("textarea[name='variants-1-config']")
    config.fill('{"persona": {"name": "Aria", "tone": ""}}')
    page.fill("input[name='variants-1-persona_name']", "Aria Two")
    assert '"tone":""' in config.input_value() and '"name":"Aria Two"' in config.input_value()
    page.fill("input[name='variants-1-persona_tone']", "warm")
    page.fill("input[name='variants-1-persona_tone']", "")
    assert '"tone"' not in config.input_value()
    page.fill("input[name=name]", "No tone")
    config.fill('{"persona": {"name": "Aria", "tone": ""}}')
    page.click("text=Create draft")
    expect(page.locator("#variants")).to_contain_text("no tone")
    shot(page, "no-tone")


def row_errors(page) -> list[str]:
    return [e.get_attribute("data-field") for e in page.locator("#variant-rows .error").all()]


def test_after_a_refused_save_row_changes_update_the_rows_errors_and_drop_the_banner(app, page, world, shot):
    login(page, "owner@acme.test")
    page.goto(f"/agents/{world.agent_id}/experiments/new")
    page.fill("input[name='variants-1-weight']", "0")
    page.click("text=Create draft")  # no name, no persona name for the treatment, a weight of 0
    banner = page.locator("#experiment-form .flash-error")
    expect(banner).to_contain_text("Nothing was saved")
    expect(page.locator("[data-field=name]")).to_be_visible()
    assert row_errors(page) == ["variants-1-weight", "variants-1-persona_name"]
    shot(page, "1-refused")

    page.click("text=+ Add variant")
    expect(page.locator(".variant-row")).to_have_count(3)
    expect(banner).to_have_count(0)  # it spoke of the refused save
    assert row_errors(page) == ["variants-1-weight", "variants-1-persona_name"]  # still wrong; the new row is blank
    expect(page.locator("[data-field=name]")).to_be_visible()  # not re-rendered: its message stays until a save
    shot(page, "2-row-added")

    page.fill("input[name='variants-1-weight']", "50")
    page.select_option("select[name=kind]", "cta")
    expect(page.locator("#variant-rows[data-kind=cta]")).to_have_count(1)
    assert row_errors(page) == []  # the weight is fixed and a CTA needs no persona name
    page.select_option("select[name=kind]", "persona")
    expect(page.locator("#variant-rows[data-kind=persona]")).to_have_count(1)
    assert row_errors(page) == ["variants-1-persona_name", "variants-2-persona_name"]
    page.click("button[aria-label='Remove variant 2']")
    expect(page.locator(".variant-row")).to_have_count(2)
    assert row_errors(page) == ["variants-1-persona_name"]  # the third row's error moved up with it
    shot(page, "3-kind-switched-and-row-removed")

    page.fill("input[name=name]", "Fixed")
    page.fill("input[name='variants-1-persona_name']", "Aria")
    page.click("text=Create draft")
    expect(page.locator(".experiment-head h2")).to_contain_text("Fixed")


def test_a_refused_save_moves_the_focus_to_the_first_field_to_fix(app, page, world, shot):
    """Keyboard users land on what to fix (the swap took the focused button away), with its message as description."""
    login(page, "owner@acme.test")
    page.goto(f"/agents/{world.agent_id}/experiments/new")
    page.fill("input[name=name]", "Keyboard only")
    page.fill("input[name='variants-1-weight']", "0")
    page.locator("button:has-text('Create draft')").focus()
    page.keyboard.press("Enter")
    expect(page.locator("#experiment-form .flash-error")).to_contain_text("Nothing was saved")
    expect(page.locator("input[name='variants-1-weight']")).to_be_focused()
    expect(page.locator("input[name='variants-1-weight']")).to_have_accessible_description(re.compile("from 1 to 10,000"))
    shot(page, "focused-weight")

    page.fill("input[name=name]", "")
    page.fill("input[name='variants-1-weight']", "50")
    page.locator("input[name='variants-1-weight']").press("Enter")  # submits the form
    expect(page.locator("input[name=name]")).to_be_focused()


def test_a_refused_full_page_form_focuses_its_first_invalid_field(app, page, world, shot):
    login(page, "owner@acme.test")
    page.goto("/w/acme/agents")
    page.click("text=Create agent")
    expect(page.locator("input[name=name]")).to_be_focused()
    expect(page.locator("input[name=name]")).to_have_accessible_description(re.compile("required"))


def open_experiment(app, page, world, email: str = "owner@acme.test", **experiment) -> int:
    """An experiment written by factories.experiment(**experiment), its page opened by `email`; its id."""
    with app.app_context():
        exp_id = factories.experiment(world.agent_id, **experiment)
        db.session.remove()
    login(page, email)
    page.goto(f"/agents/{world.agent_id}/experiments/{exp_id}")
    return exp_id


def test_the_results_section_follows_a_lifecycle_action(app, page, world, shot):
    """Started from its page, a draft's results stop asking to start it (they were loaded while it was a draft)."""
    open_experiment(app, page, world, name="Fresh draft")
    empty = page.locator("#results .empty")
    expect(empty).to_contain_text("Start the experiment")
    page.click("#status-component button:has-text('Start')")
    expect(page.locator("#status-component [data-status]")).to_have_text("running")
    expect(empty).to_contain_text("Results appear as the runtime reports visitor messages")
    expect(empty).not_to_contain_text("Start the experiment")
    shot(page, "started-results")


def test_a_double_click_creates_one_draft_and_one_copy(app, page, world, shot):
    """The second click of a double click came after the first answer's redirect but before the next page loaded."""
    from webapp.models import Experiment

    def names():
        with app.app_context():
            found = sorted(db.session.scalars(db.select(Experiment.name).where(Experiment.agent_id == world.agent_id)))
            db.session.remove()
        return found

    login(page, "owner@acme.test")
    page.goto(f"/agents/{world.agent_id}/experiments/new?kind=cta")
    page.fill("input[name=name]", "Clicked twice")
    page.locator("button:has-text('Create draft')").dblclick()
    expect(page.locator(".experiment-head h2")).to_contain_text("Clicked twice")
    page.wait_for_load_state("networkidle")
    assert names() == ["Clicked twice"]

    page.locator("#status-component button:has-text('Duplicate')").dblclick()
    expect(page.locator("input[name=name]")).to_have_value("Copy of Clicked twice")
    page.wait_for_load_state("networkidle")
    assert names() == ["Clicked twice", "Copy of Clicked twice"]


def test_keyboard_focus_survives_the_swaps_it_triggers(app, page, world, shot):
    """Start, Stop, Delete…, Cancel and the variant rows' buttons replace the focused element: the focus stays there."""
    open_experiment(app, page, world, name="By keyboard")
    status = page.locator("#status-component")
    status.locator("button:has-text('Start')").press("Enter")
    expect(status.locator("[data-status]")).to_have_text("running")
    expect(status).to_be_focused()
    settled(page)
    status.locator("a:has-text('Stop…')").press("Enter")  # the confirmation opens on its Stop button
    expect(status.locator("button:has-text('Stop experiment')")).to_be_focused()
    settled(page)  # before htmx wires the confirmation's form, Enter would post it as a plain form (a page load)
    page.keyboard.press("Enter")
    expect(status.locator("[data-status]")).to_have_text("stopped")
    expect(status).to_be_focused()
    settled(page)
    status.locator("a:has-text('Delete…')").press("Enter")
    expect(status.locator("button:has-text('Delete experiment')")).to_be_visible()
    expect(status).to_be_focused()
    page.keyboard.press("Tab")  # from the component, on into its confirmation
    expect(status.locator("button:has-text('Delete experiment')")).to_be_focused()
    shot(page, "delete-confirmation-by-keyboard")

    page.goto(f"/agents/{world.agent_id}/experiments/new")
    page.locator("#add-variant").press("Enter")
    expect(page.locator(".variant-row")).to_have_count(3)
    expect(page.locator("input[name='variants-2-name']")).to_be_focused()  # the new row, where one types next
    settled(page)  # htmx wires swapped-in buttons when the swap settles (20 ms later); a key before that does nothing
    page.locator("#remove-variant-2").press("Enter")
    expect(page.locator(".variant-row")).to_have_count(2)
    expect(page.locator("#variant-rows")).to_be_focused()


def test_the_preview_marks_the_range_the_visitor_falls_in(app, page, world, shot):
    open_experiment(app, page, world, "editor@acme.test", weights=(1, 3), status="running")
    page.fill("#visitor-preview input[name=visitor_id]", "visitor-42")
    page.click("#visitor-preview button:has-text('Preview')")
    chosen = page.locator("#preview-variant").inner_text()
    rows = page.locator(".preview-result tbody tr")
    expect(rows).to_have_count(2)
    marked = page.locator(".preview-result tbody tr[aria-current=true]")
    expect(marked).to_have_count(1)
    expect(marked).to_contain_text(chosen)
    expect(marked).to_contain_text("this visitor")
    backgrounds = [row.evaluate("r => getComputedStyle(r.cells[0]).backgroundColor") for row in rows.all()]
    assert len(set(backgrounds)) == 2  # the marked row stands out
    shot(page, "preview-marked")


def test_live_shares_of_a_lopsided_split(app, page, world, shot):
    login(page, "owner@acme.test")
    page.goto(f"/agents/{world.agent_id}/experiments/new")
    page.fill("input[name='variants-0-weight']", "1")
    page.fill("input[name='variants-1-weight']", "10000")
    assert shares(page) == ["<0.1%", ">99.9%"]  # not 0.0% and 100.0%
    shot(page, "lopsided")


def test_editor_finds_no_control(app, page, world, shot):
    with app.app_context():
        exp_id = factories.experiment(world.agent_id, status="running", name="Live test")
        db.session.remove()
    login(page, "editor@acme.test")
    page.goto(f"/agents/{world.agent_id}/experiments")
    expect(page.locator("#experiments")).to_contain_text("Live test")
    expect(page.locator("text=New experiment")).to_have_count(0)
    page.click("text=Live test")
    expect(page.locator("#status-component")).to_contain_text("owners and admins")
    expect(page.locator("#status-component button")).to_have_count(0)
    # No form that changes anything; the read-only ones stay (the dry-run preview, a one-off analysis engine).
    expect(page.locator("main form:not([method=get])")).to_have_count(0)
    expect(page.locator("main form.engine-switch")).to_have_count(1)
    shot(page, "editor-detail")
    page.goto(f"/agents/{world.agent_id}/experiments/{exp_id}/edit")
    expect(page.locator(".error-page")).to_contain_text("403")


def test_weight_sliders_share_one_range_that_fits_the_largest_weight(app, page, world, shot):
    login(page, "owner@acme.test")
    page.goto(f"/agents/{world.agent_id}/experiments/new")
    sliders = page.locator(".variant-row [data-weight-slider]")

    def ranges():
        return [(s.get_attribute("max"), s.input_value()) for s in sliders.all()]

    assert ranges() == [("100", "50"), ("100", "50")]
    page.fill("input[name='variants-0-weight']", "150")
    assert ranges() == [("1000", "150"), ("1000", "50")]  # one scale: the thumbs compare
    shot(page, "150-50")
    page.click("text=+ Add variant")  # the server renders the rows on the same scale
    expect(page.locator(".variant-row")).to_have_count(3)
    assert [r[0] for r in ranges()] == ["1000"] * 3
    page.fill("input[name='variants-0-weight']", "1")
    page.fill("input[name='variants-1-weight']", "5000")
    assert [r[0] for r in ranges()] == ["10000"] * 3
    sliders.nth(0).focus()
    page.keyboard.press("End")  # a weight-1 variant's slider goes past 100
    expect(page.locator("input[name='variants-0-weight']")).to_have_value("10000")
    shot(page, "past-100")
    page.fill("input[name='variants-0-weight']", "60")
    page.fill("input[name='variants-1-weight']", "40")
    assert ranges()[:2] == [("100", "60"), ("100", "40")]  # and back down, thumbs where the numbers say
