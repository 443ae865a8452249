"""Results at scale: ~100,000 visitors and ~a million messages, on SQLite then PostgreSQL.

Builds the traffic with the simulator (bulk mode), then times the results computation (per-variant
totals, statistics for every metric and variant, SRM — what the results table and the CSV/JSON
exports serve) against a baseline in the same run: one hand-written aggregate query that only
counts visitors and visitor messages per variant from the raw tables. Prints both, their ratio,
the time of the daily chart series (a second, separate computation the page adds), and the peak
Python memory of the results computation at a quarter of the traffic and at all of it (flat means
it does not grow with messages). Then, on a fresh database of the same number of visitors over 14 days,
the time of the primary metric's cumulative lift series by day (the results page's lift chart: per-day
statistics in one statement, cumulated, one comparison per arm and day; goal ≤ 1 s on SQLite).

    make bench-results                       # both engines, 100,000 visitors
    .venv/bin/python -m benchmarks.results_bench --visitors 20000 --engines sqlite
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.databases import scratch_postgres  # noqa: E402
from webapp import create_app  # noqa: E402
from webapp.config import TestConfig  # noqa: E402
from webapp.extensions import db  # noqa: E402
from webapp.models import Experiment, Variant, utcnow  # noqa: E402
from webapp.services.workspace import accounts, agents  # noqa: E402
from webapp.services.experiments import daily, results
from webapp.services import simulation

PG_ADMIN = os.environ.get("BENCH_PG_URL", "postgresql+psycopg://root@127.0.0.1:5432/postgres")
REPEATS = 5

BASELINE_SQL = sa.text("""
    SELECT c.variant_id, COUNT(DISTINCT c.visitor_id), COUNT(*)
    FROM conversations c
    JOIN messages m ON m.conversation_id = c.id AND m.role = 'visitor'
    WHERE c.experiment_id = :experiment_id
    GROUP BY c.variant_id
