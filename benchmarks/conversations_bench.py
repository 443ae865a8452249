"""The Conversations tab at 100,000 conversations on SQLite (SPEC §12): the first page, unfiltered and filtered.

Builds the traffic with the simulator (bulk mode: messages, leads, feedback), logs a member in, and times the
whole first page of the tab through the app (the request: login check, the page's queries, the template) against
a baseline in the same run: the bare COUNT and SELECT of the same 50 rows, hand-written. Also the experiment ×
variant and exact visitor filters, and the plan SQLite chooses for the page's queries (each must use an index,
never a scan of conversations or a temporary sort of them). Goal: first page < 200 ms.

    make bench-conversations
    .venv/bin/python -m benchmarks.conversations_bench --conversations 20000
"""
from __future__ import annotations

import argparse
import os
import platform
import re
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.results_bench import seed_experiment, timed  # noqa: E402
from webapp import create_app  # noqa: E402
from webapp.config import TestConfig  # noqa: E402
from webapp.extensions import db  # noqa: E402
from webapp.models import Conversation  # noqa: E402
from webapp.services import simulation  # noqa: E402

REPEATS = 15
BASELINE_COUNT = sa.text("SELECT COUNT(*) FROM conversations WHERE agent_id = :agent_id")
BASELINE_PAGE = sa.text("SELECT * FROM conversations WHERE agent_id = :agent_id "
                        "ORDER BY started_at DESC, id DESC LIMIT 50")
CSRF = re.compile(r'<meta name="csrf-token" content="([^"]+)"')


def build(agent_id: int, conversations: int) -> None:
    """Simulated visitors in batches until the agent has `conversations` conversations (±1 batch)."""
    seed = 0
    while db.session.scalar(sa.select(sa.func.count()).select_from(Conversation)) < conversations:
        seed += 1
        simulation.simulate_bulk(agent_id, 10_000, days=28, effects=["treatment=1.2"], seed=seed, batch_size=2000,
                                 feedback_effects=["treatment=1.2"])


def plans(sql_and_params: list[tuple[str, str, dict]]) -> list[str]:
    """SQLite's query plan of each statement, one line each."""
    lines = []
    for label, sql, params in sql_and_params:
        steps = db.session.execute(sa.text(f"EXPLAIN QUERY PLAN {sql}"), params).all()
        lines.append(f"  {label}: " + " | ".join(str(step[-1]) for step in steps))
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--conversations", type=int, default=100_000)
    args = parser.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}, SQLite {sqlite3.sqlite_version}")
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app(type("BenchConfig", (TestConfig,), {"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp}/b.db"}))
        with app.app_context():
            db.create_all()
            agent_id, experiment_id = seed_experiment()
            start = time.perf_counter()
            build(agent_id, args.conversations)
            built_s = time.perf_counter() - start
            with db.engine.begin() as conn:
                conn.execute(sa.text("ANALYZE"))
            counts = {table: db.session.scalar(sa.text(f"SELECT COUNT(*) FROM {table}"))
                      for table in ("conversations", "messages", "leads", "feedback")}
            visitor = db.session.scalar(sa.select(Conversation.visitor_id).limit(1))
            params = {"agent_id": agent_id}
            baseline_s = timed(lambda: (db.session.execute(BASELINE_COUNT, params).scalar(),
                                        db.session.execute(BASELINE_PAGE, params).all()), REPEATS)
            plan_lines = plans([
                ("count", "SELECT COUNT(*) FROM conversations WHERE agent_id = :agent_id", params),
                ("page", BASELINE_PAGE.text, params),
                ("experiment × variant", "SELECT id FROM conversations WHERE agent_id = :agent_id AND experiment_id = "
                 ":e AND variant_key = 'treatment' ORDER BY started_at DESC, id DESC LIMIT 50",
                 {**params, "e": experiment_id}),
                ("visitor", "SELECT id FROM conversations WHERE agent_id = :agent_id AND visitor_id = :v "
                 "ORDER BY started_at DESC, id DESC LIMIT 50", {**params, "v": visitor}),
            ])
            db.session.remove()
        client = app.test_client()
        token = CSRF.search(client.get("/login").get_data(as_text=True)).group(1)
        client.post("/login", data={"email": "bench@bench.local", "password": "bench-password", "csrf_token": token})
        tab = f"/agents/{agent_id}/conversations"

        def get(url: str):
            def run():
                response = client.get(url)
                assert response.status_code == 200, response.status_code
            return run

        page_s = timed(get(tab), REPEATS)
        filtered_s = timed(get(f"{tab}?experiment={experiment_id}&variant=treatment"), REPEATS)
        visitor_s = timed(get(f"{tab}?visitor={visitor}"), REPEATS)
        last_s = timed(get(f"{tab}?page={-(-counts['conversations'] // 50)}"), REPEATS)
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
    print(f"\n[sqlite] {counts['conversations']:,} conversations, {counts['messages']:,} messages, "
          f"{counts['leads']:,} leads, {counts['feedback']:,} feedback (built in {built_s:.1f} s)")
    print(f"  Conversations tab, first page (whole request):   {page_s * 1000:8.1f} ms   (goal < 200 ms)")
    print(f"  baseline: bare COUNT + SELECT of the same page:  {baseline_s * 1000:8.1f} ms")
    print(f"  ratio page / baseline: {page_s / baseline_s:.2f}x")
    print(f"  filtered by experiment × variant, first page:     {filtered_s * 1000:8.1f} ms")
    print(f"  filtered by an exact visitor id:                  {visitor_s * 1000:8.1f} ms")
    print(f"  last page (OFFSET {counts['conversations'] // 50 * 50:,}):                  {last_s * 1000:8.1f} ms")
    print("query plans:")
    print("\n".join(plan_lines))


if __name__ == "__main__":
    main()
