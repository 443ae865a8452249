"""positive_feedback_rate and review_good_rate (SPEC §12): SQL sums per visitor / per review, and the comparison
against GrowthBook's engine (gbstats 0.8.0: RatioStatistic, ProportionStatistic, TwoSidedTTest)."""
from __future__ import annotations

import random
from datetime import timedelta

import pytest
import sqlalchemy as sa
from gbstats.frequentist.tests import TwoSidedTTest
from gbstats.models.statistics import ProportionStatistic, RatioStatistic, SampleMeanStatistic

from tests import factories
from webapp.extensions import db
from webapp.models import Conversation, Experiment, ExperimentAssignment, Feedback, Message, Review, utcnow
from webapp.services.experiments import results


def traffic(world, experiment_id, visitors=300, seed=7, up_rate=(0.55, 0.7)):
    """Visitors with 1–3 conversations each; some conversations rated (up more often in the treatment); the
    per-visitor (up, rated) counts are returned for a reference computation."""
    rng = random.Random(seed)
    experiment = db.session.get(Experiment, experiment_id)
    now = utcnow()
    per_visitor: dict[int, list[tuple[int, int]]] = {v.id: [] for v in experiment.variants}
    for i in range(visitors):
        variant = experiment.variants[i % 2]
        visitor = f"v{i}"
        db.session.add(ExperimentAssignment(agent_id=world.agent_id, experiment_id=experiment_id,
                                            variant_id=variant.id, variant_key=variant.key, visitor_id=visitor))
        up = rated = 0
        for c in range(rng.randint(1, 3)):
            conversation = Conversation(agent_id=world.agent_id, external_id=f"{visitor}-{c}", visitor_id=visitor,
                                        experiment_id=experiment_id, variant_id=variant.id, variant_key=variant.key,
                                        started_at=now, last_message_at=now + timedelta(seconds=10),
                                        visitor_messages=1, session_seconds=10)
            db.session.add(conversation)
            db.session.flush()
            if rng.random() < 0.6:
                rating = "up" if rng.random() < up_rate[i % 2] else "down"
                db.session.add(Feedback(agent_id=world.agent_id, conversation_id=conversation.id, visitor_id=visitor,
                                        rating=rating, experiment_id=experiment_id, variant_id=variant.id,
                                        variant_key=variant.key))
                up, rated = up + (rating == "up"), rated + 1
        per_visitor[variant.id].append((up, rated))
    db.session.commit()
    return experiment, per_visitor


def ratio_statistic(units: list[tuple[int, int]]) -> RatioStatistic:
    n = len(units)
    m = SampleMeanStatistic(n, sum(u for u, _ in units), sum(u * u for u, _ in units))
    d = SampleMeanStatistic(n, sum(r for _, r in units), sum(r * r for _, r in units))
    return RatioStatistic(n, m, d, sum(u * r for u, r in units))


def test_positive_feedback_rate_matches_gbstats_ratio_statistic(ctx, world):
    experiment_id = factories.experiment(world.agent_id, status="running")
    experiment, per_visitor = traffic(world, experiment_id)
    computed = results.compute(experiment)
    control, treatment = experiment.variants
    for variant in (control, treatment):
        reference = ratio_statistic(per_visitor[variant.id])
        ours = computed.totals[variant.id].stat("positive_feedback_rate")
        assert ours.n == reference.n == 150  # every assigned visitor is a unit, rated or not
        assert ours.mean == pytest.approx(reference.mean, abs=1e-12)
        assert ours.variance == pytest.approx(reference.variance, rel=1e-9)
    expected = TwoSidedTTest(ratio_statistic(per_visitor[control.id]),
                             ratio_statistic(per_visitor[treatment.id])).compute_result()
    got = computed.metric(treatment, "positive_feedback_rate")
    assert got["lift"] == pytest.approx(expected.expected, abs=1e-6)
    assert got["ci"] == pytest.approx(list(expected.ci), abs=1e-6)
    assert got["p_value"] == pytest.approx(expected.p_value, abs=1e-6)
    assert "positive_feedback_rate" in computed.ordered_metrics


def test_a_visitor_without_feedback_counts_as_a_zero_unit(ctx, world):
    experiment_id = factories.experiment(world.agent_id, status="running")
    experiment, per_visitor = traffic(world, experiment_id, visitors=40)
    unrated = sum(1 for units in per_visitor.values() for _, rated in units if rated == 0)
    assert unrated > 0
    totals = results.compute(experiment).totals
    assert sum(totals[v.id].stat("positive_feedback_rate").n for v in experiment.variants) == 40


