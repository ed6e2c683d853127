"""Teacher targets, computed once in build-data: a sentence embedding (task reconstruct)
or the class probabilities of a stronger classifier (task classify)."""

from __future__ import annotations

import torch
from rich.console import Console
from torch import Tensor

from termwise.models.backbone import embed_texts, resolve_backbone
from termwise.recipes.vae.config import VaeConfig


def teacher_targets(
    config: VaeConfig, texts: list[str], train: Tensor, labels: Tensor, console: Console
) -> Tensor:
    """One row per text; ``train`` (row indices) and ``labels`` fit the classify teacher."""
    if config.task == "classify":
        return classifier_probabilities(texts, train, labels)
    return sentence_embeddings(config, texts, console)


def sentence_embeddings(config: VaeConfig, texts: list[str], console: Console) -> Tensor:
    """Unit-normalised mean-pooled embeddings (sentence-transformers' recipe for MiniLM)."""
    path = resolve_backbone(config.teacher.backbone)
    console.print(f"teacher: embedding {len(texts)} texts with {path.name}", markup=False)
    return embed_texts(path, texts, config.teacher.batch_size, console=console)


def classifier_probabilities(texts: list[str], train_rows: Tensor, labels: Tensor) -> Tensor:
    """TF-IDF (word 1-2 grams) + logistic regression fit on the training split; its class
    probabilities for every example are the soft labels the bottleneck is distilled to."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    train = train_rows.numpy()
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)
    features = vectorizer.fit_transform([texts[i] for i in train])
    classifier = LogisticRegression(max_iter=2000, C=4.0)
    classifier.fit(features, labels.numpy()[train])
    probabilities = classifier.predict_proba(vectorizer.transform(texts))
    full = torch.zeros(len(texts), int(labels.max()) + 1)
    full[:, torch.as_tensor(classifier.classes_)] = torch.as_tensor(probabilities).float()
    return full
