"""Evaluation results: one row per (benchmark, protocol), written as Markdown and JSON."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import earthplat


@dataclass
class EvalResult:
    """One protocol on one benchmark."""

    benchmark: str
    protocol: str
    """``knn``, ``linear`` or ``finetune``."""
    metrics: dict[str, float]
    """``accuracy``, ``macro_f1``, ``miou`` (and protocol extras)."""
    primary: str
    """The headline metric of this benchmark."""
    n_train: int
    """Training units (windows, or labelled patches/pixels for segmentation) incl. validation."""
    n_test: int
    unit: str
    """What ``n_train``/``n_test`` count: ``window``, ``patch`` or ``pixel``."""
    settings: dict[str, Any] = field(default_factory=dict)
    """Protocol settings actually used (k, temperature, chosen weight decay, run dir...)."""
    confusion: list[list[int]] = field(default_factory=list)
    """Rows true class, columns predicted class."""
    plots: dict[str, str] = field(default_factory=dict)
    """Kind (``confusion``, ``predictions``) -> PNG file name in the output directory."""
    per_class: dict[str, dict[str, float]] = field(default_factory=dict)
    """Class name -> f1, iou, precision, recall, support."""

    @property
    def value(self) -> float:
        return self.metrics[self.primary]


@dataclass
class EvalReport:
    """Everything ``evaluate_model`` measured."""

    model: str
    results: list[EvalResult] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    """Run-wide settings (seed, benchmarks' splits and sizes, earthplat version...)."""
    out_dir: str | None = None
    created: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    def get(self, benchmark: str, protocol: str) -> EvalResult:
        for r in self.results:
            if r.benchmark == benchmark and r.protocol == protocol:
                return r
        raise KeyError(f"no result for {benchmark}/{protocol}")

    def value(self, benchmark: str, protocol: str, metric: str | None = None) -> float:
        r = self.get(benchmark, protocol)
        return r.metrics[metric or r.primary]

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "created": self.created,
            "earthplat_version": earthplat.__version__,
            "settings": self.settings,
            "results": [asdict(r) | {"value": r.value} for r in self.results],
        }

    def to_markdown(self) -> str:
        def fmt(v: float) -> str:
            return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.4f}"

        lines = [
            f"# Evaluation of `{self.model}`",
            "",
            f"earthplat {earthplat.__version__}, {self.created}",
            "",
            "| benchmark | protocol | metric | value | n_train | n_test | unit |",
            "|---|---|---|---:|---:|---:|---|",
        ]
        for r in self.results:
            for metric in [r.primary, *sorted(m for m in r.metrics if m != r.primary)]:
                lines.append(
                    f"| {r.benchmark} | {r.protocol} | {metric} | {fmt(r.metrics[metric])} | "
                    f"{r.n_train} | {r.n_test} | {r.unit} |"
                )
        for r in self.results:
            if not r.per_class:
                continue
            lines += [
                "",
                f"### {r.benchmark} / {r.protocol}: per class",
                "",
                "| class | F1 | IoU | precision | recall | support |",
                "|---|---:|---:|---:|---:|---:|",
            ]
            for cls, m in r.per_class.items():
                lines.append(
                    f"| {cls} | {fmt(m['f1'])} | {fmt(m['iou'])} | {fmt(m['precision'])} | "
                    f"{fmt(m['recall'])} | {m['support']} |"
                )
        lines += ["", "## Settings", ""]
        lines += [f"- {k}: `{json.dumps(v, default=str)}`" for k, v in self.settings.items()]
        for r in self.results:
            settings = ", ".join(f"{k}={v}" for k, v in r.settings.items())
            plots = ", ".join(f"[{k}]({v})" for k, v in r.plots.items())
            lines.append(
                f"- {r.benchmark} / {r.protocol}: {settings}" + (f"; {plots}" if plots else "")
            )
        return "\n".join(lines) + "\n"

    def write(self, out_dir: str | Path | None = None) -> tuple[Path, Path]:
        """Write ``results.md`` and ``results.json``; returns their paths."""
        out = Path(out_dir or self.out_dir or ".")
        out.mkdir(parents=True, exist_ok=True)
        md, js = out / "results.md", out / "results.json"
        md.write_text(self.to_markdown())
        js.write_text(json.dumps(self.to_dict(), indent=2, default=str) + "\n")
        return md, js