def test_the_feedback_metric_appears_once_any_feedback_exists_and_the_review_rate_is_always_exported(ctx, world):
    """As a goal does (metrics.experiment_metrics): positive_feedback_rate is one of the experiment's metrics (page
    and exports) once any of its conversations has feedback; review_good_rate is exported always, and shown in its
    own section rather than the main tables."""
    experiment_id = factories.experiment(world.agent_id, status="running")
    experiment = db.session.get(Experiment, experiment_id)
    computed = results.compute(experiment)
    assert "positive_feedback_rate" not in computed.metrics and "review_good_rate" not in computed.ordered_metrics
    exported = computed.as_dict()["variants"][1]["metrics"]
    assert "positive_feedback_rate" not in exported
    assert exported["review_good_rate"]["value"] is None
    assert exported["review_good_rate"]["reason"] == "Control has no reviews yet."  # the comparison names the control first
    experiment, _ = traffic(world, experiment_id, visitors=10)
    computed = results.compute(experiment)
    assert "positive_feedback_rate" in computed.ordered_metrics
    assert computed.as_dict()["variants"][1]["metrics"]["positive_feedback_rate"]["reason"] == (
        "Control has 5 visitors; a comparison needs at least 30 in every arm.")


def test_the_feedback_rate_is_a_primary_metric_read_by_the_experiments_engine(ctx, world):
    """Selectable as the primary metric before any feedback (the runtime API always takes it); the results then
    put it first, compare it with the experiment's engine and decide on it."""
    from webapp.services.experiments import experiments, metrics, stats

    experiment_id = factories.experiment(world.agent_id, status="running")
    assert "positive_feedback_rate" in metrics.primary_metric_choices(db.session.get(Experiment, experiment_id))
    assert "review_good_rate" not in metrics.primary_metric_choices(db.session.get(Experiment, experiment_id))
    experiments.update_experiment(world.owner_id, world.agent_id, experiment_id,
                                  {"primary_metric": "positive_feedback_rate", "engine": "sequential",
                                   "correction": "none"})
    experiment = db.session.get(Experiment, experiment_id)
    assert "positive_feedback_rate" in results.compute(experiment).metrics  # shown before its first feedback
    experiment, _ = traffic(world, experiment_id, visitors=300)
    out = results.compute(experiment)
    assert list(out.ordered_metrics)[0] == "positive_feedback_rate"
    control, treatment = experiment.variants
    expected = stats.compare(out.totals[control.id].stat("positive_feedback_rate"),
                             out.totals[treatment.id].stat("positive_feedback_rate"), analysis=out.settings.analysis())
    fixed = stats.compare(out.totals[control.id].stat("positive_feedback_rate"),
                          out.totals[treatment.id].stat("positive_feedback_rate"))
    got = out.metric(treatment, "positive_feedback_rate")
    assert got["ci"] == pytest.approx([expected.ci_low, expected.ci_high])
    assert got["ci"] != pytest.approx([fixed.ci_low, fixed.ci_high])  # the sequential interval, wider
    assert "on positive feedback rate" in out.decision(treatment).reason
    primary_rows = [r for r in out.csv_rows()[1:] if r[out.CSV_HEADER.index("is_primary")]]
    assert {r[5] for r in primary_rows} == {"positive_feedback_rate"}


def test_review_good_rate_is_a_proportion_of_reviews_matching_gbstats(ctx, world):
    experiment_id = factories.experiment(world.agent_id, status="running")
    experiment, _ = traffic(world, experiment_id, visitors=120, seed=3)
    rng = random.Random(5)
    conversations = db.session.execute(sa.select(Conversation.id, Conversation.variant_id, Conversation.variant_key)
                                       .where(Conversation.experiment_id == experiment_id)).all()
    reviewers = [world.owner_id, world.admin_id, world.editor_id]
    counts = {v.id: [0, 0] for v in experiment.variants}
    control, treatment = experiment.variants
    for c in conversations:
        db.session.add(Message(conversation_id=c.id, role="agent", text="hi", sent_at=utcnow()))
        for reviewer in reviewers[:rng.randint(1, 3)]:
            good = rng.random() < (0.5 if c.variant_id == control.id else 0.62)
            db.session.add(Review(conversation_id=c.id, reviewer_id=reviewer, experiment_id=experiment_id,
                                  variant_id=c.variant_id, variant_key=c.variant_key,
                                  rating="good" if good else "bad", note=""))
            counts[c.variant_id][0] += 1
            counts[c.variant_id][1] += good
    db.session.commit()
    computed = results.compute(experiment)
    expected = TwoSidedTTest(ProportionStatistic(*counts[control.id]),
                             ProportionStatistic(*counts[treatment.id])).compute_result()
    got = computed.metric(treatment, "review_good_rate")
    assert computed.totals[treatment.id].reviews == counts[treatment.id][0]
    assert got["value"] == pytest.approx(counts[treatment.id][1] / counts[treatment.id][0])
    assert got["lift"] == pytest.approx(expected.expected, abs=1e-6)
    assert got["ci"] == pytest.approx(list(expected.ci), abs=1e-6)
    assert got["p_value"] == pytest.approx(expected.p_value, abs=1e-6)
    exported = computed.as_dict()
    assert exported["review"] == {"reviews": sum(n for n, _ in counts.values()), "reviewers": 3}
    assert exported["variants"][1]["reviews"] == counts[treatment.id][0]
    rows = [r for r in computed.csv_rows() if r[5] == "review_good_rate"]
    assert len(rows) == 2 and rows[1][7] == pytest.approx(expected.expected, abs=1e-6)



