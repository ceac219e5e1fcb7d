"""Logging, tracing and metrics shared by every atende process."""
