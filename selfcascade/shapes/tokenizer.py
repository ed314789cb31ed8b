"""A word-level CLIP tokenizer for the shapes world, built offline.

The `tokenizers` BPE trainer is run on the world's vocabulary until every word is one token, and the
result is written as the vocab.json + merges.txt pair that `CLIPTokenizer.from_pretrained` reads, so the
embedded model loads through exactly the same code as a hub model. Unknown words fall apart into letters
(which the model never saw, so it treats them as noise), never into an error.
"""

from __future__ import annotations

import json
import string
from pathlib import Path

from tokenizers import Tokenizer, models, pre_tokenizers, trainers
from transformers import CLIPTokenizer

from selfcascade.shapes.world import VOCABULARY

BOS, EOS = "<|startoftext|>", "<|endoftext|>"
MAX_LENGTH = 16  # the longest grammar prompt is 10 tokens with BOS/EOS


def _train_merges() -> tuple[dict[str, int], list[tuple[str, str]]]:
    bpe = Tokenizer(models.BPE(end_of_word_suffix="</w>"))
    bpe.pre_tokenizer = pre_tokenizers.Whitespace()
    letters = list(string.ascii_lowercase)
    trainer = trainers.BpeTrainer(
        vocab_size=10_000,  # large enough that merging only stops once every word is whole
        min_frequency=1,
        special_tokens=[BOS, EOS],
        initial_alphabet=letters,
        end_of_word_suffix="</w>",
        show_progress=False,
    )
    bpe.train_from_iterator([" ".join(VOCABULARY)] * 4, trainer=trainer)
    state = json.loads(bpe.to_str())["model"]
    vocab = dict(state["vocab"])
    for letter in letters:  # letters alone and at a word end, so any lowercase word can be spelled
        for token in (letter, letter + "</w>"):
            vocab.setdefault(token, len(vocab))
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in state["merges"]]
    return vocab, merges


def build_tokenizer(folder: str | Path) -> CLIPTokenizer:
    """Write vocab.json + merges.txt + tokenizer config to `folder` and load them back as a CLIPTokenizer."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    vocab, merges = _train_merges()
    (folder / "vocab.json").write_text(json.dumps(vocab, indent=0))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges))
    tokenizer = CLIPTokenizer(
        vocab=vocab,
        merges=[tuple(pair) for pair in merges],
        model_max_length=MAX_LENGTH,
        bos_token=BOS,
        eos_token=EOS,
        unk_token=EOS,
        pad_token=EOS,
    )
    tokenizer.save_pretrained(folder)
    return CLIPTokenizer.from_pretrained(folder)
