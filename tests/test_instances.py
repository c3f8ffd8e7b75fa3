"""Property tests of the instance algorithm (masking, pairs, truncation)."""

import random
from collections import Counter
from typing import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bert_pretraining.instances import (
    KEEP_PROB_GIVEN_NOT_MASK,
    MASK_PROB,
    InstanceOptions,
    TrainingInstance,
    VocabInfo,
    _Draws,
    _shuffle,
    check_instance_options,
    create_instances_from_document,
    create_masked_lm_predictions,
    create_training_instances,
    serialized_examples,
    shuffle,
    truncate_seq_pair,
)
from bert_pretraining import instances as instances_module
from bert_pretraining.errors import ConfigError

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
    options = InstanceOptions(max_seq_length=max_seq_length, max_predictions_per_seq=5,
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
    options = InstanceOptions(max_seq_length=16, max_predictions_per_seq=2, short_seq_prob=0.0)
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
    options = InstanceOptions(max_seq_length=32, max_predictions_per_seq=5, short_seq_prob=0.0)
    instances = create_instances_from_document(documents, 0, options, VOCAB, random.Random(0))
    assert instances and all(len(i.input_ids) == 32 for i in instances)
    assert all(i.num_truncated > 0 for i in instances)


def test_training_instances_are_deterministic_and_shuffled():
    rng = random.Random(0)
    documents = [[[rng.randint(5, 998) for _ in range(rng.randint(1, 12))] for _ in range(rng.randint(1, 8))]
                 for _ in range(30)]
    options = InstanceOptions(max_seq_length=24, max_predictions_per_seq=4, dupe_factor=3)
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
        (InstanceOptions(max_seq_length=7), "--max_seq_length"),
        (InstanceOptions(max_seq_length=128, max_predictions_per_seq=126), "--max_predictions_per_seq"),
        (InstanceOptions(masked_lm_prob=0), "--masked_lm_prob"),
        (InstanceOptions(short_seq_prob=1.5), "--short_seq_prob"),
        (InstanceOptions(dupe_factor=0), "--dupe_factor"),
    ],
)
def test_bad_options_name_the_flag(options, flag):
    with pytest.raises(ConfigError, match=flag):
        check_instance_options(options)
    check_instance_options(InstanceOptions(max_seq_length=128, max_predictions_per_seq=125))


# --- the inlined random draws ------------------------------------------------------
#
# The algorithm inlines Random.shuffle and Random.randint for speed; these
# tests pin that the draws, the results and the generator state stay those of
# the random module and of the straightforward algorithm (Google's).


@settings(max_examples=300, deadline=None)
@given(length=st.integers(0, 700), keep=st.integers(0, 700), seed=st.integers(0, 2**64))
def test_inlined_shuffle_is_random_shuffle(length, keep, seed):
    expected, expected_rng = list(range(length)), random.Random(seed)
    expected_rng.shuffle(expected)
    ours, rng = list(range(length)), random.Random(seed)
    _shuffle(ours, rng.getrandbits, length)
    assert ours == expected
    assert rng.getstate() == expected_rng.getstate()
    # Only a prefix needed: the same prefix and the same draws.
    keep = min(keep, length)
    partial, rng = list(range(length)), random.Random(seed)
    _shuffle(partial, rng.getrandbits, keep)
    assert partial[:keep] == expected[:keep]
    assert rng.getstate() == expected_rng.getstate()
    # The public helper, on any objects.
    objects, rng = [[i] for i in range(length)], random.Random(seed)
    shuffle(objects, rng)
    assert objects == [[i] for i in expected] and rng.getstate() == expected_rng.getstate()


@settings(max_examples=200, deadline=None)
@given(a=st.integers(-1000, 1000), width=st.integers(0, 2**40), seed=st.integers(0, 2**32 - 1))
def test_inlined_randint_is_random_randint(a, width, seed):
    expected_rng, rng = random.Random(seed), random.Random(seed)
    for _ in range(3):
        assert _Draws(rng).randint(a, a + width) == expected_rng.randint(a, a + width)
    assert rng.getstate() == expected_rng.getstate()


def test_subclasses_keep_their_own_draws():
    assert _Draws(random.Random(0)).getrandbits is not None
    assert _Draws(SentinelRandom(0)).getrandbits is None  # overrides randint

    class OwnRandom(random.Random):  # random() only: Random uses _randbelow_without_getrandbits
        def random(self):
            return super().random()

    assert _Draws(OwnRandom(0)).getrandbits is None
    values, rng = list(range(50)), OwnRandom(0)
    shuffle(values, rng)
    expected = list(range(50))
    OwnRandom(0).shuffle(expected)
    assert values == expected


