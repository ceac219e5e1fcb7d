"""Telegram Bot API: config, webhooks in, messages out."""
