"""Typed CTA and trigger configs of a variant (SPEC §13), and the line a CTA adds to the system prompt.

A CTA experiment's variant may hold `{"cta": {"label", "url", "prompt"?}}`, a trigger experiment's
`{"trigger": {"on", "seconds"?, "percent"?, "opening_message"?}}`; a config without the block stays valid
(measurement only). The experiment form offers a plain field per key (`cta_label`, `trigger_on`, …) beside the raw
JSON: a non-blank field wins over the JSON's value, a blank one leaves it, as the persona fields do.
"""
from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from webapp.services import validation

CTA_LABEL_MAX = 60
CTA_URL_MAX = 2_000
CTA_PROMPT_MAX = 500
TRIGGER_ON = ("load", "delay", "scroll", "exit_intent")
TRIGGER_SECONDS = (1, 600)
TRIGGER_PERCENT = (1, 100)
OPENING_MESSAGE_MAX = 500
# The keys of each typed block, in the form's order; the form posts each as "<block>_<key>".
BLOCK_KEYS = {"cta": ("label", "url", "prompt"), "trigger": ("on", "seconds", "percent", "opening_message")}
NUMBER_KEYS = {"seconds": ("delay", TRIGGER_SECONDS), "percent": ("scroll", TRIGGER_PERCENT)}
CTA_PROMPT_LINE = "When it fits the conversation, invite the visitor to: {prompt} ({label}: {url})"


def form_fields(kind: str) -> tuple[str, ...]:
    """The plain form fields of a kind's typed block (`cta_label`, …); none for persona (its own fields)."""
    return tuple(f"{kind}_{key}" for key in BLOCK_KEYS.get(kind, ()))


ALL_FORM_FIELDS = form_fields("cta") + form_fields("trigger")


def _posted_value(key: str, raw: str) -> Any:
    """A form field's text as the JSON holds it: the trigger's numbers as integers when they are whole numbers."""
    text = raw.strip()
    if key in NUMBER_KEYS and text.isascii() and text.isdigit() and len(text) <= 9:
        return int(text)
    return raw


def merged_block(kind: str, config: dict[str, Any], variant: dict[str, Any]) -> Any:
    """config[kind] with the variant's non-blank posted fields folded in; None when neither gives a block."""
    posted = {key: variant[f"{kind}_{key}"] for key in BLOCK_KEYS[kind]
              if isinstance(variant.get(f"{kind}_{key}"), str) and variant[f"{kind}_{key}"].strip()}
    block = config.get(kind)
    if not posted:
        return block
    if block is not None and not isinstance(block, dict):
        return block  # refused below, on the JSON
    return {**(block or {}), **{key: _posted_value(key, raw) for key, raw in posted.items()}}


def clean_typed_block(kind: str, config: dict[str, Any], variant: dict[str, Any], prefix: str,
                      errors: dict[str, str]) -> None:
    """Fold the posted fields into config[kind] (cta or trigger) and check it field by field (SPEC §13).

    Errors go where the user typed: `<prefix>-<kind>_<key>` when the form posted that field, or posted another of
    the block's fields and the key is missing altogether; else the JSON's `<prefix>-config`."""
    if kind not in BLOCK_KEYS:
        return
    block = merged_block(kind, config, variant)
    if block is None:
        return
    config_field = f"{prefix}-config"
    if not isinstance(block, dict):
        errors[config_field] = f"config.{kind} must be an object with the keys {_keys(kind)}."
        return
    unknown = [key for key in block if key not in BLOCK_KEYS[kind]]
    if unknown:
        errors[config_field] = (f"config.{kind} has an unknown key “{str(unknown[0])[:40]}”: "
                                f"its keys are {_keys(kind)}.")
        return

    uses_fields = any(variant.get(name) is not None for name in form_fields(kind))

    def field(key: str) -> str:
        """The posted field of `key`; a key missing from the block too when the form posted any of the block's
        fields (the user typed there: "CTA URL is required." belongs on the URL field); else the JSON's."""
        posted = variant.get(f"{kind}_{key}") is not None
        return f"{prefix}-{kind}_{key}" if posted or (uses_fields and block.get(key) is None) else config_field

    clean = _clean_cta(block, field, errors) if kind == "cta" else _clean_trigger(block, field, errors)
    config[kind] = clean


def _keys(kind: str) -> str:
    return ", ".join(BLOCK_KEYS[kind])


def _clean_cta(block: dict[str, Any], field, errors: dict[str, str]) -> dict[str, Any]:
    clean: dict[str, Any] = {
        "label": validation.text(block.get("label"), field("label"), errors, min_len=1, max_len=CTA_LABEL_MAX,
                                 label="CTA label"),
        "url": _url(block.get("url"), field("url"), errors),
    }
    if block.get("prompt") is not None:
        prompt = validation.text(block["prompt"], field("prompt"), errors, max_len=CTA_PROMPT_MAX, label="CTA prompt")
        if prompt:
            clean["prompt"] = prompt
    return clean


def _url(value: Any, field: str, errors: dict[str, str]) -> str:
    """An absolute http(s) URL with a host, at most 2,000 characters, no spaces or control characters."""
    url = validation.text(value, field, errors, min_len=1, max_len=CTA_URL_MAX, label="CTA URL")
    if field in errors:
        return url
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        parts, host = None, None
    if parts is None or parts.scheme.lower() not in ("http", "https") or not host or any(c.isspace() for c in url):
        errors[field] = "CTA URL must be an absolute http:// or https:// address, e.g. https://example.com/demo."
    return url


def _clean_trigger(block: dict[str, Any], field, errors: dict[str, str]) -> dict[str, Any]:
    on = block.get("on")
    clean: dict[str, Any] = {"on": on}
    if on not in TRIGGER_ON:
        errors[field("on")] = (f"Trigger “on” is required: one of {', '.join(TRIGGER_ON)}." if on in (None, "") else
                               f"Trigger “on” must be one of {', '.join(TRIGGER_ON)} (got “{str(on)[:40]}”).")
    for key, (only_with, (low, high)) in NUMBER_KEYS.items():
        value = block.get(key)
        if value is None:
            continue
        label = "Seconds" if key == "seconds" else "Percent"
        if on in TRIGGER_ON and on != only_with:
            verb = "apply" if key == "seconds" else "applies"
            errors[field(key)] = f"{label} {verb} only to a “{only_with}” trigger (this one is “{on}”)."
        elif isinstance(value, bool) or not isinstance(value, int):
            errors[field(key)] = f"{label} must be a whole number from {low} to {high}."
        elif not low <= value <= high:
            errors[field(key)] = f"{label} must be from {low} to {high} (got {value:,})."
        else:
            clean[key] = value
    if block.get("opening_message") is not None:
        message = validation.text(block["opening_message"], field("opening_message"), errors,
                                  max_len=OPENING_MESSAGE_MAX, label="Opening message", multiline=True)
        if message:
            clean["opening_message"] = message
    return clean


def cta_prompt_line(experiment_kind: str | None, variant_config: dict[str, Any] | None) -> str | None:
    """The system prompt's CTA line of a CTA variant with a prompt (SPEC §13), else None."""
    if experiment_kind != "cta" or not isinstance(variant_config, dict):
        return None
    cta = variant_config.get("cta")
    if not isinstance(cta, dict) or not all(isinstance(cta.get(k), str) and cta[k] for k in ("prompt", "label", "url")):
        return None
    return CTA_PROMPT_LINE.format(prompt=cta["prompt"], label=cta["label"], url=cta["url"])
