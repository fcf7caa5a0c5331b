"""English intermediate tasks, grouped by domain: the catalogue behind the sweep's domain axis.

A sweep's intermediate axis names *domains*; each domain resolves to its catalogue entries
(or the tasks a space file names with ``intermediate.tasks``), which are trained together in
one intermediate stage (``trainables.loop``: one head per task, batches mixed across tasks).
Domain ``none`` means "no intermediate stage". Only the encoder goes on to the next stage.

Every entry records its format, the task family (``trainables.tasks``) and head that train it,
its sources, size, licence and access, checked against the dataset cards:

==========================  ======================  ===========================================
format                      family (head)           entries
==========================  ======================  ===========================================
``nli``                     classification          mnli, contract_nli, mednli, scitail
``pair_classification``     classification          pubmedqa (question, abstract -> yes/no/maybe)
``classification``          classification (single  ledgar (100 provision types), fpb
                            sentence)               (sentiment)
``multiple_choice``         multiple_choice         hellaswag, case_hold, medmcqa, sciq
``extractive_qa``           qa                      squad
``tagging``                 tagging                 finer139 (279 XBRL tags)
==========================  ======================  ===========================================

Sources, per entry: ``hub`` (split -> hub id, config, split) read with
``datasets.load_dataset`` (data-files repos only) or from its parquet copy in a mirror
(``xlt-data mirror``), and ``mirror`` (split -> raw file under a local data directory, in a
format the family reads: TSV/JSONL pairs, JSONL choices, SQuAD JSON). Script-only hub repos
(ContractNLI, Financial PhraseBank, FiNER-139) cannot be loaded by ``datasets`` >= 4: their
``access`` says so and what to do (raw files, or a parquet copy made once with ``datasets`` <
4 into the mirror layout). MedNLI is credentialed (PhysioNet): it has no hub source and is
read only from a local path, never mirrored. Entries with ``labels=()`` take their label
names from the data's ClassLabel feature (LEDGAR's 100 classes, FiNER's 279 tags).

``demo`` entries also have a built-in synthetic version (``trainables.demo_data``) so the
embedded default runs offline.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from trainables.names import unknown

FORMAT_FAMILY = {"nli": "classification", "pair_classification": "classification",
                 "classification": "classification", "multiple_choice": "multiple_choice",
                 "extractive_qa": "qa", "tagging": "tagging"}


@dataclass(frozen=True)
class IntermediateTask:
    """One intermediate task of the catalogue: its domain, format, sources and licence."""
    key: str
    """Registry key used in space files."""
    domain: str
    format: str
    """One of ``FORMAT_FAMILY``; decides the family and so the head."""
    name: str
    labels: tuple[str, ...]
    """Label names in the head's order; () = the data's own ClassLabel names."""
    hub: dict[str, tuple] = field(default_factory=dict)
    """split -> (dataset id, config, hub split); {} where the hub cannot serve it."""
    hub_fields: tuple = ()
    """Columns the family's hub adapter reads (family-specific, see its ``*_from_hub``)."""
    mirror: dict[str, str] = field(default_factory=dict)
    """split -> raw file under a local data directory."""
    mirror_format: str = ""
    size: str = ""
    license: str = ""
    access: str = "open"
    notes: str = ""
    """How to get data the hub cannot serve (script-only repos, credentialed data)."""
    demo: bool = False
    """True when ``trainables.demo_data`` has a built-in synthetic version."""
    local_only: bool = False
    """Credentialed data: read from a local path only, never fetched or mirrored."""
    miniature: bool = False
    """A task of the built-in miniature world (``trainables.miniature``): named in a space file's
    ``intermediate.tasks``, never a domain's default."""

    @property
    def family(self) -> str:
        return FORMAT_FAMILY[self.format]

    @property
    def source(self) -> str:
        ids = list(dict.fromkeys(h[0] for h in self.hub.values()))
        return ", ".join(ids) if ids else "local files only"

    @property
    def task(self):
        """The loader-facing task (a ``TargetTask`` that is not a target): what the family's
        ``load``/``encode``/``head`` read."""
        from trainables.tasks import TargetTask

        return TargetTask(self.key, self.family, ("en",), dict(self.mirror), self.mirror_format, self.labels,
                          dict(self.hub), tuple(self.hub_fields), target=False,
                          source=f"{self.name}; {self.access}{'; ' + self.notes if self.notes else ''}")


