"""Checkpoint folders: ``output_dir/checkpoint-N/`` written atomically, found, pruned and read back.

A checkpoint is written into a hidden staging folder next to its final place and swapped into place once
complete (``headway.atomic.staged_folder``), so a crash leaves either the previous checkpoint or the new
one, never half of one; a later save removes what a killed one left behind.
Nothing is unpickled on load: weights come from safetensors, and optimizer / scheduler / RNG states go
through ``torch.load(weights_only=True)`` (they are saved as tensors, numbers, lists and dicts only).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from headway.atomic import atomic_write_text, staged_folder
from headway.training import distributed as D
from headway.training.utils import get_rng_state, set_rng_state

logger = logging.getLogger(__name__)

PREFIX_CHECKPOINT_DIR = "checkpoint"
TRAINER_STATE_NAME = "trainer_state.json"
OPTIMIZER_NAME = "optimizer.pt"
SCHEDULER_NAME = "scheduler.pt"
SCALER_NAME = "scaler.pt"
RNG_STATE_NAME = "rng_state.pth"
TRAINING_ARGS_NAME = "training_args.json"
_RE_CHECKPOINT = re.compile(r"^" + PREFIX_CHECKPOINT_DIR + r"-(\d+)$")


def get_last_checkpoint(folder: str | os.PathLike) -> str | None:
    """The ``checkpoint-N`` sub-folder of ``folder`` with the largest N, or None."""
    found = sorted_checkpoints(folder)
    return found[-1] if found else None


def sorted_checkpoints(folder: str | os.PathLike) -> list[str]:
    """``checkpoint-N`` folders of ``folder``, oldest (smallest N) first."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if p.is_dir() and (m := _RE_CHECKPOINT.match(p.name))]
    return [str(p) for _, p in sorted(found)]


def rotate_checkpoints(folder: str | os.PathLike, save_total_limit: int | None,
                       best_model_checkpoint: str | None = None) -> list[str]:
    """Delete the oldest checkpoints beyond ``save_total_limit``, never the newest nor the best one."""
    if not save_total_limit:
        return []
    found = sorted_checkpoints(folder)
    protected = {found[-1]} if found else set()
    if best_model_checkpoint is not None:
        protected.add(str(Path(best_model_checkpoint)))
    keep = max(save_total_limit, len(protected))
    deleted = []
    for path in found:
        if len(found) - len(deleted) <= keep:
            break
        if path in protected:
            continue
        logger.info("Deleting older checkpoint %s (save_total_limit=%d)", path, save_total_limit)
        shutil.rmtree(path, ignore_errors=True)
        deleted.append(path)
    return deleted


def write_folder_atomically(final: str | os.PathLike, write: Callable[[Path], None]) -> Path:
    """Call ``write(staging_folder)``, then swap the folder into place as ``final``.

    The result holds exactly what ``write`` wrote: an older folder at ``final`` is replaced whole, none of
    its files kept. If ``write`` raises, the older folder is left as it was and the staging folder removed.
    """
    with staged_folder(final, carry=False) as stage:
        write(stage.path)
    return Path(final)


def load_torch(path: str | os.PathLike, map_location: Any = "cpu") -> Any:
    """``torch.load`` that refuses anything but tensors and plain containers."""
    return torch.load(path, map_location=map_location, weights_only=True)


def load_model_weights(model: nn.Module, folder: str | os.PathLike) -> None:
    """Load the safetensors weights of ``folder`` (one file or shards) into ``model``, in place.

    Raises:
        FileNotFoundError: the folder has no safetensors file.
        ValueError: a weight of the model is missing from the files (tied copies excepted).
    """
    from safetensors.torch import load_file

    files = sorted(Path(folder).glob("*.safetensors"))
    if not files:
        raise FileNotFoundError(f"No model weights (*.safetensors) in checkpoint folder {folder}")
    state: dict[str, torch.Tensor] = {}
    for f in files:
        state.update(load_file(str(f)))
    result = model.load_state_dict(state, strict=False)
    tied = set(getattr(model, "_tied_weights_keys", {}) or {})
    missing = [k for k in result.missing_keys if k not in tied]
    if missing:
        raise ValueError(f"Checkpoint {folder} lacks weights of {type(model).__name__}: {missing}")
    if result.unexpected_keys:
        logger.warning("Checkpoint %s has weights %s that %s does not use", folder, result.unexpected_keys,
                       type(model).__name__)
    if hasattr(model, "tie_weights"):
        model.tie_weights()


