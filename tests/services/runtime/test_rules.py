"""rules.decide_* on plain data: every rule of SPEC §5, the replay and conflict rules, the counters, the answers.

No database and no app: a State is what the store would have read.
"""
from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from webapp.services.errors import BadRequest, Conflict, NotFound, Unauthorized, ValidationError
from webapp.services.runtime import rules
from webapp.services.runtime.bucketing import assign_position
from webapp.services.runtime.rules import (Access, Agent, Arm, Assigned, EarlierLead, EarlierMessage, Key, LeadReplay,
                                           LeadWrite, MessageWrite, Option, Replay, State, StoredConversation)

NOW = datetime(2026, 11, 20, 10, 0, tzinfo=timezone.utc)
AGENT = Agent(7, "Sam", "friendly", "Be brief.", "Acme")
EXPERIMENT = 11
CONTROL = Arm(EXPERIMENT, 101, "control", "Exp", "persona", "Control", {"persona": {"name": "Aria", "tone": "warm"}})
TREATMENT = Arm(EXPERIMENT, 102, "treatment", "Exp", "persona", "Treatment", {"persona": {"name": "Max"}})
OPTIONS = (Option(CONTROL, 1), Option(TREATMENT, 1))


def visitor_at(position: int, weights=(1, 1)) -> str:
    """A visitor id that bucketing sends to `position` in EXPERIMENT."""
    return next(f"v{i}" for i in range(10_000) if assign_position(EXPERIMENT, f"v{i}", weights) == position)


def report(role: str = "visitor", visitor: str = "v1", conversation: str = "c1", text: str = "hi",
           message_id: str | None = None, sent_at: datetime = NOW) -> rules.MessageReport:
    body = {"visitor_id": visitor, "conversation_id": conversation, "role": role, "text": text,
            "sent_at": sent_at.isoformat()}
    if message_id is not None:
        body["message_id"] = message_id
    return rules.parse_message(body, NOW)


def stored(stamp: Arm | None = None, visitor: str = "v1") -> StoredConversation:
    return StoredConversation(42, visitor, stamp)


def reply(write: MessageWrite) -> dict:
    return json.loads(write.message.reply)


# --- SPEC §5, step by step -----------------------------------------------------------------------------------------

def test_step_1_a_stamped_conversation_keeps_its_variant():
    """Sticky within the conversation, even when another experiment is active now and the visitor has a row there."""
    other = Arm(99, 201, "b", "Newer", "persona", "B", {})
    state = State(AGENT, (Option(other, 1),), stored(TREATMENT), Assigned(201, "b", NOW))
    write = rules.decide_message(state, report())
    assert write.assignment is None and write.conversation is None
    assert write.touch.stamp == TREATMENT and write.touch.was_stamped
    assert write.message.variant_id == TREATMENT.variant_id
    assert reply(write)["variant"] == {"id": 102, "key": "treatment", "name": "Treatment", "config": TREATMENT.config}


def test_step_1_a_deleted_experiments_stamp_answers_without_names_and_on_the_defaults():
    deleted = Arm(EXPERIMENT, 102, "treatment")  # what the store reads once the variant row is gone
    body = reply(rules.decide_message(State(AGENT, (), stored(deleted)), report()))
    assert body["experiment"] == {"id": EXPERIMENT, "name": None, "kind": None}
    assert body["variant"] == {"id": 102, "key": "treatment", "name": None, "config": None}
    assert body["persona"] == {"name": "Sam", "tone": "friendly"}


def test_step_2_no_active_experiment_runs_on_the_defaults_unstamped_and_uncounted():
    write = rules.decide_message(State(AGENT), report())
    assert write.assignment is None
    assert write.conversation.stamp is None and write.conversation.visitor_messages == 0
    assert write.message.variant_id is None
    body = reply(write)
    assert body["experiment"] is None and body["variant"] is None
    assert body["persona"] == {"name": "Sam", "tone": "friendly"}
    assert body["system_prompt"] == "You are Sam, the assistant of Acme. Tone: friendly.\nBe brief."


def test_step_2_an_unstamped_conversation_is_stamped_by_a_later_visitor_message():
    write = rules.decide_message(State(AGENT, OPTIONS, stored(None)), report(visitor="v1"))
    assert write.conversation is None and write.touch.stamp is not None and not write.touch.was_stamped
    assert write.touch.visitor_increment == 1
    assert not write.stands_alone  # the store must check that nobody stamped it since the read


