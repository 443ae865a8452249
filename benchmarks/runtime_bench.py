"""Benchmark of the runtime API (POST …/messages) against a bare Flask baseline (run by `make bench-runtime`).

Serves each app the same way with gunicorn on 127.0.0.1 (BENCH_WORKERS=2 workers; sync, or gthread with
BENCH_THREADS threads when above 1), drives it with wrk from a separate process
(bounded connections and duration), and prints requests/s, p50/p99 latency and the ratio to the baseline
for first visitor messages (distinct visitors: assignment + new conversation) and follow-up messages in
existing conversations, on SQLite and then on PostgreSQL (a database of its own, dropped at the end).
"""
from __future__ import annotations

import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.databases import scratch_postgres  # noqa: E402
from webapp import create_app  # noqa: E402
from webapp.config import TestConfig  # noqa: E402
from webapp.extensions import db  # noqa: E402
from webapp.models import Experiment, Variant, utcnow  # noqa: E402
from webapp.services.workspace import accounts, agents, api_keys  # noqa: E402
from webapp.services import simulation

HOST = "127.0.0.1"
PORTS = range(18400, 18500)
DURATION_S = int(os.environ.get("BENCH_SECONDS", "6"))
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "8"))
WORKERS = int(os.environ.get("BENCH_WORKERS", "2"))
# Threads per worker: 1 = gunicorn's sync worker; more = the gthread worker. Baseline and app alike.
THREADS = int(os.environ.get("BENCH_THREADS", "1"))
# Rounds of the whole run (baseline and both engines); the verdict uses the median ratio and p99 over rounds,
# which tames a shared host's noise (CPU stolen by other guests is printed per round).
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
GOAL_RATIO, GOAL_P99_MS = 0.5, 25
SEEDED_CONVERSATIONS = 300
HISTORY_VISITORS = int(os.environ.get("BENCH_HISTORY", "5000"))  # simulated visitors before the run
PG_ADMIN_URL = os.environ.get("BENCH_PG_URL", "postgresql+psycopg://root@127.0.0.1:5432/postgres")
LUA = ROOT / "benchmarks" / "runtime_bench.lua"


def free_port() -> int:
    for port in PORTS:
        with socket.socket() as s:
            if s.connect_ex((HOST, port)) != 0:
                return port
    raise RuntimeError("no free port in 18400–18499")


def seed(database_url: str) -> tuple[int, str]:
    """Schema, a workspace, an agent, an API key, a running 50/50 persona experiment with HISTORY_VISITORS
    visitors of simulated history, and fresh planner statistics."""
    app = create_app(type("BenchConfig", (TestConfig,), {"SQLALCHEMY_DATABASE_URI": database_url}))
    with app.app_context():
        db.create_all()
        accounts.create_user("bench@example.com", "bench-password-123", "bench", "owner")
        workspace_id = accounts.find_user_by_email("bench@example.com").memberships[0].workspace_id
        agent = agents.create_agent(None, workspace_id, "Bench agent", "Sam", "friendly", "Be helpful.")
        _, key = api_keys.create_key(None, workspace_id, "bench")
        experiment = Experiment(agent_id=agent.id, name="Bench persona", kind="persona", status="running",
                                started_at=utcnow(), variants=[
                                    Variant(key=k, name=k, weight=1, position=i,
                                            config={"persona": {"name": f"Sam {k}", "tone": "warm"}})
                                    for i, k in enumerate(("control", "treatment"))])
        db.session.add(experiment)
        db.session.commit()
        agent_id = agent.id
        # A database in use, not an empty one: history from the simulator, then statistics, as autovacuum (or
        # SQLite's ANALYZE) would have them. On empty tables PostgreSQL caches plans that scan whole tables
        # once they grow (a new deployment's first minute, until autovacuum analyzes them).
        simulation.simulate_bulk(agent_id, HISTORY_VISITORS, days=14, seed=7, batch_size=2000)
        db.session.execute(sa.text("ANALYZE"))
        db.session.commit()
        db.session.remove()
        db.engine.dispose()
    return agent_id, key


def gunicorn_args() -> list[str]:
    """The same serving for the baseline and the app: WORKERS workers, sync or gthread with THREADS threads."""
    args = ["-w", str(WORKERS)]
    if THREADS > 1:
        args += ["--worker-class", "gthread", "--threads", str(THREADS)]
    return args


