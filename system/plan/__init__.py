"""`tlgrpo plan`: a training config's cost on a cluster, computed before one is rented, from the
architecture's config alone (no weights): memory per GPU, KV-cache room, tokens, FLOPs,
simulations, and the keys that refuse it."""
