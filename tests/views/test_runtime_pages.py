"""Conversations and leads show the variant; the visitor preview is a dry run."""
from __future__ import annotations

import html
import re
from datetime import timedelta

import pytest
import sqlalchemy as sa

from tests import factories
from tests.views.test_roles import snapshot
from webapp.extensions import db
from webapp.models import Conversation, Experiment, ExperimentAssignment, utcnow
from webapp.services.experiments import experiments
from webapp.services.runtime import service as runtime
from webapp.services.runtime.bucketing import bucket_value


@pytest.fixture
def traffic(app, world):
    """A deleted experiment's conversation, a live one's two conversations and a lead, an unstamped one."""
    def send(conversation, visitor):
        return runtime.record_message(world.workspace_id, world.agent_id,
                                      {"conversation_id": conversation, "visitor_id": visitor, "role": "visitor"})

    with app.app_context():
        gone = factories.experiment(world.agent_id, status="running", name="Gone")
        send("conv-old", "v-old")
        db.session.delete(db.session.get(Experiment, gone))
        db.session.commit()
        send("conv-none", "v-none")
        live = factories.experiment(world.agent_id, status="running", name="Live test")
        send("conv-a", "v-a")
        send("conv-b", "v-b")
        runtime.record_lead(world.workspace_id, world.agent_id, {"conversation_id": "conv-a", "visitor_id": "v-a"})
        db.session.remove()
    return {"gone": gone, "live": live}


def test_conversations_show_variant_and_experiment_even_when_deleted(client, auth, world, traffic):
    auth.login(world.emails["editor"])
    html = client.get(f"/agents/{world.agent_id}/conversations").get_data(as_text=True)
    assert f"deleted experiment #{traffic['gone']}" in html
    assert "Live test" in html and "conv-none" in html
    assert 'name="experiment"' in html and 'name="variant"' in html


def test_a_deleted_experiment_is_labelled_by_the_name_its_deletion_recorded(app, client, auth, world, traffic):
    with app.app_context():
        named = factories.experiment(world.agent_id, status="stopped", name="<i>Old & gone</i>")
        db.session.execute(sa.update(Conversation).where(Conversation.external_id == "conv-none").values(
            experiment_id=named, variant_key="control"))
        db.session.commit()
        experiments.delete_experiment(world.owner_id, world.agent_id, named)
        db.session.remove()
    auth.login(world.emails["editor"])
    for tab in ("conversations", "leads"):
        html = client.get(f"/agents/{world.agent_id}/{tab}").get_data(as_text=True)
        assert f'<option value="{named}" >&lt;i&gt;Old &amp; gone&lt;/i&gt; (deleted)</option>' in html
        assert "<i>Old" not in html
        assert f"deleted experiment #{traffic['gone']}" in html  # deleted without an audit row: its id
    html = client.get(f"/agents/{world.agent_id}/conversations").get_data(as_text=True)
    assert '<span class="muted">· &lt;i&gt;Old &amp; gone&lt;/i&gt; (deleted)</span>' in html


def test_conversations_filter_by_experiment_and_variant(client, auth, world, traffic):
    auth.login(world.emails["editor"])
    html = client.get(f"/agents/{world.agent_id}/conversations?experiment={traffic['live']}").get_data(as_text=True)
    assert "conv-a" in html and "conv-b" in html and "conv-old" not in html and "conv-none" not in html
    html = client.get(f"/agents/{world.agent_id}/conversations?experiment={traffic['gone']}").get_data(as_text=True)
    assert "conv-old" in html and "conv-a" not in html
    with client.application.app_context():
        key = db.session.scalar(sa.select(ExperimentAssignment.variant_key).where(
            ExperimentAssignment.visitor_id == "v-a"))
    html = client.get(f"/agents/{world.agent_id}/conversations?experiment={traffic['live']}&variant={key}"
                      ).get_data(as_text=True)
    assert "conv-a" in html


