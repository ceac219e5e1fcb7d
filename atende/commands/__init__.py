"""Sub-commands of ``atende``; each module exposes ``register(app)``."""
