"""``termwise serve``: every endpoint, the limits, the token, errors, concurrency, shutdown.

The server runs in-process (uvicorn in a thread) on a free loopback port and stops by itself
at the end of each test."""

import json
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest
import torch
import uvicorn
from transformers import AutoTokenizer

from termwise.serve.app import ServeSettings, create_app, wrap
from termwise.serve.served import load_served
from tests.cli.test_cli import assert_one_line_exit_2, run_main
from tests.recipes.btrm.test_score import saved_lora_model

TEXTS = ["one text", "another, longer text here about the council meeting", "x"]


class Running:
    def __init__(self, served, **settings):
        self.settings = ServeSettings(**settings)
        self.app = create_app(served, self.settings)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        config = uvicorn.Config(
            wrap(self.app, self.settings), host="127.0.0.1", port=self.port, log_level="error"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self):
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.02)
        self.url = f"http://127.0.0.1:{self.port}"
        return self

    def post(self, path, body, **kwargs):
        return httpx.post(self.url + path, json=body, timeout=60, **kwargs)

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(timeout=30)
        assert not self.thread.is_alive()


@pytest.fixture(scope="module")
def reward_dir(tiny_bert, tmp_path_factory):
    return saved_lora_model(tiny_bert, tmp_path_factory.mktemp("serve") / "reward")


@pytest.fixture(scope="module")
def preference_dirs(tiny_bert, tmp_path_factory):
    from termwise.models.backbone import apply_lora, load_backbone
    from termwise.recipes.pref.model import PreferenceModel, save_preference_model

    out = {}
    for kind in ("bt", "gpm"):
        backbone, config = load_backbone(tiny_bert)
        backbone = apply_lora(backbone, config.model_type, 4, 8, 0.0, None)
        torch.manual_seed(0)
        model = PreferenceModel(backbone, config.hidden_size, kind, "mean")
        with torch.no_grad():
            for parameter in model.parameters():
                if parameter.requires_grad:
                    parameter.add_(0.05 * torch.randn_like(parameter))
        directory = tmp_path_factory.mktemp("serve") / kind
        tokenizer = AutoTokenizer.from_pretrained(tiny_bert)
        save_preference_model(
            model.eval(), tokenizer, directory, {"backbone_path": str(tiny_bert), "max_length": 64}
        )
        manifest = directory / "termwise_pref.json"
        data = json.loads(manifest.read_text())
        manifest.write_text(json.dumps({**data, "temperature": 2.0, "power": 0.5}))
        out[kind] = directory
    return out


def test_reward_endpoints_match_the_scorer(reward_dir):
    served = load_served(reward_dir)
    expected = served.scorer.score_tensor(TEXTS)
    with Running(served, head="b") as server:
        health = httpx.get(server.url + "/health").json()
        assert health["model_type"] == "btrm" and health["heads"] == ["a", "b", "c"]
        # What OpenRLHF's client sends: query (prompt + response), prompts, labels.
        openrlhf = {"query": TEXTS, "prompts": ["p"] * 3, "labels": ["", "", ""]}
        reward = server.post("/get_reward", openrlhf)
        assert reward.status_code == 200, reward.text
        np.testing.assert_allclose(reward.json()["rewards"], expected[:, 1], atol=1e-5)
        other = server.post("/get_reward", {"query": TEXTS, "head": "c"}).json()
        np.testing.assert_allclose(other["rewards"], expected[:, 2], atol=1e-5)
        scores = server.post("/score", {"texts": TEXTS}).json()["scores"]
        np.testing.assert_allclose(scores["a"], expected[:, 0], atol=1e-5)
        unknown = server.post("/get_reward", {"query": TEXTS, "head": "zz"})
        assert unknown.status_code == 400 and "not one of a, b, c" in unknown.text
        assert server.post("/prefer", {"prompt": "p", "a": "x", "b": "y"}).status_code == 400
        assert httpx.get(server.url + "/docs").status_code == 200
        assert "/get_reward" in httpx.get(server.url + "/openapi.json").json()["paths"]


def test_a_multi_head_model_without_a_head_says_how_to_choose(reward_dir):
    with Running(load_served(reward_dir)) as server:
        answer = server.post("/get_reward", {"query": TEXTS})
        assert answer.status_code == 400 and "--head" in answer.json()["detail"]


