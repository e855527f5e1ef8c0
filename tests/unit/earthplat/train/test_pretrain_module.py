import torch

from earthplat.batch import Batch
from earthplat.nn.encoder import EncoderConfig
from earthplat.nn.export import export_encoder, load_encoder
from earthplat.train.pretrain import LatentMIMModule
from tests.unit.earthplat.nn.data import make_inputs


def _batch(b=4, t=3, size=16, seed=0):
    inputs = make_inputs(b=b, t=t, size=size, seed=seed)
    return Batch(
        modalities=inputs,
        window=[f"w{i}" for i in range(b)],
        index=torch.arange(b),
        patch_size=4,
    )


def test_only_online_parameters_receive_gradients():
    torch.manual_seed(0)
    module = LatentMIMModule(encoder=EncoderConfig.pico())
    before = {k: v.clone() for k, v in module.target_embed.state_dict().items()}
    parts = module.compute_loss(_batch(), torch.Generator().manual_seed(0))
    parts["loss"].backward()
    assert all(p.grad is None for p in module.target_embed.parameters())
    assert all(not p.requires_grad for p in module.target_embed.parameters())
    online = [p for n, p in module.named_parameters() if not n.startswith("target_embed")]
    assert sum(p.grad is not None and p.grad.abs().sum() > 0 for p in online) > 0.8 * len(online)
    opt = module.optimizer_config.build(module)
    assert {id(p) for g in opt.param_groups for p in g["params"]}.isdisjoint(
        {id(p) for p in module.target_embed.parameters()}
    )
    opt.step()
    for k, v in module.target_embed.state_dict().items():
        assert torch.equal(v, before[k]), "targets stay the frozen initial projections"


def test_targets_are_the_initial_projections():
    torch.manual_seed(0)
    module = LatentMIMModule(encoder=EncoderConfig.pico())
    for (k, a), (_, b) in zip(
        module.encoder.patch_embed.state_dict().items(), module.target_embed.state_dict().items()
    ):
        assert torch.equal(a, b), k


def test_loss_is_finite_and_masks_are_seeded():
    torch.manual_seed(0)
    module = LatentMIMModule(encoder=EncoderConfig.pico())
    a = module.compute_loss(_batch(), torch.Generator().manual_seed(5))["loss"]
    b = module.compute_loss(_batch(), torch.Generator().manual_seed(5))["loss"]
    c = module.compute_loss(_batch(), torch.Generator().manual_seed(6))["loss"]
    assert torch.isfinite(a) and torch.equal(a, b) and not torch.equal(a, c)


def test_export_and_load_without_lightning(tmp_path):
    torch.manual_seed(0)
    encoder = EncoderConfig.pico().build().eval()
    export_encoder(encoder, tmp_path / "enc")
    loaded = load_encoder(tmp_path / "enc").eval()
    inputs = make_inputs()
    torch.testing.assert_close(loaded(inputs, 4).pooled, encoder(inputs, 4).pooled)
    assert loaded.config == encoder.config