SCRIPT_ONLY = "script-only on the hub"


def _script(hub: str, config: str, where: str) -> str:
    return (f"datasets >= 4 cannot run its loading script: {where}or write a parquet copy once with datasets < 4 "
            f"(load_dataset(..., trust_remote_code=True)[split].to_parquet) to "
            f"{{dir}}/hub/{hub}/{config}/{{split}}.parquet")


CATALOG: dict[str, IntermediateTask] = {t.key: t for t in [
    # --- general: the three best intermediate tasks of Phang et al. 2020 ---
    IntermediateTask(
        "mnli", "general", "nli", "MultiNLI", ("entailment", "neutral", "contradiction"),
        hub={"train": ("nyu-mll/glue", "mnli", "train")}, hub_fields=("premise", "hypothesis", "label"),
        mirror={"train": "intermediate/mnli/train.tsv"},
        size="392,702 train", license="mixed (OANC, CC BY-SA 3.0; see the GLUE card)", demo=True),
    IntermediateTask(
        "squad", "general", "extractive_qa", "SQuAD v1.1", (),
        hub={"train": ("rajpurkar/squad", "plain_text", "train")},
        mirror={"train": "squad/train-v1.1.json"}, size="87,599 train", license="CC BY-SA 4.0"),
    IntermediateTask(
        "hellaswag", "general", "multiple_choice", "HellaSwag", (),
        hub={"train": ("Rowan/hellaswag", None, "train")}, mirror={"train": "intermediate/hellaswag/train.jsonl"},
        mirror_format="hellaswag", size="39,905 train (4 endings)", license="MIT",
        notes="at the last check (Dec 2026) the hub repo still held hellaswag.py (its parquet conversion, PR #7, "
              "unmerged), which datasets >= 4 refuses; if it does: the release's hellaswag_train.jsonl as "
              "{dir}/intermediate/hellaswag/train.jsonl, or its refs/convert/parquet export in the mirror layout"),
    # --- legal ---
    IntermediateTask(
        "case_hold", "legal", "multiple_choice", "CaseHOLD (LexGLUE)", (),
        hub={"train": ("coastalcph/lex_glue", "case_hold", "train")},
        mirror={"train": "intermediate/case_hold/train.jsonl"}, mirror_format="casehold",
        size="45,000 train (5 holdings)", license="CC BY 4.0"),
    IntermediateTask(
        "contract_nli", "legal", "nli", "ContractNLI", ("entailment", "contradiction", "neutral"),
        hub={"train": ("kiddothe2b/contract-nli", "contractnli_a", "train")},
        hub_fields=("premise", "hypothesis", "label"), mirror={"train": "intermediate/contract_nli/train.tsv"},
        size="6,819 train (contractnli_a)", license="CC BY-NC-SA 4.0 (non-commercial)", access=SCRIPT_ONLY,
        notes=_script("kiddothe2b/contract-nli", "contractnli_a", "place premise<TAB>hypothesis<TAB>label rows "
                      "(entailment, contradiction, neutral = not mentioned) at "
                      "{dir}/intermediate/contract_nli/train.tsv, "), demo=True),
    IntermediateTask(
        "ledgar", "legal", "classification", "LEDGAR (LexGLUE)", (),
        hub={"train": ("coastalcph/lex_glue", "ledgar", "train")}, hub_fields=("text", None, "label"),
        size="60,000 train (100 provision types)", license="CC BY 4.0"),
    # --- medical ---
    IntermediateTask(
        "mednli", "medical", "nli", "MedNLI", ("entailment", "contradiction", "neutral"),
        mirror={"train": "intermediate/mednli/mli_train_v1.jsonl"},
        size="11,232 train", license="PhysioNet Credentialed Health Data License 1.5.0",
        access="credentialed (PhysioNet)", notes="local path only, never mirror it openly: put the release's "
        "mli_train_v1.jsonl at {dir}/intermediate/mednli/", demo=True, local_only=True),
    IntermediateTask(
        "pubmedqa", "medical", "pair_classification", "PubMedQA (expert-labelled)", ("yes", "no", "maybe"),
        hub={"train": ("qiaojin/PubMedQA", "pqa_labeled", "train")},
        hub_fields=("question", "context.contexts", "final_decision"),
        size="1,000 train (pqa_labeled; pqa_artificial: 211,269)", license="MIT"),
    IntermediateTask(
        "medmcqa", "medical", "multiple_choice", "MedMCQA", (),
        hub={"train": ("openlifescienceai/medmcqa", None, "train")}, mirror_format="medmcqa",
        size="182,822 train (4 options; cop: ClassLabel a-d)", license="Apache 2.0"),
    # --- science ---
    IntermediateTask(
        "scitail", "science", "nli", "SciTail", ("entails", "neutral"),
        hub={"train": ("allenai/scitail", "tsv_format", "train")}, hub_fields=("premise", "hypothesis", "label"),
        mirror={"train": "intermediate/scitail/train.tsv"}, size="23,097 train",
        license="none stated on the card (see AI2's SciTail page)"),
    IntermediateTask(
        "sciq", "science", "multiple_choice", "SciQ", (),
        hub={"train": ("allenai/sciq", None, "train")}, mirror_format="sciq",
        size="11,679 train (4 options)", license="CC BY-NC 3.0 (non-commercial)"),
    # --- finance ---
    IntermediateTask(
        "fpb", "finance", "classification", "Financial PhraseBank (all agree)", ("negative", "neutral", "positive"),
        hub={"train": ("takala/financial_phrasebank", "sentences_allagree", "train")},
        hub_fields=("sentence", None, "label"), mirror={"train": "intermediate/fpb/train.tsv"},
        size="2,264 train (sentences_allagree)", license="CC BY-NC-SA 3.0 (non-commercial)", access=SCRIPT_ONLY,
        notes=_script("takala/financial_phrasebank", "sentences_allagree",
                      "place sentence<TAB>label rows at {dir}/intermediate/fpb/train.tsv, ")),
    IntermediateTask(
        "finer139", "finance", "tagging", "FiNER-139", (),
        hub={"train": ("nlpaueb/finer-139", "finer-139", "train")}, hub_fields=("tokens", "ner_tags"),
        size="900,384 train sentences (279 IOB2 tags)", license="CC BY-SA 4.0", access=SCRIPT_ONLY,
        notes=_script("nlpaueb/finer-139", "finer-139", "its 279 tag names live in the script, so there is no "
                      "raw-file path; ")),
]}

def _miniature_tasks() -> list[IntermediateTask]:
    from trainables.miniature.data import DOMAIN_TASKS, ROLE_TAGS

    return [IntermediateTask(
        key, domain, "tagging", f"miniature role tagging ({domain} lexicon)", ROLE_TAGS,
        mirror={"train": f"miniature/intermediate/{key}/train"}, mirror_format="panx",
        size="1,000 train (English)", license="generated", access="built in",
        notes="", demo=True, miniature=True) for key, domain in DOMAIN_TASKS.items()]


CATALOG.update({t.key: t for t in _miniature_tasks()})

# Domain -> default task keys. "none" trains no intermediate model.
DOMAINS: dict[str, tuple[str, ...]] = {"none": ()}
for _task in CATALOG.values():
    if not _task.miniature:
        DOMAINS[_task.domain] = DOMAINS.get(_task.domain, ()) + (_task.key,)


def intermediate_task(key: str) -> IntermediateTask:
    """The catalogue entry ``key``; an unknown key raises ``KeyError`` naming the allowed ones."""
    if key not in CATALOG:
        raise KeyError(unknown("intermediate task", key, CATALOG))
    return CATALOG[key]
