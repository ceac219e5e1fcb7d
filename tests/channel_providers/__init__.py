"""A package of channel providers for the registry's tests: one folder, one provider."""
