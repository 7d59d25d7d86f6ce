"""Benchmarks behind `tlgrpo bench`: each measures a baseline in the same run and reports ratios.

May import every layer of `system` but `cli`.
"""
