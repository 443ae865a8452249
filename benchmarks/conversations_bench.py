"""The Conversations tab at 100,000 conversations on SQLite (SPEC §12): the first page, unfiltered and filtered.

Builds the traffic with the simulator (bulk mode: messages, leads, feedback), logs a member in, and times the
whole first page of the tab through the app (the request: login check, the page's queries, the template) against
a baseline in the same run: the bare COUNT and SELECT of the same 50 rows, hand-written. Also the experiment ×
variant and exact visitor filters, and the plan SQLite chooses for the page's queries (each must use an index,
never a scan of conversations or a temporary sort of them). Goal: first page < 200 ms.

Then a transcript of a very long conversation (`--long-messages`, default 10,000 and 100,000 messages): its first and
last page (500 messages a page, whole request) against the bare SELECT of the same page, first as the schema is,
then with a (conversation_id, sent_at, id) index on messages built for the comparison and dropped afterwards; and
what that index would cost the runtime: follow-up visitor messages recorded in-process (the runtime's one write
path), with and without it, interleaved.

    make bench-conversations
    .venv/bin/python -m benchmarks.conversations_bench --conversations 20000
"""
from __future__ import annotations

import argparse
import os
import platform
import re
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.results_bench import seed_experiment, timed  # noqa: E402
from webapp import create_app  # noqa: E402
from webapp.config import TestConfig  # noqa: E402
from webapp.extensions import db  # noqa: E402
from webapp.models import Conversation, Message, utcnow  # noqa: E402
from webapp.services import simulation  # noqa: E402
from webapp.services.runtime import service as runtime  # noqa: E402
from webapp.services.workspace.conversations import MESSAGES_PER_PAGE  # noqa: E402

REPEATS = 15
BASELINE_COUNT = sa.text("SELECT COUNT(*) FROM conversations WHERE agent_id = :agent_id")
BASELINE_PAGE = sa.text("SELECT * FROM conversations WHERE agent_id = :agent_id "
                        "ORDER BY started_at DESC, id DESC LIMIT 50")
MESSAGE_PAGE = sa.text("SELECT * FROM messages WHERE conversation_id = :c ORDER BY sent_at, id LIMIT :n OFFSET :o")
TRIED_INDEX = "ix_bench_messages_conversation_sent"  # (conversation_id, sent_at, id): built, measured, dropped
TRANSCRIPT_ROUNDS, WRITE_ROUNDS, WRITES_PER_ROUND = 2, 5, 2000
CSRF = re.compile(r'<meta name="csrf-token" content="([^"]+)"')


def build(agent_id: int, conversations: int) -> None:
    """Simulated visitors in batches until the agent has `conversations` conversations (±1 batch)."""
    seed = 0
    while db.session.scalar(sa.select(sa.func.count()).select_from(Conversation)) < conversations:
        seed += 1
        simulation.simulate_bulk(agent_id, 10_000, days=28, effects=["treatment=1.2"], seed=seed, batch_size=2000,
                                 feedback_effects=["treatment=1.2"])


def long_conversation(agent_id: int, messages: int) -> int:
    """A conversation of `messages` messages (visitor and agent in turn, one second apart), inserted in bulk."""
    start = utcnow()
    conversation = Conversation(agent_id=agent_id, external_id=f"long-{messages}", visitor_id=f"long-{messages}",
                                started_at=start, last_message_at=start)
    db.session.add(conversation)
    db.session.flush()
    for first in range(0, messages, 10_000):
        db.session.execute(sa.insert(Message), [
            {"conversation_id": conversation.id, "role": "agent" if i % 2 else "visitor", "text": f"message {i}",
             "sent_at": start + timedelta(seconds=i)} for i in range(first, min(messages, first + 10_000))])
    db.session.commit()
    return conversation.id


def tried_index(present: bool) -> None:
    """Build (with fresh planner statistics) or drop the (conversation_id, sent_at, id) index on messages; the pool's
    connections are closed, so that every later statement is planned with the schema and statistics as they are."""
    with db.engine.begin() as conn:
        if present:
            conn.execute(sa.text(f"CREATE INDEX IF NOT EXISTS {TRIED_INDEX} ON messages "
                                 "(conversation_id, sent_at, id)"))
        else:
            conn.execute(sa.text(f"DROP INDEX IF EXISTS {TRIED_INDEX}"))
        conn.execute(sa.text("ANALYZE"))
    db.session.remove()
    db.engine.dispose()


def follow_ups(workspace_id: int, agent_id: int, round_: int, n: int) -> float:
    """Mean wall time of one follow-up visitor message recorded in-process (the runtime's write path), over `n`
    messages spread over 100 conversations opened beforehand."""
    for c in range(100):
        runtime.record_message(workspace_id, agent_id, {"conversation_id": f"w{round_}-{c}", "visitor_id": f"w{c}",
                                                        "role": "visitor", "text": "hello"})
    start = time.perf_counter()
    for i in range(n):
        runtime.record_message(workspace_id, agent_id, {"conversation_id": f"w{round_}-{i % 100}",
                                                        "visitor_id": f"w{i % 100}", "role": "visitor",
                                                        "text": "and another thing"})
    return (time.perf_counter() - start) / n