class CheckpointMixin:
    """Saving and loading the Trainer's checkpoints and models; needs the attributes the Trainer sets."""

    def _full_state_dict(self) -> dict[str, torch.Tensor] | None:
        """The whole model's weights gathered from the FSDP shards (collective; tied copies dropped), or
        None to let ``save_pretrained`` take them from the model."""
        if not D.is_fsdp(self.model_wrapped):
            return None
        state = D.full_state_dict(self.model_wrapped)
        inner = D.unwrap_model(self.model)
        if getattr(getattr(inner, "config", None), "tie_word_embeddings", False):
            for target in getattr(inner, "_tied_weights_keys", {}) or {}:
                state.pop(target, None)
        return state

    def _load_weights(self, folder: str) -> None:
        """Load a checkpoint's weights into the model (into its shards under FSDP)."""
        if D.is_fsdp(self.model_wrapped):
            from safetensors.torch import load_file

            weights: dict[str, torch.Tensor] = {}
            for f in sorted(Path(folder).glob("*.safetensors")):
                weights.update(load_file(str(f)))
            D.load_full_state_dicts(self.model_wrapped, weights=weights)
        elif (Path(folder) / "adapter_model.safetensors").is_file() and hasattr(self.model, "peft_config"):
            # A peft model's checkpoint holds its adapter weights only (PeftModel.save_pretrained).
            from peft import set_peft_model_state_dict
            from safetensors.torch import load_file

            set_peft_model_state_dict(self.model, load_file(str(Path(folder) / "adapter_model.safetensors")))
        else:
            load_model_weights(D.unwrap_model(self.model), folder)

    def _save_checkpoint(self, model: nn.Module) -> None:
        """Write ``checkpoint-{global_step}`` atomically (rank 0), then prune to ``save_total_limit``."""
        args = self.args
        folder = Path(args.output_dir) / f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}"
        self._store_flos()
        state_dict = self._full_state_dict()
        optim_state = None
        if not args.save_only_model:
            if D.is_fsdp(self.model_wrapped):
                optim_state = D.full_optimizer_state_dict(self.model_wrapped, self.optimizer)
            else:
                optim_state = self.optimizer.state_dict()
        rng_states = D.all_gather_objects(get_rng_state())
        if self.state.best_global_step is not None:
            best = Path(args.output_dir) / f"{PREFIX_CHECKPOINT_DIR}-{self.state.best_global_step}"
            if best == folder or best.is_dir():
                self.state.best_model_checkpoint = str(best)
        self.state.stateful_callbacks = {type(cb).__name__: s for cb in self.callback_handler.callbacks
                                         if (s := cb.state()) is not None}

        def write(tmp: Path) -> None:
            self._save(tmp, state_dict=state_dict)
            if optim_state is not None:
                torch.save(optim_state, tmp / OPTIMIZER_NAME)
                torch.save(self.lr_scheduler.state_dict(), tmp / SCHEDULER_NAME)
                if self.scaler is not None:
                    torch.save(self.scaler.state_dict(), tmp / SCALER_NAME)
                if len(rng_states) == 1:
                    torch.save(rng_states[0], tmp / RNG_STATE_NAME)
                else:
                    for r, s in enumerate(rng_states):
                        torch.save(s, tmp / f"rng_state_{r}.pth")
            self.state.save_to_json(tmp / TRAINER_STATE_NAME)

        if args.should_save:
            write_folder_atomically(folder, write)
            rotate_checkpoints(args.output_dir, args.save_total_limit, self.state.best_model_checkpoint)
        D.barrier()

    def _load_optimizer_and_scheduler(self, folder: str) -> None:
        path = Path(folder)
        if not (path / OPTIMIZER_NAME).is_file():
            logger.warning("%s has no optimizer state (save_only_model?): the optimizer starts afresh", folder)
            return
        if D.is_fsdp(self.model_wrapped):
            optim_state = load_torch(path / OPTIMIZER_NAME)
            D.load_full_state_dicts(self.model_wrapped, optimizer=self.optimizer, optimizer_state=optim_state)
        else:
            optim_state = load_torch(path / OPTIMIZER_NAME, map_location=self.args.device)
            self.optimizer.load_state_dict(optim_state)
        self.lr_scheduler.load_state_dict(load_torch(path / SCHEDULER_NAME))
        if self.scaler is not None and (path / SCALER_NAME).is_file():
            self.scaler.load_state_dict(load_torch(path / SCALER_NAME))

    def _load_rng_state(self, folder: str) -> None:
        path = Path(folder)
        name = RNG_STATE_NAME if D.world_size() == 1 else f"rng_state_{D.rank()}.pth"
        if not (path / name).is_file():
            logger.warning("%s has no %s: the random state is not restored, so resuming is not exact", folder, name)
            return
        set_rng_state(load_torch(path / name))

    def save_model(self, output_dir: str | None = None, _internal_call: bool = False) -> None:
        """Save the model (safetensors + config), the tokenizer and the arguments; only rank 0 writes.

        The folder is replaced as a whole; its other files (checkpoint folders, logs) stay.
        """
        output_dir = output_dir if output_dir is not None else self.args.output_dir
        state_dict = self._full_state_dict()
        if self.args.should_save:
            self._save(Path(output_dir), state_dict=state_dict)
        D.barrier()

    def _save(self, folder: Path, state_dict: dict[str, torch.Tensor] | None = None) -> None:
        """Model, processing class and arguments into ``folder``, staged together (one swap)."""
        model = D.unwrap_model(self.model)
        with staged_folder(folder) as stage:
            if hasattr(model, "save_pretrained"):
                model.save_pretrained(stage.path, state_dict=state_dict)
            else:
                from headway.checkpoint import save_state_dict

                state = state_dict or model.state_dict()
                save_state_dict({k: v.detach().contiguous() for k, v in state.items()}, stage.path)
            if self.processing_class is not None and hasattr(self.processing_class, "save_pretrained"):
                self.processing_class.save_pretrained(stage.path)
            atomic_write_text(stage.path / TRAINING_ARGS_NAME, self.args.to_json_string() + "\n")
