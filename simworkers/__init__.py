"""Simulation: circuit tasks (task files and netlist templates), device-model sets, parameter
validation, the ngspice backends, queries, and the Ray simulation pool.

Imports none of `system`, `actors`, `learner` or `wire`.
"""
