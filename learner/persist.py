"""A learner's state kept and given out: the distributed checkpoint (model and optimiser, every
rank its own shard) and the Hugging Face folder of the policy. A path may be a URI (s3://, gs://,
file://): each rank then writes and reads its shard straight from the store through torch
distributed checkpoint's fsspec writer and reader, and rank 0 uploads the exported folder."""

from __future__ import annotations

import os
import shutil
import tempfile

import torch

from wire.storage import filesystem, is_uri, local_copy, upload


def save(model, optimizer, path: str) -> None:
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_state_dict

    model_state, optim_state = get_state_dict(model, optimizer)
    writer = None
    if is_uri(path):
        from torch.distributed.checkpoint._fsspec_filesystem import FsspecWriter

        filesystem(path)  # a missing client is one line, before any rank writes
        writer = FsspecWriter(path)
    dcp.save({"model": model_state, "optim": optim_state}, checkpoint_id=path, storage_writer=writer)


def load(model, optimizer, path: str) -> None:
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict

    model_state, optim_state = get_state_dict(model, optimizer)
    state = {"model": model_state, "optim": optim_state}
    reader = None
    if is_uri(path):
        from torch.distributed.checkpoint._fsspec_filesystem import FsspecReader

        reader = FsspecReader(path)
    dcp.load(state, checkpoint_id=path, storage_reader=reader)
    set_state_dict(model, optimizer, model_state_dict=state["model"], optim_state_dict=state["optim"])


def export(state: dict[str, torch.Tensor], model_path: str, path: str) -> None:
    """The policy as a Hugging Face folder at `path` (written locally, then uploaded to a URI)."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    source = local_copy(model_path)  # the model the run started from: config, tokenizer
    model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(source))
    model.load_state_dict(state, strict=False)
    target = tempfile.mkdtemp(prefix="tlgrpo-export-") if is_uri(path) else path
    try:
        model.save_pretrained(target)
        AutoTokenizer.from_pretrained(source).save_pretrained(target)
        generation = os.path.join(source, "generation_config.json")
        if os.path.exists(generation):
            shutil.copy(generation, target)
        if is_uri(path):
            upload(target, path)
    finally:
        if is_uri(path):
            shutil.rmtree(target, ignore_errors=True)