@pytest.mark.parametrize("engine", ["sequential", "bayesian"])
def test_review_good_rate_is_compared_with_the_experiments_engine(ctx, world, engine):
    from webapp.services.experiments import experiments, stats

    experiment_id = factories.experiment(world.agent_id, status="running")
    experiments.update_experiment(world.owner_id, world.agent_id, experiment_id, {"engine": engine})
    experiment, _ = traffic(world, experiment_id, visitors=120, seed=3)
    rng = random.Random(9)
    for c in db.session.execute(sa.select(Conversation.id, Conversation.variant_id, Conversation.variant_key)
                                .where(Conversation.experiment_id == experiment_id)).all():
        good = rng.random() < (0.5 if c.variant_key == "control" else 0.65)
        db.session.add(Review(conversation_id=c.id, reviewer_id=world.editor_id, experiment_id=experiment_id,
                              variant_id=c.variant_id, variant_key=c.variant_key,
                              rating="good" if good else "bad", note=""))
    db.session.commit()
    out = results.compute(db.session.get(Experiment, experiment_id))
    assert out.engine == engine
    control, treatment = out.variants
    expected = stats.compare(out.totals[control.id].stat("review_good_rate"),
                             out.totals[treatment.id].stat("review_good_rate"), analysis=out.settings.analysis())
    got = out.metric(treatment, "review_good_rate")
    assert got["ci"] == pytest.approx([expected.ci_low, expected.ci_high])
    assert got["chance_to_win"] == (pytest.approx(expected.chance_to_win) if engine == "bayesian" else None)


def test_the_csv_says_each_metrics_unit_and_counts_and_the_reviews_and_reviewers(ctx, world):
    """`visitors` stays the arm's visitors on every row; `unit`/`units` say what the statistics count (the review
    on review_good_rate's rows), `numerator`/`denominator` the counts of the value, `reviewers` the arm's distinct
    reviewers on the review rows only (issue 15: the rate with the counts of reviews and reviewers)."""
    experiment_id = factories.experiment(world.agent_id, status="running")
    experiment, per_visitor = traffic(world, experiment_id, visitors=60, seed=4)
    control, treatment = experiment.variants
    conversations = {v.id: list(db.session.scalars(sa.select(Conversation).where(Conversation.variant_id == v.id)
                                                   .order_by(Conversation.id))) for v in experiment.variants}
    reviews = [(control, 0, world.owner_id, "good"), (control, 0, world.editor_id, "bad"),
               (control, 1, world.editor_id, "good"), (treatment, 0, world.admin_id, "good")]
    for variant, i, reviewer, rating in reviews:
        c = conversations[variant.id][i]
        db.session.add(Review(conversation_id=c.id, reviewer_id=reviewer, experiment_id=experiment_id,
                              variant_id=variant.id, variant_key=variant.key, rating=rating, note=""))
    db.session.commit()
    computed = results.compute(experiment)
    header, *rows = computed.csv_rows()
    assert header[:22] == results.Results.CSV_HEADER[:22]  # the earlier columns keep their places
    assert header[-9:-4] == ["unit", "units", "numerator", "denominator", "reviewers"]  # before the outcome's
    cells = {(r["variant_key"], r["metric"]): r for r in (dict(zip(header, row)) for row in rows)}
    for variant in (control, treatment):
        visitors = len(per_visitor[variant.id])
        review = cells[(variant.key, "review_good_rate")]
        assert review["visitors"] == visitors == 30
        expected = (3, 2, 3, 2) if variant is control else (1, 1, 1, 1)  # reviews, good, reviews, reviewers
        assert (review["unit"], review["units"], review["numerator"], review["denominator"],
                review["reviewers"]) == ("review", *expected)
        assert review["value"] == pytest.approx(expected[1] / expected[0])
        feedback = cells[(variant.key, "positive_feedback_rate")]
        up, rated = sum(u for u, _ in per_visitor[variant.id]), sum(r for _, r in per_visitor[variant.id])
        assert (feedback["unit"], feedback["units"], feedback["numerator"], feedback["denominator"],
                feedback["reviewers"]) == ("visitor", visitors, up, rated, None)
        assert feedback["value"] == pytest.approx(up / rated)
        lead = cells[(variant.key, "lead_capture_rate")]
        assert (lead["units"], lead["numerator"], lead["denominator"]) == (visitors, 0, visitors)
        messages = cells[(variant.key, "messages_per_conversation")]
        total = len(conversations[variant.id])  # one visitor message each
        assert (messages["units"], messages["numerator"], messages["denominator"]) == (visitors, total, total)
        assert cells[(variant.key, "session_length")]["numerator"] == pytest.approx(10.0 * total)
