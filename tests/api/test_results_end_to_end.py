"""Traffic through the runtime API with known counts → the numbers on the JSON export (SPEC §7)."""
from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from tests import factories
from webapp.extensions import db
from webapp.models import Conversation, Lead, Message
from webapp.services.experiments import stats

T0 = datetime(2026, 11, 2, 10, 0, tzinfo=timezone.utc)


def test_api_traffic_gives_exact_results(app, client, auth, world):
    with app.app_context():
        experiment_id = factories.experiment(world.agent_id, weights=(1, 1), status="running")
    headers = {"Authorization": f"Bearer {world.api_key}"}
    base = f"/api/v1/agents/{world.agent_id}"
    rng = random.Random(5)
    truth: dict[str, list[tuple[int, int, float, int]]] = {"control": [], "treatment": []}
    for v in range(90):
        visitor = f"visitor-{v}"
        convs, msgs, secs, converted, key = rng.randint(1, 2), 0, 0.0, 0, None
        for c in range(convs):
            conversation = f"{visitor}-conv-{c}"
            start = T0 + timedelta(days=v % 4, hours=c)
            offsets = sorted(rng.sample(range(1, 600), rng.randint(1, 4)))
            n_visitor = len(offsets)
            # visitor messages out of order, each followed by an agent reply, one replayed delivery
            for i, off in reversed(list(enumerate([0] + offsets[:-1]))):
                body = {"visitor_id": visitor, "conversation_id": conversation, "role": "visitor",
                        "text": "hi", "sent_at": (start + timedelta(seconds=off)).isoformat(),
                        "message_id": f"{conversation}-v{i}"}
                response = client.post(f"{base}/messages", json=body, headers=headers)
                assert response.status_code == 201, response.get_json()
                key = response.get_json()["variant"]["key"]
                assert client.post(f"{base}/messages", json=body, headers=headers).status_code == 200  # replay
                reply = {"visitor_id": visitor, "conversation_id": conversation, "role": "agent", "text": "hello",
                         "sent_at": (start + timedelta(seconds=offsets[i])).isoformat()}
                assert client.post(f"{base}/messages", json=reply, headers=headers).status_code == 201
            msgs += n_visitor
            secs += offsets[-1]
            if rng.random() < (0.2 if key == "control" else 0.45):
                for _ in range(rng.randint(1, 2)):  # a second lead in the same conversation counts once
                    lead = client.post(f"{base}/leads", json={"visitor_id": visitor, "conversation_id": conversation,
                                                             "fields": {"email": f"{visitor}@x.test"}},
                                       headers=headers)
                    assert lead.status_code == 201
                converted = 1
        truth[key].append((convs, msgs, secs, converted))

    auth.login("editor@acme.test")
    body = client.get(f"/agents/{world.agent_id}/experiments/{experiment_id}/results.json").get_json()
    by_key = {v["key"]: v for v in body["variants"]}
    for key, rows in truth.items():
        exported = by_key[key]
        assert exported["visitors"] == len(rows)
        assert exported["conversations"] == sum(r[0] for r in rows)
        assert exported["visitor_messages"] == sum(r[1] for r in rows)
        assert exported["converted_visitors"] == sum(r[3] for r in rows)
        metrics = exported["metrics"]
        assert metrics["messages_per_conversation"]["value"] == pytest.approx(
            sum(r[1] for r in rows) / sum(r[0] for r in rows))
        assert metrics["session_length"]["value"] == pytest.approx(sum(r[2] for r in rows) / sum(r[0] for r in rows))
        assert metrics["lead_capture_rate"]["value"] == pytest.approx(sum(r[3] for r in rows) / len(rows))

    expected = stats.compare(
        stats.ProportionStat(len(truth["control"]), sum(r[3] for r in truth["control"])),
        stats.ProportionStat(len(truth["treatment"]), sum(r[3] for r in truth["treatment"])))
    got = by_key["treatment"]["metrics"]["lead_capture_rate"]
    assert got["lift"] == pytest.approx(expected.lift, abs=1e-9)
    assert got["p_value"] == pytest.approx(expected.p_value, abs=1e-9)

    # The conversations' counters equal the rows they summarise.
    with app.app_context():
        actual = db.session.execute(sa.select(
            Conversation.visitor_messages,
            sa.select(sa.func.count()).where(Message.conversation_id == Conversation.id, Message.role == "visitor",
                                             Message.variant_id.is_not(None)).scalar_subquery(),
            Conversation.lead_count,
            sa.select(sa.func.count()).where(Lead.conversation_id == Conversation.id, Lead.variant_id.is_not(None))
            .scalar_subquery())).all()
        assert all(row[0] == row[1] and row[2] == row[3] for row in actual)


def test_activity_before_assignment_is_not_a_variant_outcome(app, client, auth, world):
    """Messages and a lead before any experiment runs; then the experiment starts and stamps the conversation."""
    headers = {"Authorization": f"Bearer {world.api_key}"}
    base = f"/api/v1/agents/{world.agent_id}"
    before = {"visitor_id": "early", "conversation_id": "early-c", "role": "visitor", "text": "hi"}
    for i in range(3):
        assert client.post(f"{base}/messages", json={**before, "message_id": f"m{i}"},
                           headers=headers).get_json()["variant"] is None
    lead = client.post(f"{base}/leads", json={"visitor_id": "early", "conversation_id": "early-c"}, headers=headers)
    assert lead.get_json()["variant"] is None
    with app.app_context():
        experiment_id = factories.experiment(world.agent_id, weights=(1, 1), status="running")
    stamped = client.post(f"{base}/messages", json={**before, "message_id": "m-after"}, headers=headers).get_json()
    assert stamped["variant"] is not None
    with app.app_context():
        conversation = db.session.scalar(sa.select(Conversation).where(Conversation.external_id == "early-c"))
        assert (conversation.visitor_messages, conversation.lead_count) == (1, 0)
    auth.login("owner@acme.test")
    body = client.get(f"/agents/{world.agent_id}/experiments/{experiment_id}/results.json").get_json()
    arm = next(v for v in body["variants"] if v["key"] == stamped["variant"]["key"])
    assert (arm["visitors"], arm["conversations"], arm["visitor_messages"], arm["converted_visitors"]) == (1, 1, 1, 0)
