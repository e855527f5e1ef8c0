"""``earthplat``: the command line, a thin shell over library functions.

Each subcommand is a typed function, equally callable from Python and from the API; its
docstring is its help (first line: the summary; ``Args:``: one help line per flag). The data
commands live in ``earthplat.data.cli``, ``predict`` in ``earthplat.inference.cli`` and
``evaluate`` in ``earthplat.eval.cli``.
"""

from __future__ import annotations

import json


def info(measure_peak: bool = False) -> dict:
    """Print versions, the compute devices and (optionally) the measured CPU matmul peak.

    Args:
        measure_peak: Also measure the CPU's fp32 matmul peak (used for MFU), in GFLOP/s.
    """
    import platform

    import lightning
    import torch

    import earthplat

    report: dict = {
        "earthplat": earthplat.__version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "lightning": lightning.__version__,
        "cuda_devices": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())],
        "cpu_threads": torch.get_num_threads(),
    }
    if measure_peak:
        from earthplat.traincore.flops import cpu_peak_flops

        report["cpu_peak_gflops_fp32"] = round(cpu_peak_flops() / 1e9, 1)
    print(json.dumps(report, indent=2))
    return report


def healthcheck(url: str | None = None, timeout: float = 5.0) -> None:
    """Exit non-zero unless the stack imports and the URL, when given, answers 200.

    Used by the container's HEALTHCHECK.

    Args:
        url: A URL that must answer 200 (default: $EARTHPLAT_HEALTH_URL, or none).
        timeout: Seconds to wait for the URL.
    """
    import os
    import urllib.request

    import torch

    torch.zeros(1).add_(1)  # the tensor library loads and runs
    url = url or os.environ.get("EARTHPLAT_HEALTH_URL")
    if url:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            if response.status != 200:
                raise SystemExit(f"{url} answered {response.status}")
    print("ok")


def export(checkpoint: str, out: str, format: str = "earthplat") -> str:
    """Export an encoder: as safetensors plus a config JSON, or in the published OlmoEarth layout.

    Load it with earthplat.nn.load_encoder(OUT); an olmoearth export also loads with
    olmoearth_pretrain_minimal.load_model_from_path(OUT).

    Args:
        checkpoint: A pretraining checkpoint (.ckpt), an encoder export dir, an exported task
            model (its encoder) or a published OlmoEarth checkpoint dir.
        out: The directory to write.
        format: earthplat (encoder.safetensors + config.json) or olmoearth (config.json +
            weights.pth, for an encoder with OlmoEarth's conventions, e.g. one fine-tuned
            from published weights).
    """
    from earthplat.nn.backbones import load_pretrained_encoder
    from earthplat.nn.export import export_encoder

    encoder = load_pretrained_encoder(checkpoint)
    extra = {"source_checkpoint": checkpoint} if format == "earthplat" else None
    path = export_encoder(encoder, out, extra=extra, format=format)
    print(f"encoder exported to {path} ({format} layout)")
    return str(path)


def commands() -> dict:
    """The subcommand tree: name -> function (or a dict of them)."""
    from earthplat.data import cli as data
    from earthplat.data import dataset_cli
    from earthplat.eval.cli import evaluate
    from earthplat.inference.cli import predict

    return {
        "info": info,
        "healthcheck": healthcheck,
        "windows": {
            "_help": "Create windows: the places and times to work on.",
            "create": data.windows_create,
        },
        "ingest": data.ingest,
        "dataset": {
            "_help": "Build, label, pack and inspect datasets.",
            "import-patches": dataset_cli.dataset_import_patches,
            "label": dataset_cli.dataset_label,
            "pack": dataset_cli.dataset_pack,
            "show": dataset_cli.dataset_show,
        },
        "raster": {"_help": "Fix rasters before ingesting them.", "georef": data.raster_georef},
        "sensors": {
            "_help": "The sensor registry: list it, or compute a custom sensor's statistics.",
            "list": data.sensors_list,
            "stats": data.sensors_stats,
        },
        "export": export,
        "predict": predict,
        "evaluate": evaluate,
    }


POSITIONAL = {("raster", "georef"): ("--input", "--output")}
"""Subcommands whose leading bare arguments are these flags (``raster georef IN OUT``)."""
ALIASES = {("dataset", "label"): {"--from": "--from_file"}}
"""Flags spelled otherwise on the command line than in Python (``from`` is a keyword)."""


def _spelled(args: list[str]) -> list[str]:
    """``args`` with leading bare arguments and aliases turned into the functions' flags."""
    head = tuple(args[:2])
    out = list(args)
    flags = list(POSITIONAL.get(head, ()))
    i = 2
    while flags and i < len(out) and not out[i].startswith("-"):
        out[i] = f"{flags.pop(0)}={out[i]}"
        i += 1
    for old, new in ALIASES.get(head, {}).items():
        out = [
            new if a == old else new + a[len(old) :] if a.startswith(old + "=") else a for a in out
        ]
    return out


PLUGINS = "earthplat.commands"
"""Entry-point group of commands other installed packages add to ``earthplat`` (the platform
adds ``worker``): earthplat itself imports none of them."""


def _plugin(name: str):
    """The ``main(argv)`` another package registered as ``earthplat NAME``, if any."""
    from importlib.metadata import entry_points

    for ep in entry_points(group=PLUGINS, name=name):
        return ep.load()
    return None


def _run(args: list[str], from_argv: bool) -> None:
    from jsonargparse import CLI, set_parsing_settings

    # the configs' fields document themselves in attribute docstrings: those are the flags' help
    set_parsing_settings(docstring_parse_attribute_docstrings=True)

    plugin = _plugin(args[0]) if args else None
    if plugin is not None:  # a command another package adds (the platform's ``worker``)
        raise SystemExit(plugin(args[1:]))
    if args and args[0] in ("pretrain", "finetune"):  # LightningCLI parses these itself
        if args[0] == "pretrain":
            from earthplat.train.lightning_cli import run_pretrain_cli as run_cli
        else:
            from earthplat.train.finetune import run_finetune_cli as run_cli

        import warnings

        # sys.argv stays whole: Lightning starts the other ranks of a multi-device run by
        # re-running this command line; the subcommand's own arguments are parsed as ``args``
        warnings.filterwarnings("ignore", message="LightningCLI's args parameter is intended")
        run_cli(args[1:], from_argv=from_argv)
        return
    CLI(
        commands(),
        args=_spelled(args),
        as_positional=False,
        description="earthplat: multimodal Earth-observation foundation models and platform. "
        "Also: earthplat pretrain|finetune (LightningCLI), and earthplat worker (the platform's "
        "job worker, also earthplat-worker). "
        "Add --debug to any command for the traceback of an error.",
    )


def main(argv: list[str] | None = None) -> None:
    """The ``earthplat`` command. Expected errors (bad input, missing files, unknown names)
    print what was wrong and the fix, and exit 2; ``--debug`` shows their traceback."""
    import sys

    from earthplat.errors import EarthplatError

    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    args = [a for a in args if a != "--debug"]
    if argv is None and debug:
        sys.argv = [a for a in sys.argv if a != "--debug"]  # Lightning re-runs sys.argv
    try:
        _run(args, from_argv=argv is None)
    except BrokenPipeError:  # the reader went away (earthplat sensors list | head): not an error
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise SystemExit(0) from None
    except EarthplatError as err:
        if debug:
            raise
        print(f"earthplat: error: {err}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
