"""The miniature world: synthetic languages with a known typology, for a study with a known answer.

- ``languages``: one grammar, four binary word-order switches and a disjoint lexicon per language
  (``Language``, ``lexicon``, ``linearise``); the switch vectors are the typology the report
  reads (``orchestrator.report.typology``'s ``switches`` source). ``synonym_table``: RS-DA's
  table for this world (``robust.options.rs_da.synonyms: miniature``): same-class words.
- ``data``: the target task ``roles`` (semantic-role tagging, PAN-X format, parallel test sets in
  all eight languages), the intermediate tasks ``mini_general`` / ``mini_legal`` (the same role
  structure on English sentences of one lexicon slice) and the pretraining corpora, written under
  the built-in data directory (``data_dir: builtin``).
- ``pretrain``: ``builtin:mini-bert``, a 4-layer BERT pretrained with masked language modelling
  on the union of the languages, built once per storage root.

``search_spaces/smoke.yaml``, the embedded default, runs the study; the README gives what it
measured.
"""
