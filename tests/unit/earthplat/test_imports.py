import subprocess
import sys


def _modules_after(statement: str) -> set[str]:
    code = f"import sys; {statement}; print('\\n'.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_import_earthplat_does_not_import_torch():
    mods = _modules_after("import earthplat")
    assert "earthplat" in mods
    assert "torch" not in mods


def test_import_traincore_package_is_lazy():
    mods = _modules_after("import earthplat.traincore, olmo_lm, labeling, api")
    assert "torch" not in mods
    assert "lightning" not in mods


def test_lazy_attribute_resolves():
    import earthplat.traincore as tc

    assert tc.TrainerConfig.__name__ == "TrainerConfig"


def test_loading_an_exported_encoder_needs_no_training_stack(tmp_path):
    import torch

    from earthplat.nn.encoder import EncoderConfig
    from earthplat.nn.export import export_encoder

    torch.manual_seed(0)
    export_encoder(EncoderConfig.pico().build(), tmp_path / "enc")
    mods = _modules_after(
        f"from earthplat.nn import load_encoder; load_encoder({str(tmp_path / 'enc')!r})"
    )
    assert "torch" in mods
    assert "lightning" not in mods and "pytorch_lightning" not in mods
