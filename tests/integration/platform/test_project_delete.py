"""Deleting a project removes its rows and files, keeps its registered models (moved under
``DATA_DIR/models``), and is refused while one of its jobs is queued or running."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.platform.conftest import ADMIN, make_project
from tests.integration.platform.test_job_flow import big_client, upload_chip  # noqa: F401


def _register_real_model(client, pid: int, project_dir: Path) -> int:
    """A tiny exported task model inside the project's run dir, registered as a job's is."""
    import torch

    from earthplat.nn.task_model import TaskModel, TaskSpec, export_task_model
    from labeling.services.registry import register_model

    torch.manual_seed(0)
    spec = TaskSpec(
        task="segmentation",
        inputs={"sentinel2_l1c": ["B03", "B08"]},
        num_outputs=2,
        backbone={"name": "earthplat", "encoder": {"preset": "pico"}},
        head={"name": "linear"},
    )
    run_dir = project_dir / "runs" / "job-7"
    model_dir = export_task_model(TaskModel(spec), run_dir / "model")
    (run_dir / "metrics.json").write_text("{}")
    with client.app_state.session_factory() as s:
        entry = register_model(
            s,
            name="kept",
            project_id=pid,
            task_type="segmentation",
            run_dir=str(run_dir),
            model_dir=str(model_dir),
            artifacts={
                "metrics": str(run_dir / "metrics.json"),
                "export": str(project_dir / "exports" / "job-6"),
                "elsewhere": "/not/in/the/project",
            },
        )
        return entry.id


@pytest.mark.slow
def test_delete_removes_files_keeps_models_and_waits_for_jobs(big_client, shared_data):  # noqa: F811
    from earthplat.nn.task_model import load_task_model

    client = big_client
    data_dir = Path(client.app_state.settings.data_dir).resolve()
    pid = make_project(client)["id"]
    upload_chip(client, pid, shared_data, names=("s2",))
    project_dir = data_dir / "projects" / str(pid)
    assert any(project_dir.rglob("*.tif"))
    model_id = _register_real_model(client, pid, project_dir)
    r = client.post(
        f"/api/v1/projects/{pid}/jobs", json={"kind": "steps", "payload": {}}, headers=ADMIN
    )
    assert r.status_code == 201, r.text
    job_id = r.json()["id"]

    # a queued job: refused, and nothing is lost
    r = client.delete(f"/api/v1/projects/{pid}", headers=ADMIN)
    assert r.status_code == 409 and str(job_id) in r.json()["detail"]
    assert "cancel" in r.json()["fix"]
    assert client.get(f"/api/v1/projects/{pid}", headers=ADMIN).status_code == 200
    assert any(project_dir.rglob("*.tif"))

    r = client.post(f"/api/v1/jobs/{job_id}/cancel", headers=ADMIN)
    assert r.status_code in (200, 202), r.text
    assert client.get(f"/api/v1/jobs/{job_id}", headers=ADMIN).json()["status"] == "cancelled"
    r = client.delete(f"/api/v1/projects/{pid}", headers=ADMIN)
    assert r.status_code == 204, r.text
    assert client.get(f"/api/v1/projects/{pid}", headers=ADMIN).status_code == 404
    assert not project_dir.exists()

    model = client.get(f"/api/v1/models/{model_id}", headers=ADMIN).json()
    kept = data_dir / "models" / str(model_id)
    assert model["project_id"] is None
    assert Path(model["model_dir"]).is_relative_to(kept)
    assert Path(model["run_dir"]).is_relative_to(kept)
    assert Path(model["artifacts"]["metrics"]).is_file()
    assert model["artifacts"]["export"] is None  # deleted with the project
    assert model["artifacts"]["elsewhere"] == "/not/in/the/project"
    loaded = load_task_model(model["model_dir"])
    assert loaded.spec.inputs == {"sentinel2_l1c": ["B03", "B08"]}


def test_a_running_job_whose_worker_died_does_not_block_deletion(big_client):  # noqa: F811
    from datetime import timedelta

    from labeling.db import utcnow
    from labeling.jobs import Job

    client = big_client
    pid = make_project(client, name="orphaned-job")["id"]
    r = client.post(
        f"/api/v1/projects/{pid}/jobs", json={"kind": "steps", "payload": {}}, headers=ADMIN
    )
    job_id = r.json()["id"]
    with client.app_state.session_factory() as s:
        job = s.get(Job, job_id)
        job.status, job.worker_id = "running", "dead-worker"
        job.lease_expires_at = utcnow() + timedelta(minutes=5)
        s.commit()
    assert client.delete(f"/api/v1/projects/{pid}", headers=ADMIN).status_code == 409  # alive
    with client.app_state.session_factory() as s:
        s.get(Job, job_id).lease_expires_at = utcnow() - timedelta(minutes=1)
        s.commit()
    assert client.delete(f"/api/v1/projects/{pid}", headers=ADMIN).status_code == 204
    assert client.get(f"/api/v1/jobs/{job_id}", headers=ADMIN).status_code == 404
