"""The data and stages of ``bench.lm_report``: the corpus, the BPE and token shards, the
baselines' and models' held-out NLL, pretraining, the chat data, SFT -> DPO -> RLVR, and the
FlexOlmo experts, each through the library the CLI uses."""

from __future__ import annotations

import json
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

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
            1000,
            300,
            150,
            120,
            120,
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
        grpo=GRPOConfig(group_size=8, max_new_tokens=6, prompt="chat"),
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
