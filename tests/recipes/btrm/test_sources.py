import pytest

from termwise.errors import TermwiseUserError
from termwise.recipes.btrm.sources import read_source


def write(tmp_path, lines, name="src.jsonl"):
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return path


def test_auto_field_tier_filter_and_report(tmp_path):
    path = write(
        tmp_path,
        [
            '{"id": "a", "prose": "first text", "tier": "prose"}',
            '{"id": "b", "prose": "second text", "tier": "web"}',
        ],
    )
    records, report = read_source(path, tiers=["prose"])
    assert [r.text for r in records] == ["first text"] and records[0].row_id == "a"
    assert report.text_field == "prose" and report.field_was_auto and report.rows == 2
    assert report.kept == {"prose": 1}


def test_auto_prefers_text_over_other_fields(tmp_path):
    path = write(tmp_path, ['{"content": "c", "text": "t"}'])
    assert read_source(path)[0][0].text == "t"


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('{"text": ', ":2: invalid JSON"),
        ("[1, 2]", ":2: expected a JSON object"),
        ('{"id": 3}', ":2: text: missing"),
        ('{"text": 5}', ":2: text: expected a string, got int"),
        ('{"text": "  "}', ":2: text: empty text"),
        ('{"text": "x", "tier": 1}', ":2: tier: expected a string"),
    ],
)
def test_bad_records_name_file_line_and_field(tmp_path, line, expected):
    path = write(tmp_path, ['{"text": "fine"}', line])
    with pytest.raises(TermwiseUserError) as info:
        read_source(path)
    assert str(info.value) == f"{path}{expected}" or str(info.value).startswith(f"{path}{expected}")


def test_skip_counts_bad_records(tmp_path):
    path = write(tmp_path, ['{"text": "fine"}', '{"text": ', '{"text": ""}', '{"text": "ok"}'])
    records, report = read_source(path, on_bad_record="skip")
    assert [r.text for r in records] == ["fine", "ok"]
    assert len(report.bad) == 2 and ":2:" in report.bad[0] and ":3:" in report.bad[1]


def test_no_text_field_is_an_error_even_when_skipping(tmp_path):
    path = write(tmp_path, ['{"body": "x"}'])
    with pytest.raises(TermwiseUserError, match="no text field"):
        read_source(path, on_bad_record="skip")


def test_single_quote_lines_come_from_flattened_dialogue(tmp_path):
    path = write(
        tmp_path,
        [
            '{"id": "d", "text": "A: hello there my friend\\nB: hi\\nA: how are you doing today",'
            ' "tier": "flattened"}',
            '{"id": "p", "text": "plain prose here", "tier": "prose"}',
        ],
    )
    records, report = read_source(path, tiers=["single_quote"])
    assert [r.text for r in records] == ["A: hello there my friend", "A: how are you doing today"]
    assert {r.tier for r in records} == {"single_quote"} and report.kept == {"single_quote": 2}
    both, _ = read_source(path, tiers=["flattened", "single_quote"])
    assert len(both) == 3


def test_group_field_names_the_document_and_derived_lines_follow_their_row(tmp_path):
    path = write(
        tmp_path,
        [
            '{"id": "w1", "text": "A: hello there my friend\\nB: and hello to you too", '
            '"tier": "flattened", "source": "chat-7"}',
            '{"id": "w2", "text": "plain", "tier": "prose", "source": 12}',
        ],
    )
    records, _ = read_source(path, group_field="source", tiers=["flattened", "single_quote"])
    assert {r.group for r in records} == {"chat-7"} and len(records) == 3
    by_row, _ = read_source(path, tiers=["single_quote"])
    assert [r.group for r in by_row] == ["w1", "w1"]  # lines of one window stay together
    assert read_source(path, group_field="source")[0][1].group == "12"


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('{"text": "x"}', ":1: source: missing"),
        ('{"text": "x", "source": [1]}', ":1: source: expected a string or an integer, got list"),
    ],
)
def test_bad_group_field_is_a_bad_record(tmp_path, line, expected):
    path = write(tmp_path, [line])
    with pytest.raises(TermwiseUserError) as info:
        read_source(path, group_field="source")
    assert expected in str(info.value)
    records, report = read_source(path, group_field="source", on_bad_record="skip")
    assert records == [] and len(report.bad) == 1
