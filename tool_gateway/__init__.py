"""Tool gateway: registry, RBAC, rate limits, idempotency and audit of tool calls."""
