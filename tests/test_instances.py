"""Property tests of the instance algorithm (masking, pairs, truncation) and of its C accelerator."""

import random
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bert_pretraining import pretraining_examples
from bert_pretraining.errors import ConfigError
from bert_pretraining.instances import (
    InstanceOptions,
    VocabInfo,
    check_instance_options,
    create_instances_from_document,
    create_masked_lm_predictions,
    create_training_instances,
    truncate_seq_pair,
)
from bert_pretraining.pretraining_examples import count_instances, serialized_examples

PAD, UNK, CLS, SEP, MASK = range(5)
VOCAB_SIZE = 1000
# Ids 5..499 are word starts, 500..998 "##" continuation pieces; 999 never
# occurs in text and is what SentinelRandom returns for random replacements.
FIRST_CONTINUATION = 500
SENTINEL = 999
VOCAB = VocabInfo(
    size=VOCAB_SIZE,
    cls_id=CLS,
    sep_id=SEP,
    mask_id=MASK,
    is_continuation=bytes(i >= FIRST_CONTINUATION for i in range(VOCAB_SIZE)),
)


class SentinelRandom(random.Random):
    """Random whose randint(a, b) still consumes its draw but returns SENTINEL.

    create_masked_lm_predictions calls randint only to pick a random
    replacement, so with it every masked token shows its replacement mode.
    """

    def randint(self, a, b):
        super().randint(a, b)
        return SENTINEL


def pair(tokens_a, tokens_b):
    return [CLS, *tokens_a, SEP, *tokens_b, SEP]


def mode(original, output):
    if output == MASK:
        return "mask"
    if output == SENTINEL:
        return "random"
    assert output == original
    return "keep"


word_ids = st.integers(min_value=5, max_value=FIRST_CONTINUATION - 1)
piece_ids = st.integers(min_value=FIRST_CONTINUATION, max_value=SENTINEL - 1)
# A word: a start id and 0-3 continuation pieces.
words = st.tuples(word_ids, st.lists(piece_ids, max_size=3)).map(lambda w: [w[0], *w[1]])
segments = st.lists(words, min_size=1, max_size=30).map(lambda ws: [t for w in ws for t in w])


def words_of(tokens):
    """Position lists of the words of a pair, never across [CLS]/[SEP]."""
    result = []
    for i, token in enumerate(tokens):
        if token in (CLS, SEP):
            continue
        if token >= FIRST_CONTINUATION and result and result[-1][-1] == i - 1:
            result[-1].append(i)
        else:
            result.append([i])
    return result


# --- masking ---------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(a=segments, b=segments, prob=st.floats(0.01, 0.5), max_pred=st.integers(1, 80),
       seed=st.integers(0, 2**32 - 1), whole_word=st.booleans())
def test_masking_invariants(a, b, prob, max_pred, seed, whole_word):
    tokens = pair(a, b)
    output, positions, labels = create_masked_lm_predictions(
        tokens, prob, max_pred, VOCAB, SentinelRandom(seed), whole_word
    )
    num_to_predict = min(max_pred, max(1, int(round(len(tokens) * prob))))
    assert len(output) == len(tokens)
    assert positions == sorted(set(positions))
    assert labels == [tokens[p] for p in positions]
    for p in positions:
        assert tokens[p] not in (CLS, SEP)
    assert output[0] == CLS and output[len(a) + 1] == SEP and output[-1] == SEP
    for i, (before, after) in enumerate(zip(tokens, output)):
        if i not in positions:
            assert before == after
    if whole_word:
        # Whole words that would overshoot the budget are skipped.
        assert len(positions) <= num_to_predict
        masked = set(positions)
        for word in words_of(tokens):
            chosen = [i in masked for i in word]
            assert all(chosen) or not any(chosen), "a word is masked only in part"
            if all(chosen):
                assert len({mode(tokens[i], output[i]) for i in word}) == 1, "pieces of a word replaced differently"
    else:
        assert len(positions) == min(num_to_predict, len(tokens) - 3)


def count_modes(whole_word, draws=4000):
    rng = SentinelRandom(1234)
    data = random.Random(99)
    by_token, by_word = Counter(), Counter()
    for _ in range(draws):
        a = [t for _ in range(data.randint(3, 20)) for t in [data.randint(5, 499)] + [data.randint(500, 998)] * data.randint(0, 2)]
        b = [data.randint(5, 499) for _ in range(data.randint(3, 20))]
        tokens = pair(a, b)
        output, positions, _ = create_masked_lm_predictions(tokens, 0.15, 20, VOCAB, rng, whole_word)
        masked = set(positions)
        for p in positions:
            by_token[mode(tokens[p], output[p])] += 1
        for word in words_of(tokens):
            if word[0] in masked:
                by_word[mode(tokens[word[0]], output[word[0]])] += 1
    return by_token, by_word


