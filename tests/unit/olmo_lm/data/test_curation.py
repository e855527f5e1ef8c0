"""Curation on real text: taggers, the filter language, Bloom and MinHash, deduplication."""

import json
import random

import numpy as np
import pytest

from earthplat.traincore.errors import TrainCoreConfigError
from olmo_lm.data.corpora import code_documents, literature_documents, math_documents
from olmo_lm.data.curation.attributes import attributes_path, read_attributes
from olmo_lm.data.curation.bloom import BloomFilter
from olmo_lm.data.curation.dedup import dedup_files, paragraph_spans, remove_spans
from olmo_lm.data.curation.filter import compile_rule, filter_files
from olmo_lm.data.curation.minhash import MinHasher, estimated_jaccard
from olmo_lm.data.curation.taggers import tag_files, tag_text
from olmo_lm.data.documents import Document, read_documents, write_documents


def test_taggers_measure_what_they_say():
    a = tag_text("a a\nb\na a\n", ["length", "repetition"])
    assert a["length__words"] == 5 and a["length__lines"] == 3 and a["length__chars"] == 10
    assert a["repetition__dup_line_frac"] == pytest.approx(1 / 3)
    assert a["repetition__dup_line_char_frac"] == pytest.approx(3 / 7)
    c = tag_text("Ab1 ", ["char_classes"])
    assert c["char_classes__alpha_frac"] == 0.5 and c["char_classes__digit_frac"] == 0.25
    assert c["char_classes__whitespace_frac"] == 0.25 and c["char_classes__upper_frac"] == 0.25
    with pytest.raises(TrainCoreConfigError, match="unknown tagger"):
        tag_text("x", ["nope"])


def test_filter_rules_are_a_small_safe_language():
    rule = compile_rule("length__words < 50 or 0.2 < x__y <= 0.5 and not z == 1")
    assert rule({"length__words": 10, "x__y": 0.9, "z": 0})
    assert rule({"length__words": 99, "x__y": 0.3, "z": 0})
    assert not rule({"length__words": 99, "x__y": 0.3, "z": 1})
    with pytest.raises(TrainCoreConfigError, match="rules may use"):
        compile_rule("__import__('os').getcwd()")({})
    with pytest.raises(TrainCoreConfigError, match="lack"):
        compile_rule("missing > 1")({"present": 1})


def test_bloom_filter_has_no_false_negatives_and_its_rate_of_false_positives():
    bloom = BloomFilter(5000, error_rate=1e-3)
    early = sum(bloom.add(f"item {i}".encode()) for i in range(5000))
    assert early <= 5  # a false positive while filling is possible, at under the final rate
    assert all(f"item {i}".encode() in bloom for i in range(5000))
    false = sum(f"other {i}".encode() in bloom for i in range(50_000))
    assert false / 50_000 < 3e-3


def test_minhash_estimates_jaccard():
    rng = random.Random(0)
    words = [f"w{rng.randrange(10**6)}" for _ in range(3000)]
    a, b = set(words[:2000]), set(words[1000:])  # Jaccard 1/3
    hasher = MinHasher(240, seed=0)
    est = estimated_jaccard(hasher.signature(a), hasher.signature(b))
    assert est == pytest.approx(1 / 3, abs=0.08)
    assert estimated_jaccard(hasher.signature(a), hasher.signature(set(a))) == 1.0


def test_paragraph_spans_and_their_removal():
    text = "first para\n\n  second\n\n\n\nthird\n"
    spans = paragraph_spans(text)
    assert [text[s:e] for s, e in spans] == ["first para", "second", "third"]
    assert remove_spans(text, [spans[1]]) == "first para\n\n  third\n"


def _perturb(text: str, rng: random.Random, fraction: float) -> str:
    words = text.split(" ")
    for i in rng.sample(range(len(words)), max(1, int(len(words) * fraction))):
        words[i] = "zounds"
    return " ".join(words)


