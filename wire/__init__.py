"""Types that cross between the layers, with one home each: the generation request and answer
(`sampling`), the training batch's Arrow schema (`batch`), the weight-transport buckets
(`weights`) and the base of every config section (`config`).

Imports nothing of `system`, `actors`, `learner` or `simworkers`; all four may import it.
"""