# The algorithm as it was first written (a transcription of Google's
# create_instances_from_document and create_masked_lm_predictions on ids):
# the optimised code must give the same instances and leave the generator in
# the same state.

def reference_masked_lm_predictions(
    token_ids: Sequence[int],
    masked_lm_prob: float,
    max_predictions_per_seq: int,
    vocab: VocabInfo,
    rng: random.Random,
    do_whole_word_mask: bool = False,
):
    # Candidate "words": lists of positions. Without whole-word masking every
    # piece is its own word.
    cls_id, sep_id = vocab.cls_id, vocab.sep_id
    if not do_whole_word_mask:
        cand_indexes = [[i] for i, token_id in enumerate(token_ids) if token_id != cls_id and token_id != sep_id]
    else:
        cand_indexes = []
        word_may_continue = False
        for i, token_id in enumerate(token_ids):
            if token_id == cls_id or token_id == sep_id:
                word_may_continue = False
                continue
            if word_may_continue and vocab.is_continuation[token_id]:
                cand_indexes[-1].append(i)
            else:
                cand_indexes.append([i])
            word_may_continue = True

    rng.shuffle(cand_indexes)
    output_ids = list(token_ids)
    num_to_predict = min(max_predictions_per_seq, max(1, int(round(len(token_ids) * masked_lm_prob))))

    masked: list[tuple[int, int]] = []
    for index_set in cand_indexes:
        if len(masked) >= num_to_predict:
            break
        # A whole word that would exceed the budget is skipped (Google).
        if len(masked) + len(index_set) > num_to_predict:
            continue
        # One decision per word (per piece in Google's code; see module doc).
        if rng.random() < MASK_PROB:
            replacement = "mask"
        elif rng.random() < KEEP_PROB_GIVEN_NOT_MASK:
            replacement = "keep"
        else:
            replacement = "random"
        for index in index_set:
            if replacement == "mask":
                output_ids[index] = vocab.mask_id
            elif replacement == "random":
                # Any vocabulary id, special tokens included, as Google draws
                # from the whole vocabulary list.
                output_ids[index] = rng.randint(0, vocab.size - 1)
            masked.append((index, token_ids[index]))
    masked.sort()
    return (output_ids, [index for index, _ in masked], [label for _, label in masked])


def reference_instances_from_document(
    all_documents: Sequence[Sequence[Sequence[int]]],
    document_index: int,
    options: InstanceOptions,
    vocab: VocabInfo,
    rng: random.Random,
):
    document = all_documents[document_index]
    # Account for [CLS], [SEP], [SEP].
    max_num_tokens = options.max_seq_length - 3

    # Usually fill the whole sequence (padding is wasted compute), sometimes
    # aim shorter to match fine-tuning inputs. A target, not a hard limit.
    target_seq_length = max_num_tokens
    if rng.random() < options.short_seq_prob:
        target_seq_length = rng.randint(2, max_num_tokens)

    instances = []
    current_chunk: list[Sequence[int]] = []
    current_length = 0
    i = 0
    while i < len(document):
        segment = document[i]
        current_chunk.append(segment)
        current_length += len(segment)
        if i == len(document) - 1 or current_length >= target_seq_length:
            if current_chunk:
                # How many sentences of the chunk go into segment A.
                a_end = 1
                if len(current_chunk) >= 2:
                    a_end = rng.randint(1, len(current_chunk) - 1)
                tokens_a: list[int] = []
                for j in range(a_end):
                    tokens_a.extend(current_chunk[j])

                tokens_b: list[int] = []
                if len(current_chunk) == 1 or rng.random() < 0.5:
                    is_random_next = True
                    target_b_length = target_seq_length - len(tokens_a)
                    # Try to take B from another document (rarely needs a
                    # second try on a real corpus).
                    for _ in range(10):
                        random_document_index = rng.randint(0, len(all_documents) - 1)
                        if random_document_index != document_index:
                            break
                    random_document = all_documents[random_document_index]
                    random_start = rng.randint(0, len(random_document) - 1)
                    for j in range(random_start, len(random_document)):
                        tokens_b.extend(random_document[j])
                        if len(tokens_b) >= target_b_length:
                            break
                    # The chunk's sentences after A were not used: put them
                    # back so they start the next chunk.
                    num_unused_segments = len(current_chunk) - a_end
                    i -= num_unused_segments
                else:
                    is_random_next = False
                    for j in range(a_end, len(current_chunk)):
                        tokens_b.extend(current_chunk[j])
                num_truncated = truncate_seq_pair(tokens_a, tokens_b, max_num_tokens, rng)
                assert tokens_a and tokens_b

                tokens = [vocab.cls_id, *tokens_a, vocab.sep_id, *tokens_b, vocab.sep_id]
                segment_ids = [0] * (len(tokens_a) + 2) + [1] * (len(tokens_b) + 1)
                predictions = reference_masked_lm_predictions(
                    tokens,
                    options.masked_lm_prob,
                    options.max_predictions_per_seq,
                    vocab,
                    rng,
                    options.do_whole_word_mask,
                )
                instances.append(
                    TrainingInstance(
                        input_ids=predictions[0],
                        segment_ids=segment_ids,
                        masked_lm_positions=predictions[1],
                        masked_lm_ids=predictions[2],
                        is_random_next=is_random_next,
                        num_truncated=num_truncated,
                    )
                )
            current_chunk = []
            current_length = 0
        i += 1
    return instances




