"""Evaluation: policies on held-out queries (tables, curves, episodes), task checks, the task
table and comparison reports.

May import `system.agent`, `system.config`, `system.models` and `simworkers`; never `system.rl`.
"""
