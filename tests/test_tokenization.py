"""WordPiece vocabulary training, checking, and BERT tokenisation rules."""

import hashlib
import io
import logging
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tokenizers import Tokenizer
from tokenizers.models import WordLevel, WordPiece
from tokenizers.trainers import WordLevelTrainer, WordPieceTrainer

from bert_pretraining.errors import CorpusError, VocabularyError
from bert_pretraining.progress import Progress
from synthetic_corpus import write_random_corpus
from bert_pretraining.tokenization import (
    LineSample,
    SPECIAL_TOKENS,
    _configure,
    _training_lines,
    case_mismatch_warning,
    copy_vocabulary,
    load_tokenizer,
    read_vocabulary,
    tokenizer_from_vocab,
    train_vocabulary,
    vocab_sha256,
)

SCRIPT = Path(__file__).resolve().parents[1] / "workflow" / "scripts" / "train_vocab.py"

WORDS = (
    "The Company reported quarterly earnings and revenue growth . Profit fell while "
    "operating margins improved in Helsinki ; investors expect dividends , Nokia and "
    "Fortum shares rose 3.5 % after the central bank kept interest rates unchanged"
).split()


def write_text(path: Path, num_documents: int = 150, seed: int = 0) -> Path:
    return write_random_corpus(path, WORDS, num_documents=num_documents, seed=seed)


@pytest.fixture(scope="module")
def trained_vocab(tmp_path_factory):
    directory = tmp_path_factory.mktemp("vocab")
    corpus = write_text(directory / "corpus.txt")
    path = directory / "vocab.txt"
    tokens = train_vocabulary([str(corpus)], str(path), vocab_size=200, min_frequency=2)
    return path, tokens


def test_trained_vocabulary_has_special_tokens_first_and_keeps_case(trained_vocab):
    path, tokens = trained_vocab
    assert tuple(tokens[:5]) == SPECIAL_TOKENS
    assert path.read_text(encoding="utf-8").splitlines() == tokens
    assert len(tokens) <= 200
    assert any(token.startswith("##") for token in tokens)
    assert any(any(c.isupper() for c in token) for token in tokens)  # cased by default
    assert read_vocabulary(str(path)) == tokens


def test_lower_cased_training_has_no_upper_case(tmp_path):
    corpus = write_text(tmp_path / "corpus.txt")
    tokens = train_vocabulary([str(corpus)], str(tmp_path / "v.txt"), vocab_size=150, do_lower_case=True)
    assert not any(any(c.isupper() for c in t) for t in tokens if t not in SPECIAL_TOKENS)
    assert case_mismatch_warning(tokens, do_lower_case=False) is not None
    assert case_mismatch_warning(tokens, do_lower_case=True) is None


def test_basic_tokenizer_rules():
    vocab = {t: i for i, t in enumerate([*SPECIAL_TOKENS, "cafe", "café", "Cafe", "un", "##aff", "##able", ",", "中", "文"])}
    cased = tokenizer_from_vocab(vocab, do_lower_case=False)
    uncased = tokenizer_from_vocab(vocab, do_lower_case=True)
    tokens = lambda tok, text: tok.encode(text, add_special_tokens=False).tokens  # noqa: E731
    # Accents are stripped only when lower-casing.
    assert tokens(cased, "café Cafe") == ["café", "Cafe"]
    assert tokens(uncased, "Café CAFE") == ["cafe", "cafe"]
    # Punctuation splits, CJK characters are words, greedy WordPiece with ##.
    assert tokens(cased, "unaffable,中文") == ["un", "##aff", "##able", ",", "中", "文"]
    # A word that cannot be pieced together, or is longer than 100 chars, is [UNK].
    assert tokens(cased, "unx") == ["[UNK]"]
    assert tokens(cased, "un" + "able" * 24) == ["un"] + ["##able"] * 24  # 98 characters
    assert tokens(cased, "un" + "able" * 25) == ["[UNK]"]  # 102 characters
    # Control and format characters are removed (clean_text).
    assert tokens(cased, "ca\x00fe\u200b") == ["cafe"]


