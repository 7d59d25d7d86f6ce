"""`tlgrpo soak`: a real training run under a seeded fault injector, and its account of what was
asked, answered, lost, trained and recovered (docs/reliability.md)."""
