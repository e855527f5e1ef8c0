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
import random
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from bench.report import publish

REPO = Path(__file__).resolve().parents[1]
SHAKESPEARE = REPO.parent / "shared" / "data" / "text" / "tinyshakespeare.txt"
DOMAINS = ("literature", "code", "math")
WEIGHTS = {"literature": 0.4, "code": 0.35, "math": 0.25}


def post_problems(n: int, seed: int):
    """The post-training arithmetic: ``a +- b`` with operands to 20 (the math corpus's nested
    problems to 99 are beyond a few-million-parameter model's reach in minutes)."""
    from olmo_lm.post.rlvr import ProblemConfig

    return ProblemConfig(source="simple", n=n, seed=seed, max_operand=20, ops="+-")


@dataclass
class Plan:
    """Sizes of one run (``quick`` or ``full``)."""

    docs: dict[str, int]
    vocab: int
    d_model: int
    n_layers: int
    n_heads: int
    mlp_hidden: int
    seq_len: int
    batch: int
    pretrain_steps: int
    sft_steps: int
    dpo_steps: int
    rlvr_steps: int
    expert_steps: int
    eval_windows: int
    chats: int

    @classmethod
    def quick(cls) -> Plan:
        return cls(
            {"literature": 120, "code": 40, "math": 120},
            1024,
            96,
            2,
            4,
            256,
            128,
            8,
            80,
            40,
            20,
            6,
            25,
            24,
            400,
        )

    @classmethod
    def full(cls) -> Plan:
        return cls(
            {"literature": 10**6, "code": 400, "math": 1500},
            4096,
            192,
            4,
            4,
            512,
            256,
            16,
            1500,
            300,
            150,
            40,
            200,
            200,
            4000,
        )