def test_limits_malformed_json_and_the_token(reward_dir, tmp_path):
    limits = {"max_texts": 4, "max_chars": 50, "max_body_bytes": 2000, "token": "s3cret"}
    with Running(load_served(reward_dir), head="a", **limits) as server:
        auth = {"Authorization": "Bearer s3cret"}
        assert server.post("/get_reward", {"query": TEXTS}).status_code == 401
        wrong = server.post("/get_reward", {"query": TEXTS}, headers={"Authorization": "x"})
        assert wrong.status_code == 401
        assert server.post("/get_reward", {"query": ["ok"]}, headers=auth).status_code == 200
        many = server.post("/get_reward", {"query": ["t"] * 5}, headers=auth)
        assert many.status_code == 413 and "over the limit of 4" in many.text
        long = server.post("/get_reward", {"query": ["t", "y" * 60]}, headers=auth)
        assert long.status_code == 413 and "query[1]: 60 characters" in long.text
        big = server.post("/get_reward", {"query": ["z" * 40] * 100}, headers=auth)
        assert big.status_code == 413 and "over 2000 bytes" in big.text
        broken = httpx.post(
            server.url + "/get_reward", content=b'{"query": [', headers=auth, timeout=30
        )
        assert broken.status_code == 422
        missing = server.post("/get_reward", {"texts": ["a"]}, headers=auth)
        assert missing.status_code == 422 and "query" in missing.text


def test_a_chunked_body_over_the_limit_is_413_and_a_lone_surrogate_is_422(reward_dir):
    with Running(load_served(reward_dir), head="a", max_body_bytes=1_000_000) as server:

        def chunks():  # no Content-Length: the size is only known while it arrives
            yield b'{"query": ["'
            for _ in range(5):
                yield b"x" * 1_000_000
            yield b'"]}'

        json_type = {"content-type": "application/json"}
        big = httpx.post(
            server.url + "/get_reward", content=chunks(), headers=json_type, timeout=60
        )
        assert big.status_code == 413 and "over 1000000 bytes" in big.text
        small = httpx.post(
            server.url + "/get_reward",
            content=iter([b'{"query": ', b'["ok"]}']),
            headers=json_type,
            timeout=60,
        )
        assert small.status_code == 200 and len(small.json()["rewards"]) == 1
        for path, body in [
            ("/get_reward", b'{"query": ["fine", "\\ud800"]}'),
            ("/score", b'{"texts": ["\\udfff text"]}'),
        ]:
            answer = httpx.post(
                server.url + path,
                content=body,
                headers=json_type,
                timeout=60,
            )
            assert answer.status_code == 422 and "lone surrogate" in answer.text, answer.text
        assert server.post("/get_reward", {"query": ["still serving"]}).status_code == 200


def test_concurrent_requests_share_batches_and_get_their_own_answers(reward_dir):
    served = load_served(reward_dir)
    requests = [[f"request {i} text {'w ' * j}" for j in range(1 + i % 3)] for i in range(24)]
    expected = [served.scorer.score_tensor(texts)[:, 0] for texts in requests]
    with Running(served, head="a", max_wait_ms=50) as server:
        with ThreadPoolExecutor(8) as pool:
            answers = list(
                pool.map(lambda texts: server.post("/get_reward", {"query": texts}), requests)
            )
        batches = server.app.state.batchers["texts"].batches
    for answer, want in zip(answers, expected, strict=True):
        assert answer.status_code == 200
        np.testing.assert_allclose(answer.json()["rewards"], want, atol=1e-5)
    assert batches < len(requests)  # some requests shared a forward pass


def test_a_model_error_is_a_500_for_its_batch_and_the_server_goes_on(reward_dir):
    served = load_served(reward_dir)
    real = served.score_texts

    def failing(texts):
        if "boom" in texts:
            raise RuntimeError("the model broke")
        return real(texts)

    served.score_texts = failing
    with Running(served, head="a", max_wait_ms=0) as server:
        broken = server.post("/get_reward", {"query": ["boom"]})
        assert broken.status_code == 500 and "the model broke" in broken.text
        assert server.post("/get_reward", {"query": ["fine"]}).status_code == 200


def test_shutdown_finishes_the_request_in_flight(reward_dir):
    served = load_served(reward_dir)
    real = served.score_texts

    def slow(texts):
        time.sleep(1.0)
        return real(texts)

    served.score_texts = slow
    with Running(served, head="a") as server:
        with ThreadPoolExecutor(1) as pool:
            pending = pool.submit(server.post, "/get_reward", {"query": ["late"]})
            time.sleep(0.3)
            server.server.should_exit = True
            assert pending.result().status_code == 200


