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
