"""``xlt-report``: a sweep in MLflow -> the answer to the research question.

collect.py (MLflow runs -> one row per run x language, per-example scores from artifacts),
typology.py (codes, family, script, lang2vec distances to English), stats.py (paired bootstrap
over seeds and examples, Benjamini-Hochberg, Spearman), analysis.py (cells, effects, groups,
correlations, interaction), render.py (PNG plots, the HTML page), cli.py (the command).
"""
