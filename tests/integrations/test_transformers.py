"""termwise inside TRL's RewardTrainer: the loss through an Objective, the monitor watching."""

import re
from pathlib import Path

import orjson
import pytest
import torch
from transformers import TrainerCallback

from termwise import Objective
from termwise.integrations.transformers import (
    ObjectiveLoss,
    TermwiseCallback,
    pairwise_reward_terms,
)
from termwise.sample_data import sample_path

trl = pytest.importorskip("trl")


def pair_dataset(tokenizer, count=64):
    from datasets import Dataset

    rows = [orjson.loads(line) for line in sample_path("preferences", "train.jsonl").open("rb")]

    def ids(prompt, response):
        return tokenizer(prompt, response, truncation=True, max_length=64)["input_ids"]

    return Dataset.from_list(
        [
            {
                "chosen_ids": ids(r["prompt"], r["chosen"]),
                "rejected_ids": ids(r["prompt"], r["rejected"]),
            }
            for r in rows[:count]
        ]
    )


LEARNING_RATE = 1e-5


class LogRecorder(TrainerCallback):
    def __init__(self):
        self.logs = []

    def on_log(self, args, state, control, logs=None, **kwargs):
        self.logs.append(dict(logs or {}))


def reward_trainer(
    tiny_bert, output: Path, objective: Objective, steps=30, accumulation=1, reward_offset=0.0
):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_bert)
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(tiny_bert, num_labels=1)
    with torch.no_grad():
        model.classifier.bias.fill_(reward_offset)
    args = trl.RewardConfig(
        output_dir=str(output),
        max_steps=steps,
        per_device_train_batch_size=4,
        gradient_accumulation_steps=accumulation,
        learning_rate=LEARNING_RATE,
        logging_steps=5,
        save_strategy="no",
        report_to="none",
        use_cpu=True,
        bf16=False,  # as termwise trains on CPU (TRL would pick bf16 autocast)
        disable_tqdm=True,
        seed=0,
    )
    trainer = trl.RewardTrainer(
        model=model, args=args, train_dataset=pair_dataset(tokenizer), processing_class=tokenizer
    )
    loss = ObjectiveLoss(objective, pairwise_reward_terms())
    callback = TermwiseCallback(loss, every=10, config_keys={"centering.weight": "centering"})
    return callback.attach(trainer), callback


def warnings_of(run: Path) -> set[tuple[str, str]]:
    report = orjson.loads((run / "report.json").read_bytes())
    return {(f["code"], f["subject"]) for f in report["findings"] if f["severity"] != "info"}


@pytest.mark.slow
def test_an_over_weighted_centring_term_is_found_and_a_small_one_is_not(tmp_path, tiny_bert):
    # A reward head whose zero sits at +3 (a checkpoint trained elsewhere) and a centring
    # weight of 1 (TRL's default is 0.01): centring is nearly all of the objective.
    planted = Objective(
        {"preference": "data", "centering": "regularizer"}, weights={"centering": 1.0}
    )
    trainer, callback = reward_trainer(tiny_bert, tmp_path / "planted", planted, reward_offset=3)
    trainer.train()
    assert ("term.dominant", "centering") in warnings_of(tmp_path / "planted")
    dominant = [f for f in callback.monitor.findings if f.code == "term.dominant"]
    assert dominant[0].changes and dominant[0].changes[0]["config_key"] == "centering"
    assert dominant[0].changes[0]["to"] < 1.0
    healthy = Objective(
        {"preference": "data", "centering": "regularizer"}, weights={"centering": 0.01}
    )
    trainer, _ = reward_trainer(tiny_bert, tmp_path / "healthy", healthy)
    tracker = LogRecorder()  # stands for a report_to tracker: it reads the trainer's logs
    trainer.callback_handler.callbacks.insert(1, tracker)  # where attach() leaves trackers
    trainer.train()
    assert ("term.dominant", "centering") not in warnings_of(tmp_path / "healthy")
    # The terms reach the trainer's logs, which every tracker and the console read, and
    # scalars.csv.
    logged = [logs for logs in tracker.logs if "centering.share" in logs]
    assert len(logged) == 30 // 5
    scalars = (tmp_path / "healthy" / "scalars.csv").read_text()
    assert "preference.raw" in scalars and "centering.mean_reward" in scalars


