"""The FSDP2 learner: ranks on Ray, packing, log-probs, the loss, checkpoints, weight publishing.

May import `wire` only: never `system` or `actors`.
"""