def raw_inserts(path: str, conversation_ids: list[int], n: int) -> float:
    """Mean wall time of one message row inserted and committed on its own (WAL, synchronous=NORMAL, as the
    runtime's connections), in turn into `conversation_ids` (the newest conversations: those a runtime is talking
    in): the index's own cost, without the request around it."""
    con = sqlite3.connect(path)
    con.execute("PRAGMA synchronous=NORMAL")
    start = time.perf_counter()
    for i in range(n):
        con.execute("INSERT INTO messages (conversation_id, role, text, sent_at, client_message_id, response) "
                    "VALUES (?, 'visitor', 'and another thing', ?, ?, '{\"reply\": \"ok\"}')",
                    (conversation_ids[i % len(conversation_ids)], f"2026-12-02 10:{i:09d}", f"raw-{time.time_ns()}"))
        con.commit()
    elapsed = time.perf_counter() - start
    con.close()
    return elapsed / n


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
    parser.add_argument("--long-messages", default="10000,100000",
                        help="messages of each long conversation whose transcript is timed (comma-separated)")
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
            longs = {n: long_conversation(agent_id, int(n)) for n in map(int, args.long_messages.split(","))}
            with db.engine.begin() as conn:
                conn.execute(sa.text("ANALYZE"))
            newest = list(db.session.scalars(sa.select(Conversation.id).order_by(Conversation.id.desc()).limit(100)))
            workspace_id = db.session.scalar(sa.text("SELECT workspace_id FROM agents WHERE id = :a"), {"a": agent_id})
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
        transcripts: dict[tuple[bool, int], list[tuple]] = {}
        writes: dict[bool, list[float]] = {False: [], True: []}
        raw: dict[bool, list[float]] = {False: [], True: []}
        with app.app_context():
            for round_, indexed in enumerate((False, True) * TRANSCRIPT_ROUNDS):  # interleaved: the host drifts
                tried_index(indexed)
                for n, conversation_id in longs.items():
                    last = -(-n // MESSAGES_PER_PAGE)
                    url = f"/agents/{agent_id}/conversations/{conversation_id}"

                    def bare(page: int, conversation_id: int = conversation_id):
                        return lambda: db.session.execute(MESSAGE_PAGE, {"c": conversation_id, "n": MESSAGES_PER_PAGE,
                                                                         "o": (page - 1) * MESSAGES_PER_PAGE}).all()
                    first_page = {"c": conversation_id, "n": MESSAGES_PER_PAGE, "o": 0}
                    transcripts.setdefault((indexed, n), []).append((
                        timed(get(url), REPEATS), timed(bare(1), REPEATS),
                        timed(get(f"{url}?page={last}"), REPEATS), timed(bare(last), REPEATS),
                        plans([("page", MESSAGE_PAGE.text, first_page)])[0]))
                    db.session.remove()
            for round_, indexed in enumerate((False, True) * WRITE_ROUNDS):  # what the index costs every message
                tried_index(indexed)
                writes[indexed].append(follow_ups(workspace_id, agent_id, round_, WRITES_PER_ROUND))
                db.session.remove()
                raw[indexed].append(raw_inserts(f"{tmp}/b.db", newest, WRITES_PER_ROUND * 2))
            tried_index(False)
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
    for n in longs:
        print(f"\ntranscript of one conversation of {n:,} messages ({MESSAGES_PER_PAGE} a page; whole request / bare "
              f"SELECT of the page; {TRANSCRIPT_ROUNDS} interleaved rounds):")
        for indexed in (False, True):
            print(f"  {'with a (conversation_id, sent_at, id) index' if indexed else 'as the schema is'}:")
            for first_s, first_bare, last_s, last_bare, plan in transcripts[(indexed, n)]:
                print(f"    first page {first_s * 1000:7.1f} ms / {first_bare * 1000:6.1f} ms = "
                      f"{first_s / first_bare:6.2f}x;  last page {last_s * 1000:7.1f} ms / {last_bare * 1000:6.1f} ms "
                      f"= {last_s / last_bare:6.2f}x")
            print(f"  {plan}")
    print_rounds(f"\nruntime follow-up message, in-process ({WRITE_ROUNDS} interleaved rounds of {WRITES_PER_ROUND:,}; "
                 f"{counts['messages']:,}+ messages in the table):", writes, 3)
    print_rounds(f"one message row inserted and committed alone, into the 100 newest conversations ({WRITE_ROUNDS} "
                 f"interleaved rounds of {WRITES_PER_ROUND * 2:,}):", raw, 4)


def print_rounds(title: str, rounds: dict[bool, list[float]], decimals: int) -> None:
    """Seconds per message of each round without and with the tried index, in ms, and their medians."""
    print(title)
    for indexed in (False, True):
        print(f"  {'with' if indexed else 'without'} the index: "
              + ", ".join(f"{s * 1000:.{decimals}f}" for s in rounds[indexed])
              + f" ms a message (median {statistics.median(rounds[indexed]) * 1000:.{decimals}f})")


if __name__ == "__main__":
    main()
