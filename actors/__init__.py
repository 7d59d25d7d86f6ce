"""Rollout actors and their engines (`hf`, `vllm`): token ids in, sampled ids and log-probs out,
weights taken by version.

May import `wire` only: never `system` or `learner`.
"""
