"""A workspace and its people and credentials: accounts, memberships, agents, API keys, the audit trail."""