""")


def timed(fn, repeats: int = REPEATS) -> float:
    """Median wall time of `repeats` runs after one warm-up."""
    fn()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def peak_memory(fn) -> int:
    tracemalloc.start()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak


def seed_experiment() -> tuple[int, int]:
    accounts.create_user("bench@bench.local", "bench-password", "bench", "owner")
    workspace, _ = accounts.get_or_create_workspace("bench")
    agent = agents.create_agent(None, workspace.id, "Bench agent", "Sam", "friendly")
    experiment = Experiment(agent_id=agent.id, name="Bench", kind="persona", status="running",
                            started_at=utcnow(), variants=[
                                Variant(key="control", name="Control", weight=1, position=0,
                                        config={"persona": {"name": "Sam"}}),
                                Variant(key="treatment", name="Treatment", weight=1, position=1,
                                        config={"persona": {"name": "Aria"}})])
    db.session.add(experiment)
    db.session.commit()
    return agent.id, experiment.id


def analyze(engine: str) -> None:
    """Fresh planner statistics after the bulk build."""
    if engine == "postgresql":
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text("VACUUM ANALYZE"))
    else:
        with db.engine.begin() as conn:
            conn.execute(sa.text("ANALYZE"))


def run_engine(engine: str, url: str, visitors: int) -> dict:
    app = create_app(type("BenchConfig", (TestConfig,), {"SQLALCHEMY_DATABASE_URI": url}))
    with app.app_context():
        db.create_all()
        agent_id, experiment_id = seed_experiment()
        quarter = visitors // 4
        start = time.perf_counter()
        simulation.simulate_bulk(agent_id, quarter, days=28, effects=["treatment=1.2"], seed=1, batch_size=2000)
        small_peak = peak_memory(lambda: results.compute(db.session.get(Experiment, experiment_id)).as_dict())
        simulation.simulate_bulk(agent_id, visitors - quarter, days=28, effects=["treatment=1.2"], seed=2,
                                 batch_size=2000)
        build_s = time.perf_counter() - start
        analyze(engine)
        messages = db.session.scalar(sa.text("SELECT COUNT(*) FROM messages"))

        def compute():
            db.session.expire_all()
            return results.compute(db.session.get(Experiment, experiment_id)).as_dict()

        def charts():
            db.session.expire_all()
            experiment = db.session.get(Experiment, experiment_id)
            return daily.daily_series(experiment)

        def baseline():
            return db.session.execute(BASELINE_SQL, {"experiment_id": experiment_id}).all()

        results_s = timed(compute)
        baseline_s = timed(baseline)
        charts_s = timed(charts)
        full_peak = peak_memory(compute)
        out = compute()
        db.session.remove()
        db.engine.dispose()
    return {"engine": engine, "visitors": visitors, "messages": messages, "build_s": build_s,
            "results_s": results_s, "baseline_s": baseline_s, "charts_s": charts_s, "small_peak": small_peak, "full_peak": full_peak,
            "lead_lift": out["variants"][1]["metrics"]["lead_capture_rate"]["lift"],
            "plan": out["plan"], "decision": out["variants"][1]["decision"]}


LIFT_DAYS = 14


def run_lift(engine: str, url: str, visitors: int) -> dict:
    """The cumulative lift series at `visitors` visitors assigned over LIFT_DAYS days."""
    app = create_app(type("BenchConfig", (TestConfig,), {"SQLALCHEMY_DATABASE_URI": url}))
    with app.app_context():
        db.create_all()
        agent_id, experiment_id = seed_experiment()
        simulation.simulate_bulk(agent_id, visitors, days=LIFT_DAYS, effects=["treatment=1.2"], seed=3,
                                 batch_size=2000)
        analyze(engine)

        def lift():
            db.session.expire_all()
            return daily.daily_series(db.session.get(Experiment, experiment_id))["cumulative_lift"]

        lift_s = timed(lift)
        series = lift()
        db.session.remove()
        db.engine.dispose()
    return {"lift_s": lift_s, "days": len(series["variants"][0]["lift"]), "last_lift": series["variants"][0]["lift"][-1]}


def sqlite_url(tmp: str) -> tuple[str, callable]:
    return f"sqlite:///{tmp}/bench.db", lambda: None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--visitors", type=int, default=100_000)
    parser.add_argument("--engines", default="sqlite,postgresql")
    args = parser.parse_args()
    if args.visitors < 100:
        parser.error("--visitors must be at least 100")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}, SQLite {__import__('sqlite3').sqlite_version}")
    rows = []
    for engine in args.engines.split(","):
        with tempfile.TemporaryDirectory() as tmp:
            url, drop = sqlite_url(tmp) if engine == "sqlite" else scratch_postgres(PG_ADMIN, "bench")
            try:
                rows.append(run_engine(engine, url, args.visitors))
            finally:
                drop()
        r = rows[-1]
        print(f"\n[{engine}] {r['visitors']:,} visitors, {r['messages']:,} messages (built in {r['build_s']:.1f} s)")
        print(f"  results computation (totals, stats, SRM, plan, decisions): {r['results_s'] * 1000:8.1f} ms")
        print(f"  baseline hand-written aggregate query:                     {r['baseline_s'] * 1000:8.1f} ms")
        print(f"  ratio results / baseline: {r['results_s'] / r['baseline_s']:.2f}x   (goal ≤ 2x; SQLite goal < 1 s)")
        print(f"  daily chart series (separate, for the page):               {r['charts_s'] * 1000:8.1f} ms"
              f"  ({r['charts_s'] / r['baseline_s']:.2f}x baseline)")
        print(f"  peak Python memory of the computation: {r['small_peak'] / 1024:.0f} KiB at "
              f"{args.visitors // 4:,} visitors, {r['full_peak'] / 1024:.0f} KiB at {args.visitors:,} visitors")
        print(f"  lead capture lift of treatment (simulated ×1.2): {r['lead_lift']:+.3f}")
        plan = r["plan"] or {}
        print(f"  in it: the plan ({plan.get('visitors_needed')} visitors needed, {plan.get('progress') or 0:.0%} of the way) and "
              f"the treatment's decision: {(r['decision'] or {}).get('call')}")
        with tempfile.TemporaryDirectory() as tmp:
            url, drop = sqlite_url(tmp) if engine == "sqlite" else scratch_postgres(PG_ADMIN, "bench_lift")
            try:
                lift = run_lift(engine, url, args.visitors)
            finally:
                drop()
        print(f"  cumulative lift series, {args.visitors:,} visitors over {LIFT_DAYS} days ({lift['days']} points): "
              f"{lift['lift_s'] * 1000:8.1f} ms   (goal ≤ 1 s on SQLite; last lift {lift['last_lift']:+.3f})")


if __name__ == "__main__":
    main()
