"""The model registry page and fine-tune planning, over real tiny fine-tunes (real hand labels
of the Sen1Floods11 chip, a pico encoder, a few CPU steps): what each model started from,
trained on and scored on its test split; two models compared; the encoders a fine-tune can
start from; the training time estimated from the measured throughput; a fine-tune that starts
from a registered model's encoder. On SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from api.jobs.worker import run_worker
from tests.integration.platform.conftest import ADMIN
from tests.integration.platform.test_job_flow import annotated_project, tiny_finetune

pytestmark = pytest.mark.slow


@pytest.fixture
def big_client(settings):
    pytest.importorskip("lightning")
    from tests.integration.platform.test_job_flow import open_client

    with open_client(settings) as c:
        yield c


def finetune(client, pid: int, max_steps: int, **payload) -> dict:
    """Submit a tiny fine-tune, run a worker until the queue is empty, return the job."""
    overrides = {**tiny_finetune(max_steps=max_steps), **payload.pop("overrides", {})}
    for key in payload.pop("drop", ()):
        overrides.pop(key)
    r = client.post(
        f"/api/v1/projects/{pid}/jobs",
        json={"kind": "finetune", "payload": {"overrides": overrides, **payload}},
        headers=ADMIN,
    )
    assert r.status_code == 201, r.text
    state = client.app_state
    run_worker(
        state.settings, once=True, session_factory=state.session_factory, install_signals=False
    )
    job = client.get(f"/api/v1/jobs/{r.json()['id']}", headers=ADMIN).json()
    assert job["status"] == "succeeded", job["message"]
    return job


def model_of(client, job: dict) -> dict:
    r = client.get(f"/api/v1/models/{job['result']['model_id']}", headers=ADMIN)
    assert r.status_code == 200, r.text
    return r.json()


def test_registry_cards_and_two_models_compared(big_client, shared_data):
    client = big_client
    pid, chosen = annotated_project(client, shared_data)
    admin_id = client.get("/api/v1/users/me", headers=ADMIN).json()["id"]
    short, long = finetune(client, pid, 2), finetune(client, pid, 4)
    a, b = model_of(client, short), model_of(client, long)

    for model, job in ((a, short), (b, long)):
        assert model["base_encoder"] == "preset:pico" and model["parent_id"] is None
        assert model["created_by"] == admin_id
        assert model["trained_on"] == {
            "windows": len(chosen),
            "statuses": ["accepted"],
            "layers": ["s2"],
            "dataset": "default",
        }
        tested = {k: v for k, v in model["metrics"].items() if k.startswith("test")}
        assert tested and model["test_metrics"] == tested
        measured = model["config"]["platform"]["throughput"]
        assert measured == job["result"]["throughput"]
        assert measured["samples_per_s"] > 0 and measured["batch_size"] == 2, measured
        assert measured["encoder"] == "preset:pico" and measured["batches"] == job_steps(job)
    listed = client.get(f"/api/v1/models?project_id={pid}", headers=ADMIN).json()
    assert [m["id"] for m in listed] == [a["id"], b["id"]]
    assert [m["test_metrics"] for m in listed] == [a["test_metrics"], b["test_metrics"]]

    r = client.get(f"/api/v1/models/compare?a={a['id']}&b={b['id']}", headers=ADMIN)
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["a"] == a and got["b"] == b
    shared = sorted(a["metrics"].keys() & b["metrics"].keys())
    assert [m["name"] for m in got["metrics"]] == shared and any("loss" in n for n in shared)
    for m in got["metrics"]:
        assert (m["a"], m["b"]) == (a["metrics"][m["name"]], b["metrics"][m["name"]])
        lower = any(w in m["name"].lower() for w in ("loss", "error", "mae", "rmse"))
        if m["a"] == m["b"]:
            assert m["better"] is None
        else:
            a_wins = m["a"] < m["b"] if lower else m["a"] > m["b"]
            assert m["better"] == ("a" if a_wins else "b"), m
    # the same data and split seed: both were tested on the same windows of the project
    tested = got["test_windows"]
    assert tested["a"] == tested["b"] == tested["intersection"]
    assert tested["a"] and set(tested["a"]) <= {w["id"] for w in chosen}

    # a model of another task type does not compare; unknown models are 404s
    from labeling.services.registry import register_model

    with client.app_state.session_factory() as s:
        other = register_model(s, name="classifier", project_id=pid, task_type="classification")
        other_id = other.id
    r = client.get(f"/api/v1/models/compare?a={a['id']}&b={other_id}", headers=ADMIN)
    assert r.status_code == 422 and "do not compare" in r.json()["detail"], r.text
    r = client.get(f"/api/v1/models/compare?a={a['id']}&b=999999", headers=ADMIN)
    assert r.status_code == 404 and "no model 999999" in r.json()["detail"]
    for query in (f"a={a['id']}", "a=x&b=1", "a=0&b=1"):
        assert client.get(f"/api/v1/models/compare?{query}", headers=ADMIN).status_code == 422
    # a model registered without the fine-tune's records still reads
    card = client.get(f"/api/v1/models/{other_id}", headers=ADMIN).json()
    assert card["base_encoder"] is None and card["trained_on"] == {} and card["test_metrics"] == {}


def job_steps(job: dict) -> int:
    return int(job["payload"]["overrides"]["trainer.max_steps"])


def test_encoders_estimate_and_a_fine_tune_from_a_registered_model(big_client, shared_data):
    from earthplat.nn.encoder import EncoderConfig
    from earthplat.nn.registry import ENCODER_PRESETS

    client = big_client
    pid, _ = annotated_project(client, shared_data)
    url = f"/api/v1/projects/{pid}/finetune/estimate"
    plan = {"encoder": "preset:pico", "steps": 100, "batch_size": 8}
    r = client.get(url, params=plan, headers=ADMIN)
    assert r.status_code == 200, r.text
    first = r.json()
    assert first["samples_per_s"] is None and first["seconds"] is None
    assert first["based_on"] == [] and "first run measures" in first["note"]

    job = finetune(client, pid, 4)
    measured = job["result"]["throughput"]
    assert measured["encoder"] == "preset:pico" and measured["samples_per_s"] > 0
    assert measured["samples"] == 2 * (4 - 1)  # the first batch is warm-up, not measured
    got = client.get(url, params=plan, headers=ADMIN).json()
    assert got["based_on"] == [job["id"]]
    assert got["samples_per_s"] == pytest.approx(measured["samples_per_s"])
    assert got["seconds"] == pytest.approx(100 * 8 / measured["samples_per_s"])
    other = client.get(url, params={**plan, "encoder": "preset:nano"}, headers=ADMIN).json()
    assert other["samples_per_s"] is None  # measurements are per encoder
    for bad in ({"encoder": "nano"}, {"steps": 0}, {"batch_size": "x"}):
        assert client.get(url, params={**plan, **bad}, headers=ADMIN).status_code == 422

    # the encoders: every preset of the registry, then the registered model
    parent = model_of(client, job)
    listed = client.get(f"/api/v1/encoders?project_id={pid}", headers=ADMIN).json()
    presets = [e for e in listed if e["kind"] == "preset"]
    assert [e["id"] for e in presets] == [f"preset:{n}" for n in ENCODER_PRESETS]
    pico = presets[list(ENCODER_PRESETS).index("pico")]
    assert pico["modalities"] == ["sentinel2_l2a"]  # the project's sensors
    built = EncoderConfig.pico(modalities=("sentinel2_l2a",)).build()
    assert pico["params"] == sum(p.numel() for p in built.parameters())
    (exported,) = [e for e in listed if e["kind"] == "export"]
    assert exported["id"] == f"model:{parent['id']}" and exported["name"] == parent["name"]
    assert exported["modalities"] == ["sentinel2_l1c"] and exported["params"] > 0
    assert exported["base_encoder"] == "preset:pico"
    everywhere = client.get("/api/v1/encoders", headers=ADMIN).json()
    assert exported["id"] in [e["id"] for e in everywhere]

    # bad encoders are refused at submit, naming them
    jobs_url = f"/api/v1/projects/{pid}/jobs"
    no_encoder = {k: v for k, v in tiny_finetune().items() if k != "model.backbone.encoder"}
    for encoder, overrides, named in (
        ("model:999999", no_encoder, "no model 999999"),
        ("preset:huge", no_encoder, "no encoder preset 'huge'"),
        ("nano", no_encoder, "encoder"),
        (f"model:{parent['id']}", tiny_finetune(), "both choose the encoder"),
    ):
        payload = {"encoder": encoder, "overrides": overrides}
        r = client.post(jobs_url, json={"kind": "finetune", "payload": payload}, headers=ADMIN)
        assert r.status_code == 422 and named in r.json()["detail"], (encoder, r.text)

    # a fine-tune from the registered model: its encoder's weights, recorded as the parent
    # (a frozen backbone keeps them, so the child's exported encoder is the parent's)
    child_job = finetune(
        client,
        pid,
        2,
        encoder=f"model:{parent['id']}",
        drop=["model.backbone.encoder"],
        overrides={"model.freeze": "frozen"},
    )
    child = model_of(client, child_job)
    assert child["parent_id"] == parent["id"] == child_job["result"]["parent_id"]
    assert child["base_encoder"] == f"model:{parent['id']}"
    assert child_job["result"]["throughput"]["encoder"] == f"model:{parent['id']}"
    from safetensors.torch import load_file

    weights = [load_file(f"{m['model_dir']}/model.safetensors") for m in (parent, child)]
    keys = [k for k in weights[0] if k.startswith("backbone.encoder.")]
    diff = {k: float((weights[0][k] - weights[1][k]).abs().max()) for k in keys}
    assert keys and not any(diff.values()), {k: v for k, v in diff.items() if v}
    assert any(not (weights[0][k] == weights[1][k]).all() for k in weights[0] if "head" in k)
    r = client.get(url, params={**plan, "encoder": f"model:{parent['id']}"}, headers=ADMIN)
    assert r.json()["based_on"] == [child_job["id"]]
