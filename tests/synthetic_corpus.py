"""Random text in BERT's format for tests: one writer for every test that needs a corpus of words."""

import random


def write_random_corpus(path, words, *, num_documents, seed, sentences=(1, 5), words_per_sentence=(4, 16)):
    """Documents of ``sentences`` (min, max) lines of ``words_per_sentence`` (min, max) random words; returns path.

    The draws are in a fixed order (sentence count, then word count and words
    per line), so a seed gives the same file, and records made from it the same bytes.
    """
    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8") as out:
        for _ in range(num_documents):
            for _ in range(rng.randint(*sentences)):
                out.write(" ".join(rng.choice(words) for _ in range(rng.randint(*words_per_sentence))) + "\n")
            out.write("\n")
    return path