def _reference_tokenize(text, vocab, do_lower_case):
    """Google's BasicTokenizer + WordpieceTokenizer, for ASCII text only."""
    if do_lower_case:
        text = text.lower()
    words = []
    for chunk in text.split():
        current = ""
        for char in chunk:
            if not char.isalnum():  # ASCII punctuation splits
                if current:
                    words.append(current)
                words.append(char)
                current = ""
            else:
                current += char
        if current:
            words.append(current)
    output = []
    for word in words:
        if len(word) > 100:
            output.append("[UNK]")
            continue
        pieces, start = [], 0
        while start < len(word):
            end = len(word)
            while end > start:
                piece = ("##" if start else "") + word[start:end]
                if piece in vocab:
                    break
                end -= 1
            if end == start:
                pieces = ["[UNK]"]
                break
            pieces.append(piece)
            start = end
        output.extend(pieces)
    return output


ascii_text = st.text(
    alphabet=st.sampled_from("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,;%-()'\t"),
    max_size=80,
)


@settings(max_examples=150, deadline=None)
@given(text=ascii_text, do_lower_case=st.booleans())
def test_matches_googles_tokenizer_on_ascii(trained_vocab, text, do_lower_case):
    path, tokens = trained_vocab
    vocab = set(tokens)
    tokenizer = load_tokenizer(str(path), do_lower_case)
    assert tokenizer.encode(text, add_special_tokens=False).tokens == _reference_tokenize(text, vocab, do_lower_case)


# --- training through our own iterator (progress) ----------------------------------


def write_awkward_corpus(directory: Path) -> list[str]:
    """Two files with what line-by-line reading could get wrong."""
    a = directory / "a.txt"
    # BOM, CRLF, whitespace and control characters at line ends, inner
    # whitespace, non-ASCII, CJK, blank lines.
    a.write_bytes(
        "\ufeffThe café  Company\r\nreported\tearnings .\x1c\n\n  \n"
        "Profit fell\u2028rose\x85\nunaffable,中文 Café\x0b\nstrasse Straße\r\n".encode("utf-8")
        + write_text(directory / "text.txt", num_documents=40).read_bytes()
    )
    b = directory / "b.txt"
    b.write_bytes("no final newline café".encode("utf-8"))  # ends a line without "\n"
    return [str(a), str(b)]


def _new_tokenizer(model, do_lower_case):
    return _configure(Tokenizer(model), do_lower_case)


@pytest.mark.parametrize("do_lower_case", [False, True])
def test_training_lines_give_the_trainer_the_same_words_as_training_on_files(tmp_path, do_lower_case):
    # A trainer's only input is the {word: count} map built from what it is
    # fed. WordLevelTrainer turns it into a vocabulary ordered by count, then
    # word (deterministic; min_frequency 0 keeps every word), so equal
    # vocabularies mean equal counts. Also with a length hint (only used by
    # the Rust progress bar).
    files = write_awkward_corpus(tmp_path)

    def words(train):
        tokenizer = _new_tokenizer(WordLevel(unk_token="[UNK]"), do_lower_case)
        train(tokenizer, WordLevelTrainer(vocab_size=10**6, min_frequency=0, special_tokens=[], show_progress=False))
        vocab = tokenizer.get_vocab()
        return sorted(vocab, key=vocab.get)

    def lines():
        return _training_lines(files, Progress("test", stream=io.StringIO(), use_bar=False), batch_size=7)

    expected = words(lambda tokenizer, trainer: tokenizer.train(files, trainer))
    assert len(expected) > 40 and {"cafe" if do_lower_case else "café", "中", "rose", "newline"} <= set(expected)
    assert words(lambda tokenizer, trainer: tokenizer.train_from_iterator(lines(), trainer)) == expected
    assert words(lambda tokenizer, trainer: tokenizer.train_from_iterator(lines(), trainer, length=3)) == expected


