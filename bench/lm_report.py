"""The real LM run of issue 17: BPE -> tokenize -> mixture -> pretrain -> SFT -> DPO -> RLVR,
the byte-level and unigram baselines, each stage's energy, and the FlexOlmo table.

    python -m bench.lm_report [--quick] [--work DIR] [--out bench/results/lm_report.md]

Everything goes through the library the CLI uses (``olmo_lm.data``, ``olmo_lm.commands.train``,
``olmo_lm.post``, ``olmo_lm.experts``), on the three real domains (Tiny Shakespeare, this
interpreter's standard library, generated arithmetic), nothing downloaded:

1. the corpus, each domain's last 10% of documents held out for validation;
2. a byte-level BPE trained on the training documents; every split tokenized with it and with
   bytes (the byte-level model's data);
3. pretraining of a 1-5M-parameter OLMo 2 model on a mixture of the three (document masking
   on), and of the same architecture on bytes for the same number of steps;
4. SFT on chat data built from the corpora (arithmetic questions with their answers, and
   "continue this line" prompts of the play), packed with document masking; DPO on
   correct-vs-wrong arithmetic answers; RLVR (GRPO) on the math corpus's problems;
5. FlexOlmo: the pretrained model as the public anchor, one expert per domain trained alone,
   merged by domain-embedding router rows, and each expert opted out in turn.

Comparable across tokenizers: **bits per byte**, ``sum(token NLL) / ln 2 / UTF-8 bytes`` of the
held-out text (EOS predictions count in the NLL, their bytes are 0). Per-token perplexity is
reported too but only compares models of one tokenizer. The unigram baseline is each
tokenizer's add-one-smoothed token frequencies on the training shards.

Energy per stage is the training core's ``EnergyCallback`` report (``RUN/energy.json``): RAPL
where readable, else TDP x utilisation, converted with the OLMo papers' PUE, carbon intensity
and water factors. ``--quick`` runs a few minutes; the full run is sized for about 30 minutes
of CPU.
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from pathlib import Path

import torch

from bench.lm_stages import (
    DOMAINS,
    REPO,
    WEIGHTS,
    Plan,
    build_data,
    chat_accuracy,
    chat_data,
    flexolmo,
    model_nll,
    post_train,
    pretrain,
    quality,
    tokens_per_byte,
    unigram_nll,
)
from bench.report import publish


# --- the report ---------------------------------------------------------------------------------
def energy_row(stage: str, run: Path, seconds: float) -> str:
    e = json.loads((run / "energy.json").read_text())
    return (
        f"| {stage} | {seconds:.0f} | {e['duration_s']:.0f} | {e['energy_kwh'] * 1e3:.3f} | "
        f"{e['facility_energy_kwh'] * 1e3:.3f} | {e['co2e_kg'] * 1e3:.3f} | "
        f"{e['water_l'] * 1e3:.2f} | {e['energy_source']} |"
    )


def run(quick: bool, work: Path, out: Path) -> str:
    """Every stage, then the report written to ``out``."""
    return publish(render(measure(quick, work), quick), out)


def measure(quick: bool, work: Path) -> dict:
    """Run every stage under ``work`` and evaluate it: what the report shows."""
    from olmo_lm.data.tokenizer import load_tokenizer
    from olmo_lm.generate import SamplingConfig, generate
    from olmo_lm.model.store import load_model
    from olmo_lm.post.rlvr import mean_reward

    torch.manual_seed(0)
    plan = Plan.quick() if quick else Plan.full()
    t_start = time.perf_counter()
    info = build_data(work, plan)
    tok = load_tokenizer(info["tok"])
    bpe_run, bpe_s = pretrain(work, plan, "bpe", info["tok"])
    byte_run, byte_s = pretrain(work, plan, "bytes", None)
    sft_data, pairs, held = chat_data(work, plan, info)
    post = post_train(work, plan, bpe_run, sft_data, pairs)

    models = {"pretrain (BPE)": load_model(bpe_run)[0]}
    byte_model = load_model(byte_run)[0]
    for s in ("sft", "dpo", "rlvr"):
        models[s.upper()] = load_model(post["runs"][s] / "model")[0]
    n_params = models["pretrain (BPE)"].config.num_params()

    val, ratios = {}, []
    for d in DOMAINS:
        tpb = {n: tokens_per_byte(work, n, d, info["bytes"][d]) for n in ("bpe", "bytes")}
        ratios.append(1 / tpb["bpe"])
        uni = {n: unigram_nll(work, n, v) for n, v in (("bpe", tok.vocab_size), ("bytes", 260))}
        val[d] = {
            "unigram (BPE)": quality(*uni["bpe"][d], tpb["bpe"]),
            "unigram (bytes)": quality(*uni["bytes"][d], tpb["bytes"]),
            "byte-level model": quality(
                *model_nll(
                    byte_model,
                    work / "bytes" / "val" / d,
                    plan.seq_len,
                    plan.eval_windows * 4,
                    True,
                ),
                tpb["bytes"],
            ),
        }
        for name in ("pretrain (BPE)", "SFT"):
            nll = model_nll(
                models[name], work / "bpe" / "val" / d, plan.seq_len, plan.eval_windows, True
            )
            val[d][f"{name} model"] = quality(*nll, tpb["bpe"])

    exprs = [e for e, _ in held]
    stage_eval = {}
    for name, m in models.items():
        chat = name != "pretrain (BPE)"  # the base model knows the corpus's format only
        stage_eval[name] = (
            chat_accuracy(m, tok, held) if chat else float("nan"),
            mean_reward(
                m,
                tok,
                exprs,
                samples=4,
                seed=0,
                max_new_tokens=6,
                prompt="chat" if chat else "corpus",
            ),
        )
    sampling = SamplingConfig(temperature=0.8, top_k=40)
    samples = {}
    for prompt in ("ROMEO:", "def read_", "Problem 1: What is 12 + 7?\nAnswer:"):
        ids = torch.tensor([tok.encode(prompt)], dtype=torch.long)
        g = torch.Generator().manual_seed(0)
        res = generate(models["pretrain (BPE)"], ids, 60, sampling, generator=g, tokenizer=tok)
        samples[prompt] = prompt + res.texts[0]

    t_flex = time.perf_counter()
    flex, expert_s = flexolmo(work, plan, models["pretrain (BPE)"], info)
    flex_s = time.perf_counter() - t_flex
    return {
        "plan": plan,
        "work": work,
        "tok": tok,
        "n_params": n_params,
        "val": val,
        "bytes_per_token": sum(ratios) / len(ratios),
        "stage_eval": stage_eval,
        "held": len(held),
        "samples": samples,
        "flex": flex,
        "flex_s": flex_s,
        "expert_s": expert_s,
        "runs": {"bpe": (bpe_run, bpe_s), "bytes": (byte_run, byte_s)},
        "post": post,
        "total_s": time.perf_counter() - t_start,
    }


def render(r: dict, quick: bool) -> list[str]:
    """The report's Markdown lines of ``measure``'s results."""
    plan, tok, work, post = r["plan"], r["tok"], r["work"], r["post"]
    (bpe_run, bpe_s), (byte_run, byte_s) = r["runs"]["bpe"], r["runs"]["bytes"]
    mode = "quick" if quick else "full"
    lines = [
        f"# The real LM run (issue 17), {mode} mode",
        "",
        f"`python -m bench.lm_report{' --quick' if quick else ''}`: {r['n_params'] / 1e6:.2f}M-"
        f"parameter OLMo 2 model (d_model {plan.d_model}, {plan.n_layers} layers), BPE of "
        f"{tok.vocab_size} tokens trained on the training documents, sequences of {plan.seq_len}"
        f", batch {plan.batch}, document masking on; {r['total_s'] / 60:.1f} min wall on "
        f"{torch.get_num_threads()} CPU threads in all.",
        "",
        f"Pretraining: {plan.pretrain_steps} steps on the mixture {WEIGHTS}; the byte-level "
        "model is the same architecture on bytes for the same steps and sequence length (a "
        f"BPE token holds {r['bytes_per_token']:.1f} bytes of held-out text on average, so the "
        "byte model sees that much less text). SFT, DPO and RLVR use `a +- b` problems "
        "(operands to 20). SFT "
        f"{plan.sft_steps} steps (lr 1e-3), DPO {plan.dpo_steps} (dpo_norm, beta 5, lr 5e-5), "
        f"RLVR {plan.rlvr_steps} (GRPO, groups of 8, chat prompts, lr 3e-5).",
        "",
        "## Held-out quality per domain",
        "",
        "bits/byte compares across tokenizers; loss (nats/token) and perplexity only within one.",
        "",
        "| domain | model | bits/byte | loss/token | perplexity/token |",
        "|---|---|---:|---:|---:|",
    ]
    for d in DOMAINS:
        for name, q in r["val"][d].items():
            lines.append(f"| {d} | {name} | {q['bpb']:.3f} | {q['loss']:.3f} | {q['ppl']:.1f} |")
    lines += [
        "",
        "## Post-training: held-out arithmetic",
        "",
        f"Chat accuracy: greedy answers to {r['held']} held-out `What is E?` questions in the "
        "chat template. Mean reward: RLVR's checked reward of 4 samples (temperature 1) each, "
        "in the chat template after SFT and in the math corpus's format for the base model.",
        "",
        "| model | chat accuracy | mean reward |",
        "|---|---:|---:|",
    ]
    for name, (acc, rew) in r["stage_eval"].items():
        lines.append(f"| {name} | {'-' if math.isnan(acc) else f'{acc:.3f}'} | {rew:.3f} |")
    lines += ["", "## Samples (pretrained BPE model, temperature 0.8, top-k 40)", ""]
    for text in r["samples"].values():
        lines += ["```", text, "```", ""]
    lines += [
        "## Energy, carbon and water per stage",
        "",
        "IT energy from the training core's EnergyCallback; facility = IT x PUE; CO2e and "
        "water from facility energy with the OLMo papers' factors. On CPU without readable RAPL "
        "the energy is an estimate (TDP x utilisation), as the source column says.",
        "",
        "| stage | wall s | fit s | IT energy Wh | facility Wh | CO2e g | water mL | source |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
        energy_row("pretraining (BPE)", bpe_run, bpe_s),
        energy_row("pretraining (bytes)", byte_run, byte_s),
    ]
    for s in ("sft", "dpo", "rlvr"):
        lines.append(energy_row(s.upper(), post["runs"][s], post["seconds"][s]))
    for d in DOMAINS:
        expert = work / "runs" / f"expert_{d}"
        lines.append(energy_row(f"FlexOlmo expert {d}", expert, r["expert_s"][d]))
    lines += [
        "",
        "## FlexOlmo: held-out loss (nats/token) per domain",
        "",
        f"Public model = the pretrained BPE model; each expert trained alone for "
        f"{plan.expert_steps} steps on its domain (anchor and attention frozen); merged by "
        f"domain-embedding router rows, top-2 ({r['flex_s']:.0f} s in all).",
        "",
        "| model | " + " | ".join(DOMAINS) + " |",
        "|---|" + "---:|" * len(DOMAINS),
    ]
    for name, row in r["flex"].items():
        lines.append(f"| {name} | " + " | ".join(f"{row[d]:.3f}" for d in DOMAINS) + " |")
    return lines


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="a few minutes instead of ~30")
    p.add_argument("--work", default=None, help="working folder (default: a temporary one)")
    p.add_argument("--out", default=str(REPO / "bench" / "results" / "lm_report.md"))
    args = p.parse_args(argv)
    if args.work is not None:
        run(args.quick, Path(args.work), Path(args.out))
        return
    with tempfile.TemporaryDirectory(prefix="lm_report_") as work:
        run(args.quick, Path(work), Path(args.out))


if __name__ == "__main__":
    main()
