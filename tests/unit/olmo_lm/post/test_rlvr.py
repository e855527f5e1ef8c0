import random

import pytest
import torch

from earthplat.traincore.trainer import TrainerConfig
from olmo_lm.data.corpora import evaluate
from olmo_lm.data.tokenizer import ByteTokenizer
from olmo_lm.model.config import TransformerConfig
from olmo_lm.model.store import load_model, save_model_dir
from olmo_lm.post.common import pad_right
from olmo_lm.post.rlvr import (
    GRPOConfig,
    ProblemConfig,
    RLVRJobConfig,
    cut_at_stop,
    draw_problems,
    group_advantages,
    mean_reward,
    problem_text,
    prompt_ids,
    reward,
    run_rlvr,
    stop_ids,
)


def test_reward_is_the_checked_answer_of_the_first_line():
    assert reward("(3 + 4) * 2", " 14\nProblem 2") == 1.0
    assert reward("(3 + 4) * 2", " 13\n") == 0.0
    assert reward("3 - 9", " -6") == 1.0
    assert reward("3 - 9", " six") == 0.0


def test_a_completion_is_cut_at_its_first_stop():
    assert cut_at_stop([5, 6, 10, 7, 10], [10]) == (2, 3)
    assert cut_at_stop([5, 6, 7], [10]) == (3, 3)  # never stopped: all of it is learned
    assert cut_at_stop([5, 10, 13, 10, 13], [10, 13]) == (1, 3)  # a stop of two tokens
    assert cut_at_stop([], [10]) == (0, 0)


def test_chat_prompts_are_the_chat_template_with_the_assistant_turn_open(chat_tok):
    from olmo_lm.post.chat import encode_chat

    ids = prompt_ids(chat_tok, "3 + 4", "chat")
    turn = [{"role": "user", "content": "What is 3 + 4?"}]
    assert ids == encode_chat(chat_tok, turn, add_generation_prompt=True).ids.tolist()
    assert chat_tok.special_ids["<|assistant|>"] in ids[-3:]  # the assistant's turn is open
    assert stop_ids(chat_tok, "chat") == [chat_tok.eos_id]
    assert prompt_ids(chat_tok, "3 + 4") == chat_tok.encode(problem_text("3 + 4"))
    assert stop_ids(chat_tok) == chat_tok.encode("\n")
    with pytest.raises(ValueError, match=r"grpo\.prompt"):
        GRPOConfig(prompt="plain")


def test_corpus_problems_are_the_math_corpus_expressions():
    exprs = draw_problems(ProblemConfig(n=20))
    assert len(exprs) == 20 and all(isinstance(evaluate(e), int) for e in exprs)


def test_group_advantages_by_hand():
    rewards = torch.tensor([[1.0, 0.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0]])
    adv = group_advantages(rewards, eps=0.0)
    # group 1: mean 1/4, std sqrt(3)/4 -> (3/4)/(sqrt3/4) = sqrt 3 and -(1/4)/(sqrt3/4)
    assert adv[0, 0].item() == pytest.approx(3**0.5)
    assert adv[0, 1].item() == pytest.approx(-(3**-0.5))
    assert torch.isnan(adv[1]).all()  # eps = 0 and no spread: the eps guards this
    assert (group_advantages(rewards)[1] == 0).all()


def _pretrain_arithmetic(problems: list[str]) -> torch.nn.Module:
    """A tiny byte-level model taught the problem format and partly the sums (seeded)."""
    torch.manual_seed(0)
    tok = ByteTokenizer()
    cfg = TransformerConfig(
        vocab_size=260, d_model=64, n_layers=2, n_heads=2, mlp_hidden=128, max_seq_len=64
    )
    model = cfg.build()
    texts = [tok.encode(problem_text(e, evaluate(e))) for e in problems]
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for step in range(300):
        ids, m = pad_right(random.Random(step).sample(texts, 32), 0)
        labels = ids[:, 1:].masked_fill(~m[:, 1:], -100)
        opt.zero_grad()
        model(ids[:, :-1], labels=labels).loss.backward()
        opt.step()
    return model


def test_rlvr_raises_the_reward_on_arithmetic(tmp_path):
    """Single-digit sums (operands 0-5): pretraining leaves the model right about one time in
    five; 40 GRPO steps through the core raise the sampled reward."""
    problems = ProblemConfig(source="simple", n=400, seed=1, max_operand=5, ops="+")
    model = _pretrain_arithmetic(draw_problems(problems))
    start = save_model_dir(model.config, model.state_dict(), tmp_path / "start")
    tok = ByteTokenizer()
    held = draw_problems(ProblemConfig(source="simple", n=64, seed=99, max_operand=5, ops="+"))
    before = mean_reward(model, tok, held, samples=4, max_new_tokens=4)
    job = RLVRJobConfig(
        model=str(start),
        problems=problems,
        grpo=GRPOConfig(group_size=8, max_new_tokens=4),
        batch_size=16,
        trainer=TrainerConfig(
            run_dir=str(tmp_path / "rlvr"),
            accelerator="cpu",
            devices=1,
            max_steps=40,
            log_every_n_steps=5,
            enable_progress_bar=False,
        ),
        optimizer={"lr": 3e-4},
    )
    run_rlvr(job)
    trained, _ = load_model(tmp_path / "rlvr" / "model")
    after = mean_reward(trained, tok, held, samples=4, max_new_tokens=4)
    assert 0.05 < before < 0.6
    assert after > before + 0.05, (before, after)
