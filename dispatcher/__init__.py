"""Routing worker: mailbox, turn lease, double-text policy, intent and route."""
