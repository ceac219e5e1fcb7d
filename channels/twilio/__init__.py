"""Twilio (SMS and WhatsApp): config, webhooks in, messages out."""
