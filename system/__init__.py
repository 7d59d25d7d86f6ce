"""The domain core and the driver, one subpackage per concern. Layers inside, lowest first (a
module may import only its own layer and those below; tests/test_layers.py enforces it):

runtime -> agent -> config -> models -> evaluation -> rl -> bench -> plan -> soak -> cli

`system` may import `simworkers`, `actors`, `learner` and `wire`; none of them imports `system`.
"""
