"""Use cases: what a user can do, independent of how they ask (CLI, HTTP)."""
