"""Channel adapters: inbound verification and normalization, outbound sending, per provider."""
