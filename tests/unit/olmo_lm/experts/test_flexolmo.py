import pytest
import torch

from earthplat.traincore.trainer import TrainerConfig, fit
from olmo_lm.experts.flexolmo import ExpertTrainingModule, domain_embedding, merge, upcycle
from olmo_lm.experts.moe_state import set_active
from tests.helpers.models import DataModule
from tests.unit.olmo_lm.experts.conftest import loss_on

EXPERT_DOMAINS = ("literature", "code", "math")


class _Windows(torch.utils.data.Dataset):
    def __init__(self, w):
        self.w = w

    def __len__(self):
        return len(self.w)

    def __getitem__(self, i):
        return self.w[i]


@pytest.fixture(scope="module")
def flex(public_model, domains, tmp_path_factory):
    """Public model -> one expert per domain, each trained alone through the core -> merged."""
    dense_state = public_model.state_dict()
    anchor_rows = domain_embedding(
        public_model, [torch.cat([d[0][:32, :-1] for d in domains.values()])]
    )
    experts = {}
    for k, name in enumerate(EXPERT_DOMAINS):
        rows = domain_embedding(public_model, [domains[name][0][:64, :-1]])
        cfg, state = upcycle(public_model.config, dense_state, anchor_rows, rows)
        module = ExpertTrainingModule(cfg, 64, {"lr": 3e-3}, {"warmup_steps": 2})
        module.model.load_state_dict(state)
        trainer = TrainerConfig(
            run_dir=str(tmp_path_factory.mktemp(name)),
            accelerator="cpu",
            devices=1,
            max_steps=40,
            enable_progress_bar=False,
            seed=k,
        )
        fit(trainer, module, DataModule(_Windows(domains[name][0]), batch_size=16))
        experts[name] = module.model.eval()
    cfg, state = merge([experts[n].state_dict() for n in EXPERT_DOMAINS], experts["code"].config)
    merged = cfg.build().eval()
    merged.load_state_dict(state)
    return public_model, experts, merged


def test_upcycled_model_computes_the_dense_model(public_model, domains):
    rows = domain_embedding(public_model, [domains["code"][0][:8, :-1]])
    cfg, state = upcycle(public_model.config, public_model.state_dict(), rows, rows)
    moe = cfg.build().eval()
    moe.load_state_dict(state)
    ids = domains["code"][1][:4, :-1]
    with torch.no_grad():
        torch.testing.assert_close(moe(ids), public_model(ids), rtol=1e-4, atol=1e-4)


def test_training_an_expert_moves_only_that_expert(flex):
    public, experts, _ = flex
    dense = public.state_dict()
    for model in experts.values():
        state = model.state_dict()
        for name, v in dense.items():
            if ".ffn." not in name:
                assert torch.equal(state[name], v), name  # attention, norms, embeddings frozen
        for i in range(public.config.n_layers):
            pre = f"blocks.{i}.ffn."
            anchor = torch.cat([dense[pre + "w_gate.weight"], dense[pre + "w_up.weight"]])
            assert torch.equal(state[pre + "experts.w_gate_up"][0], anchor)  # anchor frozen
            assert not torch.equal(state[pre + "experts.w_gate_up"][1], anchor)  # expert learned


def test_merged_moe_reproduces_each_expert_when_routed_to_it(flex, domains):
    _, experts, merged = flex
    for k, name in enumerate(EXPERT_DOMAINS):
        ids = domains[name][1][:8, :-1]
        set_active(merged, [0, k + 1])  # the anchor and expert k alone
        with torch.no_grad():
            torch.testing.assert_close(merged(ids), experts[name](ids), rtol=1e-4, atol=1e-4)
    set_active(merged, None)


def test_experts_beat_the_public_model_on_their_domain(flex, domains):
    public, experts, _ = flex
    for name in EXPERT_DOMAINS:
        val = domains[name][1]
        assert loss_on(experts[name], val) < loss_on(public, val) - 0.05, name


def test_opting_an_expert_out_removes_its_influence_only(flex, domains):
    _, _, merged = flex
    set_active(merged, None)
    full = {n: loss_on(merged, domains[n][1]) for n in EXPERT_DOMAINS}
    out = EXPERT_DOMAINS.index("code") + 1
    set_active(merged, [e for e in range(4) if e != out])
    without = {n: loss_on(merged, domains[n][1]) for n in EXPERT_DOMAINS}
    set_active(merged, None)
    rise = {n: without[n] - full[n] for n in EXPERT_DOMAINS}
    assert rise["code"] > 0.05, rise
    for other in ("literature", "math"):
        assert rise[other] < 0.25 * rise["code"] and rise[other] < 0.03, rise
