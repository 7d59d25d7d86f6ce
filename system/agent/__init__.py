"""The agent and its environment: the reward, the protocol (prompts, tool schema, reply parser),
one turn (`turns`), conversations with models, the one turn loop (`dialogue`), episodes and the
policies that run them (random search, Bayesian optimisation, language models).

May import `system.runtime`, `simworkers`, `wire`, and `actors` (engines for local models).
"""