@pytest.mark.parametrize("whole_word", [False, True])
def test_replacement_is_80_10_10(whole_word):
    by_token, by_word = count_modes(whole_word)
    counts = by_word if whole_word else by_token
    total = sum(counts.values())
    assert total > 5000
    assert abs(counts["mask"] / total - 0.8) < 0.02
    assert abs(counts["random"] / total - 0.1) < 0.015
    assert abs(counts["keep"] / total - 0.1) < 0.015


# --- truncation ---------------------------------------------------------------------


def reference_truncate(tokens_a, tokens_b, max_num_tokens, rng):
    """The plain list-mutating form of the same rule."""
    while len(tokens_a) + len(tokens_b) > max_num_tokens:
        longer = tokens_a if len(tokens_a) > len(tokens_b) else tokens_b
        if rng.random() < 0.5:
            del longer[0]
        else:
            longer.pop()


@settings(max_examples=300, deadline=None)
@given(len_a=st.integers(1, 300), len_b=st.integers(1, 300), max_num_tokens=st.integers(2, 300),
       seed=st.integers(0, 2**32 - 1))
def test_truncate_seq_pair(len_a, len_b, max_num_tokens, seed):
    a, b = list(range(len_a)), list(range(1000, 1000 + len_b))
    ref_a, ref_b = list(a), list(b)
    rng, ref_rng = random.Random(seed), random.Random(seed)
    removed = truncate_seq_pair(a, b, max_num_tokens, rng)
    reference_truncate(ref_a, ref_b, max_num_tokens, ref_rng)
    assert (a, b) == (ref_a, ref_b)
    assert rng.random() == ref_rng.random()  # the same number of draws
    assert removed == len_a + len_b - len(a) - len(b)
    if len_a + len_b <= max_num_tokens:
        assert removed == 0
    else:
        assert len(a) + len(b) == max_num_tokens
        assert a and b
    # What is left of each is a contiguous piece of it.
    assert a == list(range(a[0], a[0] + len(a)))
    assert b == list(range(b[0], b[0] + len(b)))


# --- pairs ---------------------------------------------------------------------------


def unmask(instance):
    ids = list(instance.input_ids)
    for position, label in zip(instance.masked_lm_positions, instance.masked_lm_ids):
        ids[position] = label
    return ids


def split_pair(instance):
    ids = unmask(instance)
    first_sep = ids.index(SEP)
    return ids[1:first_sep], ids[first_sep + 1 : -1]


# Documents of one-token sentences with ids unique across the corpus, so
# every token says where it comes from, and no truncation ever happens.
corpora = st.lists(st.integers(1, 25), min_size=2, max_size=6).map(
    lambda lengths: [[[5 + 100 * d + s] for s in range(n)] for d, n in enumerate(lengths)]
)


@settings(max_examples=150, deadline=None)
@given(documents=corpora, max_seq_length=st.integers(8, 40), short_seq_prob=st.floats(0, 1),
       seed=st.integers(0, 2**32 - 1))
