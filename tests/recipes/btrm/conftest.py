"""The btrm tests' tiny config: a 2-layer BERT of hidden 64 over the bundled corpora."""

import pytest
import yaml
from typer.testing import CliRunner

from termwise.cli import app


@pytest.fixture
def config_path(tmp_path, tiny_bert):
    return write_tiny_config(tmp_path, tiny_bert)


def write_tiny_config(tmp_path, tiny_bert):
    """The default config over the bundled corpora, shrunk for tests; its path."""
    path = tmp_path / "btrm.yaml"
    result = CliRunner().invoke(app, ["btrm", "gen-config", "-o", str(path), "--max-steps", "4"])
    assert result.exit_code == 0, result.output
    config = yaml.safe_load(path.read_text())
    config["backbone"].update({"path": str(tiny_bert), "max_length": 64, "score_max_length": 96})
    config["lora"]["r"] = 4
    config["max_rows_per_source"] = 15
    config["lexical"]["buckets"] = 4096  # the default's 2**20 only makes checkpoints larger
    config["lexical"]["prefit_epochs"] = 2  # the option's path, end to end (resume included)
    config["trainer"].update(
        {
            "batch_size": 8,
            "checkpoint_every": 2,
            "health_every": 2,
            "progress": False,
            "tensorboard": False,
        }
    )
    path.write_text(yaml.safe_dump(config))
    return path
