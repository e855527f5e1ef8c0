"""Our nano encoder beside the reference ``olmoearth-pretrain`` at identical configurations.

    python -m bench.olmoearth_compare [--repeats 3] [--python-ref .venv-bench/bin/python]

The reference lives only in the benchmark's own environment (``make bench-env``: olmoearth-pretrain
0.1.2 and ai2-olmo-core 3.0.0 installed with --no-deps beside torch 2.14.1); it is never a
dependency of the project. Each measurement runs in a fresh process with 2 threads; ours and
the reference alternate, and the median of ``--repeats`` runs is reported.

Cases (nano: width 128, depth 4, 8 heads, MLP x4; predictor depth 4; S2 L2A, 12 bands in 3 band
sets; fp32; patch size 4):
  forward   64x64 px, T=12, batch 8 (9,216 tokens/sample), encoder only, no masking; the
            reference runs its default path ("ref") and its fast_pass=True path ("ref-fast",
            no mask construction, all tokens assumed present)
  train32   32x32 px, T=12, batch 8 (2,304 tokens/sample): two random-masked views (encode 0.5,
            decode 0.5), encoder + predictor + frozen targets, patch discrimination (tau 0.1) +
            0.1 InfoNCE, backward, AdamW step
  train64   the same at 64x64 px (ours only unless --ref-train64: the reference needs ~12.5 GiB)

Published weights (the same random weights in both implementations): a nano built by
``olmoearth-pretrain-minimal`` (the main .venv's dev dependency; 9 modalities, MLP x4) from its
own config classes, saved in the published layout (config.json + weights.pth), then loaded by
``earthplat.nn.load_encoder`` ("pub-ours") and by the reference's ``load_model_from_path``
("pub-ref"); encoder forward, S2 L2A only, no masking, fp32, 2 threads, fresh processes in
alternating order:
  pub3      Sentinel-2 in its three v1 band sets (10 m / 20 m / 60 m groups)
  pub1      the same weights' config with all 12 Sentinel-2 bands in one band set (as the later
            releases tokenize; they report 2.9x fewer MACs for Sentinel-2): a third of the tokens

    python -m bench.olmoearth_compare --quick   # only pub3/pub1 at 32x32 px, T=4, batch 2, once
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import time
from pathlib import Path

from bench.report import publish, run_worker

REPO = Path(__file__).resolve().parents[1]
CASES = {"forward": (64, False), "train32": (32, True), "train64": (64, True)}
B, T, P = 8, 12, 4


def _stamps(torch):
    return torch.tensor([[[15, m, 2022] for m in range(T)]] * B)


def _ours(case: str, iters: int, measure=None) -> dict:
    import torch

    from earthplat.nn.encoder import EncoderConfig, ModalityInput
    from earthplat.nn.predictor import PredictorConfig
    from earthplat.train.masking import MaskingConfig
    from earthplat.train.pretrain import LatentMIMModule

    size, train = CASES[case]
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    data = torch.randn(B, T, 12, size, size, generator=g)
    valid = torch.ones(B, T, size, size, dtype=torch.bool)
    module = LatentMIMModule(
        encoder=EncoderConfig.nano(modalities=("sentinel2_l2a",)),
        predictor=PredictorConfig(depth=4),
        masking=MaskingConfig("random", 0.5, 0.5),
    )
    if not train:
        encoder = module.encoder.eval()
        inputs = {"sentinel2_l2a": ModalityInput(data, valid, _stamps(torch))}

        def step():
            with torch.no_grad():
                encoder(inputs, patch_size=P)
    else:
        batch = {
            "index": torch.arange(B),
            "patch_size": P,
            "modalities": {
                "sentinel2_l2a": {
                    "data": data,
                    "valid": valid,
                    "timestamps": _stamps(torch),
                    "bands": None,
                }
            },
        }
        opt = module.optimizer_config.build(module)

        def step():
            loss = module.compute_loss(batch, g)["loss"]
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)

    return (measure or _time)(step, iters, size)


def _reference(case: str, iters: int, fast_pass: bool = False) -> dict:
    import torch
    from olmoearth_pretrain.datatypes import MaskedOlmoEarthSample, OlmoEarthSample
    from olmoearth_pretrain.nn.flexi_vit import EncoderConfig, PredictorConfig
    from olmoearth_pretrain.nn.latent_mim import LatentMIMConfig
    from olmoearth_pretrain.nn.utils import unpack_encoder_output
    from olmoearth_pretrain.train.loss import LossConfig
    from olmoearth_pretrain.train.masking import MaskingConfig

    size, train = CASES[case]
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    mods = ["sentinel2_l2a"]
    enc = EncoderConfig(
        supported_modality_names=mods,
        embedding_size=128,
        depth=4,
        num_heads=8,
        mlp_ratio=4.0,
        max_sequence_length=12,
        drop_path=0.0,
    )
    dec = PredictorConfig(
        supported_modality_names=mods,
        encoder_embedding_size=128,
        decoder_embedding_size=128,
        depth=4,
        num_heads=8,
        mlp_ratio=4.0,
        max_sequence_length=12,
    )
    model = LatentMIMConfig(enc, dec).build()
    x = torch.randn(B, T, 12, size, size, generator=g).permute(0, 3, 4, 1, 2).contiguous()
    sample = OlmoEarthSample(sentinel2_l2a=x, timestamps=_stamps(torch))  # [B, H, W, T, C]
    if not train:
        model.eval()
        full = MaskedOlmoEarthSample(
            timestamps=sample.timestamps,
            sentinel2_l2a=x,
            sentinel2_l2a_mask=torch.zeros(B, size, size, T, 3, dtype=torch.long),
        )

        def step():
            with torch.no_grad():
                model.encoder(full, patch_size=P, fast_pass=fast_pass)
    else:
        masking = MaskingConfig(
            {"type": "random", "encode_ratio": 0.5, "decode_ratio": 0.5}
        ).build()
        loss_fn = LossConfig({"type": "patch_discrimination_new", "tau": 0.1}).build()
        contrastive = LossConfig({"type": "InfoNCE", "weight": 0.1}).build()
        params = [
            p
            for n, p in model.named_parameters()
            if p.requires_grad and not n.startswith("target_encoder")
        ]
        opt = torch.optim.AdamW(params, lr=1e-3, weight_decay=0.02)

        def step():
            losses, pooled = [], []
            for _ in range(2):
                view = masking.apply_mask(sample, patch_size=P)
                _, decoded, pooled_v, _, _ = model(view, P)
                with torch.no_grad():
                    target, _, _ = unpack_encoder_output(
                        model.target_encoder.forward(view.unmask(), patch_size=P)
                    )
                losses.append(loss_fn.compute(decoded, target))
                pooled.append(pooled_v)
            loss = (losses[0] + losses[1]) / 2 + contrastive.compute(pooled[0], pooled[1])
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)

    return _time(step, iters, size)


# --- published weights: the same random nano in both implementations ---------------------------
PUB_CASES = {"pub3": False, "pub1": True}
"""case -> whether Sentinel-2 is one band set."""
ENCODED = ("sentinel2_l2a", "sentinel1", "landsat")
"""What the v1 family encodes (its config records the rest as decode-only, as published)."""
PUB_FULL, PUB_QUICK = (64, 12, 8), (32, 4, 2)
"""(pixels, time steps, batch) of the pub cases, full and --quick."""


def write_published(root: Path) -> dict[str, str]:
    """The two checkpoints (three and one S2 band sets) in the published layout, built by the
    reference from its own config classes with seeded random weights."""
    sys.path.insert(0, str(REPO))
    from tests.integration import olmoearth_ref as R

    out = {}
    for case, one_set in PUB_CASES.items():
        config, model = R.reference_model("nano", band_groups=R.S2_ONE_SET if one_set else None)
        decode_only = [m for m in R.V1_MODALITIES if m not in ENCODED]
        out[case] = str(R.save_published(config, model, root / case, only_decode=decode_only))
    return out


def _published_inputs(quick: bool):
    """[B, H, W, T, C] S2 L2A values in the reference's band order, timestamps [B, T, 3]."""
    import torch
    from olmoearth_pretrain_minimal.olmoearth_pretrain_v1.utils.constants import Modality

    size, t, b = PUB_QUICK if quick else PUB_FULL
    g = torch.Generator().manual_seed(0)
    bands = list(Modality.SENTINEL2_L2A.band_order)
    x = torch.randn(b, size, size, t, len(bands), generator=g)
    stamps = torch.tensor([[[15, m % 12, 2022] for m in range(t)]] * b)
    return x, stamps, bands


