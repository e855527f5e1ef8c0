import pytest
import torch

from olmo_lm.data.tokenizer import ByteTokenizer
from olmo_lm.generate import SamplingConfig, generate, pad_left, sample_next
from olmo_lm.model.cache import RollingKVCache
from olmo_lm.model.config import PRESETS, SMALL_PRESETS


@pytest.fixture(scope="module", params=SMALL_PRESETS)
def model(request):
    torch.manual_seed(0)
    cfg = PRESETS[request.param]()
    if request.param == "olmo3_tiny":
        cfg = cfg.replace(sliding_window=8)  # decode well past the window
    return cfg.build().eval()


def test_greedy_with_cache_equals_full_recomputation(model):
    prompt = torch.randint(256, (2, 9), generator=torch.Generator().manual_seed(1))
    greedy = SamplingConfig(temperature=0)
    cached = generate(model, prompt, 24, greedy)
    recomputed = generate(model, prompt, 24, greedy, use_cache=False)
    assert torch.equal(cached.tokens, recomputed.tokens)
    assert cached.tokens.shape == (2, 33)
    assert cached.tokens_per_second > 0


def test_left_padded_batch_generates_what_each_prompt_does_alone(model):
    prompts = [[72, 105, 33], [84, 111, 32, 98, 101, 32, 111, 114]]
    ids, mask = pad_left(prompts)
    greedy = SamplingConfig(temperature=0)
    batched = generate(model, ids, 10, greedy, attention_mask=mask)
    for i, p in enumerate(prompts):
        alone = generate(model, torch.tensor([p]), 10, greedy)
        assert batched.new_tokens[i] == alone.new_tokens[0]


def test_sliding_layers_keep_only_the_window():
    torch.manual_seed(0)
    model = PRESETS["olmo3_tiny"]().replace(sliding_window=8).build().eval()
    cache = model.new_cache(64)
    with torch.no_grad():
        model(torch.randint(256, (1, 30)), cache=cache)
    rolling = [c for c in cache.layers if isinstance(c, RollingKVCache)]
    assert len(rolling) == 3 and all(c.k.shape[2] == 8 for c in rolling)
    assert cache.layers[3].k.shape[2] == 64  # the full-attention layer keeps everything


def test_generation_past_max_seq_len_recomputes_the_window():
    torch.manual_seed(0)
    model = PRESETS["tiny"]().replace(max_seq_len=16).build().eval()
    prompt = torch.randint(256, (1, 5))
    greedy = SamplingConfig(temperature=0)
    cached = generate(model, prompt, 30, greedy)
    assert torch.equal(cached.tokens, generate(model, prompt, 30, greedy, use_cache=False).tokens)


def test_top_k_one_and_tiny_top_p_are_greedy():
    logits = torch.randn(4, 50, generator=torch.Generator().manual_seed(0))
    g = torch.Generator().manual_seed(0)
    for sampling in (SamplingConfig(top_k=1), SamplingConfig(top_p=1e-6)):
        assert torch.equal(sample_next(logits, sampling, g), logits.argmax(-1))


def test_top_k_and_top_p_restrict_the_support():
    logits = torch.tensor([[4.0, 3.0, 2.0, 1.0, 0.0]]).expand(2000, 5)
    g = torch.Generator().manual_seed(0)
    assert set(sample_next(logits, SamplingConfig(top_k=2), g).tolist()) == {0, 1}
    probs = logits[0].softmax(-1)  # 0.64, 0.24, ...: top_p 0.8 keeps the first two
    assert probs[:2].sum() > 0.8 > probs[0]
    assert set(sample_next(logits, SamplingConfig(top_p=0.8), g).tolist()) == {0, 1}
    hot = sample_next(logits, SamplingConfig(temperature=100.0), g)
    assert len(set(hot.tolist())) == 5  # high temperature flattens towards uniform


def test_sampling_is_seeded():
    torch.manual_seed(0)
    model = PRESETS["tiny"]().build().eval()
    prompt = torch.tensor([[72, 105]])
    a = generate(model, prompt, 8, generator=torch.Generator().manual_seed(3))
    b = generate(model, prompt, 8, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a.tokens, b.tokens)


def test_stop_ids_and_strings():
    torch.manual_seed(0)
    model = PRESETS["tiny"]().build().eval()
    prompt = torch.tensor([[72, 105], [65, 66]])
    greedy = generate(model, prompt, 12, SamplingConfig(temperature=0))
    first = greedy.new_tokens[0][3]
    stopped = generate(model, prompt, 12, SamplingConfig(temperature=0, stop_ids=[first]))
    assert stopped.new_tokens[0] == greedy.new_tokens[0][: greedy.new_tokens[0].index(first) + 1]
    tok = ByteTokenizer()
    text = tok.decode(greedy.new_tokens[1])
    stop = text[4:6]
    cut = generate(
        model, prompt, 12, SamplingConfig(temperature=0, stop_strings=[stop]), tokenizer=tok
    )
    assert cut.texts[1] == text[: text.index(stop)]
    assert len(cut.new_tokens[1]) < 12


def test_stop_strings_need_a_tokenizer():
    from earthplat.traincore.errors import TrainCoreConfigError

    model = PRESETS["tiny"]().build().eval()
    with pytest.raises(TrainCoreConfigError, match="tokenizer"):
        generate(model, torch.tensor([[1]]), 2, SamplingConfig(stop_strings=["x"]))