@pytest.mark.parametrize("do_lower_case", [False, True])
def test_trained_vocabulary_matches_tokenizer_train(tmp_path, do_lower_case):
    # HF's WordPiece trainer alone numbers the ## characters and breaks ties
    # between merges in hash-map order, so its ids (and a few merged tokens)
    # differ from run to run (huggingface/tokenizers#1794). The characters and
    # ## characters do not depend on that order; ours registers a ## token for
    # each character that may continue a word, so it may hold a few HF omits.
    files = write_awkward_corpus(tmp_path)
    tokens = train_vocabulary(files, str(tmp_path / "vocab.txt"), vocab_size=300, do_lower_case=do_lower_case,
                              progress_stream=io.StringIO())
    tokenizer = _new_tokenizer(WordPiece(unk_token="[UNK]", continuing_subword_prefix="##"), do_lower_case)
    tokenizer.train(files, WordPieceTrainer(vocab_size=300, min_frequency=2, special_tokens=list(SPECIAL_TOKENS),
                                            continuing_subword_prefix="##", show_progress=False))
    vocab = tokenizer.get_vocab()
    expected = sorted(vocab, key=vocab.get)
    assert tokens[:5] == expected[:5] == list(SPECIAL_TOKENS)

    def characters(tokens):
        return {token for token in tokens if len(token.removeprefix("##")) == 1}

    extra = characters(tokens) - characters(expected)
    assert characters(expected) <= characters(tokens) and all(token.startswith("##") for token in extra)
    assert {"##ß", "中", "文"} <= characters(tokens) and "##中" not in tokens and "##." not in tokens
    assert abs(len(tokens) - len(expected) - len(extra)) <= 5


MULTILINGUAL = (
    "Ελληνικά ΟΔΟΣ οδός Σίσυφος. Кириллица Ёлка ёлка! Ärger über Öl, Straße STRASSE; café CAFÉ naïve "
    "中文字符 日本語のテキスト 한국어 문장 — “quoted” ‘text’… İstanbul ıspanak ǅemal ﬁnance ½ x² Ω Å 𝔘𝔫𝔦"
)


def write_multilingual_corpus(directory: Path) -> list[str]:
    """Scripts, cases and characters whose normalisation is not one to one, in random words."""
    rng = random.Random(7)
    alphabet = sorted(set(MULTILINGUAL.replace(" ", "")))
    with open(directory / "multi.txt", "w", encoding="utf-8") as out:
        for _ in range(400):
            out.write(MULTILINGUAL + "\n" if rng.random() < 0.1 else "")
            out.write(" ".join("".join(rng.choice(alphabet) for _ in range(rng.randint(1, 7)))
                               for _ in range(rng.randint(3, 12))) + "\n")
            if rng.random() < 0.2:
                out.write("\n")
    return [str(directory / "multi.txt"), *write_awkward_corpus(directory)]


@pytest.mark.parametrize("do_lower_case, sample", [(False, []), (True, []), (False, ["--sample_bytes", "20000"])])
def test_training_is_reproducible_in_fresh_processes(tmp_path, do_lower_case, sample):
    """Three processes (three hash seeds in HF's trainer) write one vocab.txt, byte for byte."""
    files = write_multilingual_corpus(tmp_path)
    digests = set()
    for run in range(3):
        output = tmp_path / f"vocab{run}.txt"
        subprocess.run(
            [sys.executable, str(SCRIPT), "--input", *files,
             "--output", str(output), "--vocab_size", "600", "--min_frequency", "2",
             *(["--do_lower_case"] if do_lower_case else []), *sample],
            check=True, capture_output=True, text=True,
        )
        digests.add(hashlib.md5(output.read_bytes()).hexdigest())
    assert len(digests) == 1, digests