@pytest.mark.parametrize("query,parameter", [
    ("experiment=abc", "experiment"), ("experiment=1.5", "experiment"), ("experiment=-3", "experiment"),
    ("experiment=0", "experiment"), ("experiment=%EF%BC%91", "experiment"), ("experiment=" + "9" * 5000, "experiment"),
    ("variant=Bad%20key", "variant"), ("variant=a/b", "variant"), ("variant=control%0A", "variant"),
])
@pytest.mark.parametrize("tab", ["conversations", "leads"])
def test_malformed_stamp_filter_is_a_400_naming_the_parameter(app, client, auth, world, traffic, query, parameter,
                                                              tab):
    auth.login(world.emails["editor"])
    url = f"/agents/{world.agent_id}/{tab}?{query}"
    before = snapshot(app)
    page = client.get(url)
    html = page.get_data(as_text=True)
    assert page.status_code == 400 and "<html" in html
    assert f"{parameter} must be" in html and '<a href="/w/acme/agents">Agents</a>' in html
    fragment = client.get(url, headers={"HX-Request": "true"})
    html = fragment.get_data(as_text=True)
    assert fragment.status_code == 400 and "<html" not in html
    assert 'data-status="400"' in html and f"{parameter} must be" in html
    assert snapshot(app) == before


@pytest.mark.parametrize("tab", ["conversations", "leads"])
def test_stamp_filter_by_an_experiment_not_of_this_agent_is_a_404(app, client, auth, world, traffic, tab):
    with app.app_context():
        other_workspace = factories.experiment(world.other_agent_id, status="running")
        sibling = factories.experiment(factories.agent(world.workspace_id, name="Sibling"), status="running")
        db.session.remove()
    auth.login(world.emails["editor"])
    for experiment_id in (other_workspace, sibling, 999):
        response = client.get(f"/agents/{world.agent_id}/{tab}?experiment={experiment_id}")
        assert response.status_code == 404 and "No such experiment" in response.get_data(as_text=True)
    response = client.get(f"/agents/{world.agent_id}/{tab}?variant=nobody")
    assert response.status_code == 200 and f"No {tab} match this filter" in response.get_data(as_text=True)


@pytest.mark.parametrize("tab", ["conversations", "leads"])
def test_stamp_filter_variant_of_another_experiment_is_a_400_naming_the_parameter(app, client, auth, world, traffic,
                                                                                  tab):
    with app.app_context():
        db.session.get(Experiment, traffic["live"]).name = "<b>Live</b>"
        db.session.commit()
    auth.login(world.emails["editor"])
    before = snapshot(app)
    response = client.get(f"/agents/{world.agent_id}/{tab}?experiment={traffic['live']}&variant=nobody")
    html = response.get_data(as_text=True)
    assert response.status_code == 400 and "variant must be one of the keys of “&lt;b&gt;Live&lt;/b&gt;”" in html
    assert "(got “nobody”)" in html and "<b>Live</b>" not in html
    assert snapshot(app) == before


def test_stamp_filter_offers_every_experiments_keys_marking_the_others_hidden(client, auth, world, traffic):
    auth.login(world.emails["editor"])
    html = client.get(f"/agents/{world.agent_id}/conversations?experiment={traffic['live']}").get_data(as_text=True)
    assert f'data-experiment="{traffic["live"]}" >' in html
    assert f'data-experiment="{traffic["gone"]}" hidden disabled>' in html


def test_leads_filter_by_experiment_and_variant(app, client, auth, world, traffic):
    with app.app_context():
        for conversation, visitor in (("conv-old", "v-old"), ("conv-none", "v-none")):
            runtime.record_lead(world.workspace_id, world.agent_id,
                                {"conversation_id": conversation, "visitor_id": visitor})
        key = db.session.scalar(sa.select(ExperimentAssignment.variant_key).where(
            ExperimentAssignment.visitor_id == "v-a"))
        db.session.remove()
    auth.login(world.emails["editor"])
    url = f"/agents/{world.agent_id}/leads"
    html = client.get(url).get_data(as_text=True)
    assert 'id="lead-filter"' in html and all(v in html for v in ("v-a", "v-old", "v-none"))
    html = client.get(f"{url}?experiment={traffic['live']}").get_data(as_text=True)
    assert "<code>v-a</code>" in html and "<code>v-old</code>" not in html and "<code>v-none</code>" not in html
    html = client.get(f"{url}?experiment={traffic['gone']}").get_data(as_text=True)
    assert "<code>v-old</code>" in html and "<code>v-a</code>" not in html
    html = client.get(f"{url}?experiment={traffic['live']}&variant={key}").get_data(as_text=True)
    assert "<code>v-a</code>" in html and f'<option value="{key}" selected>' in html


def test_leads_show_the_variant(client, auth, world, traffic):
    auth.login(world.emails["editor"])
    html = client.get(f"/agents/{world.agent_id}/leads").get_data(as_text=True)
    # The arm by its name, its key as secondary code text (SPEC §11).
    assert re.search(r'<span class="variant-name">(Control|Treatment)</span>\s*<code class="muted key">(control|treatment)</code>',
                     html)
    assert "Live test" in html


