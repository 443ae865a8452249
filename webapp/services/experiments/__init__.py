"""Experiments: their lifecycle (SPEC §3), results and statistics (§7, §10)."""
