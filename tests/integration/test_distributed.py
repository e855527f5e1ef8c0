"""Multi-process tests: 2 gloo ranks on CPU, each a fresh subprocess."""

import pytest
import torch

from earthplat.traincore.distributed import run_distributed_test
from earthplat.traincore.errors import DistributedTestError
from tests.helpers import distributed_fns as fns

pytestmark = [pytest.mark.distributed, pytest.mark.slow]


def test_environment_is_scrubbed(monkeypatch):
    monkeypatch.setenv("LOCAL_RANK", "7")
    monkeypatch.setenv("PL_TRAINER_GPUS", "3")
    monkeypatch.setenv("SLURM_NTASKS", "9")
    results = run_distributed_test(
        fns.report_environment, ["LOCAL_RANK", "PL_TRAINER_GPUS", "SLURM_NTASKS", "WORLD_SIZE"]
    )
    assert [r["rank"] for r in results] == [0, 1]
    for rank, r in enumerate(results):
        assert r["LOCAL_RANK"] == str(rank)
        assert r["WORLD_SIZE"] == "2"
        assert r["PL_TRAINER_GPUS"] is None and r["SLURM_NTASKS"] is None


def test_failing_rank_reports_its_traceback():
    with pytest.raises(DistributedTestError, match="rank 1 fails on purpose"):
        run_distributed_test(fns.fail_on_rank, 1, timeout=60)


def test_local_function_is_refused():
    def local():
        return 1

    with pytest.raises(DistributedTestError, match="module level"):
        run_distributed_test(local)


@pytest.mark.parametrize("kind", ["vision", "lm"])
def test_ddp_two_ranks_equal_one_rank(tmp_path, kind):
    single = fns.train_and_return_weights(kind, "auto", str(tmp_path / "one"), 8, 5, 1)
    ranks = run_distributed_test(
        fns.train_and_return_weights, kind, "ddp", str(tmp_path / "ddp"), 8, 5, 2
    )
    for name, ref in single.items():
        torch.testing.assert_close(ranks[0][name], ref, rtol=1e-4, atol=1e-5, msg=name)
        torch.testing.assert_close(ranks[1][name], ranks[0][name], rtol=0, atol=0)
    # the weights moved: the comparison is not between two untouched initialisations
    fresh, _ = __import__("tests.helpers.models", fromlist=["build"]).build(kind, 0, 8)
    moved = max((p.detach() - single[n]).abs().max().item() for n, p in fresh.named_parameters())
    assert moved > 1e-3


def test_fsdp2_shards_every_parameter_and_matches_gradients():
    results = run_distributed_test(fns.fsdp_shards_and_grads)
    for r in results:
        assert r["max_grad_diff"] < 1e-5
        for name, info in r["shards"].items():
            assert info["sharded"], name
            assert info["local"] <= -(-info["full"] // 2), name  # at most half (rounded up)
    total_local = sum(info["local"] for r in results for info in r["shards"].values())
    total_full = sum(info["full"] for info in results[0]["shards"].values())
    assert total_local == total_full


def test_fsdp2_training_through_lightning_matches_single_process(tmp_path):
    single = fns.train_and_return_weights("lm", "auto", str(tmp_path / "one"), 8, 4, 1)
    ranks = run_distributed_test(
        fns.train_and_return_weights, "lm", "fsdp", str(tmp_path / "fsdp"), 8, 4, 2
    )
    for name, ref in single.items():
        torch.testing.assert_close(ranks[0][name], ref, rtol=1e-4, atol=1e-5, msg=name)
    assert (tmp_path / "fsdp" / "checkpoints" / "last.ckpt").is_dir()  # sharded checkpoint


def test_tensor_parallel_plan_matches_unsharded():
    for r in run_distributed_test(fns.tensor_parallel_forward):
        assert r["sharded"]
        assert r["local_rows"] == 16
        assert r["max_out_diff"] < 1e-5
        assert r["max_grad_diff"] < 1e-6


@pytest.mark.parametrize("strategy", ["ddp", "fsdp"])
def test_distributed_crash_and_resume_matches_uninterrupted(tmp_path, strategy):
    ref = fns.train_and_return_weights("lm", "auto", str(tmp_path / "one"), 8, 6, 1)
    ranks = run_distributed_test(
        fns.train_crash_then_resume, "lm", strategy, str(tmp_path / strategy), 6, 3, 2
    )
    for name, expected in ref.items():
        torch.testing.assert_close(ranks[0][name], expected, rtol=1e-4, atol=1e-5, msg=name)
