"""The event contract: envelope, event types, stream names and schema export."""
