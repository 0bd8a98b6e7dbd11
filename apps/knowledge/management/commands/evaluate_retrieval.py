"""Score retrieval on labelled sets: hit@1/5/10, MRR@10, nDCG@10 per search mode and set.

    python manage.py evaluate_retrieval          # every set: stackfaq, or_sharc_dev, demo
    python manage.py evaluate_retrieval --sets demo,or_sharc_dev [--datasets-dir DIR]
    python manage.py evaluate_retrieval --corpus corpus.jsonl --questions questions.jsonl
        [--json out.json] [--limit-questions N]
        [--modes hybrid+rerank,hybrid,dense,sparse,hybrid-rrf]

Corpus lines: {"id", "title", "text", "url"}; question lines: {"id", "question", "gold_ids"}.
Named sets are folders of `--datasets-dir` holding both files (the public sets), or "demo"
(the demo tenant's articles and the answerable questions of its answer set). Each corpus goes
through the real pipeline into a throw-away tenant that is deleted afterwards (rows and
points), so it can run against any installation's store.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from apps.knowledge.evaluation import (
    DATASETS_DIR,
    DEFAULT_MODES,
    SET_NAMES,
    EvaluationSet,
    evaluate,
    load_corpus,
    load_questions,
    load_set,
    parse_mode,
)
from apps.knowledge.vectorstore.base import FUSION_METHODS, SEARCH_MODES


class Command(BaseCommand):
    help = "Evaluate retrieval (hybrid+rerank, hybrid, dense, sparse) on labelled JSONL sets."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--corpus", help="corpus JSONL: id, title, text, url")
        parser.add_argument("--questions", help="questions JSONL: id, question, gold_ids")
        parser.add_argument(
            "--sets",
            default=None,
            help=f"named sets, comma-separated (default when no --corpus: {','.join(SET_NAMES)})",
        )
        parser.add_argument("--datasets-dir", default=str(DATASETS_DIR))
        parser.add_argument("--json", dest="json_path", help="also write the results here")
        parser.add_argument("--limit-questions", type=int, default=None)
        parser.add_argument("--modes", default=",".join(DEFAULT_MODES))

    def handle(self, *args: Any, **options: Any) -> None:
        modes = [m.strip() for m in options["modes"].split(",") if m.strip()]
        for mode in modes:
            search_mode, fusion, rerank = parse_mode(mode)
            if (
                search_mode not in SEARCH_MODES
                or (fusion and (search_mode != "hybrid" or fusion not in FUSION_METHODS))
                or (rerank and search_mode != "hybrid")
            ):
                raise CommandError(
                    f"unknown mode {mode!r}; use hybrid[-convex|-rrf][+rerank], dense or sparse"
                )
        sets = self._sets(options)
        results = []
        for named in sets:
            if not named.corpus or not named.questions:
                raise CommandError(f"{named.name}: the corpus and the questions must not be empty")
            result = evaluate(
                corpus=named.corpus,
                questions=named.questions,
                modes=modes,
                name=named.name,
                log=lambda msg: self.stderr.write(msg),
            )
            results.append(result)
            self.stdout.write(
                f"\n{named.name}: {result.questions} questions, {result.corpus} corpus entries,"
                f" {result.chunks} chunks"
            )
            self.stdout.write(result.table())
            if verdict := result.against_single():
                self.stdout.write(verdict)
        if options["json_path"]:
            data: Any = [r.as_dict() for r in results]
            if options["corpus"]:
                data = data[0]  # one set given by files: the single result, as before
            Path(options["json_path"]).write_text(json.dumps(data, indent=2) + "\n")
            self.stdout.write(f"wrote {options['json_path']}")

    def _sets(self, options: dict[str, Any]) -> list[EvaluationSet]:
        limit = options["limit_questions"]
        if options["corpus"] or options["questions"]:
            if options["sets"]:
                raise CommandError("give either --corpus and --questions, or --sets")
            for key in ("corpus", "questions"):
                if not options[key] or not Path(options[key]).is_file():
                    raise CommandError(f"--{key} {options[key]!r} is not a file")
            return [
                EvaluationSet(
                    name=Path(options["corpus"]).parent.name or "corpus",
                    corpus=load_corpus(options["corpus"]),
                    questions=load_questions(options["questions"], limit),
                )
            ]
        names = [n.strip() for n in (options["sets"] or ",".join(SET_NAMES)).split(",")]
        datasets_dir = Path(options["datasets_dir"])
        sets = []
        for name in filter(None, names):
            if name != "demo" and not (datasets_dir / name / "corpus.jsonl").is_file():
                raise CommandError(f"set {name!r}: no corpus.jsonl in {datasets_dir / name}")
            sets.append(load_set(name, datasets_dir=datasets_dir, limit=limit))
        return sets
