"""Scoring that reproduces the official XTREME / XTREME-R evaluators.

- ``metrics``: the per-language metrics (accuracy, seqeval chunk F1, SQuAD and MLQA EM/F1,
  retrieval mAP@k / MRR@k), each written to give the official script's numbers.
- ``files``: prediction and label files in the official layout ``{dir}/{task}/test-{lang}.{ext}``
  (the writers every task family uses, the readers ``evaluate.py``'s rules).
- ``evaluator``: the benchmark tables (tasks, languages, groups) and the folder evaluator that
  scores those folders like google-research/xtreme's ``evaluate.py``.
- ``cli``: ``xlt-score``.

The worker loop scores its own predictions with the same functions, so a metric logged to
MLflow and ``xlt-score`` on that run's prediction artifacts agree.
"""
