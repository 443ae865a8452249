from webapp.services.runtime.persona import Persona, effective_persona, system_prompt


def test_defaults_without_a_variant():
    assert effective_persona("Sam", "friendly", None, None) == Persona("Sam", "friendly")


def test_persona_variant_overrides_field_by_field():
    assert effective_persona("Sam", "friendly", "persona", {"persona": {"name": "Ava", "tone": "dry"}}) == \
        Persona("Ava", "dry")


def test_absent_tone_keeps_the_agents_tone():
    assert effective_persona("Sam", "friendly", "persona", {"persona": {"name": "Ava"}}) == Persona("Ava", "friendly")


def test_empty_tone_is_an_override():
    assert effective_persona("Sam", "friendly", "persona", {"persona": {"name": "Ava", "tone": ""}}) == \
        Persona("Ava", "")


def test_cta_and_trigger_change_nothing():
    config = {"persona": {"name": "Ava", "tone": "dry"}, "cta": "Book a demo"}
    for kind in ("cta", "trigger"):
        assert effective_persona("Sam", "friendly", kind, config) == Persona("Sam", "friendly")


def test_system_prompt_holds_name_workspace_tone_and_instructions():
    prompt = system_prompt(Persona("Ava", "dry"), "Acme", "Be helpful.")
    assert prompt == "You are Ava, the assistant of Acme. Tone: dry.\nBe helpful."
    assert system_prompt(Persona("Ava", ""), "Acme", "") == "You are Ava, the assistant of Acme."
