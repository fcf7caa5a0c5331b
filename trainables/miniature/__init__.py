"""The miniature world: synthetic languages with a known typology, for a demo with a known answer.

``languages``: one grammar, four binary word-order switches and a disjoint lexicon per language
(``Language``, ``lexicon``, ``linearise``); the switch vectors are the typology the report reads
(``orchestrator.report.typology``'s ``switches`` source).
"""
