"""The inference package stays light: no torch at import, no Lightning for one process."""

from __future__ import annotations

import inspect
import subprocess
import sys

import pytest

from earthplat.inference.cli import predict as cli_predict
from tests.unit.earthplat.inference.models import CHIP_BBOX, S2_CHIP, S2_DATE, WaterIndexModel, real


def test_importing_inference_imports_no_torch() -> None:
    code = (
        "import sys; import earthplat.inference, earthplat.inference.cli, "
        "earthplat.inference.pipeline, earthplat.inference.runner; "
        "print('torch' in sys.modules, 'lightning' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_one_process_prediction_needs_no_lightning(shared_data, monkeypatch) -> None:
    for name in ("lightning", "lightning.pytorch", "pytorch_lightning"):
        monkeypatch.setitem(sys.modules, name, None)  # any `import lightning` now fails
    with pytest.raises(ImportError):
        import lightning  # noqa: F401
    from earthplat.inference import predict

    result = predict(
        WaterIndexModel(), real(shared_data, S2_CHIP), None, bbox=CHIP_BBOX, date=S2_DATE
    )
    assert result.shape == (1, 134, 156)


def test_cli_signature_is_typed_and_documented() -> None:
    sig = inspect.signature(cli_predict)
    assert list(sig.parameters)[:3] == ["model", "input", "out"]
    assert all(p.annotation is not inspect.Parameter.empty for p in sig.parameters.values())
    doc = inspect.getdoc(cli_predict)
    assert all(f"{name}:" in doc for name in sig.parameters)


def test_predict_stays_the_function_after_its_modules_load() -> None:
    import earthplat.inference.pipeline  # noqa: F401 - a submodule must not shadow the name
    from earthplat.inference import predict

    assert callable(predict) and predict.__module__ == "earthplat.inference.pipeline"
