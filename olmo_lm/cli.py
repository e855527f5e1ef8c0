"""``olmo-lm``: a thin command line over the language-model training, generation and
conversion functions (each callable from Python with the same arguments)."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

from earthplat.traincore.errors import TrainCoreConfigError
from earthplat.traincore.optim import OptimizerConfig, SchedulerConfig
from earthplat.traincore.trainer import TrainerConfig
from olmo_lm.data.text import TextDataConfig
from olmo_lm.model.config import TransformerConfig
from olmo_lm.train.pretrain import LMLossConfig


@dataclass
class PretrainJobConfig:
    """One language-model pretraining run (what ``config.yaml`` of the run records)."""

    model: TransformerConfig = field(default_factory=TransformerConfig.tiny)
    data: TextDataConfig = field(default_factory=TextDataConfig)
    trainer: TrainerConfig = field(default_factory=lambda: TrainerConfig(max_steps=200))
    optimizer: OptimizerConfig = field(default_factory=lambda: OptimizerConfig(lr=3e-3))
    scheduler: SchedulerConfig = field(default_factory=lambda: SchedulerConfig(warmup_steps=20))
    loss: LMLossConfig = field(default_factory=LMLossConfig)
    init_from: str | None = None
    """Start from these weights (a model directory, transformers checkpoint or run)."""
    max_tokens: int | None = None
    """Train for this many tokens (sets ``trainer.max_steps`` from the global batch)."""
    activation_checkpointing: bool = False
    """Recompute each block's activations in backward (memory for compute)."""
    compile: bool = False
    """``torch.compile`` each block."""

    def steps_for_tokens(self) -> int | None:
        """``max_tokens`` as optimizer steps: tokens / (batch x seq_len x ranks x accum)."""
        if self.max_tokens is None:
            return None
        t = self.trainer
        ranks = (t.devices if isinstance(t.devices, int) else 1) * t.num_nodes
        ranks //= t.tensor_parallel_size  # tensor-parallel ranks share one batch
        per_step = self.data.batch_size * self.data.seq_len * ranks * t.accumulate_grad_batches
        return max(1, -(-self.max_tokens // per_step))


def run_pretraining(job: PretrainJobConfig) -> dict[str, float]:
    """Pretrain a causal LM; resumes from the run directory's last checkpoint if there is one."""
    import lightning as L

    from earthplat.traincore.trainer import fit
    from olmo_lm.train.pretrain import CausalLMModule, build_data_module

    if job.model.max_seq_len < job.data.seq_len:
        job.model.max_seq_len = job.data.seq_len
    steps = job.steps_for_tokens()
    if steps is not None:
        job.trainer.max_steps = steps
    L.seed_everything(job.trainer.seed, workers=True, verbose=False)
    module = CausalLMModule(
        job.model,
        job.data.seq_len,
        job.optimizer,
        job.scheduler,
        job.loss,
        # under FSDP2 no rank builds the whole model: shards are allocated after sharding
        init_device="meta" if job.trainer.strategy == "fsdp" and job.init_from is None else "cpu",
        activation_checkpointing=job.activation_checkpointing,
        compile_blocks=job.compile,
    )
    if job.init_from is not None:
        from olmo_lm.model.store import load_state

        cfg, state, _ = load_state(job.init_from)
        if (cfg.d_model, cfg.n_layers, cfg.vocab_size) != (
            job.model.d_model,
            job.model.n_layers,
            job.model.vocab_size,
        ):
            raise TrainCoreConfigError(
                f"--init_from {job.init_from} holds a different model than --model; leave "
                "--model out to train the one it holds"
            )
        module.model.load_state_dict(state, strict=not cfg.tie_embeddings)
    data = build_data_module(job.data)
    trainer = fit(job.trainer, module, data, config_to_save=job)
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    if trainer.is_global_zero:
        print(f"run directory: {Path(job.trainer.run_dir).resolve()}")
        shown = {k: v for k, v in metrics.items() if "/expert_load/" not in k}
        print("final metrics: " + ", ".join(f"{k}={v:.4f}" for k, v in sorted(shown.items())))
    return metrics


def train(
    model: TransformerConfig | None = None,
    data: TextDataConfig | None = None,
    trainer: TrainerConfig | None = None,
    optimizer: OptimizerConfig | None = None,
    scheduler: SchedulerConfig | None = None,
    loss: LMLossConfig | None = None,
    init_from: str | None = None,
    max_tokens: int | None = None,
    activation_checkpointing: bool = False,
    compile: bool = False,
) -> dict[str, float]:
    """Pretrain a causal LM; re-running the same command resumes an interrupted run.

    ``--init_from DIR`` starts from converted weights (``olmo-lm convert --from-hf``); its
    architecture is used when ``--model`` is not given. ``--max_tokens`` gives the duration in
    tokens instead of ``--trainer.max_steps``.

    Args:
        model: The decoder (a preset's fields, or a full TransformerConfig).
        data: The text, tokenizer, sequence length and batch size.
        trainer: How the run is trained (run dir, strategy, devices, precision, steps...).
        optimizer: AdamW settings.
        scheduler: Learning-rate schedule (warmup, then cosine, linear or WSD decay).
        loss: Extra loss terms (z-loss, MoE load balancing and router z-loss weights).
        init_from: Start from these weights: a model directory, a transformers checkpoint or a
            run directory.
        max_tokens: Train for this many tokens (sets --trainer.max_steps from the global batch).
        activation_checkpointing: Recompute each block's activations in backward.
        compile: torch.compile each block.
    """
    defaults = PretrainJobConfig()
    if model is None and init_from is not None:
        from olmo_lm.model.store import load_state

        model = load_state(init_from)[0]
    job = PretrainJobConfig(
        model=model or defaults.model,
        data=data or defaults.data,
        trainer=trainer or defaults.trainer,
        optimizer=optimizer or defaults.optimizer,
        scheduler=scheduler or defaults.scheduler,
        loss=loss or defaults.loss,
        init_from=init_from,
        max_tokens=max_tokens,
        activation_checkpointing=activation_checkpointing,
        compile=compile,
    )
    return run_pretraining(job)


def _run_tokenizer(run_dir: Path, tokenizer: str | None):
    """The tokenizer named, else the model directory's tokenizer.json, else the run's."""
    from olmo_lm.post.common import model_tokenizer

    return model_tokenizer(run_dir, tokenizer)


def generate(
    run_dir: str,
    prompt: str = "\n",
    max_new_tokens: int = 200,
    temperature: float = 0.8,
    top_k: int | None = 40,
    top_p: float = 1.0,
    stop: list[str] | None = None,
    seed: int = 0,
    tokenizer: str | None = None,
    use_cache: bool = True,
) -> str:
    """Sample text from a run directory, a model directory or a transformers checkpoint.

    Prints the prompt and its continuation, and tokens/s to stderr.

    Args:
        run_dir: A run directory (its last checkpoint), a model directory or a transformers
            checkpoint directory.
        prompt: The text to continue.
        max_new_tokens: Most tokens to generate.
        temperature: Sampling temperature (0: greedy).
        top_k: Sample from the k most likely tokens (null: all).
        top_p: Sample from the smallest set of tokens whose probability reaches p.
        stop: Strings that end the generation.
        seed: Seeds the sampling.
        tokenizer: A tokenizer.json (or its folder) to use instead of the model's own.
        use_cache: Decode with the KV / recurrent-state cache (off: recompute every step).
    """
    import torch

    from olmo_lm.generate import SamplingConfig
    from olmo_lm.generate import generate as generate_tokens
    from olmo_lm.model.store import load_model

    model, token_ids = load_model(run_dir)
    tok = _run_tokenizer(Path(run_dir), tokenizer)
    eos = token_ids.get("eos_token_id", tok.eos_id)
    sampling = SamplingConfig(
        temperature=temperature,
        top_k=top_k,
        top_p=top_p,
        stop_strings=list(stop or []),
        stop_ids=[eos] if isinstance(eos, int) else [],
    )
    ids = torch.tensor([tok.encode(prompt)], dtype=torch.long)
    result = generate_tokens(
        model,
        ids,
        max_new_tokens,
        sampling,
        generator=torch.Generator().manual_seed(seed),
        use_cache=use_cache,
        tokenizer=tok,
    )
    text = prompt + result.texts[0]
    print(text)
    print(
        f"{len(result.new_tokens[0])} tokens, {result.tokens_per_second:.1f} tokens/s",
        file=sys.stderr,
    )
    return text


def convert(
    out: str,
    from_hf: str | None = None,
    to_hf: str | None = None,
    dtype: str | None = None,
    max_shard_gb: float = 5.0,
) -> str:
    """Convert checkpoints between olmo-lm and the transformers layout.

    ``--from-hf DIR``: a transformers checkpoint (config.json + safetensors) into an olmo-lm
    model directory; ``--to-hf RUN``: a run directory (or model directory) into a transformers
    checkpoint (sharded safetensors + config.json) for transformers and vLLM. Tokenizer files
    beside the source are copied.

    Args:
        out: The directory to write.
        from_hf: A transformers checkpoint directory to convert into an olmo-lm model
            directory (also --from-hf).
        to_hf: A run or model directory to convert into a transformers checkpoint (also
            --to-hf).
        dtype: Cast the weights (bfloat16, float16, float32).
        max_shard_gb: Largest safetensors shard in GB (also --max-shard-gb).
    """
    import torch

    from olmo_lm import hf
    from olmo_lm.model.store import load_state, save_model_dir

    if (from_hf is None) == (to_hf is None):
        raise TrainCoreConfigError("pass exactly one of --from-hf DIR or --to-hf RUN")
    cast = None
    if dtype is not None:
        cast = getattr(torch, dtype, None)
        if not isinstance(cast, torch.dtype):
            raise TrainCoreConfigError(f"--dtype {dtype!r} is not a torch dtype (e.g. bfloat16)")
    if from_hf is not None:
        cfg, state, token_ids = hf.load_hf(from_hf)
        if cast is not None:
            state = {k: v.to(cast) for k, v in state.items()}
        save_model_dir(cfg, state, out, token_ids=token_ids, tokenizer_dir=from_hf)
        print(f"{hf.family_of(cfg)} model ({cfg.num_params():,} parameters) written to {out}")
        return out
    cfg, state, token_ids = load_state(to_hf)
    tokenizer_dir = Path(to_hf)
    saved = tokenizer_dir / "config.yaml"
    if not (tokenizer_dir / "tokenizer.json").exists() and saved.exists():
        import yaml

        data = (yaml.safe_load(saved.read_text()) or {}).get("data") or {}
        if data.get("tokenizer"):
            tokenizer_dir = Path(data["tokenizer"])
            tokenizer_dir = tokenizer_dir if tokenizer_dir.is_dir() else tokenizer_dir.parent
    hf.save_hf(
        cfg,
        state,
        out,
        dtype=cast,
        max_shard_bytes=int(max_shard_gb * 1024**3),
        tokenizer_dir=tokenizer_dir,
        **token_ids,
    )
    print(f"{hf.family_of(cfg)} checkpoint written to {out}")
    return out


def tokenizer_train(
    input: str | list[str],
    vocab_size: int,
    out: str,
    glob: str | None = None,
    split_paragraphs: bool = False,
    text_field: str = "text",
    min_frequency: int = 2,
) -> str:
    """Train a byte-level BPE tokenizer; writes OUT/tokenizer.json and tokenizer_config.json.

    Its special tokens: <|endoftext|> (EOS), <|startoftext|> (BOS), <|pad|>, and the chat
    template's <|system|>, <|user|>, <|assistant|>.

    Args:
        input: Document files or folders (.txt: one document per file; .jsonl: a text field).
        vocab_size: Vocabulary size, special tokens included (at least 262).
        out: The folder to write.
        glob: Files of a folder to read (default: .txt and .jsonl[.gz]; e.g. '**/*.py').
        split_paragraphs: Split .txt files into documents at blank lines.
        text_field: The JSONL field holding the text.
        min_frequency: Fewest occurrences of a pair to merge it.
    """
    from olmo_lm.data.bpe import train_bpe

    tok = train_bpe(
        input,
        vocab_size,
        out,
        glob=glob,
        split_paragraphs=split_paragraphs,
        text_field=text_field,
        min_frequency=min_frequency,
    )
    print(f"tokenizer of {tok.vocab_size} tokens written to {Path(out) / 'tokenizer.json'}")
    return out


def tokenize(
    input: str | list[str],
    out: str,
    tokenizer: str | None = None,
    glob: str | None = None,
    split_paragraphs: bool = False,
    text_field: str = "text",
    workers: int = 1,
    progress: bool = True,
) -> list[str]:
    """Tokenize documents into token shards (.npy memmaps, EOS after every document).

    One shard per input file: NAME.npy, NAME.offsets.npy (document offsets) and NAME.json
    (metadata, written last). Re-running skips finished shards.

    Args:
        input: Document files or folders (.txt: one document per file; .jsonl: a text field).
        out: The folder to write the shards to.
        tokenizer: A tokenizer.json or its folder (default: bytes).
        glob: Files of a folder to read (default: .txt and .jsonl[.gz]; e.g. '**/*.py').
        split_paragraphs: Split .txt files into documents at blank lines.
        text_field: The JSONL field holding the text.
        workers: Files tokenized in parallel (processes).
        progress: Show a progress bar.
    """
    from olmo_lm.data.shards import TokenShard, tokenize_files

    metas = tokenize_files(
        input,
        tokenizer,
        out,
        glob=glob,
        split_paragraphs=split_paragraphs,
        text_field=text_field,
        workers=workers,
        progress=progress,
    )
    shards = [TokenShard.open(m).meta for m in metas]
    docs, tokens = sum(m["documents"] for m in shards), sum(m["tokens"] for m in shards)
    print(f"{len(shards)} shards, {docs:,} documents, {tokens:,} tokens in {out}")
    return [str(m) for m in metas]


def curate_tag(
    documents: str | list[str],
    taggers: list[str] | None = None,
    experiment: str = "tags",
    glob: str | None = None,
) -> list[str]:
    """Tag documents (Dolma JSONL) with per-document attributes.

    Writes ROOT/attributes/EXPERIMENT/REL.jsonl for every ROOT/documents/REL.jsonl.

    Args:
        documents: Documents files or folders.
        taggers: Taggers to run (default: all of length, repetition, char_classes).
        experiment: Name of the attributes folder.
        glob: Files of a folder to read (default: .jsonl[.gz] and .txt).
    """
    from olmo_lm.data.curation.taggers import TAGGERS, tag_files

    written = tag_files(documents, taggers or list(TAGGERS), experiment, glob=glob)
    print(f"attributes of {len(written)} documents files written ({experiment})")
    return [str(p) for p in written]


def curate_dedup(
    documents: str | list[str],
    experiment: str = "dedup",
    glob: str | None = None,
    min_paragraph_chars: int = 20,
    threshold: float = 0.7,
    bands: int = 20,
    rows: int = 6,
    ngram: int = 5,
    seed: int = 0,
) -> dict[str, int]:
    """Tag exact duplicate paragraphs (Bloom filter) and near-duplicate documents (MinHash LSH).

    Args:
        documents: Documents files or folders, deduplicated together.
        experiment: Name of the attributes folder.
        glob: Files of a folder to read.
        min_paragraph_chars: Shorter paragraphs are never called duplicates.
        threshold: Estimated Jaccard similarity at which documents are near duplicates.
        bands: LSH bands.
        rows: Signature rows per band (bands x rows permutations).
        ngram: Words per shingle.
        seed: Seeds the MinHash permutations.
    """
    from olmo_lm.data.curation.dedup import dedup_files

    counts = dedup_files(
        documents,
        experiment,
        glob=glob,
        min_paragraph_chars=min_paragraph_chars,
        threshold=threshold,
        bands=bands,
        rows=rows,
        ngram=ngram,
        seed=seed,
    )
    print(", ".join(f"{k}={v}" for k, v in counts.items()))
    return counts


def curate_filter(
    documents: str | list[str],
    out: str,
    attributes: str | list[str],
    exclude: str | None = None,
    include: str | None = None,
    drop_duplicate_paragraphs: bool = False,
    glob: str | None = None,
) -> dict[str, int]:
    """Keep the documents whose attributes pass; write them to OUT/documents/.

    Args:
        documents: Documents files or folders.
        out: Folder of the filtered documents.
        attributes: Experiments whose attributes the rules read (e.g. '[tags,dedup]').
        exclude: Drop documents for which this is true, e.g.
            'length__words < 50 or near__duplicate == 1'.
        include: Keep only documents for which this is true.
        drop_duplicate_paragraphs: Cut the exact duplicate paragraphs dedup found.
        glob: Files of a folder to read.
    """
    from olmo_lm.data.curation.filter import filter_files

    experiments = [attributes] if isinstance(attributes, str) else attributes
    counts = filter_files(
        documents,
        out,
        experiments,
        exclude=exclude,
        include=include,
        drop_duplicate_paragraphs=drop_duplicate_paragraphs,
        glob=glob,
    )
    print(", ".join(f"{k}={v}" for k, v in counts.items()))
    return counts


def corpus(
    out: str,
    shakespeare: str = TextDataConfig.path,
    domains: list[str] | None = None,
    seed: int = 0,
    limit: int | None = None,
) -> dict[str, str]:
    """Write the real three-domain corpus as Dolma documents: OUT/documents/DOMAIN.jsonl.

    Literature is Tiny Shakespeare, code the standard library's .py files, math generated
    arithmetic worksheets with their answers.

    Args:
        out: The folder to write.
        shakespeare: Path of tinyshakespeare.txt.
        domains: Some of literature, code, math (default: all).
        seed: Seeds the math problems.
        limit: Most documents per domain.
    """
    from olmo_lm.data.corpora import DOMAINS, write_corpus

    files = write_corpus(
        out, shakespeare=shakespeare, domains=tuple(domains or DOMAINS), seed=seed, limit=limit
    )
    for domain, path in files.items():
        print(f"{domain}: {path}")
    return {k: str(v) for k, v in files.items()}


def mixture(mixture: str, seq_len: int = 128, seed: int = 0, instances: int | None = None):
    """Describe a mixture: per source its sequences, share and implied repetitions.

    Args:
        mixture: The mixture YAML.
        seq_len: Tokens per training sequence.
        seed: Seed of the data order.
        instances: Sequences the run will draw (default: one epoch).
    """
    from olmo_lm.data.mixture import MixtureConfig, MixtureDataset

    ds = MixtureDataset(MixtureConfig.from_yaml(mixture), seq_len, seed)
    rows = ds.describe(instances)
    for r in rows:
        print(
            f"{r['name']}: {r['sequences']:,} sequences, share {r['share']:.3f} (natural "
            f"{r['natural_share']:.3f}), repetitions {r['repetitions']:.2f}"
        )
    return rows


def sft(
    model: str,
    data: str,
    tokenizer: str | None = None,
    seq_len: int = 256,
    batch_size: int = 8,
    pack: bool = True,
    trainer: TrainerConfig | None = None,
    optimizer: OptimizerConfig | None = None,
    scheduler: SchedulerConfig | None = None,
) -> dict[str, float]:
    """Supervised fine-tuning on chat conversations (loss on assistant tokens only).

    Writes RUN/model (the next stage's --model). Re-running resumes an interrupted run.

    Args:
        model: The starting model: a run directory, a model directory or a transformers
            checkpoint.
        data: Messages JSONL: one {"messages": [{"role", "content"}, ...]} per line.
        tokenizer: A tokenizer.json or its folder (default: the model's own).
        seq_len: Tokens per packed row.
        batch_size: Rows per micro-batch and device.
        pack: Pack several conversations per row.
        trainer: How the run is trained (run dir, devices, steps...).
        optimizer: AdamW settings.
        scheduler: Learning-rate schedule.
    """
    from olmo_lm.post.sft import SFTDataConfig, SFTJobConfig, run_sft

    job = SFTJobConfig(
        model=model,
        data=SFTDataConfig(
            path=data, tokenizer=tokenizer, seq_len=seq_len, batch_size=batch_size, pack=pack
        ),
    )
    job.trainer = trainer or job.trainer
    job.optimizer = optimizer or job.optimizer
    job.scheduler = scheduler or job.scheduler
    return run_sft(job)


def dpo(
    model: str,
    pairs: str,
    beta: float = 5.0,
    loss_type: str = "dpo_norm",
    reference: str = "precompute",
    tokenizer: str | None = None,
    seq_len: int = 256,
    batch_size: int = 8,
    trainer: TrainerConfig | None = None,
    optimizer: OptimizerConfig | None = None,
    scheduler: SchedulerConfig | None = None,
) -> dict[str, float]:
    """Direct preference optimisation from preference pairs (Tulu 3's length-normalised DPO
    by default). Writes RUN/model.

    Args:
        model: The starting and reference model (a run or model directory).
        pairs: Pairs JSONL: {"prompt", "chosen", "rejected"} per line.
        beta: DPO's beta (Tulu 3: 5 with dpo_norm, 0.1 with dpo).
        loss_type: dpo (summed log-probabilities) or dpo_norm (length-normalised).
        reference: precompute (score all pairs first) or live (a frozen copy).
        tokenizer: A tokenizer.json or its folder (default: the model's own).
        seq_len: Tokens per prompt + response.
        batch_size: Pairs per micro-batch and device.
        trainer: How the run is trained.
        optimizer: AdamW settings.
        scheduler: Learning-rate schedule.
    """
    from olmo_lm.post.dpo import DPOConfig, DPODataConfig, DPOJobConfig, run_dpo

    job = DPOJobConfig(
        model=model,
        data=DPODataConfig(path=pairs, tokenizer=tokenizer, seq_len=seq_len, batch_size=batch_size),
        dpo=DPOConfig(beta=beta, loss_type=loss_type, reference=reference),
    )
    job.trainer = trainer or job.trainer
    job.optimizer = optimizer or job.optimizer
    job.scheduler = scheduler or job.scheduler
    return run_dpo(job)


def rlvr(
    model: str,
    problems: str = "corpus",
    n: int = 512,
    max_operand: int = 9,
    group_size: int = 8,
    max_new_tokens: int = 8,
    kl_coef: float = 0.0,
    batch_size: int = 8,
    tokenizer: str | None = None,
    trainer: TrainerConfig | None = None,
    optimizer: OptimizerConfig | None = None,
) -> dict[str, float]:
    """RL with verifiable rewards (GRPO group baseline) on arithmetic problems whose answers
    are checked. Writes RUN/model.

    Args:
        model: The starting model (a run or model directory).
        problems: corpus (the math corpus's problems) or simple (a op b).
        n: Problems to draw.
        max_operand: Largest operand of simple problems.
        group_size: Completions sampled per problem.
        max_new_tokens: Tokens sampled per completion.
        kl_coef: Weight of KL(policy || starting model).
        batch_size: Problems per step.
        tokenizer: A tokenizer.json or its folder (default: the model's own).
        trainer: How the run is trained.
        optimizer: AdamW settings.
    """
    from olmo_lm.post.rlvr import GRPOConfig, ProblemConfig, RLVRJobConfig, run_rlvr

    job = RLVRJobConfig(
        model=model,
        tokenizer=tokenizer,
        problems=ProblemConfig(source=problems, n=n, max_operand=max_operand),
        grpo=GRPOConfig(group_size=group_size, max_new_tokens=max_new_tokens, kl_coef=kl_coef),
        batch_size=batch_size,
    )
    job.trainer = trainer or job.trainer
    job.optimizer = optimizer or job.optimizer
    return run_rlvr(job)


def reward_train(
    model: str,
    pairs: str,
    tokenizer: str | None = None,
    seq_len: int = 256,
    batch_size: int = 8,
    trainer: TrainerConfig | None = None,
    optimizer: OptimizerConfig | None = None,
    scheduler: SchedulerConfig | None = None,
) -> dict[str, float]:
    """Train a Bradley-Terry reward model on preference pairs; writes RUN/model with its head.

    Args:
        model: The backbone to start from (a run or model directory).
        pairs: Pairs JSONL: {"prompt", "chosen", "rejected"} per line.
        tokenizer: A tokenizer.json or its folder (default: the model's own).
        seq_len: Tokens per prompt + response.
        batch_size: Pairs per micro-batch and device.
        trainer: How the run is trained.
        optimizer: AdamW settings.
        scheduler: Learning-rate schedule.
    """
    from olmo_lm.post.dpo import DPODataConfig
    from olmo_lm.post.reward import RewardJobConfig, run_reward_training

    job = RewardJobConfig(
        model=model,
        data=DPODataConfig(path=pairs, tokenizer=tokenizer, seq_len=seq_len, batch_size=batch_size),
    )
    job.trainer = trainer or job.trainer
    job.optimizer = optimizer or job.optimizer
    job.scheduler = scheduler or job.scheduler
    return run_reward_training(job)


def eval_rewardbench(
    model: str,
    pairs: str,
    tokenizer: str | None = None,
    seq_len: int = 512,
    out: str | None = None,
) -> dict:
    """RewardBench accuracy of a reward model: chosen must outscore rejected (all of them,
    for RewardBench 2's lists), per category and averaged over categories.

    Args:
        model: A reward run directory (olmo-lm reward train) or its model/ folder.
        pairs: Pairs JSONL with an optional "category" (or "subset") per line.
        tokenizer: A tokenizer.json or its folder (default: the model's own).
        seq_len: Tokens per prompt + response.
        out: Also write the report as JSON here.
    """
    import json

    from olmo_lm.post.common import model_tokenizer
    from olmo_lm.post.preference import read_pairs
    from olmo_lm.post.reward import evaluate_pairs, load_reward_model

    backbone, head = load_reward_model(model)
    tok = model_tokenizer(model, tokenizer)
    report = evaluate_pairs(backbone, head, tok, read_pairs(pairs), seq_len=seq_len)
    for name, c in report["categories"].items():
        print(f"{name}: {c['accuracy']:.3f} ({c['pairs']} pairs)")
    print(f"mean over categories: {report['mean']:.3f}; all pairs: {report['overall']:.3f}")
    if out is not None:
        Path(out).write_text(json.dumps(report, indent=2))
    return report


_ALIASES = {"--from-hf": "--from_hf", "--to-hf": "--to_hf", "--max-shard-gb": "--max_shard_gb"}


def _alias(arg: str) -> str:
    """``--from-hf`` spelled as the issue and docs do -> the parameter name ``--from_hf``."""
    name, sep, value = arg.partition("=")
    return _ALIASES.get(name, name) + sep + value


def commands() -> dict:
    """The subcommands: name -> function."""
    return {
        "train": train,
        "generate": generate,
        "convert": convert,
        "tokenizer": {"train": tokenizer_train},
        "tokenize": tokenize,
        "mixture": mixture,
        "corpus": corpus,
        "curate": {"tag": curate_tag, "dedup": curate_dedup, "filter": curate_filter},
        "sft": sft,
        "dpo": dpo,
        "rlvr": rlvr,
        "reward": {"train": reward_train},
        "eval": {"rewardbench": eval_rewardbench},
    }


def main(argv: list[str] | None = None) -> None:
    """The ``olmo-lm`` command. Expected errors print what was wrong and the fix, and exit 2;
    ``--debug`` shows their traceback."""
    from jsonargparse import CLI, set_parsing_settings

    args = list(sys.argv[1:] if argv is None else argv)
    args = [_alias(a) for a in args]
    debug = "--debug" in args
    if debug:
        args.remove("--debug")
    # the configs' fields document themselves in attribute docstrings: those are the flags' help
    set_parsing_settings(docstring_parse_attribute_docstrings=True)
    try:
        CLI(
            commands(),
            args=args,
            as_positional=False,
            description="OLMo-family language models on the earthplat training core. Add "
            "--debug to any command for the traceback of an error.",
        )
    except TrainCoreConfigError as e:
        if debug:
            raise
        print(f"olmo-lm: error: {e}", file=sys.stderr)
        raise SystemExit(2) from None


__all__ = [
    "PretrainJobConfig",
    "convert",
    "corpus",
    "curate_dedup",
    "curate_filter",
    "curate_tag",
    "dpo",
    "eval_rewardbench",
    "generate",
    "main",
    "mixture",
    "reward_train",
    "rlvr",
    "run_pretraining",
    "sft",
    "tokenize",
    "tokenizer_train",
    "train",
]
