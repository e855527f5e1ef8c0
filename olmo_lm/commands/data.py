"""The Dolma-style data commands: ``corpus``, ``tokenizer train``, ``tokenize``, ``curate
{tag,dedup,filter}`` and ``mixture``."""

from __future__ import annotations

from pathlib import Path

from olmo_lm.data.text import TextDataConfig


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