def test_only_a_write_that_stamps_an_unstamped_conversation_needs_the_stores_check():
    """A message that leaves an unstamped conversation unstamped stands alone: a concurrent stamp would make it
    the earlier message. One that stamps it must find it unstamped still (or stamped with the same arm)."""
    assert rules.decide_message(State(AGENT, OPTIONS, stored(None)), report(role="agent")).stands_alone
    assert rules.decide_message(State(AGENT, (), stored(None)), report()).stands_alone
    assert rules.decide_message(State(AGENT, OPTIONS, stored(CONTROL)), report()).stands_alone
    assert rules.decide_message(State(AGENT, OPTIONS), report()).stands_alone


def test_step_3_an_existing_assignment_row_is_reused_with_its_live_fields():
    visitor = visitor_at(0)  # bucketing alone would give the control
    state = State(AGENT, OPTIONS, None, Assigned(TREATMENT.variant_id, "treatment", NOW - timedelta(days=3)))
    write = rules.decide_message(state, report(visitor=visitor))
    assert write.assignment is None  # sticky across conversations and days: no new row
    assert write.conversation.stamp == TREATMENT and write.message.variant_id == TREATMENT.variant_id


def test_step_3_a_row_for_a_variant_no_longer_among_the_arms_keeps_its_id_and_key():
    state = State(AGENT, OPTIONS, None, Assigned(555, "retired", NOW))
    write = rules.decide_message(state, report())
    assert write.conversation.stamp == Arm(EXPERIMENT, 555, "retired")


@pytest.mark.parametrize("position", [0, 1])
def test_step_4_bucketing_chooses_by_the_hash_and_a_new_row_is_inserted(position):
    visitor = visitor_at(position)
    write = rules.decide_message(State(AGENT, OPTIONS), report(visitor=visitor))
    expected = OPTIONS[position].arm
    assert write.assignment == rules.NewAssignment(AGENT.id, expected, visitor, NOW)
    assert write.conversation.stamp == expected


def test_step_4_weights_in_position_order():
    options = (Option(CONTROL, 1), Option(TREATMENT, 3))
    visitor = visitor_at(1, (1, 3))
    assert rules.decide_message(State(AGENT, options), report(visitor=visitor)).conversation.stamp == TREATMENT
    assert rules.bucket(options, visitor) == TREATMENT


def test_step_4_the_spec_vectors():
    """SPEC §5's table through rules.bucket (experiment 7, visitor-42, weights 1,2,7 → position 2)."""
    arms = tuple(Option(Arm(7, 700 + i, f"k{i}"), w) for i, w in enumerate((1, 2, 7)))
    assert rules.bucket(arms, "visitor-42").variant_id == 702
    arms = tuple(Option(Arm(123, 800 + i, f"k{i}"), w) for i, w in enumerate((90, 10)))
    assert rules.bucket(arms, "alice@example.com").variant_id == 800


def test_step_5_a_new_conversation_and_its_message_carry_the_stamp_and_count():
    write = rules.decide_message(State(AGENT, OPTIONS), report(visitor=visitor_at(1)))
    new = write.conversation
    assert (new.agent_id, new.external_id, new.started_at, new.visitor_messages) == (AGENT.id, "c1", NOW, 1)
    assert new.stamp == TREATMENT and write.message.variant_id == TREATMENT.variant_id
    assert write.stands_alone  # a unique key is all a concurrent request can stop it with


def test_agent_messages_never_assign_and_carry_the_stamp_or_none():
    unstamped = rules.decide_message(State(AGENT, OPTIONS), report(role="agent"))
    assert unstamped.assignment is None and unstamped.conversation.stamp is None
    assert unstamped.conversation.visitor_messages == 0 and unstamped.message.variant_id is None
    stamped = rules.decide_message(State(AGENT, OPTIONS, stored(CONTROL)), report(role="agent"))
    assert stamped.touch.stamp == CONTROL and stamped.message.variant_id == CONTROL.variant_id
    assert stamped.touch.visitor_increment == 0  # only visitor messages count


def test_only_a_stamped_visitor_message_counts():
    assert rules.decide_message(State(AGENT, (), stored(None)), report()).touch.visitor_increment == 0
    assert rules.decide_message(State(AGENT, (), stored(CONTROL)), report()).touch.visitor_increment == 1


def test_a_follow_ups_time_is_what_the_touch_widens_the_span_with():
    later = NOW + timedelta(minutes=5)
    write = rules.decide_message(State(AGENT, (), stored(CONTROL)), report(sent_at=later))
    assert write.touch.sent_at == later and write.message.sent_at == later
    assert write.touch.conversation_id == 42


# --- replay and conflicts ------------------------------------------------------------------------------------------

