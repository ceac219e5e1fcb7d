"""Chatwoot inboxes (agent bot): config, webhooks in, messages out."""
