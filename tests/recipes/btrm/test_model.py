import pytest
import torch
from transformers import AutoTokenizer

from termwise.errors import TermwiseUserError
from termwise.models.backbone import apply_lora, default_pooling, load_backbone, pool
from termwise.recipes.btrm.model import MultiHeadRewardModel, load_reward_model, save_reward_model


def test_pooling_mean_and_last_with_either_padding():
    hidden = torch.arange(12, dtype=torch.float).reshape(2, 3, 2)
    right = torch.tensor([[1, 1, 0], [1, 1, 1]])
    left = torch.tensor([[0, 1, 1], [1, 1, 1]])
    assert pool(hidden, right, "mean")[0].tolist() == [1.0, 2.0]
    assert pool(hidden, right, "last")[0].tolist() == [2.0, 3.0]
    assert pool(hidden, left, "last")[0].tolist() == [4.0, 5.0]
    assert default_pooling("bert") == "mean" and default_pooling("qwen2") == "last"


def build(path, lora: bool, heads=("a", "b", "c")):
    backbone, config = load_backbone(path)
    if lora:
        backbone = apply_lora(backbone, config.model_type, r=4, alpha=8, dropout=0.0, targets=None)
    return MultiHeadRewardModel(
        backbone,
        config.hidden_size,
        list(heads),
        default_pooling(config.model_type),
        logit_cap=10.0,
    )


@pytest.mark.parametrize("fixture", ["tiny_bert", "tiny_qwen"])
@pytest.mark.parametrize("lora", [True, False])
def test_save_load_gives_identical_scores(fixture, lora, request, tmp_path):
    path = request.getfixturevalue(fixture)
    torch.manual_seed(0)
    model = build(path, lora)
    tokenizer = AutoTokenizer.from_pretrained(path)
    # Train one step so adapter, norm and head differ from their initial values.
    batch = tokenizer(["one text", "another longer text here"], padding=True, return_tensors="pt")
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.5)
    model(batch["input_ids"], batch["attention_mask"]).sum().backward()
    optimizer.step()
    model.eval()
    with torch.no_grad():
        before = model(batch["input_ids"], batch["attention_mask"])
    manifest = {"backbone_path": str(path), "meta_prompt": "Which?", "max_length": 64}
    save_reward_model(model, tokenizer, tmp_path / "saved", manifest)
    loaded, loaded_tokenizer, manifest = load_reward_model(tmp_path / "saved")
    with torch.no_grad():
        after = loaded(batch["input_ids"], batch["attention_mask"])
    assert torch.allclose(before, after, atol=1e-6)
    assert manifest.head_names == ["a", "b", "c"] and manifest.lora is lora
    assert (tmp_path / "saved" / ("adapter" if lora else "backbone")).is_dir()


def test_lora_trains_adapter_head_and_norm_only(tiny_bert):
    model = build(tiny_bert, lora=True)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert any("lora_A" in n for n in trainable)
    assert {"heads.norm.weight", "heads.linear.weight", "heads.linear.bias"} <= trainable
    assert not any("word_embeddings" in n for n in trainable)


def test_missing_backbone_and_model_dir_are_user_errors(tmp_path):
    with pytest.raises(TermwiseUserError, match="backbone directory not found"):
        load_backbone(tmp_path / "nope")
    with pytest.raises(TermwiseUserError, match="not a termwise reward model"):
        load_reward_model(tmp_path)


def test_lexical_branch_trains_and_reloads_identically(tiny_bert, tmp_path):
    from termwise.models.backbone import LexicalConfig
    from termwise.models.lexical import pack_bags

    torch.manual_seed(0)
    backbone, config = load_backbone(tiny_bert)
    lexical = LexicalConfig(buckets=64, word_ngrams=2)
    model = MultiHeadRewardModel(backbone, config.hidden_size, ["a", "b"], "mean", 10.0, lexical)
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert)
    texts = ["one text", "another longer text here"]
    batch = tokenizer(texts, padding=True, return_tensors="pt")
    bags = model.bags(texts)
    assert bags is not None and len(bags[1]) == 4 + 3  # four words, three bigrams
    ids, offsets = pack_bags(bags)
    with pytest.raises(ValueError, match="n-gram bags"):
        model(batch["input_ids"], batch["attention_mask"])
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    model(batch["input_ids"], batch["attention_mask"], ids, offsets)[:, 0].sum().backward()
    optimizer.step()
    assert model.heads.lexical is not None
    touched = model.heads.lexical.bag.weight.abs().sum(dim=1) > 0
    assert int(touched.sum()) == len(set(bags[0] + bags[1]))  # only the texts' buckets moved
    model.eval()
    with torch.no_grad():
        before = model.score_batch(batch["input_ids"], batch["attention_mask"], bags)
    manifest = {"backbone_path": str(tiny_bert), "meta_prompt": "Which?", "max_length": 64}
    save_reward_model(model, tokenizer, tmp_path / "saved", manifest)
    loaded, _, saved = load_reward_model(tmp_path / "saved")
    assert saved.lexical == lexical
    with torch.no_grad():
        after = loaded.score_batch(batch["input_ids"], batch["attention_mask"], loaded.bags(texts))
    assert torch.equal(before, after)
