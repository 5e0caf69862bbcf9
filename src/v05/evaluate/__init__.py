"""``v05 eval``: test-time scaling of one policy (majority vote, Best-of-N, verifier-weighted vote, pass@N)
and the quality of its verifier beside the value model's (guide: ``docs/rlv.md``).

:mod:`v05.evaluate.run` draws the sample pool and writes the report; the pieces: the problems
(:mod:`~v05.evaluate.problems`), the policies that answer and judge them (:mod:`~v05.evaluate.policies`),
grading (:mod:`~v05.evaluate.grading`), voting over the pool (:mod:`~v05.evaluate.voting`), verifier and
value-model quality (:mod:`~v05.evaluate.quality`) and the report's Markdown and plots
(:mod:`~v05.evaluate.report`). The RL^V benchmark (:mod:`v05.bench.rlv`) evaluates its checkpoints with it.
"""
