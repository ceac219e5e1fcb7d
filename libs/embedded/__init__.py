"""Embedded development servers, started when no REDIS_URL / DATABASE_URL is configured."""
