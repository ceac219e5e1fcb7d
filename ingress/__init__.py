"""Webhook ingress: verifies, normalizes and appends provider webhooks as events."""
