"""The three real domains: complete literature, real stdlib code, checkable seeded math."""

from olmo_lm.data.corpora import (
    check_math_document,
    code_documents,
    literature_documents,
    math_documents,
    stdlib_dir,
)
from olmo_lm.data.documents import read_documents


def test_literature_documents_cover_every_speech(shakespeare):
    docs = list(literature_documents(shakespeare, min_chars=1500))
    speeches = [d.text for d in read_documents(shakespeare, split_paragraphs=True)]
    assert "\n\n".join(d.text for d in docs) == "\n\n".join(speeches)
    assert all(len(d.text) >= 1500 for d in docs[:-1]) and len(docs) > 500


def test_code_documents_are_the_standard_library():
    docs = list(code_documents(limit=10))
    assert len(docs) == 10
    for d in docs:
        assert d.id.startswith("stdlib/") and d.id.endswith(".py")
        assert (stdlib_dir() / d.id.removeprefix("stdlib/")).read_text(encoding="utf-8") == d.text
        assert "site-packages" not in d.source


def test_math_answers_check_and_the_seed_fixes_them():
    docs = list(math_documents(20, seed=5))
    assert [d.text for d in docs] == [d.text for d in math_documents(20, seed=5)]
    assert docs[0].text != next(math_documents(1, seed=6)).text
    for d in docs:
        assert check_math_document(d.text) == (8, 8)
    wrong = docs[0].text.replace("Answer: ", "Answer: 1", 1)
    assert check_math_document(wrong)[0] == 7