class OwnRandint(random.Random):
    """A subclass with its own randint: the algorithm must call its methods."""

    def randint(self, a, b):
        return super().randint(a, b)


def documents_strategy(max_sentence):
    sentence = st.lists(st.integers(5, SENTINEL - 1), min_size=1, max_size=max_sentence)
    return st.lists(st.lists(sentence, min_size=1, max_size=8), min_size=1, max_size=5)


@settings(max_examples=200, deadline=None)
@given(documents=documents_strategy(30), max_seq_length=st.integers(8, 64), prob=st.floats(0.01, 0.6),
       max_pred=st.integers(1, 5), short_seq_prob=st.floats(0, 1), whole_word=st.booleans(),
       seed=st.integers(0, 2**32 - 1), subclass=st.booleans(), special=st.booleans())
def test_optimised_algorithm_matches_the_reference(documents, max_seq_length, prob, max_pred, short_seq_prob,
                                                    whole_word, seed, subclass, special):
    if special:  # [CLS] / [SEP] ids inside the text: the general candidate path
        documents[0][0] = [CLS, *documents[0][0], SEP]
    options = InstanceOptions(max_seq_length=max_seq_length, max_predictions_per_seq=max_pred,
                              masked_lm_prob=prob, short_seq_prob=short_seq_prob,
                              do_whole_word_mask=whole_word)
    make = OwnRandint if subclass else random.Random
    rng, expected_rng = make(seed), make(seed)
    for index in range(len(documents)):
        ours = create_instances_from_document(documents, index, options, VOCAB, rng)
        expected = reference_instances_from_document(documents, index, options, VOCAB, expected_rng)
        assert ours == expected
    assert rng.getstate() == expected_rng.getstate()


@settings(max_examples=200, deadline=None)
@given(tokens=st.lists(st.integers(0, SENTINEL - 1), min_size=1, max_size=200), prob=st.floats(0.01, 1),
       max_pred=st.integers(1, 80), whole_word=st.booleans(), seed=st.integers(0, 2**32 - 1),
       sentinel=st.booleans())
def test_optimised_masking_matches_the_reference(tokens, prob, max_pred, whole_word, seed, sentinel):
    make = SentinelRandom if sentinel else random.Random
    rng, expected_rng = make(seed), make(seed)
    ours = create_masked_lm_predictions(tokens, prob, max_pred, VOCAB, rng, whole_word)
    assert tuple(ours) == reference_masked_lm_predictions(tokens, prob, max_pred, VOCAB, expected_rng, whole_word)
    assert rng.getstate() == expected_rng.getstate()


def reference_training_instances(documents, options, vocab, rng):
    all_documents = [document for document in documents if document]
    rng.shuffle(all_documents)
    instances = []
    for _ in range(options.dupe_factor):
        for document_index in range(len(all_documents)):
            instances.extend(reference_instances_from_document(all_documents, document_index, options, vocab, rng))
    rng.shuffle(instances)
    return instances


@settings(max_examples=100, deadline=None)
@given(documents=documents_strategy(20), max_seq_length=st.integers(8, 48), whole_word=st.booleans(),
       dupe_factor=st.integers(1, 3), seed=st.integers(0, 2**32 - 1), special=st.booleans())