@pytest.mark.slow
def test_the_loss_is_the_objectives_and_accumulation_is_one_observation_per_step(
    tmp_path, tiny_bert
):
    objective = Objective(
        {"preference": "data", "centering": "regularizer"}, weights={"centering": 0.5}
    )
    trainer, callback = reward_trainer(
        tiny_bert, tmp_path / "run", objective, steps=4, accumulation=2
    )
    batch = next(iter(trainer.get_train_dataloader()))
    model = trainer.model.eval()
    with torch.no_grad():
        rewards = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    chosen, rejected = rewards.squeeze(-1).chunk(2)
    expected = (
        -torch.nn.functional.logsigmoid(chosen - rejected).mean()
        + 0.5 * ((chosen + rejected) ** 2).mean()
    )
    with torch.no_grad():
        got = trainer.compute_loss(model, batch)
    assert torch.allclose(got, expected, rtol=1e-5, atol=1e-6)
    assert callback.loss.pop_step() == {}  # evaluation-mode batches are not observed
    trainer.train()
    windows = [
        orjson.loads(line)
        for line in (tmp_path / "run" / "health_windows.jsonl").read_bytes().splitlines()
    ]
    assert sum(w["steps"] for w in windows if w["kind"] == "window") == 4  # not micro-batches


@pytest.mark.slow
def test_readme_section_runs_as_written(tmp_path, monkeypatch):
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    section = readme.split("## Use it from your own trainer", 1)[1].split("\n## ", 1)[0]
    code = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert len(code) == 1
    monkeypatch.chdir(tmp_path)
    exec(compile(code[0], "README.md", "exec"), {})
    run = tmp_path / "runs" / "trl-reward"
    report = orjson.loads((run / "report.json").read_bytes())
    assert report["step"] == 10 and "centering.share" in report["scalars"]
    assert warnings_of(run) == set()  # the README's run is a healthy one


@pytest.mark.slow
def test_pref_train_finds_what_the_callback_finds_on_the_same_planted_error(tmp_path, tiny_bert):
    """Rewards whose zero sits at +3 and a centring weight of 1, in TRL's RewardTrainer with
    the callback and in termwise pref's own recipe: the same warnings."""
    import yaml
    from rich.console import Console

    import termwise.recipes.pref.recipe as pref_recipe
    from termwise.config import load_yaml_config
    from termwise.recipes.pref.config import PrefConfig

    objective = Objective(
        {"preference": "data", "centering": "regularizer"}, weights={"centering": 1.0}
    )
    trainer, _ = reward_trainer(tiny_bert, tmp_path / "trl", objective, reward_offset=3)
    trainer.train()
    config = {
        "kind": "bt",
        "train_path": str(sample_path("preferences", "train.jsonl")),
        "backbone": {"path": str(tiny_bert), "max_length": 64},
        "lora": {"enabled": False},
        "learning_rate": LEARNING_RATE,
        "max_pairs": 64,
        "bt": {"center_rewards_coef": 1.0},
        "trainer": {"max_steps": 30, "batch_size": 4, "health_every": 10, "progress": False},
    }
    path = tmp_path / "pref.yaml"
    path.write_text(yaml.safe_dump(config))
    run = tmp_path / "pref"
    session = pref_recipe.setup(load_yaml_config(path, PrefConfig), run, Console(quiet=True))
    with torch.no_grad():
        session.model.out.bias.fill_(3.0)  # the same plant: the reward head's zero at +3
    pref_recipe.train(session)
    assert ("term.dominant", "centering") in warnings_of(run)
    assert warnings_of(run) == warnings_of(tmp_path / "trl")
