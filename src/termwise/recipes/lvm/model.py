"""A small transformer that reads context sentence vectors and predicts the next one."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from pydantic import Field
from safetensors.torch import save_model
from torch import Tensor, nn

from termwise.config import StrictModel
from termwise.data.jsonl import atomic_directory, write_json
from termwise.models.saved import load_head_weights, read_manifest
from termwise.recipes.lvm.baselines import Ridge
from termwise.recipes.lvm.config import LvmModelConfig

FORMAT = "termwise-lvm/1"
MANIFEST = "termwise_lvm.json"
WEIGHTS = "model.safetensors"


class NextVectorModel(nn.Module):
    """``[B, C, d]`` context vectors -> a unit vector ``[B, d]``: a linear projection plus a
    learned position embedding, a transformer encoder, the last position's state projected
    back to ``d`` (with ``residual``, added to the last context vector) and normalised."""

    def __init__(self, dim: int, context: int, config: LvmModelConfig) -> None:
        super().__init__()
        self.dim, self.context, self.config = dim, context, config
        self.project = nn.Linear(dim, config.width)
        self.position = nn.Parameter(torch.zeros(context, config.width))
        layer = nn.TransformerEncoderLayer(
            config.width,
            config.heads,
            dim_feedforward=2 * config.width,
            dropout=config.dropout,
            batch_first=True,
        )
        self.encoder = nn.TransformerEncoder(layer, config.layers, enable_nested_tensor=False)
        self.out = nn.Linear(config.width, dim)

        if config.residual:  # the correction starts at zero: the first prediction copies last
            nn.init.zeros_(self.out.weight)
            nn.init.zeros_(self.out.bias)

    def forward(self, context: Tensor) -> Tensor:
        hidden = self.encoder(self.project(context) + self.position[: context.shape[1]])
        out = self.out(hidden[:, -1])
        return F.normalize(context[:, -1] + out if self.config.residual else out, dim=-1)


class LvmManifest(StrictModel):
    """``termwise_lvm.json``: what rebuilds the model and embeds new text."""

    format: str = Field(..., description="termwise-lvm/1.")
    dim: int = Field(..., ge=1, description="Sentence vector size.")
    context: int = Field(..., ge=1, description="Context sentences.")
    offset: int = Field(..., ge=1, description="Target offset.")
    model: LvmModelConfig = Field(..., description="The model's shape.")
    backbone: str = Field(..., description="The embedding model the vectors come from.")
    ood: list[str] = Field(default_factory=list, description="OOD files of the training run.")


def save_lvm(
    model: NextVectorModel, directory: Path, manifest: LvmManifest, ridge: Ridge | None = None
) -> None:
    """Weights, manifest and (when given) the ridge baseline the gates compare with, written
    to a partial folder renamed into place."""
    with atomic_directory(directory) as partial:
        save_model(model, str(partial / WEIGHTS))
        write_json(partial / MANIFEST, manifest.model_dump(mode="json"))
        if ridge is not None:
            ridge.save(partial)


def load_lvm(directory: Path) -> tuple[NextVectorModel, LvmManifest]:
    manifest = read_manifest(directory, MANIFEST, LvmManifest, FORMAT, "lvm model")
    model = NextVectorModel(manifest.dim, manifest.context, manifest.model)
    load_head_weights(model, directory / WEIGHTS)
    return model.eval(), manifest