def test_optimised_training_instances_match_the_reference(documents, max_seq_length, whole_word, dupe_factor,
                                                          seed, special):
    # The whole outer loop, with the candidate positions taken from the layout
    # when no sentence holds [CLS] / [SEP] (and scanned when one does).
    if special:
        documents[-1][-1] = [SEP, *documents[-1][-1], CLS]
    options = InstanceOptions(max_seq_length=max_seq_length, max_predictions_per_seq=4, dupe_factor=dupe_factor,
                              do_whole_word_mask=whole_word)
    rng, expected_rng = random.Random(seed), random.Random(seed)
    assert create_training_instances(documents, options, VOCAB, rng) == reference_training_instances(
        documents, options, VOCAB, expected_rng)
    assert rng.getstate() == expected_rng.getstate()


# -- the inner loop in C (bert_pretraining._fast_instances) -------------------

def test_the_compiled_inner_loop_is_built():
    # setup.py builds it with the machine's C compiler; without it the records
    # stage still works, about twice as slowly, so a missing build must show.
    assert instances_module.compiled is not None, (
        "bert_pretraining._fast_instances is not built: run `pip install -e .` with gcc and the Python headers")


@settings(max_examples=300, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), calls=st.lists(
    st.one_of(st.tuples(st.just("random")), st.tuples(st.just("getrandbits"), st.integers(0, 64)),
              st.tuples(st.just("randint"), st.integers(-5, 5), st.integers(0, 2**63 - 6)),
              st.tuples(st.just("shuffle"), st.integers(0, 700))), max_size=40))
def test_compiled_twister_draws_like_random(seed, calls):
    rng = random.Random(seed)
    twister = instances_module.compiled.Twister(rng.getstate()[1])
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


def in_python(function, *args):
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(instances_module, "compiled", None)
        return function(*args)


@settings(max_examples=300, deadline=None)
@given(data=st.data(), vocab_size=st.sampled_from([SENTINEL + 1, 2**17 + 3, 250_000]),
       max_seq_length=st.integers(8, 160), max_pred=st.integers(1, 30), prob=st.floats(0.01, 1),
       short_seq_prob=st.floats(0, 1), whole_word=st.booleans(), dupe_factor=st.integers(1, 3),
       seed=st.integers(0, 2**32 - 1), special=st.booleans(), serialized=st.booleans())
def test_compiled_inner_loop_matches_python(data, vocab_size, max_seq_length, max_pred, prob,
                                            short_seq_prob, whole_word, dupe_factor, seed, special, serialized):
    # Long sentences (truncation from both ends), one-document corpora, large
    # vocabularies (draws of more bits, ids of 3+ varint bytes), positions of
    # two varint bytes (sequences over 128), [CLS]/[SEP] inside the text;
    # raw instances, or serialised Examples and the records stats' counts.
    vocab = VocabInfo(size=vocab_size, cls_id=CLS, sep_id=SEP, mask_id=MASK,
                      is_continuation=bytes(i % 3 == 0 for i in range(vocab_size)))
    sentence = st.lists(st.integers(5, vocab_size - 1), min_size=1, max_size=2 * max_seq_length)
    documents = data.draw(st.lists(st.lists(sentence, min_size=1, max_size=6), min_size=1, max_size=6))
    if special:
        documents[0][-1] = [SEP, *documents[0][-1], CLS]
    options = InstanceOptions(max_seq_length=max_seq_length, max_predictions_per_seq=min(max_pred, max_seq_length - 3),
                              masked_lm_prob=prob, short_seq_prob=short_seq_prob, dupe_factor=dupe_factor,
                              do_whole_word_mask=whole_word)
    make = serialized_examples if serialized else create_training_instances
    rng, python_rng = random.Random(seed), random.Random(seed)
    ours = make(documents, options, vocab, rng)
    assert ours == in_python(make, documents, options, vocab, python_rng)
    assert rng.getstate() == python_rng.getstate()


def test_compiled_inner_loop_refuses_ids_outside_the_vocabulary():
    options = InstanceOptions(max_seq_length=16, do_whole_word_mask=True)
    with pytest.raises(ValueError, match="token id 1000 in document 0 is outside the vocabulary"):
        create_training_instances([[[7, 1000], [8]]], options, VOCAB, random.Random(0))
