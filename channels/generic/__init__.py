"""atende's generic JSON channel for any app: config, webhooks in, replies out."""