def _published_time(step, iters: int, tokens: int, batch: int) -> dict:
    from torch.utils.flop_counter import FlopCounterMode

    _register_cpu_attention_flops()
    counter = FlopCounterMode(display=False)
    with counter:  # the warm-up step also counts the FLOPs
        step()
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    secs = statistics.median(times)
    return {
        "seconds": secs,
        "tokens_per_sample": tokens,
        "tokens_per_s": batch * tokens / secs,
        "samples_per_s": batch / secs,
        "gflop": counter.get_total_flops() / 1e9,
        "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
    }


def _published(impl: str, case: str, iters: int, quick: bool) -> dict:
    """One forward measurement of the published checkpoint ``case`` by ``impl``."""
    import torch

    torch.set_num_threads(2)
    path = json.loads(os.environ["EARTHPLAT_BENCH_PUBLISHED"])[case]
    x, stamps, bands = _published_inputs(quick)
    b, size, _, t, _ = x.shape
    sets = 1 if PUB_CASES[case] else 3
    tokens = (size // P) ** 2 * t * sets
    if impl == "pub-ours":
        from earthplat.batch import ModalityInput
        from earthplat.nn import load_encoder

        encoder = load_encoder(path).eval()
        data = x.permute(0, 3, 4, 1, 2).contiguous()  # [B, T, C, H, W]
        valid = torch.ones(b, t, size, size, dtype=torch.bool)
        inputs = {"sentinel2_l2a": ModalityInput(data, valid, stamps, tuple(bands))}

        def step():
            with torch.no_grad():
                encoder(inputs, patch_size=P)
    else:
        from olmoearth_pretrain_minimal.olmoearth_pretrain_v1.utils.datatypes import (
            MaskedOlmoEarthSample,
        )

        from tests.integration import olmoearth_ref as R

        # the reference's own builder, then the saved tensors (its load_model_from_path cannot
        # rebuild a config.json holding a tokenization override: 0.1.5 writes a private field
        # into it that its reader refuses)
        _, model = R.reference_model("nano", band_groups=R.S2_ONE_SET if sets == 1 else None)
        state = torch.load(Path(path) / "weights.pth", map_location="cpu", weights_only=True)
        model.load_state_dict(state, strict=True)
        model.eval()
        sample = MaskedOlmoEarthSample(
            timestamps=stamps,
            sentinel2_l2a=x,
            sentinel2_l2a_mask=torch.zeros(b, size, size, t, sets, dtype=torch.long),
        )

        def step():
            with torch.no_grad():
                model.encoder(sample, patch_size=P, input_res=10)

    return _published_time(step, iters, tokens, b)


def run_published(repeats: int, iters: int, quick: bool, env: dict) -> dict:
    """Every (impl, pub case) ``repeats`` times, each in a fresh process, alternating order."""
    import tempfile

    runs: dict[tuple[str, str], list[dict]] = {}
    with tempfile.TemporaryDirectory(prefix="olmoearth_bench_") as tmp:
        env = {**env, "EARTHPLAT_BENCH_PUBLISHED": json.dumps(write_published(Path(tmp)))}
        order = [(impl, case) for case in PUB_CASES for impl in ("pub-ours", "pub-ref")]
        for r in range(repeats):
            for impl, case in order if r % 2 == 0 else order[::-1]:
                cmd = [sys.executable, "-m", "bench.olmoearth_compare", "--worker", impl, case]
                cmd += ["--iters", str(iters)] + (["--quick"] if quick else [])
                result = run_worker(cmd, env, REPO, f"{impl} {case}")
                runs.setdefault((impl, case), []).append(result)
                print(impl, case, json.dumps(result), flush=True)
    return runs


def published_lines(runs: dict, quick: bool) -> list[str]:
    """The table of the pub cases and the two ratios (ours / reference; one / three sets)."""

    def med(impl, case, key):
        vals = [r[key] for r in runs.get((impl, case), [])]
        return statistics.median(vals) if vals else float("nan")

    size, t, b = PUB_QUICK if quick else PUB_FULL
    repeats = max(len(v) for v in runs.values())
    lines = [
        f"Published layout, the same random nano weights in both (olmoearth-pretrain-minimal "
        f"builds and saves them): encoder forward, S2 L2A {size}x{size} px, T={t}, batch {b}, "
        f"patch {P}, fp32, 2 threads; median of {repeats} runs (alternating, fresh processes)"
        + (" -- QUICK (smoke sizes, not a measurement)" if quick else ""),
        "",
        "| case | impl | S2 band sets | tokens/sample | tokens/s | samples/s | GFLOP/sample "
        "| peak RSS GiB |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for case, one_set in PUB_CASES.items():
        for impl in ("pub-ours", "pub-ref"):
            if (impl, case) not in runs:
                continue
            lines.append(
                f"| {case} | {impl} | {1 if one_set else 3} | "
                f"{med(impl, case, 'tokens_per_sample'):,.0f} | "
                f"{med(impl, case, 'tokens_per_s'):,.0f} | {med(impl, case, 'samples_per_s'):.2f} "
                f"| {med(impl, case, 'gflop') / b:.3f} | {med(impl, case, 'peak_rss_gib'):.2f} |"
            )
    lines.append("")
    for case in PUB_CASES:
        speed = med("pub-ours", case, "tokens_per_s") / med("pub-ref", case, "tokens_per_s")
        mem = med("pub-ours", case, "peak_rss_gib") / med("pub-ref", case, "peak_rss_gib")
        lines.append(f"{case}: ours / reference tokens/s {speed:.2f}x, peak RSS {mem:.2f}x")
    for impl in ("pub-ours", "pub-ref"):
        fewer = med(impl, "pub3", "gflop") / med(impl, "pub1", "gflop")
        faster = med(impl, "pub1", "samples_per_s") / med(impl, "pub3", "samples_per_s")
        lines.append(
            f"{impl}: one S2 band set instead of three: {fewer:.2f}x fewer FLOPs, "
            f"{faster:.2f}x samples/s (the later releases report 2.9x fewer MACs)"
        )
    return lines


def _register_cpu_attention_flops() -> None:
    """FlopCounterMode knows the CUDA SDPA kernels but not the CPU flash kernel; without this
    the attention (most of the work at 9,216 tokens) would count as zero."""
    import torch
    from torch.utils.flop_counter import (
        register_flop_formula,
        sdpa_backward_flop_count,
        sdpa_flop_count,
    )

    aten = torch.ops.aten
    try:

        @register_flop_formula(aten._scaled_dot_product_flash_attention_for_cpu)
        def _fwd(query, key, value, *args, out_shape=None, **kwargs) -> int:
            return sdpa_flop_count(query, key, value)  # formulas receive shapes

        @register_flop_formula(aten._scaled_dot_product_flash_attention_for_cpu_backward)
        def _bwd(grad_out, query, key, value, *args, out_shape=None, **kwargs) -> int:
            return sdpa_backward_flop_count(grad_out, query, key, value)
    except (AttributeError, RuntimeError, ValueError):
        pass  # already registered, or a torch without that kernel


def _time(step, iters: int, size: int) -> dict:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    _register_cpu_attention_flops()

    counter = FlopCounterMode(display=False)
    with counter:  # the warm-up step (allocations, caches) also counts the FLOPs
        step()
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    secs = statistics.median(times)
    tokens = (size // P) ** 2 * T * 3
    return {
        "seconds": secs,
        "tokens_per_s": B * tokens / secs,
        "samples_per_s": B / secs,
        "gflop": counter.get_total_flops() / 1e9,
        "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
        "torch_threads": torch.get_num_threads(),
    }


def _profile(case: str) -> str:
    """Top operators by self CPU time of one of our steps."""
    from torch.profiler import ProfilerActivity, profile

    def measure(step, iters, size):
        step()
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            step()
        return prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=12)

    return _ours(case, 1, measure)


def worker(impl: str, case: str, iters: int, quick: bool = False) -> None:
    if impl.startswith("pub-"):
        result = _published(impl, case, iters, quick)
    elif impl == "ours":
        result = _ours(case, iters)
    else:
        result = _reference(case, iters, fast_pass=impl == "ref-fast")
    print(json.dumps(result))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--iters", type=int, default=2)
    p.add_argument("--python-ref", default=str(REPO / ".venv-bench/bin/python"))
    p.add_argument("--ref-train64", action="store_true")
    p.add_argument("--worker", nargs=2, metavar=("IMPL", "CASE"))
    p.add_argument("--out", default=str(REPO / "bench/results/olmoearth_compare.md"))
    p.add_argument("--from-log", help="rebuild the table from a previous run's printed lines")
    p.add_argument(
        "--quick",
        action="store_true",
        help="only the published-weights rows at smoke sizes, once (writes ..._quick.md)",
    )
    p.add_argument(
        "--published-only",
        action="store_true",
        help="only the published-weights rows at full size (writes ..._published.md)",
    )
    args = p.parse_args()
    if args.worker:
        worker(*args.worker, args.iters, args.quick)
        return
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "2",
        "MKL_NUM_THREADS": "2",
        "PYTHONPATH": str(REPO),
        "PYTHONWARNINGS": "ignore",
    }
    if args.quick:
        out = args.out.replace(".md", "_quick.md")
        publish(published_lines(run_published(1, 1, True, env), True), out)
        return
    if args.published_only:
        out = args.out.replace(".md", "_published.md")
        publish(published_lines(run_published(args.repeats, args.iters, False, env), False), out)
        return
    if args.from_log:
        report(parse_log(Path(args.from_log).read_text()), args.out)
        return
    if not Path(args.python_ref).exists():
        raise SystemExit(f"{args.python_ref} not found: run `make bench-env` first")
    pythons = {"ours": sys.executable, "ref": args.python_ref, "ref-fast": args.python_ref}
    runs: dict[tuple[str, str], list[dict]] = {}
    for r in range(args.repeats):
        for case in CASES:
            impls = ["ours", "ref", "ref-fast"] if case == "forward" else ["ours", "ref"]
            for impl in impls if r % 2 == 0 else impls[::-1]:
                if impl == "ref" and case == "train64" and not args.ref_train64:
                    continue
                cmd = [pythons[impl], "-m", "bench.olmoearth_compare", "--worker", impl, case]
                result = run_worker([*cmd, "--iters", str(args.iters)], env, REPO, f"{impl} {case}")
                runs.setdefault((impl, case), []).append(result)
                print(impl, case, json.dumps(runs[(impl, case)][-1]), flush=True)
    published = run_published(args.repeats, args.iters, False, env)
    report(runs, args.out, published_lines(published, False))


def parse_log(text: str) -> dict[tuple[str, str], list[dict]]:
    """The ``impl case {json}`` lines a run printed (older runs printed Python dict reprs)."""
    import ast

    runs: dict[tuple[str, str], list[dict]] = {}
    for line in text.splitlines():
        parts = line.split(" ", 2)
        if len(parts) == 3 and parts[0] in ("ours", "ref", "ref-fast") and parts[1] in CASES:
            runs.setdefault((parts[0], parts[1]), []).append(ast.literal_eval(parts[2]))
    return runs


def report(runs: dict[tuple[str, str], list[dict]], out: str, extra: list[str] = ()) -> None:
    import torch

    from earthplat.traincore.flops import cpu_peak_flops

    torch.set_num_threads(2)
    peak = cpu_peak_flops() / 1e9

    def med(impl, case, key):
        vals = [r[key] for r in runs.get((impl, case), [])]
        return statistics.median(vals) if vals else float("nan")

    repeats = max(len(v) for v in runs.values())
    lines = [
        f"nano, fp32, 2 threads, batch {B}, T={T}, patch {P}; median of {repeats} "
        f"runs (alternating); CPU fp32 matmul peak {peak:.0f} GFLOP/s",
        "",
        "| case | impl | tokens/s | samples/s | GFLOP/s | % of peak | peak RSS GiB |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for case in CASES:
        for impl in ("ours", "ref", "ref-fast"):
            if (impl, case) not in runs:
                continue
            gflops = med(impl, case, "gflop") / med(impl, case, "seconds")
            lines.append(
                f"| {case} | {impl} | {med(impl, case, 'tokens_per_s'):,.0f} | "
                f"{med(impl, case, 'samples_per_s'):.2f} | {gflops:.1f} | "
                f"{100 * gflops / peak:.0f}% | {med(impl, case, 'peak_rss_gib'):.2f} |"
            )
    lines.append("")
    for case in ("forward", "train32"):
        if ("ref", case) in runs:
            speed = med("ours", case, "tokens_per_s") / med("ref", case, "tokens_per_s")
            mem = med("ours", case, "peak_rss_gib") / med("ref", case, "peak_rss_gib")
            lines.append(f"{case}: ours / reference speed {speed:.2f}x, peak memory {mem:.2f}x")
    if ("ref-fast", "forward") in runs:
        speed = med("ours", "forward", "tokens_per_s") / med("ref-fast", "forward", "tokens_per_s")
        lines.append(f"forward: ours / reference with fast_pass=True {speed:.2f}x")
    lines += [
        "",
        "Where our pretraining step spends its time (train32, torch.profiler, self CPU):",
        "",
        "```",
        _profile("train32"),
        "```",
    ]
    if extra:
        lines += ["", *extra]
    publish(lines, out)


if __name__ == "__main__":
    main()
