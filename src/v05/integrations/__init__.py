"""Framework adapters: TRL and verl."""
