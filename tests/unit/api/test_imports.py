"""Request handlers never import torch."""

from __future__ import annotations

import subprocess
import sys


def test_app_does_not_import_torch(tmp_path):
    code = (
        "import sys\n"
        "from api.main import create_app\n"
        "from api.settings import Settings\n"
        f"create_app(Settings(data_dir={str(tmp_path)!r}))\n"
        "bad = [m for m in ('torch', 'lightning') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