def test_the_variant_filter_lists_names_not_keys(client, auth, world, traffic):
    auth.login(world.emails["editor"])
    html = client.get(f"/agents/{world.agent_id}/conversations").get_data(as_text=True)
    assert '<option value="control" >Control</option>' in html and '<option value="treatment" >Treatment</option>' in html
    assert '>control</option>' not in html


def test_a_lead_without_fields_shows_a_dash(client, auth, world, traffic):
    auth.login(world.emails["editor"])
    html = client.get(f"/agents/{world.agent_id}/leads").get_data(as_text=True)
    fields = re.search(r'<tbody>\s*<tr>\s*<td>.*?</td>\s*<td>.*?</td>\s*<td>(.*?)</td>', html, re.S).group(1)
    assert fields == '<span class="muted">—</span>'


def preview_url(world, experiment_id, visitor=None):
    url = f"/agents/{world.agent_id}/experiments/{experiment_id}/preview"
    return url + (f"?visitor_id={visitor}" if visitor is not None else "")


def test_preview_is_a_dry_run_with_bucket_and_ranges(app, client, auth, world):
    with app.app_context():
        exp = factories.experiment(world.agent_id, status="running", weights=(1, 3))
        db.session.remove()
    auth.login(world.emails["editor"])
    before = snapshot(app)
    response = client.get(preview_url(world, exp, "visitor-42"))
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert str(bucket_value(exp, "visitor-42")) in html
    assert "[0, 4611686018427387904)" in html and "25.0%" in html and "75.0%" in html
    # In plain words: where the visitor falls, and which variant owns which share of the range.
    where = re.sub(r"\s+", " ", re.search(r'id="preview-where">(.*?)</p>', html, re.S).group(1))
    point = f"{100 * bucket_value(exp, 'visitor-42') / 2**64:.1f}%"
    assert f"This visitor falls at <strong>{point}</strong> of the range." in where
    assert "Control owns the first 25.0% (0% to 25.0%); Treatment owns the last 75.0% (25.0% to 100%)." in where
    assert "<details" in html and "Raw bucket values" in html
    assert "You are Persona" in html and "by bucketing" in html
    assert snapshot(app) == before  # not a row anywhere


def test_preview_uses_the_existing_assignment(app, client, auth, world):
    with app.app_context():
        exp = factories.experiment(world.agent_id, status="running", weights=(1, 10_000))
        control = db.session.get(Experiment, exp).variants[0]
        db.session.add(ExperimentAssignment(agent_id=world.agent_id, experiment_id=exp, variant_id=control.id,
                                            variant_key="control", visitor_id="pinned"))
        db.session.commit()
    auth.login(world.emails["editor"])
    html = client.get(preview_url(world, exp, "pinned")).get_data(as_text=True)
    assert '<strong id="preview-variant">Control</strong>' in html and "existing assignment" in html


def test_preview_htmx_fragment_errors_and_full_page(app, client, auth, world):
    with app.app_context():
        exp = factories.experiment(world.agent_id)
        other = factories.experiment(world.other_agent_id)
        db.session.remove()
    auth.login(world.emails["owner"])
    fragment = client.get(preview_url(world, exp, "v1"), headers={"HX-Request": "true"})
    assert fragment.status_code == 200 and "<html" not in fragment.get_data(as_text=True)
    assert "preview-variant" in fragment.get_data(as_text=True)
    full = client.get(preview_url(world, exp))
    assert full.status_code == 200 and 'id="visitor-preview"' in full.get_data(as_text=True)
    bad = client.get(preview_url(world, exp, "x" * 300), headers={"HX-Request": "true"})
    assert bad.status_code == 422 and 'data-field="visitor_id"' in bad.get_data(as_text=True)
    assert client.get(preview_url(world, other, "v1")).status_code == 404


def test_preview_of_an_empty_visitor_id_asks_for_one(app, client, auth, world):
    with app.app_context():
        exp = factories.experiment(world.agent_id)
        db.session.remove()
    auth.login(world.emails["editor"])
    for headers in ({"HX-Request": "true"}, {}):
        response = client.get(preview_url(world, exp, ""), headers=headers)
        html = response.get_data(as_text=True)
        assert response.status_code == 422 and ("<html" in html) == (not headers)
        assert '<p class="error" id="visitor_id-error" data-field="visitor_id">Enter a visitor id.</p>' in html


