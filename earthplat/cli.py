"""``earthplat``: the command line, a thin shell over library functions.

Subcommands are added as the library grows; each one is a typed function that is equally
callable from Python and from the API.
"""

from __future__ import annotations

import json


def info(measure_peak: bool = False) -> dict:
    """Print versions, the compute devices and (optionally) the measured CPU matmul peak."""
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
    """Exit non-zero unless the stack imports and, when given, ``url`` (or $EARTHPLAT_HEALTH_URL)
    answers 200. Used by the container's HEALTHCHECK."""
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


def main(argv: list[str] | None = None) -> None:
    from jsonargparse import CLI

    CLI(
        {"info": info, "healthcheck": healthcheck},
        args=argv,
        as_positional=False,
        description="earthplat: multimodal Earth-observation foundation models and platform.",
    )
