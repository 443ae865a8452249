"""Persona resolution (SPEC §4): the agent's defaults, overridden field by field by a persona variant."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from webapp.services.experiments.configs import cta_prompt_line

SYSTEM_PROMPT = "You are {name}, the assistant of {workspace}.{tone_sentence}\n{instructions}"


@dataclass(frozen=True)
class Persona:
    name: str
    tone: str


def effective_persona(default_name: str, default_tone: str, experiment_kind: str | None,
                      variant_config: dict[str, Any] | None) -> Persona:
    """Defaults overridden by the variant's persona, only for a persona experiment whose variant still exists."""
    name, tone = default_name, default_tone
    if experiment_kind == "persona" and isinstance(variant_config, dict):
        override = variant_config.get("persona")
        if isinstance(override, dict):
            if isinstance(override.get("name"), str) and override["name"]:
                name = override["name"]
            # An absent tone keeps the agent's; a present one (even empty) replaces it.
            if isinstance(override.get("tone"), str):
                tone = override["tone"]
    return Persona(name, tone)


def system_prompt(persona: Persona, workspace_name: str, instructions: str, experiment_kind: str | None = None,
                  variant_config: dict[str, Any] | None = None) -> str:
    """The system prompt the runtime sends to the LLM, built from the effective persona; a CTA variant with a prompt
    adds its line (SPEC §13) after the instructions."""
    tone_sentence = f" Tone: {persona.tone}." if persona.tone else ""
    prompt = SYSTEM_PROMPT.format(name=persona.name, workspace=workspace_name, tone_sentence=tone_sentence,
                                  instructions=instructions).rstrip("\n")
    cta_line = cta_prompt_line(experiment_kind, variant_config)
    return f"{prompt}\n{cta_line}" if cta_line else prompt
