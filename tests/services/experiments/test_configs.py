"""SPEC §13: typed CTA and trigger configs, validated field by field; a config without them stays valid."""
from __future__ import annotations

import json

import pytest

from tests.services.experiments.test_experiments import arm, count, data
from webapp.models import Experiment
from webapp.services.errors import ValidationError
from webapp.services.experiments import configs, experiments

CTA = {"label": "Book a demo", "url": "https://acme.test/demo", "prompt": "book a 15-minute demo"}


def create(world, kind, *treatment_configs, **fields):
    variants = [arm("control", config={})] + [arm(f"t{i}", config=c, **(fields if i == 0 else {}))
                                              for i, c in enumerate(treatment_configs)]
    return experiments.create_experiment(world.owner_id, world.agent_id, data(kind, variants))


def refused(world, kind, config, **fields) -> dict[str, str]:
    with pytest.raises(ValidationError) as error:
        create(world, kind, config, **fields)
    assert count(Experiment) == 0  # nothing written
    return error.value.fields


@pytest.mark.parametrize("kind", ["cta", "trigger"])
def test_a_config_without_a_typed_block_stays_valid(ctx, world, kind):
    exp = create(world, kind, {}, **{f: "" for f in configs.form_fields(kind)})
    assert [v.config for v in exp.variants] == [{}, {}]
    exp = create(world, kind, {"colour": "teal"})  # free-form keys beside the block are kept
    assert exp.variants[1].config == {"colour": "teal"}


def test_a_cta_is_stored_trimmed_and_the_prompt_is_optional(ctx, world):
    exp = create(world, "cta", {"cta": {**CTA, "label": "  Book a demo "}}, {"cta": {"label": "Go", "url": "http://a.b"}})
    assert exp.variants[1].config == {"cta": CTA}
    assert exp.variants[2].config == {"cta": {"label": "Go", "url": "http://a.b"}}


def test_cta_form_fields_win_over_the_json_and_blank_ones_leave_it(ctx, world):
    exp = create(world, "cta", {"cta": {**CTA}, "x": 1}, cta_label="Talk to sales", cta_url="",
                 cta_prompt="  ")
    assert exp.variants[1].config == {"cta": {**CTA, "label": "Talk to sales"}, "x": 1}
    exp = create(world, "cta", "", cta_label="Go", cta_url="https://acme.test/go")  # fields alone make the block
    assert exp.variants[1].config == {"cta": {"label": "Go", "url": "https://acme.test/go"}}


@pytest.mark.parametrize("cta,fields,field,message", [
    ({"url": "https://a.test"}, {}, "config", "CTA label is required."),
    ({"label": "L" * 61, "url": "https://a.test"}, {}, "config", "CTA label must be at most 60 characters (got 61)."),
    ({"label": "", "url": "https://a.test"}, {"cta_label": ""}, "cta_label", "CTA label is required."),
    ({"label": "Go"}, {}, "config", "CTA URL is required."),
    ({"label": "Go", "url": "ftp://a.test/x"}, {}, "config", "absolute http:// or https://"),
    ({"label": "Go", "url": "javascript:alert(1)"}, {}, "config", "absolute http:// or https://"),
    ({"label": "Go", "url": "https://"}, {}, "config", "absolute http:// or https://"),
    ({"label": "Go", "url": "/relative"}, {"cta_url": "/relative"}, "cta_url", "absolute http:// or https://"),
    ({"label": "Go", "url": "https://a.test/" + "x" * 1990}, {}, "config", "at most 2000 characters (got 2005)"),
    ({"label": "Go", "url": "https://a test/"}, {}, "config", "absolute http:// or https://"),
    ({"label": "Go", "url": "https://a.test", "prompt": "p" * 501}, {}, "config", "at most 500 characters"),
    ({"label": "Go", "url": "https://a.test"}, {"cta_prompt": "p" * 501}, "cta_prompt", "at most 500 characters"),
    ({"label": "Go", "url": "https://a.test", "prompt": "two\nlines"}, {}, "config", "single line"),
    ({"label": 5, "url": "https://a.test"}, {}, "config", "CTA label must be text."),
    ({"label": "Go", "url": "https://a.test", "lable": "x"}, {}, "config", "unknown key “lable”"),
    ("Book", {}, "config", "config.cta must be an object"),
])
def test_a_bad_cta_field_is_refused_on_its_field(ctx, world, cta, fields, field, message):
    errors = refused(world, "cta", {"cta": cta}, **fields)
    assert list(errors) == [f"variants-1-{field}"]
    assert message in errors[f"variants-1-{field}"]