def serving() -> str:
    return f"gunicorn -w {WORKERS} " + (f"(gthread, {THREADS} threads)" if THREADS > 1 else "(sync)")


class Server:
    """gunicorn on 127.0.0.1 (WORKERS workers, sync or gthread), stopped on exit."""

    def __init__(self, app_spec: str, env: dict[str, str], cwd: Path):
        self.port = free_port()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", *gunicorn_args(), "-b", f"{HOST}:{self.port}", "--log-level", "warning",
             app_spec], cwd=cwd, env={**os.environ, **env})

    def __enter__(self) -> "Server":
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex((HOST, self.port)) == 0:
                    return self
            time.sleep(0.1)
        self.process.kill()
        raise RuntimeError("gunicorn did not start")

    def __exit__(self, *exc) -> None:
        self.process.terminate()
        self.process.wait(timeout=15)


TICK_S = 1 / os.sysconf("SC_CLK_TCK")


def process_cpu() -> dict[int, tuple[str, int, float]]:
    """Every process's (command name, parent pid, user + system CPU seconds so far), from /proc."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:  # gone meanwhile
            continue
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2:].split()
        found[int(entry)] = (name, int(fields[1]), (int(fields[11]) + int(fields[12])) * TICK_S)
    return found


def cpu_by_role(before: dict, after: dict, server_pid: int) -> tuple[list[float], float]:
    """CPU seconds spent between two snapshots by each of the server's workers and by PostgreSQL's processes."""
    workers, database = [], 0.0
    for pid, (name, parent, seconds) in after.items():
        spent = seconds - before.get(pid, (name, parent, 0.0))[2]
        if parent == server_pid:
            workers.append(spent)
        elif name == "postgres" or name.startswith("postgres:"):
            database += spent
    return workers, database


def wrk(server: "Server", path: str, mode: str, token: str = "") -> dict:
    """One bounded wrk run; returns requests/s, latencies in ms, and CPU per request (ms) of the gunicorn
    workers, the PostgreSQL processes and wrk itself, which share this machine's cores."""
    before, children_before = process_cpu(), os.times()
    out = subprocess.run(
        ["wrk", f"-t{min(2, CONNECTIONS)}", f"-c{CONNECTIONS}", f"-d{DURATION_S}s", "--timeout", "5s", "-s", str(LUA),
         f"http://{HOST}:{server.port}{path}", "--", mode, str(SEEDED_CONVERSATIONS), token, path],
        capture_output=True, text=True, timeout=DURATION_S + 30, check=True).stdout
    after, children_after = process_cpu(), os.times()
    result = json.loads(out.split("RESULT ", 1)[1].splitlines()[0])
    requests_done = max(1, result["requests"])
    per_worker, database = cpu_by_role(before, after, server.process.pid)
    workers = sum(per_worker)
    load = (children_after.children_user + children_after.children_system
            - children_before.children_user - children_before.children_system)  # wrk: the child reaped here
    return {"rps": result["requests"] / (result["duration_us"] / 1e6), "p50": result["p50_us"] / 1000,
            "p99": result["p99_us"] / 1000, "errors": result["errors"], "requests": result["requests"],
            "worker_ms": 1000 * workers / requests_done, "db_ms": 1000 * database / requests_done,
            "wrk_ms": 1000 * load / requests_done,
            # the busiest worker's share of the workers' CPU: 50 % is an even split; near 100 % one worker served
            # (almost) every connection — with keep-alive (gthread) wrk's few connections can all land on one
            "busiest": 100 * max(per_worker, default=0) / workers if workers else 0.0}


def bench_runtime(database_url: str, label: str) -> dict[str, dict]:
    agent_id, key = seed(database_url)
    path = f"/api/v1/agents/{agent_id}/messages"
    env = {"DATABASE_URL": database_url, "SECRET_KEY": "bench", "APP_ENV": "production"}
    with Server("wsgi:app", env, ROOT) as server:
        headers = {"Authorization": f"Bearer {key}"}
        with requests.Session() as http:
            for k in range(SEEDED_CONVERSATIONS):
                response = http.post(f"http://{HOST}:{server.port}{path}", headers=headers, json={
                    "visitor_id": f"seed-{k}", "conversation_id": f"seed-conv-{k}", "role": "visitor"})
                response.raise_for_status()
        return {f"{label} first messages": wrk(server, path, "first", key),
                f"{label} follow-up messages": wrk(server, path, "follow", key)}


