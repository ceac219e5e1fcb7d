"""AI agent worker: context, LLM and the tool loop."""