def test_a_repeated_message_id_with_the_same_role_and_text_replays_the_stored_reply():
    earlier = EarlierMessage("visitor", "hi", '{"stored":true}')
    state = State(AGENT, OPTIONS, stored(CONTROL), earlier_message=earlier)
    assert rules.decide_message(state, report(message_id="m1")) == Replay('{"stored":true}')
    # sent_at is not compared: a retry that omits it gets a new default
    assert rules.decide_message(state, report(message_id="m1", sent_at=NOW - timedelta(hours=1))).reply == \
        '{"stored":true}'


@pytest.mark.parametrize("role, text", [("visitor", "other text"), ("agent", "hi")])
def test_a_message_id_reused_for_another_message_is_a_409_naming_it(role, text):
    state = State(AGENT, OPTIONS, stored(CONTROL), earlier_message=EarlierMessage("visitor", "hi", "{}"))
    with pytest.raises(Conflict) as raised:
        rules.decide_message(state, report(role=role, text=text, message_id="m1"))
    assert "message_id" in raised.value.fields and "'m1'" in raised.value.message


def test_a_conversation_id_of_another_visitor_is_a_409_before_any_replay():
    state = State(AGENT, OPTIONS, stored(CONTROL, visitor="someone-else"),
                  earlier_message=EarlierMessage("visitor", "hi", "{}"))
    with pytest.raises(Conflict) as raised:
        rules.decide_message(state, report(message_id="m1"))
    assert "conversation_id" in raised.value.fields


def test_the_reply_names_the_conversation_the_message_and_the_effective_persona():
    write = rules.decide_message(State(AGENT, OPTIONS), report(visitor=visitor_at(0), message_id="m-9"))
    body = reply(write)
    assert body == {"conversation_id": "c1", "message_id": "m-9",
                    "experiment": {"id": EXPERIMENT, "name": "Exp", "kind": "persona"},
                    "variant": {"id": 101, "key": "control", "name": "Control", "config": CONTROL.config},
                    "persona": {"name": "Aria", "tone": "warm"},
                    "system_prompt": "You are Aria, the assistant of Acme. Tone: warm.\nBe brief."}
    assert write.message.client_message_id == "m-9"


def test_without_a_message_id_the_reply_names_a_generated_one_and_no_replay_is_looked_up():
    r = report()
    assert r.message_id is None and len(r.new_message_id) == 32
    write = rules.decide_message(State(AGENT), r)
    assert reply(write)["message_id"] == write.message.client_message_id == r.new_message_id


def test_a_treatment_without_a_tone_keeps_the_agents():
    body = reply(rules.decide_message(State(AGENT, OPTIONS), report(visitor=visitor_at(1))))
    assert body["persona"] == {"name": "Max", "tone": "friendly"}


# --- leads ---------------------------------------------------------------------------------------------------------

def lead(fields=None, key=None, visitor="v1"):
    body = {"visitor_id": visitor, "conversation_id": "c1", "fields": fields or {"email": "a@b.c"}}
    if key:
        body["idempotency_key"] = key
    return rules.parse_lead(body, NOW)


def test_a_lead_needs_the_conversation_and_its_visitor():
    with pytest.raises(NotFound) as missing:
        rules.decide_lead(State(AGENT), lead())
    assert "conversation_id" in missing.value.fields
    with pytest.raises(Conflict):
        rules.decide_lead(State(AGENT, (), stored(CONTROL, visitor="other")), lead())


def test_a_lead_carries_the_stamp_and_counts_only_when_stamped():
    write = rules.decide_lead(State(AGENT, (), stored(CONTROL)), lead(key="k1"))
    assert write == LeadWrite(42, AGENT.id, "v1", {"email": "a@b.c"}, NOW, CONTROL, "k1") and write.counted
    assert not rules.decide_lead(State(AGENT, (), stored(None)), lead()).counted


def test_a_lead_key_replays_the_same_fields_and_refuses_others():
    state = State(AGENT, (), stored(CONTROL), earlier_lead=EarlierLead(5, {"email": "a@b.c"}))
    assert rules.decide_lead(state, lead(key="k1")) == LeadReplay(5)
    with pytest.raises(Conflict) as raised:
        rules.decide_lead(state, lead({"email": "x@y.z"}, key="k1"))
    assert "idempotency_key" in raised.value.fields
    with pytest.raises(Conflict):  # as JSON: true is not 1
        rules.decide_lead(replace(state, earlier_lead=EarlierLead(5, {"vip": 1})), lead({"vip": True}, key="k1"))


def test_the_lead_answer_names_the_stamps_variant():
    assert rules.lead_json(5, CONTROL) == {"lead_id": 5, "variant": {"id": 101, "key": "control", "name": "Control",
                                                                   "config": CONTROL.config}}
    assert rules.lead_json(5, None) == {"lead_id": 5, "variant": None}


