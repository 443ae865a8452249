"""The Conversations tab's rows and a conversation's transcript (SPEC §12), read-only for every role."""
from __future__ import annotations

from dataclasses import dataclass
import sqlalchemy as sa

from webapp.extensions import db
from webapp.models import Conversation, Feedback, Lead, Message, Variant
from webapp.services.errors import NotFound
from webapp.services.runtime.persona import Persona, effective_persona, system_prompt
from webapp.services.workspace import agents

PER_PAGE = 50
MESSAGES_PER_PAGE = 500
NO_SUCH_CONVERSATION = "No such conversation."


@dataclass
class ConversationRow:
    """A row of the Conversations tab: the conversation and what the tab counts of it."""

    conversation: Conversation
    visitor_messages: int
    agent_messages: int
    has_lead: bool
    feedback: str | None  # "up", "down" or None


def message_counts(conversation_ids: list[int]) -> dict[int, dict[str, int]]:
    """Messages per role of each conversation (all of them: also those before it was stamped)."""
    counts: dict[int, dict[str, int]] = {i: {"visitor": 0, "agent": 0} for i in conversation_ids}
    if conversation_ids:
        for conversation_id, role, n in db.session.execute(
                sa.select(Message.conversation_id, Message.role, sa.func.count())
                .where(Message.conversation_id.in_(conversation_ids))
                .group_by(Message.conversation_id, Message.role)):
            counts[conversation_id][role] = int(n)
    return counts


def conversation_list(actor_id: int, agent_id: int, page: int = 1, per_page: int = PER_PAGE,
                      experiment_id: int | None = None, variant_key: str | None = None,
                      visitor_id: str | None = None, external_id: str | None = None) -> agents.StampedList:
    """The agent's conversations, newest first, under the tab's filters (experiment, variant, exact visitor id or
    conversation id), each with its message counts, whether it has a lead and its feedback.

    The page's 50 rows are read first; their counts come from three small queries on those ids (the messages'
    (conversation_id, …) index, leads.conversation_id, feedback's unique conversation_id), never a scan."""
    where = tuple(condition for condition, value in ((Conversation.visitor_id == visitor_id, visitor_id),
                                                    (Conversation.external_id == external_id, external_id))
                  if value is not None)
    listing = agents.stamped_list(Conversation, Conversation.started_at, actor_id, agent_id, page, per_page,
                                  experiment_id, variant_key, where)
    ids = [c.id for c in listing.page.items]
    counts = message_counts(ids)
    with_lead = set(db.session.scalars(sa.select(Lead.conversation_id).where(Lead.conversation_id.in_(ids))))
    ratings = dict(db.session.execute(
        sa.select(Feedback.conversation_id, Feedback.rating).where(Feedback.conversation_id.in_(ids))).all())
    listing.page.items = [ConversationRow(c, counts[c.id]["visitor"], counts[c.id]["agent"], c.id in with_lead,
                                          ratings.get(c.id)) for c in listing.page.items]
    return listing


@dataclass
class Stamp:
    """A conversation's stamp as the transcript says it."""

    experiment_id: int
    experiment_label: str
    variant_key: str
    variant_name: str | None  # None once the experiment has been deleted
    deleted: bool


@dataclass
class Transcript:
    conversation: Conversation
    messages: agents.Page[Message]
    counts: dict[str, int]
    stamp: Stamp | None
    persona: Persona
    system_prompt: str
    leads: list[Lead]
    feedback: Feedback | None


def transcript(actor_id: int, agent_id: int, conversation_id: int, page: int = 1,
               per_page: int = MESSAGES_PER_PAGE) -> Transcript:
    """A conversation of the agent by its internal id (another agent's or workspace's is a 404, as no id at all):
    its messages in order, `per_page` a page, its stamp, effective persona and system prompt (SPEC §4), leads and
    feedback."""
    agent, _ = agents.agent_for(actor_id, agent_id)
    conversation = db.session.get(Conversation, conversation_id)
    if conversation is None or conversation.agent_id != agent.id:
        raise NotFound(NO_SUCH_CONVERSATION)
    messages = agents.paginate(sa.select(Message).where(Message.conversation_id == conversation.id)
                               .order_by(Message.sent_at, Message.id), page, per_page)
    variant = stamped_variant(conversation)
    persona = effective_persona(agent.persona_name, agent.persona_tone,
                                variant.experiment.kind if variant else None, variant.config if variant else None)
    leads = list(db.session.scalars(sa.select(Lead).where(Lead.conversation_id == conversation.id)
                                    .order_by(Lead.captured_at, Lead.id)))
    feedback = db.session.scalar(sa.select(Feedback).where(Feedback.conversation_id == conversation.id))
    return Transcript(conversation, messages, message_counts([conversation.id])[conversation.id],
                      _stamp(agent.workspace_id, conversation, variant), persona,
                      system_prompt(persona, agent.workspace.name, agent.instructions), leads, feedback)


def stamped_variant(conversation: Conversation) -> Variant | None:
    """The live variant of the conversation's stamp (SPEC §4: the same id, experiment and key), or None when it is
    unstamped or its experiment has been deleted."""
    if conversation.variant_id is None:
        return None
    variant = db.session.get(Variant, conversation.variant_id)
    if variant is None or (variant.experiment_id, variant.key) != (conversation.experiment_id,
                                                                   conversation.variant_key):
        return None
    return variant


def _stamp(workspace_id: int, conversation: Conversation, variant: Variant | None) -> Stamp | None:
    if conversation.experiment_id is None or conversation.variant_id is None:
        return None
    if variant is not None:
        return Stamp(conversation.experiment_id, variant.experiment.name, variant.key, variant.name, False)
    label = agents.deleted_experiment_labels(workspace_id, {conversation.experiment_id}).get(
        conversation.experiment_id, f"deleted experiment #{conversation.experiment_id}")
    return Stamp(conversation.experiment_id, label, conversation.variant_key or "", None, True)