def test_trigger_limits_and_form_numbers(ctx, world):
    exp = create(world, "trigger", {"trigger": {"on": "delay", "seconds": 600}},
                 {"trigger": {"on": "scroll", "percent": 1, "opening_message": "Hi!\nNeed help?"}},
                 {"trigger": {"on": "exit_intent"}}, {"trigger": {"on": "load", "seconds": None}})
    assert [v.config for v in exp.variants[1:]] == [
        {"trigger": {"on": "delay", "seconds": 600}},
        {"trigger": {"on": "scroll", "percent": 1, "opening_message": "Hi!\nNeed help?"}},
        {"trigger": {"on": "exit_intent"}}, {"trigger": {"on": "load"}}]
    exp = create(world, "trigger", "{}", trigger_on="delay", trigger_seconds=" 30 ", trigger_percent="",
                 trigger_opening_message="")
    assert exp.variants[1].config == {"trigger": {"on": "delay", "seconds": 30}}  # a number, as the JSON holds it


def test_the_exact_limits_are_accepted_in_the_json_and_the_fields(ctx, world):
    """SPEC §13's upper limits are inclusive: a 60-character label, a 2,000-character URL, a 500-character prompt
    or opening message (characters, not bytes: "é" is one), 600 seconds, 100 percent — as form fields (the first
    treatment) and as JSON (the second)."""
    url = "https://acme.test/" + "x" * (configs.CTA_URL_MAX - len("https://acme.test/"))
    cta = {"label": "é" * configs.CTA_LABEL_MAX, "url": url, "prompt": "ü" * configs.CTA_PROMPT_MAX}
    assert (len(cta["label"]), len(url), len(cta["prompt"])) == (60, 2000, 500)
    exp = create(world, "cta", "", {"cta": cta}, cta_label=cta["label"], cta_url=url, cta_prompt=cta["prompt"])
    assert exp.variants[1].config == exp.variants[2].config == {"cta": cta}
    opening = "ø" * configs.OPENING_MESSAGE_MAX
    exp = create(world, "trigger", "", {"trigger": {"on": "scroll", "percent": 100, "opening_message": opening}},
                 trigger_on="delay", trigger_seconds="600", trigger_opening_message=opening)
    assert [v.config for v in exp.variants[1:]] == [
        {"trigger": {"on": "delay", "seconds": 600, "opening_message": opening}},
        {"trigger": {"on": "scroll", "percent": 100, "opening_message": opening}}]


@pytest.mark.parametrize("trigger,fields,field,message", [
    ({}, {}, "config", "Trigger “on” is required"),
    ({"on": "hover"}, {}, "config", "must be one of load, delay, scroll, exit_intent (got “hover”)"),
    ({"on": "hover"}, {"trigger_on": "hover"}, "trigger_on", "(got “hover”)"),
    ({"on": "delay", "seconds": 0}, {}, "config", "Seconds must be from 1 to 600 (got 0)."),
    ({"on": "delay", "seconds": 601}, {}, "config", "Seconds must be from 1 to 600 (got 601)."),
    ({"on": "delay", "seconds": 1.5}, {}, "config", "Seconds must be a whole number from 1 to 600."),
    ({"on": "delay", "seconds": True}, {}, "config", "Seconds must be a whole number"),
    ({"on": "delay", "seconds": "30"}, {}, "config", "Seconds must be a whole number"),
    ({"on": "delay"}, {"trigger_seconds": "ten"}, "trigger_seconds", "Seconds must be a whole number"),
    ({"on": "delay"}, {"trigger_seconds": "9999"}, "trigger_seconds", "(got 9,999)"),
    ({"on": "load", "seconds": 5}, {}, "config", "Seconds apply only to a “delay” trigger (this one is “load”)."),
    ({"on": "delay", "percent": 50}, {"trigger_percent": "50"}, "trigger_percent",
     "Percent applies only to a “scroll” trigger"),
    ({"on": "scroll", "percent": 101}, {}, "config", "Percent must be from 1 to 100 (got 101)."),
    ({"on": "scroll", "percent": 0}, {"trigger_percent": "0"}, "trigger_percent", "(got 0)"),
    ({"on": "load", "opening_message": "m" * 501}, {}, "config", "at most 500 characters"),
    ({"on": "load", "delay": 5}, {}, "config", "unknown key “delay”"),
    (["load"], {}, "config", "config.trigger must be an object"),
])
def test_a_bad_trigger_field_is_refused_on_its_field(ctx, world, trigger, fields, field, message):
    errors = refused(world, "trigger", {"trigger": trigger}, **fields)
    assert list(errors) == [f"variants-1-{field}"]
    assert message in errors[f"variants-1-{field}"]


def test_typed_blocks_belong_to_their_kind(ctx, world):
    """A cta block in a trigger experiment (or any block in another kind) is free-form there: not checked."""
    exp = create(world, "trigger", {"cta": {"label": ""}}, cta_label="ignored")
    assert exp.variants[1].config == {"cta": {"label": ""}}


def test_cta_prompt_line():
    config = {"cta": CTA}
    assert configs.cta_prompt_line("cta", config) == (
        "When it fits the conversation, invite the visitor to: book a 15-minute demo (Book a demo: "
        "https://acme.test/demo)")
    assert configs.cta_prompt_line("trigger", config) is None
    assert configs.cta_prompt_line("cta", {"cta": {"label": "Go", "url": "https://a.test"}}) is None  # no prompt
    assert configs.cta_prompt_line("cta", None) is None
    assert json.loads(json.dumps(config)) == config