# --- lookups, access, parsing ---------------------------------------------------------------------------------------

def test_the_persona_lookup_answers_the_stamp_and_404s_without_a_conversation():
    body = rules.persona_answer(State(AGENT, (), stored(CONTROL)), "c1")
    assert body["visitor_id"] == "v1" and body["persona"] == {"name": "Aria", "tone": "warm"}
    with pytest.raises(NotFound):
        rules.persona_answer(State(AGENT), "c1")


def test_the_assignment_lookup_never_assigns():
    assert rules.assignment_answer(State(AGENT, OPTIONS), "v1") == {"visitor_id": "v1", "assignment": None}
    assert rules.assignment_answer(State(AGENT, (), assigned=Assigned(101, "control", NOW)), "v1")["assignment"] \
        is None  # a row of an experiment no longer active
    found = rules.assignment_answer(State(AGENT, OPTIONS, assigned=Assigned(102, "treatment", NOW)), "v1")
    assert found["assignment"]["variant"]["key"] == "treatment"
    assert found["assignment"]["assigned_at"] == NOW.isoformat()


def test_access_unknown_revoked_key_then_foreign_agent():
    with pytest.raises(Unauthorized, match="Invalid"):
        rules.authorize(Access(None, None, None))
    with pytest.raises(Unauthorized, match="revoked"):
        rules.authorize(Access(1, AGENT, Key(3, True, None)))
    with pytest.raises(NotFound):
        rules.authorize(Access(1, None, Key(3, False, None)))
    assert rules.authorize(Access(1, AGENT, Key(3, False, None))) == AGENT
    assert rules.authorize(Access(1, AGENT, by_key=False)) == AGENT  # a trusted in-process caller


def test_the_key_is_touched_at_most_once_a_minute():
    assert rules.key_touch_due(Key(1, False, None), NOW)
    assert not rules.key_touch_due(Key(1, False, NOW - timedelta(seconds=30)), NOW)
    assert rules.key_touch_due(Key(1, False, NOW - timedelta(seconds=61)), NOW)
    assert not rules.key_touch_due(None, NOW)


def test_parse_message_names_every_bad_field_and_defaults_sent_at():
    with pytest.raises(ValidationError) as raised:
        rules.parse_message({"visitor_id": "", "role": "bot", "text": 5, "sent_at": "yesterday", "message_id": ""},
                            NOW)
    assert set(raised.value.fields) == {"visitor_id", "conversation_id", "role", "text", "sent_at", "message_id"}
    assert rules.parse_message({"visitor_id": "v", "conversation_id": "c", "role": "agent"}, NOW).sent_at == NOW


def test_parse_path_id_refuses_bytes_that_were_not_utf8_with_a_400():
    with pytest.raises(BadRequest):
        rules.parse_path_id("a\udcff", "visitor_id")
    with pytest.raises(ValidationError):
        rules.parse_path_id("a\x01", "visitor_id")
    assert rules.parse_path_id("ü-ñicode", "visitor_id") == "ü-ñicode"


def test_agent_ids_beyond_integer_range_match_nothing():
    assert rules.agent_id_in_range(2**31) is None and rules.agent_id_in_range(0) is None
    assert rules.agent_id_in_range(5) == 5


CTA = Arm(EXPERIMENT, 103, "cta", "Exp", "cta", "Book", {"cta": {"label": "Book a demo", "url": "https://a.test/d",
                                                                 "prompt": "book a demo"}})


def test_a_cta_variant_delivers_its_config_and_its_prompt_line():
    """SPEC §13: variant.config in the answer; the CTA prompt appended to the system prompt as a line."""
    body = rules.stamp_json(AGENT, CTA)
    assert body["variant"]["config"] == CTA.config
    assert body["system_prompt"].endswith(
        "\nWhen it fits the conversation, invite the visitor to: book a demo (Book a demo: https://a.test/d)")
    assert body["persona"] == rules.stamp_json(AGENT, None)["persona"]  # nothing else changes
    no_prompt = Arm(EXPERIMENT, 103, "cta", "Exp", "cta", "Book", {"cta": {"label": "Go", "url": "https://a.test"}})
    assert rules.stamp_json(AGENT, no_prompt)["system_prompt"] == rules.stamp_json(AGENT, None)["system_prompt"]
    trigger = Arm(EXPERIMENT, 104, "t", "Exp", "trigger", "T", {"trigger": {"on": "load"}, "cta": CTA.config["cta"]})
    assert rules.stamp_json(AGENT, trigger)["system_prompt"] == rules.stamp_json(AGENT, None)["system_prompt"]