def _trainer(run_dir: Path, steps: int, seed: int = 0):
    from earthplat.traincore.trainer import TrainerConfig

    return TrainerConfig(
        run_dir=str(run_dir),
        accelerator="cpu",
        devices=1,
        max_steps=steps,
        enable_progress_bar=False,
        log_every_n_steps=max(1, steps // 10),
        seed=seed,
    )


# --- data ---------------------------------------------------------------------------------------
def build_data(work: Path, plan: Plan) -> dict:
    """Corpus split, BPE, and token shards of both tokenizers: paths and byte counts."""
    from olmo_lm.data.bpe import train_bpe
    from olmo_lm.data.corpora import domain_documents
    from olmo_lm.data.documents import write_documents
    from olmo_lm.data.shards import tokenize_files

    docs_root, info = work / "documents", {"bytes": {}}
    for d in DOMAINS:
        docs = list(domain_documents(d, shakespeare=SHAKESPEARE, seed=0, limit=plan.docs[d]))
        cut = max(1, len(docs) // 10)
        write_documents(docs_root / "train" / f"{d}.jsonl", docs[:-cut])
        write_documents(docs_root / "val" / f"{d}.jsonl", docs[-cut:])
        info["bytes"][d] = sum(len(x.text.encode()) for x in docs[-cut:])
    tok = work / "tok"
    train_bpe(docs_root / "train", plan.vocab, tok)
    for name, tokenizer in (("bpe", tok), ("bytes", None)):
        for split in ("train", "val"):
            for d in DOMAINS:
                tokenize_files(
                    docs_root / split / f"{d}.jsonl",
                    tokenizer,
                    work / name / split / d,
                    progress=False,
                )
        lines = ["sources:"]
        for d in DOMAINS:
            lines.append(f"  - {{name: {d}, paths: [{name}/train/{d}], weight: {WEIGHTS[d]}}}")
        (work / f"mix_{name}.yaml").write_text("\n".join(lines) + "\n")
    info["tok"] = tok
    return info


def unigram_nll(work: Path, name: str, vocab: int) -> dict[str, tuple[float, int]]:
    """Per domain (summed NLL in nats of the held-out targets, their count) under add-one
    smoothed token frequencies of all training shards."""
    from olmo_lm.data.shards import TokenShard, find_shards

    counts = np.ones(vocab, dtype=np.float64)
    for d in DOMAINS:
        for meta in find_shards(work / name / "train" / d):
            counts += np.bincount(np.asarray(TokenShard.open(meta).tokens), minlength=vocab)
    logp = np.log(counts / counts.sum())
    out = {}
    for d in DOMAINS:
        toks = np.concatenate(
            [np.asarray(TokenShard.open(m).tokens) for m in find_shards(work / name / "val" / d)]
        )
        out[d] = (float(-logp[toks[1:]].sum()), len(toks) - 1)
    return out


@torch.no_grad()
def model_nll(model, shard_dir: Path, seq_len: int, windows: int, masked: bool):
    """(summed NLL in nats, targets) of the first ``windows`` held-out windows of a shard."""
    from olmo_lm.data.mixture import SequentialSequences

    model.eval()
    ds = SequentialSequences([str(shard_dir)], seq_len, documents=masked)
    n = min(len(ds), windows)
    total, count = 0.0, 0
    for start in range(0, n, 16):
        items = [ds[k] for k in range(start, min(n, start + 16))]
        if masked:
            ids = torch.stack([x["input_ids"] for x in items])
            docs = torch.stack([x["doc_ids"] for x in items])[:, :-1]
        else:
            ids, docs = torch.stack(items), None
        ce = model(ids[:, :-1], labels=ids[:, 1:], doc_ids=docs).ce_loss
        total, count = total + float(ce) * ids[:, 1:].numel(), count + ids[:, 1:].numel()
    return total, count


def tokens_per_byte(work: Path, name: str, d: str, n_bytes: int) -> float:
    from olmo_lm.data.shards import TokenShard, find_shards

    toks = sum(TokenShard.open(m).meta["tokens"] for m in find_shards(work / name / "val" / d))
    return toks / n_bytes


def quality(nll: float, count: int, tpb: float) -> dict[str, float]:
    """Per-token loss and perplexity, and bits per byte (comparable across tokenizers)."""
    mean = nll / max(count, 1)
    return {"loss": mean, "ppl": math.exp(mean), "bpb": mean / math.log(2) * tpb}


# --- stages -------------------------------------------------------------------------------------
def pretrain(work: Path, plan: Plan, name: str, tok) -> tuple[Path, float]:
    from olmo_lm.commands.train import PretrainJobConfig, run_pretraining
    from olmo_lm.data.text import TextDataConfig
    from olmo_lm.data.tokenizer import load_tokenizer
    from olmo_lm.model.config import TransformerConfig

    vocab = load_tokenizer(tok).vocab_size
    model = TransformerConfig(
        vocab_size=vocab,
        d_model=plan.d_model,
        n_layers=plan.n_layers,
        n_heads=plan.n_heads,
        mlp_hidden=plan.mlp_hidden,
        max_seq_len=plan.seq_len,
    )
    run = work / "runs" / f"pretrain_{name}"
    job = PretrainJobConfig(
        model=model,
        data=TextDataConfig(
            mixture=str(work / f"mix_{name}.yaml"),
            tokenizer=None if tok is None else str(tok),
            seq_len=plan.seq_len,
            batch_size=plan.batch,
            document_masking=True,
        ),
        trainer=_trainer(run, plan.pretrain_steps),
    )
    t0 = time.perf_counter()
    run_pretraining(job)
    return run, time.perf_counter() - t0


def chat_data(work: Path, plan: Plan, info: dict) -> tuple[Path, Path, list[tuple[str, int]]]:
    """SFT conversations and DPO pairs from the corpora; held-out arithmetic for evaluation."""
    from olmo_lm.data.corpora import evaluate
    from olmo_lm.post.rlvr import draw_problems

    rng = random.Random(0)
    problems = draw_problems(post_problems(n=plan.chats + 64, seed=11))
    train, held = problems[: plan.chats], problems[plan.chats :]
    shakespeare = [ln for ln in SHAKESPEARE.read_text().splitlines() if len(ln) > 20]
    lines = shakespeare[: plan.chats + 1]
    chats = []
    for k, expr in enumerate(train):
        chats.append(
            [
                {"role": "user", "content": f"What is {expr}?"},
                {"role": "assistant", "content": str(evaluate(expr))},
            ]
        )
        chats.append(
            [
                {"role": "user", "content": f"Continue: {lines[k]}"},
                {"role": "assistant", "content": lines[k + 1]},
            ]
        )
    rng.shuffle(chats)
    sft = work / "sft.jsonl"
    sft.write_text("".join(json.dumps({"messages": m}) + "\n" for m in chats))
    pairs = work / "pairs.jsonl"
    with pairs.open("w") as f:
        for expr in train:
            right = evaluate(expr)
            wrong = right + rng.choice([-10, -2, -1, 1, 2, 10])
            rec = {"prompt": f"What is {expr}?", "chosen": str(right), "rejected": str(wrong)}
            f.write(json.dumps(rec) + "\n")
    return sft, pairs, [(e, evaluate(e)) for e in held]


@torch.no_grad()
def chat_accuracy(model, tok, problems: list[tuple[str, int]]) -> float:
    """Greedy answers to held-out arithmetic questions in the chat template, checked."""
    from olmo_lm.generate import SamplingConfig, generate
    from olmo_lm.post.chat import encode_chat

    model.eval()
    right = 0
    for expr, answer in problems:
        prompt = encode_chat(
            tok, [{"role": "user", "content": f"What is {expr}?"}], add_generation_prompt=True
        ).ids
        ids = torch.tensor([prompt.tolist()], dtype=torch.long)
        sampling = SamplingConfig(temperature=0.0, stop_ids=[tok.eos_id])
        out = generate(model, ids, 8, sampling, tokenizer=tok)
        right += out.texts[0].strip().split("\n")[0].strip() == str(answer)
    return right / len(problems)


def post_train(work: Path, plan: Plan, start: Path, sft_data: Path, pairs: Path) -> dict:
    """SFT -> DPO -> RLVR from ``start``; run directory and seconds per stage."""
    from olmo_lm.post.dpo import DPOConfig, DPODataConfig, DPOJobConfig, run_dpo
    from olmo_lm.post.rlvr import GRPOConfig, RLVRJobConfig, run_rlvr
    from olmo_lm.post.sft import SFTDataConfig, SFTJobConfig, run_sft

    runs, times = work / "runs", {}
    t0 = time.perf_counter()
    sft = SFTJobConfig(
        model=str(start),
        data=SFTDataConfig(
            path=str(sft_data), seq_len=plan.seq_len, batch_size=plan.batch, document_masking=True
        ),
        trainer=_trainer(runs / "sft", plan.sft_steps),
    )
    run_sft(sft)
    times["sft"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    dpo = DPOJobConfig(
        model=str(runs / "sft" / "model"),
        data=DPODataConfig(path=str(pairs), seq_len=64, batch_size=plan.batch),
        dpo=DPOConfig(beta=5.0, loss_type="dpo_norm", reference="precompute"),
        trainer=_trainer(runs / "dpo", plan.dpo_steps),
    )
    run_dpo(dpo)
    times["dpo"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    rlvr = RLVRJobConfig(
        model=str(runs / "dpo" / "model"),
        problems=post_problems(n=plan.rlvr_steps * 8, seed=5),
        grpo=GRPOConfig(group_size=8, max_new_tokens=6),
        batch_size=8,
        trainer=_trainer(runs / "rlvr", plan.rlvr_steps),
    )
    run_rlvr(rlvr)
    times["rlvr"] = time.perf_counter() - t0
    return {"runs": {s: runs / s for s in ("sft", "dpo", "rlvr")}, "seconds": times}


def flexolmo(work: Path, plan: Plan, public, info: dict) -> dict[str, dict[str, float]]:
    """Per-domain held-out loss of the public model, each expert, the merge and the merge
    with each expert opted out."""
    from earthplat.traincore.trainer import fit
    from olmo_lm.data.mixture import SequentialSequences
    from olmo_lm.data.mixture_loader import MixtureDataModule
    from olmo_lm.data.text import TextDataConfig
    from olmo_lm.experts.flexolmo import ExpertTrainingModule, domain_embedding, merge, upcycle
    from olmo_lm.experts.moe_state import set_active

    def sample(d: str, n: int) -> torch.Tensor:
        ds = SequentialSequences([str(work / "bpe" / "train" / d)], plan.seq_len)
        return torch.stack([ds[k] for k in range(min(n, len(ds)))])[:, :-1]

    def losses(model) -> dict[str, float]:
        out = {}
        for d in DOMAINS:
            nll, n = model_nll(
                model, work / "bpe" / "val" / d, plan.seq_len, plan.eval_windows, masked=False
            )
            out[d] = nll / n
        return out

    public.eval()
    state = public.state_dict()
    anchor = domain_embedding(public, [torch.cat([sample(d, 8) for d in DOMAINS])])
    experts, rows, seconds = {}, {"public": losses(public)}, {}
    for k, d in enumerate(DOMAINS):
        (work / f"mix_{d}.yaml").write_text(
            f"sources:\n  - {{name: {d}, paths: [bpe/train/{d}], weight: 1}}\n"
        )
        cfg, moe_state = upcycle(
            public.config, state, anchor, domain_embedding(public, [sample(d, 16)])
        )
        module = ExpertTrainingModule(cfg, plan.seq_len, {"lr": 3e-3}, {"warmup_steps": 5})
        module.model.load_state_dict(moe_state)
        data = TextDataConfig(
            mixture=str(work / f"mix_{d}.yaml"), seq_len=plan.seq_len, batch_size=plan.batch
        )
        t0 = time.perf_counter()
        fit(
            _trainer(work / "runs" / f"expert_{d}", plan.expert_steps, seed=k),
            module,
            MixtureDataModule(data),
        )
        seconds[d] = time.perf_counter() - t0
        experts[d] = module.model.eval()
        rows[f"expert {d}"] = losses(experts[d])
    cfg, merged_state = merge(
        [experts[d].state_dict() for d in DOMAINS], experts["code"].config, names=list(DOMAINS)
    )
    merged = cfg.build().eval()
    merged.load_state_dict(merged_state)
    rows["merged"] = losses(merged)
    for k, d in enumerate(DOMAINS):
        set_active(merged, [e for e in range(len(DOMAINS) + 1) if e != k + 1])
        rows[f"merged, {d} opted out"] = losses(merged)
    set_active(merged, None)
    return rows, seconds


# --- the report ---------------------------------------------------------------------------------
def energy_row(stage: str, run: Path, seconds: float) -> str:
    e = json.loads((run / "energy.json").read_text())
    return (
        f"| {stage} | {seconds:.0f} | {e['duration_s']:.0f} | {e['energy_kwh'] * 1e3:.3f} | "
        f"{e['facility_energy_kwh'] * 1e3:.3f} | {e['co2e_kg'] * 1e3:.3f} | "
        f"{e['water_l'] * 1e3:.2f} | {e['energy_source']} |"
    )


def run(quick: bool, work: Path, out: Path) -> str:
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

    bytes_per_token = sum(ratios) / len(ratios)
    exprs = [e for e, _ in held]
    stage_eval = {
        name: (
            chat_accuracy(m, tok, held[:32]) if name != "pretrain (BPE)" else float("nan"),
            mean_reward(m, tok, exprs[:32], samples=4, seed=0, max_new_tokens=6),
        )
        for name, m in models.items()
    }
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
    total_s = time.perf_counter() - t_start

    mode = "quick" if quick else "full"
    lines = [
        f"# The real LM run (issue 17), {mode} mode",
        "",
        f"`python -m bench.lm_report{' --quick' if quick else ''}`: {n_params / 1e6:.2f}M-"
        f"parameter OLMo 2 model (d_model {plan.d_model}, {plan.n_layers} layers), BPE of "
        f"{tok.vocab_size} tokens trained on the training documents, sequences of {plan.seq_len}"
        f", batch {plan.batch}, document masking on; {total_s / 60:.1f} min wall on "
        f"{torch.get_num_threads()} CPU threads in all.",
        "",
        f"Pretraining: {plan.pretrain_steps} steps on the mixture {WEIGHTS}; the byte-level "
        "model is the same architecture on bytes for the same steps and sequence length (a "
        f"BPE token holds {bytes_per_token:.1f} bytes of held-out text on average, so the "
        "byte model sees that much less text). SFT, DPO and RLVR use `a +- b` problems "
        "(operands to 20). SFT "
        f"{plan.sft_steps} steps, DPO {plan.dpo_steps} (dpo_norm, beta 5), RLVR "
        f"{plan.rlvr_steps} (GRPO, groups of 8).",
        "",
        "## Held-out quality per domain",
        "",
        "bits/byte compares across tokenizers; loss (nats/token) and perplexity only within one.",
        "",
        "| domain | model | bits/byte | loss/token | perplexity/token |",
        "|---|---|---:|---:|---:|",
    ]
    for d in DOMAINS:
        for name, q in val[d].items():
            lines.append(f"| {d} | {name} | {q['bpb']:.3f} | {q['loss']:.3f} | {q['ppl']:.1f} |")
    lines += [
        "",
        "## Post-training: held-out arithmetic",
        "",
        "Chat accuracy: greedy answer to 32 held-out `What is E?` questions in the chat "
        "template. Mean reward: RLVR's checked reward, 4 samples each in the corpus format.",
        "",
        "| model | chat accuracy | mean reward |",
        "|---|---:|---:|",
    ]
    for name, (acc, rew) in stage_eval.items():
        lines.append(f"| {name} | {'-' if math.isnan(acc) else f'{acc:.3f}'} | {rew:.3f} |")
    lines += ["", "## Samples (pretrained BPE model, temperature 0.8, top-k 40)", ""]
    for text in samples.values():
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
        lines.append(energy_row(f"FlexOlmo expert {d}", work / "runs" / f"expert_{d}", expert_s[d]))
    lines += [
        "",
        "## FlexOlmo: held-out loss (nats/token) per domain",
        "",
        f"Public model = the pretrained BPE model; each expert trained alone for "
        f"{plan.expert_steps} steps on its domain (anchor and attention frozen); merged by "
        f"domain-embedding router rows, top-2 ({flex_s:.0f} s in all).",
        "",
        "| model | " + " | ".join(DOMAINS) + " |",
        "|---|" + "---:|" * len(DOMAINS),
    ]
    for name, row in flex.items():
        lines.append(f"| {name} | " + " | ".join(f"{row[d]:.3f}" for d in DOMAINS) + " |")
    return publish(lines, out)


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
