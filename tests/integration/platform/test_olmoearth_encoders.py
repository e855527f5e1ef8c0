"""Published OlmoEarth checkpoints in the platform's encoder registry: directories under
``DATA_DIR/encoders`` (and the ``encoder_roots`` setting) are listed by ``GET /encoders`` with
their facts, a broken one with its error; a fine-tune job starts from ``olmoearth:NAME`` and the
model registry records it as the base encoder. The checkpoint is a tiny random one built and
saved by the reference package (``tests/integration/olmoearth_ref.py``). On SQLite and
PostgreSQL."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from tests.integration.platform.conftest import ADMIN

R = pytest.importorskip("tests.integration.olmoearth_ref")

NAME = "OlmoEarth-test-Nano"
LICENCE = "OlmoEarth Artifact License"


@pytest.fixture(scope="module")
def nano(tmp_path_factory):
    """A random reference nano in the published layout, with a LICENSE file."""
    config, model = R.reference_model("nano", seed=3)
    path = R.save_published(config, model, tmp_path_factory.mktemp("oe") / NAME)
    (path / "LICENSE").write_text(f"\n{LICENCE}\n\nTerms of use ...\n")
    return path


def place(nano, data_dir, extra_root):
    """The good checkpoint under the data dir, three broken ones beside it, and two in an extra
    root (one shadowed by the data dir's copy of the same name)."""
    root = data_dir / "encoders"
    good = shutil.copytree(nano, root / NAME)
    half = root / "half-download"
    half.mkdir()
    shutil.copy(nano / "config.json", half / "config.json")
    rope = shutil.copytree(nano, root / "rope-v1_2")
    cfg = json.loads((rope / "config.json").read_text())
    cfg["model"]["encoder_config"]["position_encoding"] = "rope"
    (rope / "config.json").write_text(json.dumps(cfg))
    (rope / "earthplat.json").write_text(json.dumps({"licence": "Apache-2.0"}))
    short = shutil.copytree(nano, root / "short-weights")
    state = torch.load(short / "weights.pth", weights_only=True)
    del state["encoder.blocks.3.mlp.fc2.weight"]
    torch.save(state, short / "weights.pth")
    shutil.copytree(nano, extra_root / "extra-Nano")
    (extra_root / "extra-Nano" / "earthplat.json").write_text(json.dumps({"version": "v1.0.1"}))
    shadowed = extra_root / NAME
    shadowed.mkdir()
    (shadowed / "config.json").write_text("{}")
    return good


@pytest.fixture
def registry_client(settings, data_dir, tmp_path, nano):
    """A client whose settings add an extra encoder root; the checkpoints placed."""
    from tests.integration.platform.test_job_flow import open_client

    extra = tmp_path / "extra_encoders"
    extra.mkdir()
    place(nano, data_dir, extra)
    with open_client(settings.model_copy(update={"encoder_roots": str(extra)})) as c:
        yield c


def test_published_checkpoints_are_listed_with_their_facts_or_their_error(registry_client, nano):
    from earthplat.nn import load_encoder

    listed = registry_client.get("/api/v1/encoders", headers=ADMIN)
    assert listed.status_code == 200, listed.text
    published = {e["name"]: e for e in listed.json() if e["kind"] == "olmoearth"}
    assert set(published) == {NAME, "half-download", "rope-v1_2", "short-weights", "extra-Nano"}

    good = published[NAME]  # the data dir's copy, not the extra root's broken namesake
    loaded = load_encoder(nano)
    assert good["id"] == f"olmoearth:{NAME}" and good["usable"] and good["error"] is None
    assert good["version"] == "v1" and good["licence"] == LICENCE
    assert good["modalities"] == ["sentinel2_l2a", "sentinel1", "landsat"]  # as trained
    assert good["params"] == sum(p.numel() for p in loaded.parameters())
    assert (good["embed_dim"], good["depth"], good["num_heads"]) == (128, 4, 8)
    assert good["size_bytes"] == (nano / "weights.pth").stat().st_size
    extra = published["extra-Nano"]
    assert extra["usable"] and extra["version"] == "v1.0.1" and extra["licence"] == LICENCE

    errors = {
        "half-download": "holds no weights.pth",
        "rope-v1_2": "position_encoding='rope'",
        "short-weights": "encoder.blocks.3.mlp.fc2.weight",
    }
    for name, says in errors.items():
        item = published[name]
        assert not item["usable"] and says in item["error"], item
        assert item["params"] is None and item["modalities"] == []
    assert published["rope-v1_2"]["licence"] == "Apache-2.0"
    assert published["half-download"]["licence"] == "unknown"

    # the estimate route takes the id; a name no directory could have is refused
    pid = registry_client.post(
        "/api/v1/projects", json={"name": "p", "task_type": "segmentation"}, headers=ADMIN
    ).json()["id"]
    url = f"/api/v1/projects/{pid}/finetune/estimate"
    plan = {"steps": 10, "batch_size": 2}
    r = registry_client.get(url, params={**plan, "encoder": f"olmoearth:{NAME}"}, headers=ADMIN)
    assert r.status_code == 200 and r.json()["samples_per_s"] is None, r.text
    r = registry_client.get(url, params={**plan, "encoder": "olmoearth:../x"}, headers=ADMIN)
    assert r.status_code == 422


def _run_job(client, pid: int, payload: dict) -> dict:
    from api.jobs.worker import run_worker

    r = client.post(
        f"/api/v1/projects/{pid}/jobs",
        json={"kind": "finetune", "payload": payload},
        headers=ADMIN,
    )
    assert r.status_code == 201, r.text
    state = client.app_state
    run_worker(
        state.settings, once=True, session_factory=state.session_factory, install_signals=False
    )
    return client.get(f"/api/v1/jobs/{r.json()['id']}", headers=ADMIN).json()


@pytest.mark.slow
def test_a_fine_tune_starts_from_a_published_checkpoint(registry_client, shared_data, nano):
    """A frozen fine-tune from ``olmoearth:NAME`` on the project's L1C imagery (accepted for the
    L2A projections by ``extra_inputs``): the registered model holds the published encoder
    weights and records it as its base; without the flag, or from a broken checkpoint, the job
    fails naming why."""
    pytest.importorskip("lightning")
    from safetensors.torch import load_file

    from earthplat.nn import load_encoder
    from tests.integration.platform.test_job_flow import annotated_project, tiny_finetune

    client = registry_client
    pid, _ = annotated_project(client, shared_data)
    overrides = {k: v for k, v in tiny_finetune(max_steps=2).items() if "backbone" not in k}
    overrides["model.freeze"] = "frozen"
    accept = {**overrides, "model.backbone.extra_inputs": ["sentinel2_l1c"]}
    job = _run_job(client, pid, {"encoder": f"olmoearth:{NAME}", "overrides": accept})
    assert job["status"] == "succeeded", job["message"]
    assert job["result"]["encoder"] == f"olmoearth:{NAME}"
    assert job["result"]["throughput"]["encoder"] == f"olmoearth:{NAME}"
    model = client.get(f"/api/v1/models/{job['result']['model_id']}", headers=ADMIN).json()
    assert model["base_encoder"] == f"olmoearth:{NAME}" and model["parent_id"] is None
    task = json.loads(Path(model["model_dir"], "task.json").read_text())["spec"]
    backbone = task["backbone"]
    assert backbone["name"] == "olmoearth" and backbone["checkpoint"].endswith(f"encoders/{NAME}")
    assert backbone["extra_inputs"] == ["sentinel2_l1c"]  # the substitution, recorded
    weights = load_file(f"{model['model_dir']}/model.safetensors")
    published = load_encoder(nano).state_dict()
    for key, value in published.items():
        assert torch.equal(weights[f"backbone.encoder.{key}"], value), key  # frozen: kept

    # the fine-tuned model is itself a base encoder now, remembering where it started
    listed = client.get(f"/api/v1/encoders?project_id={pid}", headers=ADMIN).json()
    (child,) = [e for e in listed if e["kind"] == "export"]
    assert child["base_encoder"] == f"olmoearth:{NAME}" and child["params"] > 0

    refused = _run_job(client, pid, {"encoder": f"olmoearth:{NAME}", "overrides": overrides})
    assert refused["status"] == "failed"
    assert "extra_inputs" in refused["message"] and "sentinel2_l1c" in refused["message"]
    broken = _run_job(client, pid, {"encoder": "olmoearth:short-weights", "overrides": accept})
    assert broken["status"] == "failed" and "does not load" in broken["message"]
