"""WhatsApp Cloud API: config, webhooks in, messages out."""
