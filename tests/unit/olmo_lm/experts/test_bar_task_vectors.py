import copy

import torch

from olmo_lm.experts.bar import BARModel, branch, freeze_shared, train_router
from olmo_lm.experts.task_vectors import apply_task_vectors, choose_scale, task_vector
from tests.unit.olmo_lm.experts.conftest import loss_on, train_steps

NAMES = ("literature", "code", "math")


def _adapted_branches(public_model, domains):
    branches = branch(public_model, 3)
    for k, (b, name) in enumerate(zip(branches, NAMES, strict=True)):
        train_steps(freeze_shared(b.train()), domains[name][0], 30, seed=k)
    return [b.eval() for b in branches]


def test_updating_one_bar_expert_leaves_the_others_bit_identical(public_model, domains):
    branches = _adapted_branches(public_model, domains)
    bar = BARModel(branches)
    mix = torch.cat([domains[n][0][:32, :-1] for n in NAMES])
    labels = torch.arange(3).repeat_interleave(32)
    assert train_router(bar, mix, labels) > 0.9
    val = {n: domains[n][1][:16, :-1] for n in NAMES}
    routes = {n: bar.route(val[n]) for n in NAMES}
    before = {n: bar(val[n]) for n in NAMES}
    # each routed sequence is computed by its expert model alone
    k = NAMES.index("code")
    on_code = routes["code"] == k
    assert on_code.float().mean() > 0.75  # held-out windows; the router is one linear layer
    torch.testing.assert_close(
        before["code"][on_code], branches[k](val["code"][on_code]), rtol=1e-4, atol=1e-4
    )
    # adapt the code expert further (another stage) and swap it in
    updated = train_steps(freeze_shared(copy.deepcopy(branches[k]).train()), domains["code"][0], 20)
    bar.update_expert(k, updated.eval())
    after = {n: bar(val[n]) for n in NAMES}
    assert not torch.equal(after["code"][on_code], before["code"][on_code])
    for n in ("literature", "math"):
        assert torch.equal(bar.route(val[n]), routes[n])
        elsewhere = routes[n] != k
        assert elsewhere.any()
        assert torch.equal(after[n][elsewhere], before[n][elsewhere])  # bit for bit


def test_task_vector_scale_is_chosen_on_validation(public_model, domains):
    base = public_model.state_dict()
    tuned = train_steps(copy.deepcopy(public_model).train(), domains["math"][0], 30, seed=3)
    tau = task_vector(base, tuned.state_dict())
    probe = copy.deepcopy(public_model)

    def val_loss(state):
        probe.load_state_dict(state)
        return loss_on(probe, domains["math"][1])

    scale, losses = choose_scale(base, [tau], val_loss)
    assert losses[scale] == min(losses.values())
    assert scale > 0 and losses[scale] < losses[0.0] - 0.05  # the task vector helps math
    merged = apply_task_vectors(base, [tau], 1.0)
    assert all(torch.allclose(merged[k], v) for k, v in tuned.state_dict().items())
