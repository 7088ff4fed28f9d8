"""What SentenceTransformer and CrossEncoder share: facts about the model, its card, and the Hub.

``SentenceModelMixin`` is mixed into both classes (as sentence-transformers' ``BaseModel`` is): input
shape checks (``is_singular_input``), the supported modalities (text only in headway), the wrapped
transformer (``transformers_model``, ``config``, ``dtype``, ``get_max_seq_length``, gradient
checkpointing), evaluation with an evaluator, the model card written on save, and ``push_to_hub``
through ``huggingface_hub`` (a folder saved in a temporary directory and uploaded in one commit).
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from headway.sentence.model_card import MODEL_ID_PLACEHOLDER, ModelCardData, generate_model_card

logger = logging.getLogger(__name__)

__all__ = ["SentenceModelMixin", "check_requirements", "is_message_dict"]


def is_message_dict(value: Any) -> bool:
    """A chat message: a dict with a "role" and a "content"."""
    return isinstance(value, dict) and "role" in value and "content" in value


def check_requirements(requirements: dict[str, str] | None, source: str) -> None:
    """Refuse to load a model whose config names package versions this environment lacks.

    ``requirements`` maps a distribution name to a version specifier (``{"transformers": ">=4.50"}``, "" for
    any version), as ``config_sentence_transformers.json`` may hold them.

    Raises:
        ImportError: a package is missing or its installed version is outside the specifier (all are named).
    """
    if not requirements:
        return
    from importlib.metadata import PackageNotFoundError, version

    from packaging.specifiers import SpecifierSet

    unmet = []
    for package, specifier in requirements.items():
        try:
            installed = version(package)
        except PackageNotFoundError:
            unmet.append(f"{package}{specifier or ''} (not installed)")
            continue
        if specifier and not SpecifierSet(specifier).contains(installed, prereleases=True):
            unmet.append(f"{package}{specifier} ({installed} is installed)")
    if unmet:
        raise ImportError(f"{source} needs {', '.join(unmet)}; install these versions to load it")


class SentenceModelMixin:
    """Shared behaviour of ``SentenceTransformer`` and ``CrossEncoder`` (see the module docstring)."""

    model_card_data: ModelCardData
    _model_card_text: str | None = None

    # -- inputs and modalities ---------------------------------------------------------------------
    @property
    def modalities(self) -> list[str | tuple[str, ...]]:
        """The kinds of input the model reads: headway's sentence models read text."""
        return ["text"]

    def supports(self, modality: str | tuple[str, ...]) -> bool:
        """Whether the model reads ``modality``; a tuple of modalities needs each part and "message" support."""
        supported = self.modalities
        if modality in supported:
            return True
        return (
            isinstance(modality, tuple)
            and "message" in supported
            and all(part in supported for part in modality)
        )

    def is_singular_input(self, inputs: Any) -> bool:
        """True for one input (a str, a 0-d array, a conversation), False for a batch (list, tuple, column).

        A list of chat messages (dicts with "role" and "content") is one conversation; numpy arrays of
        strings or objects are batches.
        """
        if isinstance(inputs, list) and inputs and is_message_dict(inputs[0]):
            return True
        if isinstance(inputs, (list, tuple)) or type(inputs).__name__ == "Column":  # datasets.Column
            return False
        return not (isinstance(inputs, np.ndarray) and inputs.ndim >= 1 and inputs.dtype.kind in ("U", "O"))

    # -- the wrapped transformer -------------------------------------------------------------------
    @property
    def transformers_model(self) -> nn.Module | None:
        """The transformer (a headway ``PreTrainedModel``) inside the first module that has one."""
        for module in self.modules():
            if module is not self and hasattr(module, "auto_model"):
                return module.auto_model
        return getattr(self, "model", None)

    @property
    def config(self) -> Any:
        """The transformer's config, or None when the model has no transformer (e.g. StaticEmbedding)."""
        model = self.transformers_model
        return getattr(model, "config", None)

    @config.setter
    def config(self, value: Any) -> None:
        model = self.transformers_model
        if model is not None:  # a model without a transformer has no config to replace
            model.config = value

    @property
    def dtype(self) -> torch.dtype | None:
        """The dtype of the first parameter; None for a model without parameters."""
        parameter = next(self.parameters(), None)
        return None if parameter is None else parameter.dtype

    def get_max_seq_length(self) -> int | None:
        """Inputs are truncated to this many tokens; None when no module truncates."""
        for module in self.modules():
            if module is not self and hasattr(module, "max_seq_length"):
                return module.max_seq_length
        return getattr(self, "max_length", None)

    def gradient_checkpointing_enable(self, gradient_checkpointing_kwargs: dict | None = None) -> None:
        """Recompute the transformer's activations in the backward pass (less memory when training)."""
        model = self.transformers_model
        if model is not None and hasattr(model, "gradient_checkpointing_enable"):
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=gradient_checkpointing_kwargs)

    def get_backend(self) -> str:
        """The runtime the model's forward pass uses: always "torch" in headway."""
        return "torch"

    def evaluate(self, evaluator: Any, output_path: str | os.PathLike | None = None) -> Any:
        """``evaluator(self, output_path)``, creating ``output_path`` first when given."""
        if output_path is not None:
            os.makedirs(output_path, exist_ok=True)
        return evaluator(self, output_path)

    # -- model card --------------------------------------------------------------------------------
    def _init_model_card(self, model_card_data: ModelCardData | None, readme: Path | None) -> None:
        self.model_card_data = model_card_data or ModelCardData()
        self._model_card_text = readme.read_text(encoding="utf-8") if readme is not None else None

    def _write_model_card(self, folder: Path, model_name: str | None) -> None:
        """Write README.md: the loaded card (placeholder id replaced), or a generated one."""
        data = self.model_card_data
        if model_name and not Path(model_name).exists() and not data.model_id:
            data.model_id = model_name
        data.save_dir = str(folder)
        if self._model_card_text:
            text = self._model_card_text
            if data.model_id:
                name = type(self).__name__
                text = text.replace(
                    f'model = {name}("{MODEL_ID_PLACEHOLDER}"', f'model = {name}("{data.model_id}"'
                )
        else:
            text = generate_model_card(self)
        (folder / "README.md").write_text(text, encoding="utf-8")

    # -- the Hub -----------------------------------------------------------------------------------
    def push_to_hub(
        self,
        repo_id: str,
        token: str | None = None,
        private: bool | None = None,
        safe_serialization: bool = True,
        commit_message: str | None = None,
        local_model_path: str | None = None,
        exist_ok: bool = False,
        replace_model_card: bool = False,
        train_datasets: list[str] | None = None,
        revision: str | None = None,
        create_pr: bool = False,
    ) -> str:
        """Upload the model to a Hub repository (created when missing) in one commit; returns its URL.

        Args:
            repo_id: "user/name" or "org/name".
            token: A Hub token (default: the logged-in one).
            private: Create the repository private.
            safe_serialization: Kept for compatibility (headway always writes safetensors).
            commit_message: Default: "Add new <Class> model".
            local_model_path: Upload this folder instead of saving the model.
            exist_ok: Pushing to an existing repository is fine (always true with ``create_pr``).
            replace_model_card: Write a model card even when the repository has a README.md.
            train_datasets: Kept for compatibility (not written).
            revision: Push to this branch (created when missing).
            create_pr: Open a pull request instead of pushing to the branch; the PR URL is returned.
        """
        from huggingface_hub import HfApi, file_exists
        from huggingface_hub.errors import OfflineModeIsEnabled

        api = HfApi(token=token)
        repo_id = api.create_repo(
            repo_id=repo_id, private=private, repo_type=None, exist_ok=exist_ok or create_pr
        ).repo_id
        self.model_card_data.set_model_id(repo_id)
        if revision is not None:
            api.create_branch(repo_id=repo_id, branch=revision, exist_ok=True)
        name = type(self).__name__
        commit_message = commit_message or f"Add new {name} model"
        description = self._pull_request_description(repo_id) if create_pr else None
        upload = {
            "repo_id": repo_id,
            "commit_message": commit_message,
            "commit_description": description,
            "create_pr": create_pr,
            "revision": revision,
        }
        if local_model_path:
            info = api.upload_folder(folder_path=local_model_path, **upload)
        else:
            write_card = replace_model_card
            if not write_card:  # keep a README the repository already has
                try:
                    write_card = not file_exists(repo_id, "README.md", revision=revision, token=token)
                except OfflineModeIsEnabled:  # nothing can be known offline: as for a missing file
                    write_card = True
                except Exception as err:  # noqa: BLE001 - any Hub error: do not risk overwriting a card
                    logger.warning(
                        "Could not check for an existing README.md on %r (%s: %s). Skipping model card "
                        "creation to avoid overwriting any existing card.",
                        repo_id,
                        type(err).__name__,
                        err,
                    )
            with tempfile.TemporaryDirectory() as folder:
                self.save(folder, model_name=repo_id, create_model_card=write_card)
                info = api.upload_folder(folder_path=folder, **upload)
        if create_pr:
            logger.info("A pull request has been created at %s", info.pr_url)
            return info.pr_url
        return info.commit_url

    def save_to_hub(
        self,
        repo_id: str | None = None,
        organization: str | None = None,
        private: bool | None = None,
        safe_serialization: bool = True,
        commit_message: str = "Add new model.",
        local_model_path: str | None = None,
        exist_ok: bool = False,
        replace_model_card: bool = False,
        train_datasets: list[str] | None = None,
        *,
        token: str | None = None,
        repo_name: str | None = None,
    ) -> str:
        """Deprecated: ``push_to_hub`` (``organization`` folded into ``repo_id``).

        The positional order is the one of sentence-transformers before ``token`` existed (the third
        positional argument is ``private``); ``token`` is keyword-only.
        """
        if repo_id is None and repo_name is not None:
            logger.warning(
                "Providing a `repo_name` keyword argument to `save_to_hub` is deprecated. Please use "
                "`repo_id` instead."
            )
            repo_id = repo_name
        logger.warning(
            "The `save_to_hub` method is deprecated and will be removed in a future version of "
            "SentenceTransformers. Please use `push_to_hub` instead for future model uploads."
        )
        if repo_id is None:
            raise TypeError("save_to_hub() needs a repo_id")
        if organization:
            if "/" not in repo_id:
                logger.warning(
                    "Providing an `organization` to `save_to_hub` is deprecated. Please use "
                    '`repo_id="%s/%s"` instead.',
                    organization,
                    repo_id,
                )
                repo_id = f"{organization}/{repo_id}"
            elif repo_id.split("/")[0] != organization:
                raise ValueError(
                    "Providing an `organization` to `save_to_hub` is deprecated. Please use `repo_id` "
                    "instead."
                )
            else:
                logger.warning(
                    'Providing an `organization` to `save_to_hub` is deprecated. Please use `repo_id="%s"`'
                    " instead.",
                    repo_id,
                )
        return self.push_to_hub(
            repo_id=repo_id,
            token=token,
            private=private,
            safe_serialization=safe_serialization,
            commit_message=commit_message,
            local_model_path=local_model_path,
            exist_ok=exist_ok,
            replace_model_card=replace_model_card,
            train_datasets=train_datasets,
        )

    def _pull_request_description(self, repo_id: str) -> str:
        name = type(self).__name__
        call = (
            'model.predict([["A query", "A passage"]])'
            if name == "CrossEncoder"
            else 'embeddings = model.encode(["The weather is lovely today.", "It\'s so sunny outside!"])'
        )
        check = (
            '\nprint(model.rank("A query", ["A passage", "Another passage"]))'
            if name == "CrossEncoder"
            else "\nprint(model.similarity(embeddings, embeddings))"
        )
        return f"""Hello!

This pull request has been automatically generated to add {name} compatibility, with headway's `push_to_hub`.

## Full Model Architecture:
```
{self}
```

## Testing this pull request
Load the model from this pull request with the `revision` argument (set the number of the pull request):
```python
from sentence_transformers import {name}

pr_number = 2
model = {name}("{repo_id}", revision=f"refs/pr/{{pr_number}}", backend="torch")
{call}{check}
```
"""
