import orjson
import pytest
from transformers import AutoTokenizer

from termwise.errors import TermwiseUserError
from termwise.recipes.pref.data import collate_pairs, encode_pair, encode_pairs, read_pairs

GOOD = {"prompt": "Q?", "chosen": "Yes.", "rejected": "No.", "category": "chat", "subset": "s1"}


def _write(path, rows):
    lines = [r if isinstance(r, bytes) else orjson.dumps(r) for r in rows]
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def test_reads_fields_and_defaults(tmp_path):
    path = _write(tmp_path / "p.jsonl", [GOOD, {"prompt": "", "chosen": "a", "rejected": "b"}])
    pairs, report = read_pairs(path)
    assert report.rows == 2 and not report.bad
    assert (pairs[0].category, pairs[0].subset, pairs[0].margin) == ("chat", "s1", 0.0)
    assert (pairs[1].category, pairs[1].subset) == ("all", "all")


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (b"{not json", "p.jsonl:2: invalid JSON"),
        ({"prompt": "Q", "rejected": "x"}, "p.jsonl:2: chosen: missing"),
        ({"prompt": "Q", "chosen": 3, "rejected": "x"}, "p.jsonl:2: chosen: expected a string"),
        ({"prompt": "Q", "chosen": "  ", "rejected": "x"}, "p.jsonl:2: chosen: empty text"),
        ({**GOOD, "margin": "big"}, "p.jsonl:2: margin: expected a number, got str"),
        ({**GOOD, "category": 1}, "p.jsonl:2: category: expected a string"),
        ([1, 2], "p.jsonl:2: expected a JSON object"),
    ],
)
def test_bad_record_names_file_line_field(tmp_path, row, message):
    path = _write(tmp_path / "p.jsonl", [GOOD, row])
    with pytest.raises(TermwiseUserError) as error:
        read_pairs(path)
    assert message in str(error.value)
    pairs, report = read_pairs(path, "skip")
    assert len(pairs) == 1 and len(report.bad) == 1 and message in report.bad[0]


def test_nothing_usable_is_an_error(tmp_path):
    path = _write(tmp_path / "p.jsonl", [{"prompt": "Q"}])
    with pytest.raises(TermwiseUserError, match="no usable preference pairs"):
        read_pairs(path, "skip")


@pytest.fixture(scope="module")
def tokenizer(tiny_bert):
    return AutoTokenizer.from_pretrained(str(tiny_bert))


def test_pair_encoding_marks_the_prompt(tokenizer):
    ids, n = encode_pair(tokenizer, "what is two plus two", "four", 32)
    tokens = tokenizer.convert_ids_to_tokens(ids)
    assert tokens[:n] == ["[CLS]", "what", "is", "two", "plus", "two", "[SEP]"]
    assert tokens[n:] == ["four", "[SEP]"]


def test_truncation_keeps_prompt_end_and_response_start(tokenizer):
    prompt = " ".join(f"p{i}" for i in range(200))
    response = " ".join(["answer"] * 200)
    ids, n = encode_pair(tokenizer, prompt, response, 40)
    text = tokenizer.decode(ids[:n], skip_special_tokens=True)
    assert len(ids) <= 40
    assert text.endswith("p199") and "p0 " not in text
    assert n - 2 == (40 - 3) // 2  # the prompt gets half of the budget
    short, n_short = encode_pair(tokenizer, prompt, "ok", 40)
    assert len(short) == 40 and tokenizer.convert_ids_to_tokens(short[n_short:]) == ["ok", "[SEP]"]


def test_chat_template_is_used_when_present(tiny_qwen):
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_qwen))
    tokenizer.chat_template = (
        "{% for m in messages %}<{{ m['role'] }}> {{ m['content'] }} {% endfor %}"
        "{% if add_generation_prompt %}<assistant> {% endif %}"
    )
    ids, n = encode_pair(tokenizer, "name a colour", "blue", 64)
    assert tokenizer.decode(ids[:n]).replace(" ", "") == "<user>nameacolour<assistant>"
    assert tokenizer.decode(ids[n:]).replace(" ", "") == "blue"


def test_collate_puts_chosen_then_rejected(tokenizer, tmp_path):
    path = _write(tmp_path / "p.jsonl", [GOOD, {**GOOD, "chosen": "a longer answer", "margin": 2}])
    pairs, _ = read_pairs(path)
    encoded = encode_pairs(tokenizer, pairs, 32)
    batch = collate_pairs(encoded, [1, 0], 0)
    assert batch["input_ids"].shape[0] == 4
    assert batch["input_ids"][0, : len(encoded.chosen[1])].tolist() == encoded.chosen[1]
    assert batch["input_ids"][3, : len(encoded.rejected[0])].tolist() == encoded.rejected[0]
    assert batch["prompt_mask"][0].sum() == encoded.chosen_prompt[1]
    assert batch["margin"].tolist() == [2.0, 0.0]
