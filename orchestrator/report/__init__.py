"""``xlt-report``: a sweep in MLflow -> the answer to the research question.

collect.py (MLflow runs -> one row per completed run x language, per-example scores from
artifacts), selection.py (the protocol that resolves sampled knobs to one unit per cell and
seed), typology.py (codes, family, script, lang2vec distances to English), stats.py (seeds as
the unit of replication with the items' variance added, parallel items combined, permutation
tests, Benjamini-Hochberg), analysis.py (cells, effects, groups, correlations, interaction, one
testing family), render.py (PNG plots, the HTML page), cli.py (the command).
"""