def test_lead_fields_and_other_json_values_read_as_json(app, client, auth, world):
    """true, null, ["a","b"] — not Python's True, None, ['a', 'b']; strings as they are, escaped."""
    with app.app_context():
        exp_id = factories.experiment(world.agent_id, kind="cta", status="running",
                                      configs=[{"text": "Let's talk & <b>", "show": True}, {"text": None}])
        ids = {"conversation_id": "conv-j", "visitor_id": "v-j"}
        runtime.record_message(world.workspace_id, world.agent_id, {**ids, "role": "visitor"})
        runtime.record_lead(world.workspace_id, world.agent_id, {**ids, "fields": {
            "vip": True, "phone": None, "tags": ["a", "b"], "score": 1.5, "note": "<b>hi</b> it's", "é": {"x": 1}}})
        db.session.remove()
    auth.login(world.emails["owner"])
    fields = client.get(f"/agents/{world.agent_id}/leads").get_data(as_text=True).split('class="lead-fields"')[1]
    fields = fields.split("</div>")[0]
    for name, shown in (("vip", "true"), ("phone", "null"), ("tags", "[&#34;a&#34;,&#34;b&#34;]"), ("score", "1.5"),
                        ("note", "&lt;b&gt;hi&lt;/b&gt; it&#39;s"), ("é", "{&#34;x&#34;:1}")):
        assert f"<b><bdi>{name}</bdi></b> <bdi>{shown}</bdi><" in fields
    assert "True" not in fields and "None" not in fields and "[&#39;a&#39;" not in fields
    variants = client.get(f"/agents/{world.agent_id}/experiments/{exp_id}").get_data(as_text=True)
    variants = variants.split('id="variants"')[1].split("</section>")[0]
    assert "&#34;text&#34;: &#34;Let&#39;s talk &amp; &lt;b&gt;&#34;" in variants and "&#34;show&#34;: true" in variants
    assert "&#34;text&#34;: null" in variants and "\\u00" not in variants
    with app.app_context():
        persona_id = factories.experiment(world.agent_id, status="running")
        db.session.remove()
    promote = f"/agents/{world.agent_id}/experiments/{persona_id}/promote"
    assert auth.post(promote, {"variant": "treatment"}).status_code == 302
    trail = client.get(f"/agents/{world.agent_id}/experiments/{persona_id}").get_data(as_text=True)
    trail = html.unescape(trail.split('id="audit-trail"')[1])
    assert ("owner promoted Treatment: the agent's persona changed from Sam (friendly) to Persona treatment "
            "(tone treatment) and the experiment stopped. Outcome: Shipped Treatment.") in trail
    assert "True" not in trail and "stopped:" not in trail


@pytest.mark.parametrize("status", ["draft", "stopped", "running"])
def test_preview_of_an_inactive_experiment_names_the_one_a_new_conversation_runs_on(app, client, auth, world, status):
    """Another experiment running (and active): a new conversation is assigned there, not on the agent's defaults."""
    with app.app_context():
        exp = factories.experiment(world.agent_id, status=status, name="Previewed",
                                   started_at=utcnow() - timedelta(days=1))
        factories.experiment(world.agent_id, status="running", name="Live & well")
        db.session.remove()
    auth.login(world.emails["editor"])
    html = client.get(preview_url(world, exp, "visitor-1")).get_data(as_text=True)
    note = re.search(r'<p class="muted" id="preview-not-active">(.*?)</p>', html, re.S).group(1)
    assert "the active experiment, “Live &amp; well”" in note and "agent's defaults" not in note


def test_preview_of_an_inactive_experiment_with_none_running_says_the_agents_defaults(app, client, auth, world):
    with app.app_context():
        exp = factories.experiment(world.agent_id, status="stopped")
        db.session.remove()
    auth.login(world.emails["editor"])
    html = client.get(preview_url(world, exp, "visitor-1")).get_data(as_text=True)
    note = re.search(r'<p class="muted" id="preview-not-active">(.*?)</p>', html, re.S).group(1)
    assert "the agent's defaults today" in note and "active experiment" not in note.split("one:")[1]


def test_preview_of_the_active_experiment_has_no_note(app, client, auth, world):
    with app.app_context():
        exp = factories.experiment(world.agent_id, status="running")
        db.session.remove()
    auth.login(world.emails["editor"])
    assert "preview-not-active" not in client.get(preview_url(world, exp, "visitor-1")).get_data(as_text=True)
