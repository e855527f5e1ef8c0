"""EvalReport: the Markdown table and the JSON carry the same numbers."""

import json

import pytest

from earthplat.eval.report import EvalReport, EvalResult


def _report() -> EvalReport:
    rows = [
        EvalResult("eurosat", "knn", {"accuracy": 0.5, "macro_f1": 0.4}, "accuracy", 110, 40,
                   "window", {"k": 20}, [[1, 0], [1, 0]]),
        EvalResult("sen1floods11_water", "linear", {"accuracy": 0.9, "miou": float("nan")},
                   "miou", 2096, 1136, "patch"),
    ]  # fmt: skip
    return EvalReport("random:nano", rows, {"seed": 0})


def test_markdown_and_json_agree(tmp_path):
    md_path, js_path = _report().write(tmp_path)
    md = md_path.read_text()
    assert "| eurosat | knn | accuracy | 0.5000 | 110 | 40 | window |" in md
    assert "| sen1floods11_water | linear | miou | n/a | 2096 | 1136 | patch |" in md
    # the primary metric comes first in each protocol's rows
    assert md.index("| eurosat | knn | accuracy") < md.index("| eurosat | knn | macro_f1")
    js = json.loads(js_path.read_text())
    assert js["model"] == "random:nano" and js["settings"] == {"seed": 0}
    assert js["results"][0]["value"] == 0.5 and js["results"][0]["confusion"] == [[1, 0], [1, 0]]


def test_lookup():
    r = _report()
    assert r.value("eurosat", "knn") == 0.5
    assert r.value("eurosat", "knn", "macro_f1") == 0.4
    with pytest.raises(KeyError):
        r.get("eurosat", "finetune")