@given(total=st.integers(1, 10**12), wanted=st.one_of(st.none(), st.integers(1, 10**12)), seed=st.integers(0, 99))
def test_a_sample_is_a_fraction_or_nothing(total, wanted, seed):
    sample = LineSample.of(total, wanted, seed)
    if wanted is None or wanted >= total:
        assert sample is None
    else:
        assert sample.fraction == wanted / total and 0 < sample.fraction < 1 and sample.seed == seed


def test_a_sampled_vocabulary_is_the_vocabulary_of_the_sampled_lines(tmp_path):
    """Both passes see the lines the seed draws, and about the fraction asked for."""
    files = [str(write_text(tmp_path / f"part{i}.txt", num_documents=300, seed=i)) for i in range(2)]
    total = sum(Path(path).stat().st_size for path in files)
    sample = LineSample.of(total, total // 3, 5)
    keep = sample.drawer()
    lines = [line for path in files for line in Path(path).read_text(encoding="utf-8").splitlines() if line]
    kept = [line for line in lines if keep()]
    assert abs(len(kept) / len(lines) - 1 / 3) < 0.05
    (tmp_path / "kept.txt").write_text("\n".join(kept) + "\n", encoding="utf-8")
    sampled = train_vocabulary(files, str(tmp_path / "sampled.txt"), vocab_size=400, sample_bytes=total // 3,
                               sample_seed=5, progress_stream=io.StringIO())
    explicit = train_vocabulary([str(tmp_path / "kept.txt")], str(tmp_path / "explicit.txt"), vocab_size=400,
                                progress_stream=io.StringIO())
    assert sampled == explicit
    everything = train_vocabulary(files, str(tmp_path / "all.txt"), vocab_size=400, progress_stream=io.StringIO())
    assert sampled != everything


def test_training_reports_progress_lines_and_the_merge_phase(tmp_path, caplog):
    files = [str(write_text(tmp_path / f"corpus{i}.txt", num_documents=100, seed=i)) for i in range(3)]
    total = sum(Path(path).stat().st_size for path in files)
    stream = io.StringIO()
    with caplog.at_level(logging.INFO, logger="bert_pretraining.tokenization"):
        train_vocabulary(files, str(tmp_path / "vocab.txt"), vocab_size=150,
                         progress_interval=0, progress_stream=stream)
    lines = stream.getvalue().splitlines()
    assert "\r" not in stream.getvalue()  # plain lines, no redrawn bar
    pattern = re.compile(r"vocabulary, (listing characters|counting words): \d+\.\d/\d+\.\d MiB \(\d+%\), \d+ MiB/s")
    assert len(lines) > 10 and all(pattern.match(line) for line in lines)
    assert lines[0].startswith("vocabulary, listing characters") and re.search(r", ETA \d+:\d\d:\d\d$", lines[0])
    lines = [line for line in lines if line.startswith("vocabulary, counting words")]
    assert len(lines) > 5
    assert lines[-1].startswith(f"vocabulary, counting words: {total / 2**20:.1f}/{total / 2**20:.1f} MiB (100%)")
    assert re.search(r", done in \d+:\d\d:\d\d$", lines[-1])
    messages = [record.getMessage() for record in caplog.records]
    merge = next(i for i, message in enumerate(messages) if "computing the WordPiece merges up to 150 tokens" in message)
    assert "counted the words of 3 files" in messages[merge]
    assert any(message.startswith("trained the vocabulary in ") for message in messages[merge + 1:])


def test_training_reports_bad_utf8_with_file_and_line(tmp_path):
    good = write_text(tmp_path / "good.txt", num_documents=10)
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"fine line\nstill fine\nbroken \xff here\n")
    with pytest.raises(CorpusError, match=r"bad\.txt:3: not valid UTF-8 \(byte 0xff at byte 8 of the line\)"):
        train_vocabulary([str(good), str(bad)], str(tmp_path / "vocab.txt"), progress_stream=io.StringIO())
    assert not (tmp_path / "vocab.txt").exists()


