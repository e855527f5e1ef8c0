"""Document masking: a packed row computes each of its documents exactly as if alone."""

import numpy as np
import pytest
import torch

from earthplat.traincore.errors import TrainCoreConfigError
from olmo_lm.model.config import TransformerConfig
from olmo_lm.model.transformer import IGNORE_INDEX, document_positions
from olmo_lm.post.chat import EncodedChat
from olmo_lm.post.sft import SFTModule, labels_of, pack_conversations_with_documents
from olmo_lm.train.pretrain import CausalLMModule, check_document_masking

LENGTHS = (20, 41, 13)  # longer than olmo3_tiny's window of 32, so the window is exercised


def _packed(vocab: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    docs = [torch.randint(vocab, (n,), generator=g) for n in LENGTHS]
    ids = torch.cat(docs)[None]  # [1, T]
    doc_ids = torch.cat([torch.full((n,), d) for d, n in enumerate(LENGTHS)])[None]
    return ids, doc_ids, docs


@pytest.mark.parametrize(
    "preset", [TransformerConfig.tiny, TransformerConfig.olmo3_tiny, TransformerConfig.olmoe_tiny]
)
def test_packed_logits_equal_each_document_alone(preset):
    torch.manual_seed(0)
    cfg = preset()
    model = cfg.build().eval()
    ids, doc_ids, docs = _packed(cfg.vocab_size)
    with torch.no_grad():
        masked = model(ids, doc_ids=doc_ids)[0]  # [T, V]
        plain = model(ids)[0]
        alone = torch.cat([model(d[None])[0] for d in docs])
    torch.testing.assert_close(masked, alone, atol=1e-5, rtol=0)
    # without masking the later documents see the earlier ones
    later = slice(LENGTHS[0], None)
    assert (plain[later] - alone[later]).abs().max() > 1e-3


def test_masked_gradients_do_not_cross_documents():
    torch.manual_seed(0)
    model = TransformerConfig.tiny().build()
    ids, doc_ids, _ = _packed(260)
    emb = model.embed(ids).detach().requires_grad_(True)
    model.embed.forward = lambda _ids: emb  # feed the leaf embedding through the blocks
    logits = model(ids, doc_ids=doc_ids)
    logits[0, LENGTHS[0] + 5].sum().backward()  # a token of the second document
    grad = emb.grad[0].abs().sum(-1)
    assert grad[: LENGTHS[0]].max() == 0 and grad[LENGTHS[0] : LENGTHS[0] + 6].min() > 0


def test_document_positions_restart():
    doc_ids = torch.tensor([[0, 0, 0, 1, 1, 2], [0, 1, 1, 1, 1, 1]])
    assert document_positions(doc_ids).tolist() == [[0, 1, 2, 0, 1, 0], [0, 0, 1, 2, 3, 4]]


def test_hybrid_models_refuse_document_masking():
    cfg = TransformerConfig.olmo_hybrid_tiny()
    model = cfg.build()
    ids, doc_ids, _ = _packed(cfg.vocab_size)
    with pytest.raises(ValueError, match="gated_deltanet"):
        model(ids, doc_ids=doc_ids)
    with pytest.raises(TrainCoreConfigError, match=r"--data\.document_masking"):
        check_document_masking(cfg, "--data.document_masking")
    check_document_masking(TransformerConfig.tiny(), "--data.document_masking")  # fine


def test_masking_is_refused_with_a_cache_or_padding():
    model = TransformerConfig.tiny().build()
    ids, doc_ids, _ = _packed(260)
    with pytest.raises(ValueError, match="attention_mask"):
        model(ids, doc_ids=doc_ids, attention_mask=torch.ones_like(ids))


def test_pretraining_loss_of_a_document_batch_is_the_documents_alone():
    torch.manual_seed(0)
    module = CausalLMModule(TransformerConfig.tiny(), seq_len=sum(LENGTHS) - 1)
    module.loss_config.z_loss_weight = 0.0
    ids, doc_ids, docs = _packed(260, seed=1)
    masked, _ = module.loss_terms({"input_ids": ids, "doc_ids": doc_ids})
    plain, _ = module.loss_terms(ids)
    # the masked loss: every target predicted from its own document only; the first token of
    # each later document is predicted from the previous document's last token alone
    model = module.model
    total = 0.0
    with torch.no_grad():
        for d, doc in enumerate(docs):
            logits = model(doc[None])[0]  # [n, V]
            logp = logits.log_softmax(-1)
            nxt = docs[d + 1][0] if d + 1 < len(docs) else None
            targets = doc[1:].tolist() + ([int(nxt)] if nxt is not None else [])
            total -= sum(logp[i, t].item() for i, t in enumerate(targets))
    expected = total / (sum(LENGTHS) - 1)
    assert masked.item() == pytest.approx(expected, abs=1e-5)
    assert abs(plain.item() - expected) > 1e-4


def test_sft_packing_with_document_masking_learns_each_conversation_alone():
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    chats = []
    for n in (9, 14, 7):
        mask = np.zeros(n, dtype=bool)
        mask[n // 2 :] = True
        chats.append(EncodedChat(rng.integers(1, 260, n), mask))
    ids, mask, docs = pack_conversations_with_documents(chats, seq_len=39, pad_id=0)
    assert ids.shape == (1, 40) and docs[0].tolist() == [0] * 9 + [1] * 14 + [2] * 7 + [3] * 10
    module = SFTModule(TransformerConfig.tiny(), seq_len=39)
    module.loss_config.z_loss_weight = 0.0
    batch = {"ids": torch.from_numpy(ids), "mask": torch.from_numpy(mask)}
    plain, _ = module.loss_terms(batch)
    masked, _ = module.loss_terms({**batch, "doc_ids": torch.from_numpy(docs)})
    nll, count = 0.0, 0
    with torch.no_grad():
        for c in chats:
            inputs, labels = labels_of(
                torch.from_numpy(c.ids)[None].long(), torch.from_numpy(c.mask)[None]
            )
            logp = module.model(inputs)[0].log_softmax(-1)
            for i, t in enumerate(labels[0].tolist()):
                if t != IGNORE_INDEX:
                    nll, count = nll - logp[i, t].item(), count + 1
    assert masked.item() == pytest.approx(nll / count, abs=1e-5)
    assert abs(plain.item() - nll / count) > 1e-4


def test_pretraining_refuses_masking_without_documents_or_for_hybrid(tmp_path):
    from olmo_lm.cli import PretrainJobConfig, run_pretraining
    from olmo_lm.data.text import TextDataConfig
    from olmo_lm.train.pretrain import build_data_module

    with pytest.raises(TrainCoreConfigError, match=r"needs --data\.mixture"):
        build_data_module(TextDataConfig(document_masking=True))
    job = PretrainJobConfig(
        model=TransformerConfig.olmo_hybrid_tiny(), data=TextDataConfig(document_masking=True)
    )
    job.trainer.run_dir = str(tmp_path / "run")
    with pytest.raises(TrainCoreConfigError, match="gated_deltanet"):
        run_pretraining(job)
