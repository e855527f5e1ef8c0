import jinja2
import pytest

from earthplat.traincore.errors import TrainCoreConfigError
from olmo_lm.data.tokenizer import CHAT_TEMPLATE, ByteTokenizer
from olmo_lm.post.chat import encode_chat, render_text

MESSAGES = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Who art thou?"},
    {"role": "assistant", "content": "A citizen of Rome."},
    {"role": "user", "content": "And thy name?"},
    {"role": "assistant", "content": "Menenius."},
]


@pytest.mark.parametrize("prompt", [False, True])
def test_render_is_the_recorded_jinja_template(prompt):
    expected = jinja2.Template(CHAT_TEMPLATE).render(
        messages=MESSAGES, add_generation_prompt=prompt
    )
    assert render_text(MESSAGES, add_generation_prompt=prompt) == expected


def test_mask_covers_assistant_contents_and_their_eos_only(chat_tok):
    chat = encode_chat(chat_tok, MESSAGES)
    text = render_text(MESSAGES)
    # the ids decode (special tokens included) to the template's text
    assert chat_tok._tok.decode(chat.ids.tolist(), skip_special_tokens=False) == text
    learned = chat.ids[chat.mask].tolist()
    eos = chat_tok.eos_id
    assert learned.count(eos) == 2 and learned[-1] == eos
    pieces = chat_tok.decode([i for i in learned if i != eos])
    assert pieces == "A citizen of Rome.Menenius."
    assert chat_tok.decode(chat.ids[~chat.mask].tolist()).count("Who art thou?") == 1


def test_a_tokenizer_without_chat_tokens_is_refused_with_the_fix():
    with pytest.raises(TrainCoreConfigError, match="olmo-lm tokenizer train"):
        encode_chat(ByteTokenizer(), MESSAGES)


def test_bad_roles_are_named():
    with pytest.raises(TrainCoreConfigError, match="role"):
        render_text([{"role": "narrator", "content": "x"}])
