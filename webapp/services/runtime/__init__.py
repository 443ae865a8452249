"""The chat runtime's side (SPEC §4–§6), read in this order (docs/runtime.md):

- `service`: one function per runtime endpoint — parse, read, decide, write, answer;
- `rules`: the pure core — validation, `decide_message` / `decide_lead`, the answers (no database);
- `store`: the one read and the race-safe writes, on the DBAPI connection;
- `statements`: every statement, once; `bucketing`, `persona`: SPEC §5 step 4 and §4 as pure functions;
- `wal_checkpoint`: SQLite's WAL checkpoints off the request path.
"""