def test_pairs_from_one_document(documents, max_seq_length, short_seq_prob, seed):
    options = InstanceOptions.with_google_defaults(max_seq_length=max_seq_length, max_predictions_per_seq=5,
                              short_seq_prob=short_seq_prob)
    for index, document in enumerate(documents):
        own = {sentence[0] for sentence in document}
        instances = create_instances_from_document(documents, index, options, VOCAB, random.Random(seed))
        covered = set()
        for instance in instances:
            n = len(instance.input_ids)
            assert n <= max_seq_length
            assert instance.num_truncated == 0
            a, b = split_pair(instance)
            assert a and b
            assert instance.segment_ids == [0] * (len(a) + 2) + [1] * (len(b) + 1)
            assert set(a) <= own
            assert a == sorted(a) and a == list(range(a[0], a[0] + len(a)))  # consecutive sentences
            covered.update(a)
            if instance.is_random_next:
                # Consecutive sentences of one document (which one: see
                # test_random_next_comes_from_another_document).
                assert b == list(range(b[0], b[0] + len(b)))
                assert len({(token - 5) // 100 for token in b}) == 1
            else:
                assert a[-1] + 1 == b[0] and set(b) <= own
                assert b == list(range(b[0], b[0] + len(b)))
                covered.update(b)
        # Unused sentences are put back: every sentence is used as text of
        # its own document, in segment A or as an actual next segment.
        assert covered == own


def test_random_next_comes_from_another_document():
    documents = [[[5 + 100 * d + s] for s in range(10)] for d in range(5)]
    options = InstanceOptions.with_google_defaults(max_seq_length=16, max_predictions_per_seq=2, short_seq_prob=0.0)
    rng = random.Random(3)
    random_next = total = 0
    for _ in range(200):
        for index in range(len(documents)):
            for instance in create_instances_from_document(documents, index, options, VOCAB, rng):
                a, b = split_pair(instance)
                total += 1
                if instance.is_random_next:
                    random_next += 1
                    assert (b[0] - 5) // 100 != index
                else:
                    assert (b[0] - 5) // 100 == index
    assert 0.45 < random_next / total < 0.6


def test_long_sentences_are_truncated():
    documents = [[list(range(5, 205))], [list(range(300, 320))]]
    options = InstanceOptions.with_google_defaults(max_seq_length=32, max_predictions_per_seq=5, short_seq_prob=0.0)
    instances = create_instances_from_document(documents, 0, options, VOCAB, random.Random(0))
    assert instances and all(len(i.input_ids) == 32 for i in instances)
    assert all(i.num_truncated > 0 for i in instances)


def test_training_instances_are_deterministic_and_shuffled():
    rng = random.Random(0)
    documents = [[[rng.randint(5, 998) for _ in range(rng.randint(1, 12))] for _ in range(rng.randint(1, 8))]
                 for _ in range(30)]
    options = InstanceOptions.with_google_defaults(max_seq_length=24, max_predictions_per_seq=4, dupe_factor=3)
    first = create_training_instances(documents, options, VOCAB, random.Random(5))
    second = create_training_instances(documents, options, VOCAB, random.Random(5))
    other = create_training_instances(documents, options, VOCAB, random.Random(6))
    assert first == second
    assert first != other
    assert len(first) >= 3 * len(documents)
    encoded = create_training_instances(documents, options, VOCAB, random.Random(5), encode=lambda i: i.input_ids)
    assert encoded == [i.input_ids for i in first]


@pytest.mark.parametrize(
    "options, flag",
    [
        (InstanceOptions.with_google_defaults(max_seq_length=7), "--max_seq_length"),
        (InstanceOptions.with_google_defaults(max_seq_length=128, max_predictions_per_seq=126), "--max_predictions_per_seq"),
        (InstanceOptions.with_google_defaults(masked_lm_prob=0), "--masked_lm_prob"),
        (InstanceOptions.with_google_defaults(short_seq_prob=1.5), "--short_seq_prob"),
        (InstanceOptions.with_google_defaults(dupe_factor=0), "--dupe_factor"),
    ],
)
def test_bad_options_name_the_flag(options, flag):
    with pytest.raises(ConfigError, match=flag):
        check_instance_options(options)
    check_instance_options(InstanceOptions.with_google_defaults(max_seq_length=128, max_predictions_per_seq=125))


# --- the C accelerator (bert_pretraining._fast_instances) and the switch ---------------


def test_the_c_accelerator_is_built():
    # setup.py builds it with the machine's C compiler; without it the records
    # stage still works, about three times as slowly, so a missing build must show.
    assert pretraining_examples.compiled is not None, (
        "bert_pretraining._fast_instances is not built: run `pip install -e .` with gcc and the Python headers")


@settings(max_examples=300, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), calls=st.lists(
    st.one_of(st.tuples(st.just("random")), st.tuples(st.just("getrandbits"), st.integers(0, 64)),
              st.tuples(st.just("randint"), st.integers(-5, 5), st.integers(0, 2**63 - 6)),
              st.tuples(st.just("shuffle"), st.integers(0, 700))), max_size=40))
def test_compiled_twister_draws_like_random(seed, calls):
    rng = random.Random(seed)
    twister = pretraining_examples.compiled.Twister(rng.getstate()[1])
    for name, *args in calls:
        if name == "shuffle":
            ours, expected = list(range(args[0])), list(range(args[0]))
            twister.shuffle(ours)
            rng.shuffle(expected)
            assert ours == expected
        elif name == "randint":
            a, width = args
            assert twister.randint(a, a + width) == rng.randint(a, a + width)
        else:
            assert getattr(twister, name)(*args) == getattr(rng, name)(*args)
    assert twister.state() == rng.getstate()[1]


def in_python(*args):
    """serialized_examples without the accelerator: instances.py and tfrecords' serialiser."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(pretraining_examples, "compiled", None)
        return serialized_examples(*args)


@settings(max_examples=300, deadline=None)
@given(data=st.data(), vocab_size=st.sampled_from([SENTINEL + 1, 2**17 + 3, 250_000]),
       max_seq_length=st.integers(8, 160), max_pred=st.integers(1, 30), prob=st.floats(0.01, 1),
       short_seq_prob=st.floats(0, 1), whole_word=st.booleans(), dupe_factor=st.integers(1, 3),
       seed=st.integers(0, 2**32 - 1), special=st.booleans())
def test_the_c_accelerator_matches_the_python_algorithm(data, vocab_size, max_seq_length, max_pred, prob,
                                                        short_seq_prob, whole_word, dupe_factor, seed, special):
    # Long sentences (truncation from both ends), one-document corpora, large
    # vocabularies (draws of more bits, ids of 3+ varint bytes), positions of
    # two varint bytes (sequences over 128), [CLS]/[SEP] inside the text:
    # the same Example bytes, counts and final generator state.
    vocab = VocabInfo(size=vocab_size, cls_id=CLS, sep_id=SEP, mask_id=MASK,
                      is_continuation=bytes(i % 3 == 0 for i in range(vocab_size)))
    sentence = st.lists(st.integers(5, vocab_size - 1), min_size=1, max_size=2 * max_seq_length)
    documents = data.draw(st.lists(st.lists(sentence, min_size=1, max_size=6), min_size=1, max_size=6))
    if special:
        documents[0][-1] = [SEP, *documents[0][-1], CLS]
    options = InstanceOptions.with_google_defaults(max_seq_length=max_seq_length, max_predictions_per_seq=min(max_pred, max_seq_length - 3),
                              masked_lm_prob=prob, short_seq_prob=short_seq_prob, dupe_factor=dupe_factor,
                              do_whole_word_mask=whole_word)
    rng, python_rng = random.Random(seed), random.Random(seed)
    ours = serialized_examples(documents, options, vocab, rng)
    assert ours == in_python(documents, options, vocab, python_rng)
    assert rng.getstate() == python_rng.getstate()


def test_counts_are_those_of_the_instances():
    rng = random.Random(4)
    documents = [[[rng.randint(5, 998) for _ in range(rng.randint(1, 40))] for _ in range(rng.randint(1, 8))]
                 for _ in range(40)]
    options = InstanceOptions.with_google_defaults(max_seq_length=32, max_predictions_per_seq=6, dupe_factor=3)
    instances = create_training_instances(documents, options, VOCAB, random.Random(9))
    examples, counts = serialized_examples(documents, options, VOCAB, random.Random(9))
    assert len(examples) == len(instances)
    by_length = Counter(len(i.input_ids) for i in instances)
    assert counts.by_length == [by_length[n] for n in range(33)]
    by_masked = Counter(len(i.masked_lm_positions) for i in instances)
    assert counts.by_masked_positions == [by_masked[n] for n in range(7)]
    assert counts.random_next == sum(i.is_random_next for i in instances)
    assert counts.instances_truncated == sum(1 for i in instances if i.num_truncated) > 0
    assert counts.tokens_truncated == sum(i.num_truncated for i in instances)
    assert count_instances(b"", options).by_length == [0] * 33


def test_a_random_subclass_gets_its_own_methods_called():
    # The accelerator copies a plain random.Random's state; a subclass that
    # draws otherwise must not be sent to it.
    documents = [[[7, 8, 9, 10], [11, 12, 13]], [[14, 15, 16, 17, 18]]]
    options = InstanceOptions.with_google_defaults(max_seq_length=16, max_predictions_per_seq=8, masked_lm_prob=0.5, dupe_factor=20)

    class SentinelReplacements(random.Random):
        def randint(self, a, b):  # a random replacement (b is the last id) becomes SENTINEL
            value = super().randint(a, b)
            return SENTINEL if b == VOCAB_SIZE - 1 else value

    plain, _ = serialized_examples(documents, options, VOCAB, random.Random(1))
    sentinel, _ = serialized_examples(documents, options, VOCAB, SentinelReplacements(1))
    # SENTINEL (999) is the varint bytes e7 07, which plain draws do not give here.
    assert b"\xe7\x07" in b"".join(sentinel) and b"\xe7\x07" not in b"".join(plain)


def test_the_c_accelerator_refuses_ids_outside_the_vocabulary():
    options = InstanceOptions.with_google_defaults(max_seq_length=16, do_whole_word_mask=True)
    with pytest.raises(ValueError, match="token id 1000 in document 0 is outside the vocabulary"):
        serialized_examples([[[7, 1000], [8]]], options, VOCAB, random.Random(0))