@pytest.fixture
def corpus(shakespeare, tmp_path):
    """Literature with injected near duplicates and copied paragraphs, and stdlib code."""
    rng = random.Random(0)
    lit = list(literature_documents(shakespeare))[:120]
    near_ids = []
    for k in (3, 10, 20):
        lit.append(Document(f"near-{k}", _perturb(lit[k].text, rng, 0.03), "injected"))
        near_ids.append(f"near-{k}")
    copied = {}
    for src, dst in zip(range(30, 35), range(40, 45)):
        para = max((lit[src].text[s:e] for s, e in paragraph_spans(lit[src].text)), key=len)
        doc = lit[dst]
        lit[dst] = Document(doc.id, doc.text + "\n\n" + para, doc.source)
        copied[doc.id] = (len(doc.text) + 2, len(doc.text) + 2 + len(para))
    root = tmp_path / "corpus"
    write_documents(root / "documents" / "literature.jsonl", lit)
    write_documents(root / "documents" / "code.jsonl", code_documents(limit=20))
    write_documents(root / "documents" / "math.jsonl", math_documents(30))
    return root, near_ids, copied


def test_dedup_finds_the_injected_duplicates(corpus):
    root, near_ids, copied = corpus
    counts = dedup_files(root / "documents")
    lit_file = root / "documents" / "literature.jsonl"
    attrs = read_attributes(lit_file, ["dedup"])
    assert attributes_path(lit_file, "dedup") == root / "attributes" / "dedup" / "literature.jsonl"
    flagged = {i for i, a in attrs.items() if a["near__duplicate"]}
    assert flagged == set(near_ids)  # every injected copy, nothing else of the literature
    for doc_id in near_ids:
        assert attrs[doc_id]["near__cluster"] == f"shakespeare-{doc_id.split('-')[1]}"
        assert 0.7 <= attrs[doc_id]["near__jaccard"] < 1.0
    spans = {(i, tuple(s)) for i, a in attrs.items() for s in a["exact__duplicate_spans"]}
    assert {(i, s) for i, s in copied.items()} <= spans
    # the rest are real repeats in Shakespeare: check each against the text before it
    texts = {d.id: d.text for d in read_documents(lit_file)}
    order = list(texts)
    for doc_id, (s, e) in spans:
        para = texts[doc_id][s:e]
        earlier = "".join(texts[i] for i in order[: order.index(doc_id)])
        assert para in earlier or texts[doc_id][:s].count(para) > 0
    code = read_attributes(root / "documents" / "code.jsonl", ["dedup"])
    assert code["stdlib/__phello__/spam.py"]["near__cluster"] == "stdlib/__phello__/__init__.py"
    assert counts["documents"] == 123 + 20 + 30


def test_tag_and_filter_write_dolma_layout(corpus, tmp_path):
    root, near_ids, copied = corpus
    written = tag_files(root / "documents")
    assert sorted(p.name for p in written) == ["code.jsonl", "literature.jsonl", "math.jsonl"]
    assert all(p.parent == root / "attributes" / "tags" for p in written)
    lines = [json.loads(x) for x in (root / "attributes/tags/math.jsonl").read_text().splitlines()]
    assert lines[0]["id"] == "math-0-0" and "char_classes__digit_frac" in lines[0]["attributes"]

    def mean(domain, key):
        a = read_attributes(root / "documents" / f"{domain}.jsonl", ["tags"])
        return np.mean([v[key] for v in a.values()])

    assert mean("math", "char_classes__digit_frac") > 5 * mean(
        "literature", "char_classes__digit_frac"
    )
    assert mean("code", "char_classes__punct_frac") > mean("literature", "char_classes__punct_frac")

    dedup_files(root / "documents")
    out = tmp_path / "filtered"
    counts = filter_files(
        root / "documents",
        out,
        ["tags", "dedup"],
        exclude="near__duplicate == 1 or length__words < 3",
        drop_duplicate_paragraphs=True,
    )
    kept = {d.id: d.text for d in read_documents(out / "documents" / "literature.jsonl")}
    assert not set(near_ids) & set(kept) and len(kept) == 120
    original = {d.id: d.text for d in read_documents(root / "documents" / "literature.jsonl")}
    for doc_id, (s, _) in copied.items():
        assert kept[doc_id].rstrip() == original[doc_id][:s].rstrip()  # the copy is cut out
    assert counts["kept"] < counts["documents"] and counts["paragraphs_removed"] >= len(copied)
