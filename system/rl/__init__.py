"""Reinforcement learning: the rollout plans of the four algorithms, advantages, the replay-free
Arrow buffer, step metrics, weight sync strategies, checkpoints, tracking, the training loop and
the format warm-up (`sft`).

May import `system.agent`, `system.config`, `system.models`, `system.evaluation` and every layer
outside `system`.
"""