def test_preference_endpoints_apply_the_calibration(preference_dirs):
    served = load_served(preference_dirs["bt"])
    raw, _ = served.scorer.probability(["Is 7 prime?"], ["Yes."], ["No."], calibrated=False)
    with Running(served) as server:
        health = httpx.get(server.url + "/health").json()
        assert health["model_type"] == "pref" and health["temperature"] == 2.0
        assert health["power"] == 0.5
        one = server.post("/prefer", {"prompt": "Is 7 prime?", "a": "Yes.", "b": "No."}).json()
        logit = np.log(raw[0] / (1 - raw[0]))
        calibrated = np.sign(logit) * (np.abs(logit) / 2.0) ** 0.5
        assert one["p"] == pytest.approx(1 / (1 + np.exp(-calibrated)), abs=1e-6)
        uncal = server.post(
            "/prefer", {"prompt": "Is 7 prime?", "a": "Yes.", "b": "No.", "calibrated": False}
        ).json()
        assert uncal["p"] == pytest.approx(raw[0], abs=1e-6)
        many = server.post("/prefer", {"prompt": ["a", "b"], "a": ["x", "y"], "b": ["z", "w"]})
        assert len(many.json()["p"]) == 2
        empty = server.post("/prefer", {"prompt": [], "a": [], "b": []})
        assert empty.json() == {"p": [], "std": []}
        uneven = server.post("/prefer", {"prompt": ["a"], "a": ["x", "y"], "b": ["z", "w"]})
        assert uneven.status_code == 422
        both = {"query": ["q Yes.", "No."], "prompts": ["q ", "q"], "labels": [1, 0]}
        rewards = server.post("/get_reward", both)  # the prompt is stripped where it leads
        want = served.scorer.reward(["q ", "q"], ["Yes.", "No."])
        np.testing.assert_allclose(rewards.json()["rewards"], want, atol=1e-5)
    with Running(load_served(preference_dirs["gpm"])) as server:
        answer = server.post("/get_reward", {"query": ["x"]})
        assert answer.status_code == 400 and "use /prefer" in answer.text


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("missing", "not found: expected a saved model directory"),
        ("not a model", "not a servable model"),
        ("bad head", "--head 'zz': the model's heads are a, b, c"),
        ("empty token", "empty token file"),
    ],
)
def test_bad_serve_input_is_one_line(case, message, reward_dir, tmp_path, monkeypatch, capsys):
    args = ["serve", "-m", str(reward_dir)]
    if case == "missing":
        args = ["serve", "-m", str(tmp_path / "nothing")]
    elif case == "not a model":
        args = ["serve", "-m", str(tmp_path)]
    elif case == "bad head":
        args += ["--head", "zz"]
    else:
        (tmp_path / "token").write_text("\n")
        args += ["--token-file", str(tmp_path / "token")]
    code, err = run_main(monkeypatch, capsys, *args)
    assert_one_line_exit_2(code, err, message)


# Bodies Python's JSON reader accepts that no JSON writer can echo back: NaN, infinities
# (1e400 parses to inf), lone surrogates, where a text, a list, a flag or a key was expected.
HOSTILE_BODIES = [
    ("/get_reward", b'{"query": NaN}'),
    ("/get_reward", b'{"query": [Infinity]}'),
    ("/get_reward", b'{"query": ["ok", 1e400]}'),
    ("/get_reward", b'{"query": "\\ud800"}'),
    ("/get_reward", b'{"query": ["ok"], "head": -Infinity}'),
    ("/score", b'{"texts": [NaN], "\\udc00": 1}'),
    ("/score", b'{"\\ud800": ["x"]}'),
    ("/prefer", b'{"prompt": "p", "a": "x", "b": "y", "calibrated": NaN}'),
    ("/prefer", b'{"prompt": 1e400, "a": "x", "b": "y"}'),
    ("/prefer", b'{"prompt": ["\\udfff"], "a": [NaN], "b": {"\\ud800": 1}}'),
    ("/score", b'{"texts": ["caf\xe9"]}'),  # not UTF-8
    ("/get_reward", b'{"query": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"),  # nested deep
    ("/score", b'{"texts": ["ok"], "texts": 12}'),
]


@pytest.mark.parametrize("kind", ["btrm", "bt"])
def test_no_hostile_body_gets_a_5xx_and_each_names_its_field(kind, reward_dir, preference_dirs):
    directory = reward_dir if kind == "btrm" else preference_dirs["bt"]
    json_type = {"content-type": "application/json"}
    with Running(load_served(directory), head="a" if kind == "btrm" else None) as server:
        for path, body in HOSTILE_BODIES:
            answer = httpx.post(server.url + path, content=body, headers=json_type, timeout=60)
            assert answer.status_code < 500, (path, body, answer.text)
            assert answer.status_code in (400, 422), (path, body, answer.text)
            answer.json()  # a JSON body, whatever the input was
        nan = httpx.post(server.url + "/get_reward", content=b'{"query": [NaN]}', headers=json_type)
        assert nan.status_code == 422
        assert ["body", "query", 0] in [each["loc"] for each in nan.json()["detail"]]
        assert server.post("/get_reward", {"query": ["still serving"]}).status_code in (200, 400)