def test_training_rejects_missing_and_empty_files(tmp_path):
    with pytest.raises(CorpusError, match=r"nope\.txt: input file does not exist"):
        train_vocabulary([str(tmp_path / "nope.txt")], str(tmp_path / "vocab.txt"))
    (tmp_path / "empty.txt").write_bytes(b"")
    with pytest.raises(CorpusError, match=r"empty\.txt\) are empty; expected corpus text"):
        train_vocabulary([str(tmp_path / "empty.txt")], str(tmp_path / "vocab.txt"))


# --- checking vocabularies --------------------------------------------------------


def test_missing_vocabulary_file(tmp_path):
    with pytest.raises(VocabularyError, match=r"nope\.txt: vocabulary file does not exist"):
        read_vocabulary(str(tmp_path / "nope.txt"))


def test_missing_special_tokens_are_named(tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_text("[PAD]\n[UNK]\n[CLS]\nhello\n")
    with pytest.raises(VocabularyError, match=r"vocab\.txt: .*lacks the special token\(s\) \[SEP\] \[MASK\]"):
        read_vocabulary(str(path))


@pytest.mark.parametrize(
    "content, message",
    [
        ("[PAD]\n[UNK]\n\n[CLS]\n[SEP]\n[MASK]\n", r"vocab\.txt:3: empty line"),
        ("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n[UNK]\n", r"vocab\.txt:6: token '\[UNK\]' repeats line 2"),
    ],
)
def test_ambiguous_vocabularies_are_rejected(tmp_path, content, message):
    path = tmp_path / "vocab.txt"
    path.write_text(content)
    with pytest.raises(VocabularyError, match=message):
        read_vocabulary(str(path))


def test_trailing_blank_lines_and_crlf_are_accepted(tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_bytes(b"[PAD]\r\n[UNK]\r\n[CLS]\r\n[SEP]\r\n[MASK]\r\nword\r\n\r\n")
    assert read_vocabulary(str(path)) == [*SPECIAL_TOKENS, "word"]
    copy_vocabulary(str(path), str(tmp_path / "copy.txt"))
    assert (tmp_path / "copy.txt").read_bytes() == b"[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nword\n"


def test_vocab_sha256(trained_vocab):
    path, _ = trained_vocab
    assert vocab_sha256(str(path)) == hashlib.sha256(path.read_bytes()).hexdigest()


# --- the script ---------------------------------------------------------------


def run_script(*args):
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True)


def test_script_trains_and_copies(tmp_path):
    corpus = write_text(tmp_path / "corpus.txt", num_documents=60)
    result = run_script("--input", corpus, "--output", tmp_path / "vocab.txt", "--vocab_size", "120",
                        "--min_frequency", "1")
    assert result.returncode == 0, result.stderr
    assert read_vocabulary(str(tmp_path / "vocab.txt"))[:5] == list(SPECIAL_TOKENS)
    # stderr is not a terminal: a plain progress line, no bar, then the merge phase.
    assert re.search(r"^vocabulary, counting words: .*\(100%\).*, done in ", result.stderr, re.M), result.stderr
    assert "computing the WordPiece merges" in result.stderr and "\r" not in result.stderr
    result = run_script("--given_vocab", tmp_path / "vocab.txt", "--output", tmp_path / "copy.txt")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "copy.txt").read_bytes() == (tmp_path / "vocab.txt").read_bytes()


def test_script_rejects_a_given_vocabulary_without_special_tokens(tmp_path):
    (tmp_path / "given.txt").write_text("[PAD]\n[UNK]\nhello\n")
    (tmp_path / "vocab.txt").write_text("old\n")
    result = run_script("--given_vocab", tmp_path / "given.txt", "--output", tmp_path / "vocab.txt")
    assert result.returncode == 2
    assert "given.txt" in result.stderr and "[CLS] [SEP] [MASK]" in result.stderr
    assert (tmp_path / "vocab.txt").read_text() == "old\n"
