"""Learns the project's small byte-level BPE merge list from its captions, in OpenAI's file format,
and reads such a file back with a reimplementation of OpenAI's SimpleTokenizer.

File format (as bpe_simple_vocab_16e6.txt.gz): gzip'd UTF-8 text, a header line "#version: 0.2",
then one merge "a b" per line, most frequent first. Symbols are OpenAI's bytes_to_unicode
characters; a word's last symbol carries "</w>". Token ids: 256 byte symbols, the same 256 with
"</w>", one per merge, then <|startoftext|> and <|endoftext|>, so a model using M merges has
M + 514 token embeddings and EOT is the highest id.

    /usr/bin/python3 scripts/learn_bpe.py models/vocab.txt.gz   # learn, write, self-check
"""

import argparse
import collections
import functools
import gzip
import html
import random
import re
from typing import Dict, List, Optional, Sequence, Tuple

import torch

import emoji_concepts

HEADER = "#version: 0.2"
SOT, EOT = "<|startoftext|>", "<|endoftext|>"
# OpenAI's pre-tokenising pattern with \p{L} / \p{N} spelled for Python's re (no `regex` module here).
PATTERN = re.compile(r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[^\W\d_]+|\d|(?:[^\s\w]|_)+""",
                     re.IGNORECASE)


@functools.lru_cache()
def bytes_to_unicode() -> Dict[int, str]:
    """OpenAI's reversible byte -> printable character table."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(2 ** 8):
        if b not in bs:
            bs.append(b)
            cs.append(2 ** 8 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


def clean(text: str) -> str:
    """OpenAI's basic_clean (minus ftfy, which captions do not need) + whitespace_clean + lower."""
    text = html.unescape(html.unescape(text))
    return re.sub(r"\s+", " ", text).strip().lower()


def words_of(text: str) -> List[str]:
    encoder = bytes_to_unicode()
    return ["".join(encoder[b] for b in token.encode("utf-8")) for token in PATTERN.findall(clean(text))]


def learn_merges(texts: Sequence[str], max_merges: int) -> List[Tuple[str, str]]:
    """Greedy BPE: repeatedly merge the most frequent adjacent pair (ties: smallest pair), until
    every word is one symbol or `max_merges` is reached."""
    counts = collections.Counter(w for text in texts for w in words_of(text))
    words = {w: tuple(w[:-1]) + (w[-1] + "</w>",) for w in counts}
    merges = []
    while len(merges) < max_merges:
        pairs = collections.Counter()
        for word, symbols in words.items():
            for pair in zip(symbols, symbols[1:]):
                pairs[pair] += counts[word]
        if not pairs:
            break
        best = min(pairs, key=lambda p: (-pairs[p], p))
        merges.append(best)
        for word, symbols in words.items():
            merged, i = [], 0
            while i < len(symbols):
                if i + 1 < len(symbols) and (symbols[i], symbols[i + 1]) == best:
                    merged.append(symbols[i] + symbols[i + 1])
                    i += 2
                else:
                    merged.append(symbols[i])
                    i += 1
            words[word] = tuple(merged)
    return merges


def write_vocab(merges: Sequence[Tuple[str, str]]) -> bytes:
    text = "\n".join([HEADER] + [f"{a} {b}" for a, b in merges]) + "\n"
    return gzip.compress(text.encode("utf-8"), mtime=0)


class SimpleTokenizer:
    """OpenAI's SimpleTokenizer over a merge file's bytes: its first `num_merges` merges (all by
    default; OpenAI's own file is used with 49152 - 256 - 2 = 48894)."""

    def __init__(self, vocab_gz: bytes, num_merges: Optional[int] = None):
        lines = gzip.decompress(vocab_gz).decode("utf-8").split("\n")
        merges = [tuple(line.split()) for line in lines[1:] if line][:num_merges]
        vocab = list(bytes_to_unicode().values())
        vocab = vocab + [v + "</w>" for v in vocab]
        vocab += ["".join(m) for m in merges]
        vocab += [SOT, EOT]
        self.encoder = {v: i for i, v in enumerate(vocab)}
        self.decoder = {i: v for v, i in self.encoder.items()}
        self.byte_decoder = {v: k for k, v in bytes_to_unicode().items()}
        self.bpe_ranks = {m: i for i, m in enumerate(merges)}
        self.vocab_size = len(vocab)
        self.sot, self.eot = self.encoder[SOT], self.encoder[EOT]
        self.cache = {SOT: SOT, EOT: EOT}

    def bpe(self, token: str) -> str:
        if token in self.cache:
            return self.cache[token]
        word = tuple(token[:-1]) + (token[-1] + "</w>",)
        while len(word) > 1:
            pairs = set(zip(word, word[1:]))
            bigram = min(pairs, key=lambda p: self.bpe_ranks.get(p, float("inf")))
            if bigram not in self.bpe_ranks:
                break
            first, second = bigram
            new_word, i = [], 0
            while i < len(word):
                try:
                    j = word.index(first, i)
                except ValueError:
                    new_word.extend(word[i:])
                    break
                new_word.extend(word[i:j])
                i = j
                if word[i] == first and i < len(word) - 1 and word[i + 1] == second:
                    new_word.append(first + second)
                    i += 2
                else:
                    new_word.append(word[i])
                    i += 1
            word = tuple(new_word)
        self.cache[token] = " ".join(word)
        return self.cache[token]

    def encode(self, text: str) -> List[int]:
        return [self.encoder[piece] for word in words_of(text) for piece in self.bpe(word).split(" ")]

    def decode(self, ids: Sequence[int]) -> str:
        text = "".join(self.decoder[i] for i in ids)
        return bytearray(self.byte_decoder[c] for c in text).decode("utf-8", errors="replace").replace("</w>", " ")

    def tokenize(self, texts: Sequence[str], context_length: int, trim: bool = False) -> torch.Tensor:
        """[N, context_length] ids as clip.tokenize (errors on overflow); trim=True cuts the
        padding columns after the longest prompt (exact for a causal text encoder)."""
        rows = [[self.sot] + self.encode(t) + [self.eot] for t in texts]
        longest = max(len(r) for r in rows)
        if longest > context_length:
            raise ValueError(f"a prompt has {longest} tokens, more than the context length {context_length}")
        result = torch.zeros(len(rows), longest if trim else context_length, dtype=torch.long)
        for i, row in enumerate(rows):
            result[i, :len(row)] = torch.tensor(row)
        return result


def training_texts(count: int, seed: int) -> List[str]:
    """Captions as the trainer makes them, plus every concept in every single-object template."""
    rng = random.Random(seed)
    texts = [emoji_concepts.single_prompt(t, n) for t in emoji_concepts.SINGLE_TEMPLATES for n in emoji_concepts.NAMES]
    for _ in range(count):
        names = rng.sample(emoji_concepts.NAMES, rng.randint(1, 4))
        texts.append(emoji_concepts.caption(rng, names))
    return texts


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("output", help="path of the gzip'd merge file to write")
    parser.add_argument("--captions", type=int, default=20000)
    parser.add_argument("--max-merges", type=int, default=4000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    texts = training_texts(args.captions, args.seed)
    merges = learn_merges(texts, args.max_merges)
    data = write_vocab(merges)
    with open(args.output, "wb") as f:
        f.write(data)
    tokenizer = SimpleTokenizer(data)
    for text in texts:
        assert tokenizer.decode(tokenizer.encode(text)).replace(" ", "") == clean(text).replace(" ", ""), text
    longest = max(len(tokenizer.encode(t)) for t in texts)
    print(f"{len(merges)} merges, vocab_size {tokenizer.vocab_size}, longest caption {longest} tokens")
    for text in ["girl", "a photo of a desktop computer", "a girl, a boy and a desktop computer", "zebra-crossing 42"]:
        print(f"{text!r} -> {tokenizer.encode(text)}")


if __name__ == "__main__":
    main()
