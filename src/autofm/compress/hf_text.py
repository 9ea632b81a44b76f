"""Text for Hugging Face models: a model folder's own tokenizer turns a corpus into token ids
(the calibration and validation blocks of `--model hf:DIR`), and `bits_per_byte` measures a
model on a text so that models with different tokenizers compare: the total next-token negative
log-likelihood of all of the text's tokens, in bits, over the text's UTF-8 bytes.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from transformers import AutoTokenizer, PreTrainedTokenizerBase, PreTrainedTokenizerFast

from autofm.core.errors import CheckpointError, ValidationError
from autofm.core.progress import progress
from autofm.data.text import CORPORA, corpus_sources, encode, split_tokens

DEFAULT_BLOCK_SIZE = 256
# a folder has a tokenizer when it holds one of these (a fast tokenizer, or a SentencePiece model)
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model")
IGNORE = -100  # F.cross_entropy's ignore_index: target positions past the end of a text


def load_tokenizer(directory: str | os.PathLike) -> PreTrainedTokenizerBase:
    """The tokenizer saved with the model in `directory` (local files only)."""
    directory = Path(directory)
    if not any((directory / name).is_file() for name in TOKENIZER_FILES):
        raise ValidationError(
            f"hf:{directory} has no tokenizer files (tokenizer.json or tokenizer.model); save "
            "the tokenizer with the model"
        )
    try:
        return AutoTokenizer.from_pretrained(directory, local_files_only=True)
    except (OSError, ValueError, ImportError) as err:
        reason = " ".join(str(err).split())  # one line, as the CLI prints it
        raise CheckpointError(
            f"the tokenizer in {directory} does not load ({reason}); save it again with "
            "tokenizer.save_pretrained"
        ) from err


def train_byte_bpe(text: str, vocab_size: int) -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer (with <s> and </s>) trained offline on `text`, wrapped as
    transformers wraps one: for a Llama built from scratch (tests, the benchmark's tiny model)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<s>", "</s>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(text.splitlines(keepends=True), trainer)
    return PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token="<s>", eos_token="</s>")


def encode_text(tokenizer: PreTrainedTokenizerBase, text: str) -> np.ndarray:
    """The token ids of `text` (no special tokens added), int64."""
    # verbose=False: a corpus is longer than the model's context on purpose, so no warning
    ids = tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"]
    return np.asarray(ids, dtype=np.int64)


def _as_text(data: np.ndarray | bytes) -> str:
    # a cut inside a multi-byte character leaves one replacement character at the edge
    raw = data.tobytes() if isinstance(data, np.ndarray) else data
    return raw.decode("utf-8", errors="replace")


def corpus_text_split(
    spec: str | os.PathLike, validation_fraction: float
) -> tuple[list[str], list[str]]:
    """(training, validation) texts of each source of a corpus (a text file or a name in
    `CORPORA`), split where `load_corpus_split` splits its byte tokens."""
    parts = [split_tokens(encode(data), validation_fraction) for _, data in corpus_sources(spec)]
    return [_as_text(train) for train, _ in parts], [_as_text(valid) for _, valid in parts]


def token_split(
    tokenizer: PreTrainedTokenizerBase, spec: str | os.PathLike, validation_fraction: float
) -> tuple[np.ndarray, np.ndarray]:
    """(training, validation) token ids of a corpus in `tokenizer`'s vocabulary, sources
    concatenated as `load_corpus_split` concatenates them."""
    train, valid = corpus_text_split(spec, validation_fraction)
    return (
        np.concatenate([encode_text(tokenizer, text) for text in train]),
        np.concatenate([encode_text(tokenizer, text) for text in valid]),
    )


def evaluation_text(spec: str | os.PathLike) -> str:
    """The text `eval` measures: a corpus name's held-out part (5%, as for a GPT), else the whole
    file."""
    if str(spec) in CORPORA:
        return "".join(corpus_text_split(spec, 0.05)[1])
    return "".join(_as_text(data) for _, data in corpus_sources(spec))


def _windows(stream: np.ndarray, block_size: int) -> tuple[np.ndarray, np.ndarray]:
    """(inputs, targets) [n, block_size] that predict every token of `stream` but the first once,
    in consecutive blocks; targets past the end are IGNORE."""
    n_windows = -(-(len(stream) - 1) // block_size)
    padded = np.full(n_windows * block_size + 1, IGNORE, dtype=np.int64)
    padded[: len(stream)] = stream
    inputs = np.where(padded[:-1] == IGNORE, 0, padded[:-1])
    return inputs.reshape(n_windows, block_size), padded[1:].reshape(n_windows, block_size)


@torch.no_grad()
def bits_per_byte(
    model: nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    text: str,
    block_size: int = DEFAULT_BLOCK_SIZE,
    max_blocks: int | None = None,
    batch_size: int = 4,
) -> dict[str, float | int]:
    """Bits per UTF-8 byte of `text` under a causal LM (`model(input_ids=...).logits`): the
    summed next-token negative log-likelihood of every token of the text, in bits, over its
    bytes. The text is read in consecutive blocks of `block_size` tokens, its first token
    predicted from the tokenizer's BOS token (else EOS). A text longer than `max_blocks` blocks is
    measured on `max_blocks` evenly spaced stretches of it, each about one block long.

    Returns {bits_per_byte, tokens, bytes}: the tokens scored and the bytes they spell."""
    start = tokenizer.bos_token_id
    if start is None:
        start = tokenizer.eos_token_id
    if start is None:
        raise ValidationError(
            "the tokenizer has neither a BOS nor an EOS token, so a text's first token cannot be "
            "predicted; give the tokenizer a bos_token"
        )
    pieces = [text]
    ids = encode_text(tokenizer, text)
    if max_blocks is not None and len(ids) > max_blocks * block_size:
        span = max(1, len(text) * block_size // len(ids))  # characters of about one block
        starts = np.linspace(0, len(text) - span, max_blocks).astype(np.int64)
        pieces = [text[s : s + span] for s in starts]
    windows = [
        _windows(np.concatenate([[start], encode_text(tokenizer, piece)]), block_size)
        for piece in pieces
    ]
    inputs = torch.from_numpy(np.concatenate([w[0] for w in windows]))
    targets = torch.from_numpy(np.concatenate([w[1] for w in windows]))
    n_tokens = int((targets != IGNORE).sum())
    if n_tokens == 0:
        raise ValidationError("the evaluation text has no tokens; give a file with text in it")
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    total = 0.0
    try:
        for begin in progress(range(0, len(inputs), batch_size), desc="bits per byte"):
            batch = inputs[begin : begin + batch_size].to(device)
            logits = model(input_ids=batch, use_cache=False).logits
            expected = targets[begin : begin + batch_size].to(device)
            # in float32 whatever the weights' precision, as transformers' own loss
            total += float(
                F.cross_entropy(
                    logits.flatten(0, 1).float(),
                    expected.flatten(),
                    ignore_index=IGNORE,
                    reduction="sum",
                )
            )
    finally:
        model.train(was_training)
    n_bytes = sum(len(piece.encode("utf-8")) for piece in pieces)
    return {"bits_per_byte": total / np.log(2) / n_bytes, "tokens": n_tokens, "bytes": n_bytes}
