import json
import random

import pytest
import yaml

WORDS = "the a cat dog sat ran on under mat log red blue big small quickly slowly".split()


def write_documents(path, documents=6, sentences=30, seed=0):
    """Documents of short random sentences from a 16-word vocabulary."""
    rng = random.Random(seed)
    with path.open("w") as handle:
        for d in range(documents):
            lines = [
                " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 8))) + "."
                for _ in range(sentences)
            ]
            handle.write(json.dumps({"id": f"doc{d}", "title": f"d{d}", "sentences": lines}) + "\n")
    return path


def tiny_config(tmp_path, tiny_bert, **overrides):
    """A config that trains in a second or two."""
    data = write_documents(tmp_path / "docs.jsonl")
    config = {
        "data": {
            "sequences": [str(data)],
            "max_tokens": 10,
            "min_count": 1,
            "val_fraction": 0.2,
            "test_fraction": 0.2,
            "cache_dir": str(tmp_path / "cache"),
        },
        "model": {
            "embed_dim": 16,
            "encoder_hidden": 16,
            "latent_dim": 4,
            "num_latent_tokens": 2,
            "decoder_hidden": 24,
        },
        "teacher": {"backbone": str(tiny_bert)},
        "stages": [
            {"name": "anneal", "epochs": 1, "kl_weight": {"start": 0.0, "end": 1.0}},
            {"name": "main", "epochs": 2},
        ],
        "eval_examples": 50,
        "iw_samples": 3,
        "trainer": {"batch_size": 16, "progress": False, "tensorboard": False, "health_every": 2},
    }
    for key, value in overrides.items():
        config[key] = {**config.get(key, {}), **value} if isinstance(value, dict) else value
    path = tmp_path / "vae.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture
def vae_config(tmp_path, tiny_bert):
    return tiny_config(tmp_path, tiny_bert)