def cpu_times() -> tuple[int, int]:
    """(all jiffies, stolen jiffies) from /proc/stat: steal is CPU time the hypervisor gave to other guests."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    return sum(values), values[7] if len(values) > 7 else 0


def cpu_sum(result: dict) -> float:
    """CPU ms a request cost on this machine in all: the gunicorn workers, PostgreSQL's processes and wrk."""
    return result["worker_ms"] + result["db_ms"] + result["wrk_ms"]


def run_round() -> dict[str, dict]:
    results: dict[str, dict] = {}
    with Server("bare_app:app", {}, ROOT / "benchmarks") as server:
        results["bare Flask baseline"] = wrk(server, "/json", "first")
    with tempfile.TemporaryDirectory() as tmp:
        results |= bench_runtime(f"sqlite:///{tmp}/bench.db", "SQLite")
    url, drop = scratch_postgres(PG_ADMIN_URL, "bench")
    try:
        results |= bench_runtime(url, "PostgreSQL")
    finally:
        drop()
    return results


def main() -> None:
    """Run every scenario ROUNDS times, print each round's table and the goal's verdict on the median ratios."""
    ratios: dict[str, list[float]] = {}
    p99s: dict[str, list[float]] = {}
    cpu_multiples: dict[str, list[float]] = {}  # CPU per request (workers + postgres + wrk) over the baseline's
    for number in range(1, ROUNDS + 1):
        before = cpu_times()
        results = run_round()
        after = cpu_times()
        steal = 100 * (after[1] - before[1]) / max(1, after[0] - before[0])
        baseline = results["bare Flask baseline"]["rps"]
        baseline_cpu = cpu_sum(results["bare Flask baseline"])
        print(f"\nround {number}/{ROUNDS}: {serving()}, wrk -t2 -c{CONNECTIONS} -d{DURATION_S}s, nproc={os.cpu_count()}, "
              f"CPU stolen by the host during the round: {steal:.0f}%")
        print(f"{'':<56}{'CPU ms per request':^30}")
        print(f"{'scenario':<32}{'req/s':>8}{'p50 ms':>8}{'p99 ms':>8}{'ratio':>7}{'workers':>9}{'postgres':>9}"
              f"{'wrk':>6}{'sum':>6}{'busiest':>9}{'errors':>8}")
        for name, r in results.items():
            ratio = r["rps"] / baseline
            ratios.setdefault(name, []).append(ratio)
            p99s.setdefault(name, []).append(r["p99"])
            total = cpu_sum(r)
            cpu_multiples.setdefault(name, []).append(total / baseline_cpu if baseline_cpu else float("nan"))
            print(f"{name:<32}{r['rps']:>8.0f}{r['p50']:>8.2f}{r['p99']:>8.2f}{ratio:>7.2f}{r['worker_ms']:>9.2f}"
                  f"{r['db_ms']:>9.2f}{r['wrk_ms']:>6.2f}{total:>6.2f}{r['busiest']:>8.0f}%{r['errors']:>8}")
        print(f"(CPU time per request: the gunicorn workers, PostgreSQL's processes, wrk; {os.cpu_count()} cores "
              f"give {1000 * (os.cpu_count() or 1):.0f} ms of CPU a second in all. busiest: one worker's share "
              "of the workers' CPU, 50 % when the load is split evenly)")
    print(f"\nmedian over {ROUNDS} round(s); goal: first messages ≥ {GOAL_RATIO:.2f} of the baseline with p99 < {GOAL_P99_MS} ms")
    for name in ratios:
        if name == "bare Flask baseline":
            continue
        ratio, p99 = statistics.median(ratios[name]), statistics.median(p99s[name])
        verdict = ""
        if "first messages" in name:
            met = ratio >= GOAL_RATIO and p99 < GOAL_P99_MS
            verdict = "goal met" if met else "goal NOT met"
        multiple = statistics.median(cpu_multiples[name])
        print(f"{name:<32} ratio {ratio:5.2f}   p99 {p99:7.2f} ms   CPU {multiple:4.2f}× the baseline's   {verdict}")
    print(f"(with the cores saturated, a ratio ≥ {GOAL_RATIO:.2f} needs a request to cost at most "
          f"{1 / GOAL_RATIO:.1f}× the baseline's CPU: the workers, PostgreSQL and wrk share the cores)")


if __name__ == "__main__":
    main()
