/*
 * The records stage's accelerator: Google's create_training_instances (the
 * outer loop's document passes), create_instances_from_document,
 * create_masked_lm_predictions and the tf.train.Example encoding, in C, on
 * token ids, drawing from a copy of a Python random.Random's Mersenne Twister.
 *
 * instances.py is the definition: every draw here is the one CPython's
 * random.Random makes for the same call of that code (random(),
 * getrandbits(k), randint(a, b) and shuffle() through
 * _randbelow_with_getrandbits), in the same order, and the Example bytes are
 * those of tfrecords.ExampleSerializer. The tests compare them on random
 * corpora; pretraining_examples.py uses this module when it is built.
 *
 * Twister(state)       the 625 ints of random.Random.getstate()[1]
 *   .state()           the same 625 ints, for random.Random.setstate
 *   .random() .getrandbits(k) .randint(a, b) .shuffle(list)
 * Corpus(documents, max_seq_length, max_predictions_per_seq, masked_lm_prob,
 *        short_seq_prob, do_whole_word_mask, cls_id, sep_id, mask_id,
 *        vocab_size, is_continuation)
 *   .document_examples(twister, index, shapes)  -> the serialised Examples of
 *     one pass of create_instances_from_document; appends to the bytearray
 *     `shapes` four native ints per instance (sequence length, masked
 *     positions, is random next, tokens truncated) for the records stats
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------ */
/* Mersenne Twister, as CPython's Modules/_randommodule.c                    */
/* ------------------------------------------------------------------------ */

#define MT_N 624
#define MT_M 397
#define MATRIX_A 0x9908b0dfU
#define UPPER_MASK 0x80000000U
#define LOWER_MASK 0x7fffffffU

typedef struct {
    PyObject_HEAD
    uint32_t state[MT_N];
    int index;
} TwisterObject;

static uint32_t
genrand_uint32(TwisterObject *self)
{
    static const uint32_t mag01[2] = {0x0U, MATRIX_A};
    uint32_t *mt = self->state;
    uint32_t y;
    if (self->index >= MT_N) {
        int kk;
        for (kk = 0; kk < MT_N - MT_M; kk++) {
            y = (mt[kk] & UPPER_MASK) | (mt[kk + 1] & LOWER_MASK);
            mt[kk] = mt[kk + MT_M] ^ (y >> 1) ^ mag01[y & 0x1U];
        }
        for (; kk < MT_N - 1; kk++) {
            y = (mt[kk] & UPPER_MASK) | (mt[kk + 1] & LOWER_MASK);
            mt[kk] = mt[kk + (MT_M - MT_N)] ^ (y >> 1) ^ mag01[y & 0x1U];
        }
        y = (mt[MT_N - 1] & UPPER_MASK) | (mt[0] & LOWER_MASK);
        mt[MT_N - 1] = mt[MT_M - 1] ^ (y >> 1) ^ mag01[y & 0x1U];
        self->index = 0;
    }
    y = mt[self->index++];
    y ^= (y >> 11);
    y ^= (y << 7) & 0x9d2c5680U;
    y ^= (y << 15) & 0xefc60000U;
    y ^= (y >> 18);
    return y;
}

/* random.Random.random() */
static double
draw_random(TwisterObject *self)
{
    uint32_t a = genrand_uint32(self) >> 5, b = genrand_uint32(self) >> 6;
    return (a * 67108864.0 + b) * (1.0 / 9007199254740992.0);
}

/* random.Random.getrandbits(k) for 1 <= k <= 64: 32-bit words, least
   significant first, the last one cut to its top bits. */
static uint64_t
draw_bits(TwisterObject *self, int k)
{
    if (k <= 32)
        return genrand_uint32(self) >> (32 - k);
    uint64_t low = genrand_uint32(self);
    uint64_t high = genrand_uint32(self) >> (64 - k);
    return low | (high << 32);
}

static int
bit_length(uint64_t n)
{
    return n ? 64 - __builtin_clzll(n) : 0;
}

/* random.Random._randbelow_with_getrandbits(n), n >= 1 */
static uint64_t
draw_below(TwisterObject *self, uint64_t n)
{
    int k = bit_length(n);
    uint64_t r = draw_bits(self, k);
    while (r >= n)
        r = draw_bits(self, k);
    return r;
}

/* random.Random.shuffle's Fisher-Yates loop on n values of any kind */
#define DEFINE_SHUFFLE(name, type)                                   \
    static void name(TwisterObject *self, type *x, Py_ssize_t n)     \
    {                                                                \
        for (Py_ssize_t i = n - 1; i > 0; i--) {                     \
            Py_ssize_t j = (Py_ssize_t)draw_below(self, (uint64_t)i + 1); \
            type tmp = x[i];                                         \
            x[i] = x[j];                                             \
            x[j] = tmp;                                              \
        }                                                            \
    }
DEFINE_SHUFFLE(shuffle_objects, PyObject *)
DEFINE_SHUFFLE(shuffle_sizes, Py_ssize_t)

static PyObject *
Twister_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    PyObject *state;
    if (!PyArg_ParseTuple(args, "O:Twister", &state))
        return NULL;
    PyObject *seq = PySequence_Fast(state, "Twister() expects the 625 ints of random.Random.getstate()[1]");
    if (seq == NULL)
        return NULL;
    if (PySequence_Fast_GET_SIZE(seq) != MT_N + 1) {
        PyErr_SetString(PyExc_ValueError, "Twister() expects the 625 ints of random.Random.getstate()[1]");
        Py_DECREF(seq);
        return NULL;
    }
    TwisterObject *self = (TwisterObject *)type->tp_alloc(type, 0);
    if (self == NULL) {
        Py_DECREF(seq);
        return NULL;
    }
    PyObject **items = PySequence_Fast_ITEMS(seq);
    for (int i = 0; i < MT_N; i++) {
        unsigned long word = PyLong_AsUnsignedLong(items[i]);
        if ((word == (unsigned long)-1 && PyErr_Occurred()) || word > 0xffffffffUL) {
            if (!PyErr_Occurred())
                PyErr_SetString(PyExc_ValueError, "Twister(): a state word is not a 32-bit unsigned int");
            Py_DECREF(seq);
            Py_DECREF(self);
            return NULL;
        }
        self->state[i] = (uint32_t)word;
    }
    long index = PyLong_AsLong(items[MT_N]);
    Py_DECREF(seq);
    if (index == -1 && PyErr_Occurred()) {
        Py_DECREF(self);
        return NULL;
    }
    if (index < 0 || index > MT_N) {
        PyErr_SetString(PyExc_ValueError, "Twister(): the state index is outside 0..624");
        Py_DECREF(self);
        return NULL;
    }
    self->index = (int)index;
    return (PyObject *)self;
}

static PyObject *
Twister_state(TwisterObject *self, PyObject *unused)
{
    PyObject *state = PyTuple_New(MT_N + 1);
    if (state == NULL)
        return NULL;
    for (int i = 0; i <= MT_N; i++) {
        PyObject *value = i < MT_N ? PyLong_FromUnsignedLong(self->state[i]) : PyLong_FromLong(self->index);
        if (value == NULL) {
            Py_DECREF(state);
            return NULL;
        }
        PyTuple_SET_ITEM(state, i, value);
    }
    return state;
}

static PyObject *
Twister_random(TwisterObject *self, PyObject *unused)
{
    return PyFloat_FromDouble(draw_random(self));
}

static PyObject *
Twister_getrandbits(TwisterObject *self, PyObject *arg)
{
    long k = PyLong_AsLong(arg);
    if (k == -1 && PyErr_Occurred())
        return NULL;
    if (k < 0 || k > 64) {
        PyErr_SetString(PyExc_ValueError, "getrandbits(k): this Twister supports 0 <= k <= 64");
        return NULL;
    }
    return PyLong_FromUnsignedLongLong(k == 0 ? 0 : draw_bits(self, (int)k));
}

static PyObject *
Twister_randint(TwisterObject *self, PyObject *args)
{
    long long a, b;
    if (!PyArg_ParseTuple(args, "LL:randint", &a, &b))
        return NULL;
    if (b < a) {
        PyErr_Format(PyExc_ValueError, "randint(%lld, %lld): empty range", a, b);
        return NULL;
    }
    return PyLong_FromLongLong(a + (long long)draw_below(self, (uint64_t)(b - a) + 1));
}

static PyObject *
Twister_shuffle(TwisterObject *self, PyObject *arg)
{
    if (!PyList_Check(arg)) {
        PyErr_SetString(PyExc_TypeError, "shuffle() expects a list");
        return NULL;
    }
    /* Only pointers move: no Python code runs while the list is shuffled. */
    shuffle_objects(self, ((PyListObject *)arg)->ob_item, PyList_GET_SIZE(arg));
    Py_RETURN_NONE;
}

static PyMethodDef Twister_methods[] = {
    {"state", (PyCFunction)Twister_state, METH_NOARGS, "The 625 ints for random.Random.setstate."},
    {"random", (PyCFunction)Twister_random, METH_NOARGS, "random.Random.random()"},
    {"getrandbits", (PyCFunction)Twister_getrandbits, METH_O, "random.Random.getrandbits(k), k <= 64"},
    {"randint", (PyCFunction)Twister_randint, METH_VARARGS, "random.Random.randint(a, b)"},
    {"shuffle", (PyCFunction)Twister_shuffle, METH_O, "random.Random.shuffle(list)"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject TwisterType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "bert_pretraining._fast_instances.Twister",
    .tp_basicsize = sizeof(TwisterObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A copy of a random.Random's Mersenne Twister state and its draws.",
    .tp_new = Twister_new,
    .tp_methods = Twister_methods,
};

/* ------------------------------------------------------------------------ */
/* The corpus and the algorithm                                              */
/* ------------------------------------------------------------------------ */

#define MASK_PROB 0.8
#define KEEP_PROB_GIVEN_NOT_MASK 0.5

typedef struct {
    PyObject_HEAD
    /* Token ids of all sentences back to back; sentence s is
       tokens[sentence_start[s] : sentence_start[s + 1]], document d is
       sentences document_start[d] .. document_start[d + 1] - 1. */
    int32_t *tokens;
    Py_ssize_t *sentence_start;
    Py_ssize_t *document_start;
    Py_ssize_t num_documents;
    Py_ssize_t max_seq_length;
    Py_ssize_t max_predictions_per_seq;
    double masked_lm_prob;
    double short_seq_prob;
    int do_whole_word_mask;
    int32_t cls_id, sep_id, mask_id;
    Py_ssize_t vocab_size;
    unsigned char *is_continuation; /* vocab_size flags, for whole-word masking */
    /* Scratch of max_seq_length entries each. */
    int32_t *input;
    int32_t *output;
    Py_ssize_t *candidates;
    Py_ssize_t *group_start;
    Py_ssize_t *group_length;
    Py_ssize_t *chosen;
    int32_t *masked_values;  /* positions, then labels: 2 x max_predictions_per_seq */
    unsigned char *example; /* scratch for one serialised Example */
} CorpusObject;

static void
Corpus_dealloc(CorpusObject *self)
{
    PyMem_Free(self->tokens);
    PyMem_Free(self->sentence_start);
    PyMem_Free(self->document_start);
    PyMem_Free(self->is_continuation);
    PyMem_Free(self->input);
    PyMem_Free(self->output);
    PyMem_Free(self->candidates);
    PyMem_Free(self->group_start);
    PyMem_Free(self->group_length);
    PyMem_Free(self->chosen);
    PyMem_Free(self->masked_values);
    PyMem_Free(self->example);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* Pack documents (sequences of sentences, each a sequence of ints) into the
   flat arrays. Returns 0, or -1 with an exception set. */
static int
pack_documents(CorpusObject *self, PyObject *documents)
{
    PyObject *docs = PySequence_Fast(documents, "Corpus(): documents must be a sequence of documents");
    if (docs == NULL)
        return -1;
    Py_ssize_t num_documents = PySequence_Fast_GET_SIZE(docs);
    Py_ssize_t num_sentences = 0, num_tokens = 0;
    int result = -1;
    /* First pass: sizes. */
    for (Py_ssize_t d = 0; d < num_documents; d++) {
        PyObject *doc = PySequence_Fast_GET_ITEM(docs, d);
        Py_ssize_t sentences = PySequence_Size(doc);
        if (sentences < 0)
            goto done;
        if (sentences == 0) {
            PyErr_Format(PyExc_ValueError, "Corpus(): document %zd has no sentences", d);
            goto done;
        }
        num_sentences += sentences;
        for (Py_ssize_t s = 0; s < sentences; s++) {
            PyObject *sentence = PySequence_GetItem(doc, s);
            if (sentence == NULL)
                goto done;
            Py_ssize_t length = PySequence_Size(sentence);
            Py_DECREF(sentence);
            if (length < 0)
                goto done;
            num_tokens += length;
        }
    }
    self->num_documents = num_documents;
    self->tokens = PyMem_Malloc(sizeof(int32_t) * (num_tokens ? num_tokens : 1));
    self->sentence_start = PyMem_Malloc(sizeof(Py_ssize_t) * (num_sentences + 1));
    self->document_start = PyMem_Malloc(sizeof(Py_ssize_t) * (num_documents + 1));
    if (self->tokens == NULL || self->sentence_start == NULL || self->document_start == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    /* Second pass: values. */
    Py_ssize_t s_index = 0, t_index = 0;
    for (Py_ssize_t d = 0; d < num_documents; d++) {
        PyObject *doc = PySequence_Fast(PySequence_Fast_GET_ITEM(docs, d), "Corpus(): a document must be a sequence");
        if (doc == NULL)
            goto done;
        self->document_start[d] = s_index;
        Py_ssize_t sentences = PySequence_Fast_GET_SIZE(doc);
        for (Py_ssize_t s = 0; s < sentences; s++) {
            PyObject *sentence = PySequence_Fast(PySequence_Fast_GET_ITEM(doc, s), "Corpus(): a sentence must be a sequence of ints");
            if (sentence == NULL) {
                Py_DECREF(doc);
                goto done;
            }
            Py_ssize_t length = PySequence_Fast_GET_SIZE(sentence);
            if (t_index + length > num_tokens) {
                PyErr_SetString(PyExc_RuntimeError, "Corpus(): the documents changed while they were read");
                Py_DECREF(sentence);
                Py_DECREF(doc);
                goto done;
            }
            self->sentence_start[s_index++] = t_index;
            PyObject **ids = PySequence_Fast_ITEMS(sentence);
            for (Py_ssize_t t = 0; t < length; t++) {
                long id = PyLong_AsLong(ids[t]);
                if (id == -1 && PyErr_Occurred()) {
                    Py_DECREF(sentence);
                    Py_DECREF(doc);
                    goto done;
                }
                if (id < 0 || id > INT32_MAX || (self->do_whole_word_mask && id >= self->vocab_size)) {
                    PyErr_Format(PyExc_ValueError,
                                 "Corpus(): token id %ld in document %zd is outside the vocabulary (0 .. %zd)",
                                 id, d, self->vocab_size - 1);
                    Py_DECREF(sentence);
                    Py_DECREF(doc);
                    goto done;
                }
                self->tokens[t_index++] = (int32_t)id;
            }
            Py_DECREF(sentence);
        }
        Py_DECREF(doc);
    }
    self->sentence_start[s_index] = t_index;
    self->document_start[num_documents] = s_index;
    result = 0;
done:
    Py_DECREF(docs);
    return result;
}

/* ------------------------------------------------------------------------ */
/* tf.train.Example in Google's layout, as tfrecords.ExampleSerializer       */
/* ------------------------------------------------------------------------ */

/* Example { Features features = 1 } ; Features { map<string, Feature> feature
   = 1 } ; map entry { string key = 1; Feature value = 2 } ; Feature {
   FloatList float_list = 2; Int64List int64_list = 3 } ; *List { packed
   value = 1 }. Every field here is length-delimited: tag, varint length,
   payload; an empty packed list is left out. */

static size_t
varint_size(uint64_t value)
{
    size_t size = 1;
    while (value > 0x7f) {
        value >>= 7;
        size++;
    }
    return size;
}

static unsigned char *
put_varint(unsigned char *p, uint64_t value)
{
    while (value > 0x7f) {
        *p++ = (unsigned char)((value & 0x7f) | 0x80);
        value >>= 7;
    }
    *p++ = (unsigned char)value;
    return p;
}

/* Size of a length-delimited field with a payload of n bytes. */
static size_t
field_size(size_t n)
{
    return 1 + varint_size(n) + n;
}

/* The bytes of a map entry that come before its packed values: key, and
   the Feature's list headers. tag is 0x1a (int64_list) or 0x12 (float_list). */
static unsigned char *
put_entry_header(unsigned char *p, const char *name, unsigned char tag, size_t packed_length)
{
    size_t name_length = strlen(name);
    size_t list = packed_length ? field_size(packed_length) : 0;
    size_t feature = field_size(list);
    *p++ = 0x0a;
    p = put_varint(p, field_size(name_length) + field_size(feature));
    *p++ = 0x0a;
    p = put_varint(p, name_length);
    memcpy(p, name, name_length);
    p += name_length;
    *p++ = 0x12;
    p = put_varint(p, feature);
    *p++ = tag;
    p = put_varint(p, list);
    if (packed_length) {
        *p++ = 0x0a;
        p = put_varint(p, packed_length);
    }
    return p;
}

/* An Int64List entry of values[0:n] (non-negative) and padding zeros. */
static unsigned char *
put_int64_entry(unsigned char *p, const char *name, const int32_t *values, Py_ssize_t n, Py_ssize_t padding)
{
    size_t packed = (size_t)padding;
    for (Py_ssize_t i = 0; i < n; i++)
        packed += varint_size((uint32_t)values[i]);
    p = put_entry_header(p, name, 0x1a, packed);
    for (Py_ssize_t i = 0; i < n; i++)
        p = put_varint(p, (uint32_t)values[i]);
    memset(p, 0, padding);
    return p + padding;
}

/* An Int64List entry of 0/1 values: `zeros` 0s, `ones` 1s, `padding` 0s. */
static unsigned char *
put_bits_entry(unsigned char *p, const char *name, Py_ssize_t zeros, Py_ssize_t ones, Py_ssize_t padding)
{
    p = put_entry_header(p, name, 0x1a, (size_t)(zeros + ones + padding));
    memset(p, 0, zeros);
    memset(p + zeros, 1, ones);
    memset(p + zeros + ones, 0, padding);
    return p + zeros + ones + padding;
}

/* Room for headers: 7 entries of at most 3 * 11 bytes of tags and lengths
   plus their names; the Example's own tag and length. */
#define HEADER_ROOM 512

static size_t
max_example_size(Py_ssize_t max_seq_length, Py_ssize_t max_predictions_per_seq)
{
    /* Values are below 2**32: at most 5 bytes each. */
    return HEADER_ROOM + 3 * 5 * (size_t)max_seq_length + 2 * 5 * (size_t)max_predictions_per_seq +
           4 * (size_t)max_predictions_per_seq + 1;
}

/* The serialised Example of the instance in self->output / self->chosen. */
static PyObject *
serialize_instance(CorpusObject *self, Py_ssize_t n, Py_ssize_t num_segment_a, Py_ssize_t num_masked,
                   int is_random_next)
{
    const Py_ssize_t seq = self->max_seq_length, pred = self->max_predictions_per_seq;
    int32_t *positions = self->masked_values, *labels = self->masked_values + pred;
    for (Py_ssize_t m = 0; m < num_masked; m++) {
        positions[m] = (int32_t)self->chosen[m];
        labels[m] = self->input[self->chosen[m]];
    }
    /* Entries first, after room for the Example's tag and length. */
    unsigned char *start = self->example + 16, *p = start;
    p = put_int64_entry(p, "input_ids", self->output, n, seq - n);
    p = put_bits_entry(p, "input_mask", 0, n, seq - n);
    p = put_bits_entry(p, "segment_ids", num_segment_a, n - num_segment_a, seq - n);
    p = put_int64_entry(p, "masked_lm_positions", positions, num_masked, pred - num_masked);
    p = put_int64_entry(p, "masked_lm_ids", labels, num_masked, pred - num_masked);
    p = put_entry_header(p, "masked_lm_weights", 0x12, 4 * (size_t)pred);
    for (Py_ssize_t m = 0; m < pred; m++) {
        static const unsigned char one[4] = {0x00, 0x00, 0x80, 0x3f}; /* 1.0f, little-endian */
        if (m < num_masked)
            memcpy(p, one, 4);
        else
            memset(p, 0, 4);
        p += 4;
    }
    p = put_bits_entry(p, "next_sentence_labels", is_random_next ? 0 : 1, is_random_next ? 1 : 0, 0);
    size_t entries = (size_t)(p - start);
    unsigned char *head = start - 1 - varint_size(entries);
    head[0] = 0x0a;
    put_varint(head + 1, entries);
    return PyBytes_FromStringAndSize((const char *)head, (Py_ssize_t)(p - head));
}

static PyObject *
Corpus_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    PyObject *documents;
    Py_ssize_t max_seq_length, max_predictions_per_seq, vocab_size;
    double masked_lm_prob, short_seq_prob;
    int do_whole_word_mask, cls_id, sep_id, mask_id;
    Py_buffer is_continuation;
    if (!PyArg_ParseTuple(args, "Onnddpiiiny*:Corpus", &documents, &max_seq_length, &max_predictions_per_seq,
                          &masked_lm_prob, &short_seq_prob, &do_whole_word_mask, &cls_id, &sep_id, &mask_id,
                          &vocab_size, &is_continuation))
        return NULL;
    CorpusObject *self = NULL;
    if (max_seq_length < 5 || max_predictions_per_seq < 1 || vocab_size < 1) {
        PyErr_SetString(PyExc_ValueError, "Corpus(): expected max_seq_length >= 5, max_predictions_per_seq >= 1, "
                                          "vocab_size >= 1");
        goto fail;
    }
    if (do_whole_word_mask && is_continuation.len < vocab_size) {
        PyErr_SetString(PyExc_ValueError, "Corpus(): is_continuation needs one flag per vocabulary id");
        goto fail;
    }
    self = (CorpusObject *)type->tp_alloc(type, 0);
    if (self == NULL)
        goto fail;
    self->max_seq_length = max_seq_length;
    self->max_predictions_per_seq = max_predictions_per_seq;
    self->masked_lm_prob = masked_lm_prob;
    self->short_seq_prob = short_seq_prob;
    self->do_whole_word_mask = do_whole_word_mask;
    self->cls_id = cls_id;
    self->sep_id = sep_id;
    self->mask_id = mask_id;
    self->vocab_size = vocab_size;
    self->is_continuation = PyMem_Malloc(is_continuation.len ? is_continuation.len : 1);
    if (self->is_continuation == NULL) {
        PyErr_NoMemory();
        goto fail;
    }
    memcpy(self->is_continuation, is_continuation.buf, is_continuation.len);
    if (pack_documents(self, documents) < 0)
        goto fail;
    Py_ssize_t n = max_seq_length;
    self->input = PyMem_Malloc(sizeof(int32_t) * n);
    self->output = PyMem_Malloc(sizeof(int32_t) * n);
    self->candidates = PyMem_Malloc(sizeof(Py_ssize_t) * n);
    self->group_start = PyMem_Malloc(sizeof(Py_ssize_t) * n);
    self->group_length = PyMem_Malloc(sizeof(Py_ssize_t) * n);
    self->chosen = PyMem_Malloc(sizeof(Py_ssize_t) * n);
    self->masked_values = PyMem_Malloc(sizeof(int32_t) * 2 * max_predictions_per_seq);
    self->example = PyMem_Malloc(max_example_size(max_seq_length, max_predictions_per_seq));
    if (!self->input || !self->output || !self->candidates || !self->group_start || !self->group_length ||
        !self->chosen || !self->masked_values || !self->example) {
        PyErr_NoMemory();
        goto fail;
    }
    PyBuffer_Release(&is_continuation);
    return (PyObject *)self;
fail:
    PyBuffer_Release(&is_continuation);
    Py_XDECREF(self);
    return NULL;
}

static int
compare_sizes(const void *a, const void *b)
{
    Py_ssize_t x = *(const Py_ssize_t *)a, y = *(const Py_ssize_t *)b;
    return (x > y) - (x < y);
}

/* instances.create_masked_lm_predictions on self->input[0:n] into self->output; the masked
   positions, ascending, in self->chosen. Returns their number. */
static Py_ssize_t
mask_tokens(CorpusObject *self, TwisterObject *twister, Py_ssize_t n)
{
    const int32_t *tokens = self->input;
    int32_t *output = self->output;
    Py_ssize_t *candidates = self->candidates, *chosen = self->chosen;
    Py_ssize_t rounded = (Py_ssize_t)nearbyint((double)n * self->masked_lm_prob); /* round(): half to even */
    Py_ssize_t num_to_predict = rounded > 1 ? rounded : 1;
    if (num_to_predict > self->max_predictions_per_seq)
        num_to_predict = self->max_predictions_per_seq;
    memcpy(output, tokens, sizeof(int32_t) * n);

    if (!self->do_whole_word_mask) {
        Py_ssize_t num_candidates = 0;
        for (Py_ssize_t i = 0; i < n; i++)
            if (tokens[i] != self->cls_id && tokens[i] != self->sep_id)
                candidates[num_candidates++] = i;
        shuffle_sizes(twister, candidates, num_candidates);
        Py_ssize_t keep = num_to_predict < num_candidates ? num_to_predict : num_candidates;
        for (Py_ssize_t c = 0; c < keep; c++) {
            Py_ssize_t index = candidates[c];
            if (draw_random(twister) < MASK_PROB)
                output[index] = self->mask_id;
            else if (draw_random(twister) < KEEP_PROB_GIVEN_NOT_MASK)
                ;
            else
                output[index] = (int32_t)draw_below(twister, (uint64_t)self->vocab_size);
            chosen[c] = index;
        }
        qsort(chosen, keep, sizeof(Py_ssize_t), compare_sizes);
        return keep;
    }

    /* Whole words: runs of positions, each "##" piece joining the word before
       it unless [CLS] or [SEP] came between. Group g is positions
       group_start[g] .. group_start[g] + group_length[g] - 1. */
    Py_ssize_t num_groups = 0;
    int word_may_continue = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (tokens[i] == self->cls_id || tokens[i] == self->sep_id) {
            word_may_continue = 0;
            continue;
        }
        if (word_may_continue && self->is_continuation[tokens[i]]) {
            self->group_length[num_groups - 1]++;
        } else {
            self->group_start[num_groups] = i;
            self->group_length[num_groups] = 1;
            num_groups++;
        }
        word_may_continue = 1;
    }
    for (Py_ssize_t g = 0; g < num_groups; g++)
        candidates[g] = g;
    shuffle_sizes(twister, candidates, num_groups);
    Py_ssize_t num_masked = 0;
    for (Py_ssize_t c = 0; c < num_groups; c++) {
        if (num_masked >= num_to_predict)
            break;
        Py_ssize_t start = self->group_start[candidates[c]], length = self->group_length[candidates[c]];
        if (num_masked + length > num_to_predict)
            continue;
        int replacement; /* 0 mask, 1 keep, 2 random: one decision per word */
        if (draw_random(twister) < MASK_PROB)
            replacement = 0;
        else if (draw_random(twister) < KEEP_PROB_GIVEN_NOT_MASK)
            replacement = 1;
        else
            replacement = 2;
        for (Py_ssize_t index = start; index < start + length; index++) {
            if (replacement == 0)
                output[index] = self->mask_id;
            else if (replacement == 2)
                output[index] = (int32_t)draw_below(twister, (uint64_t)self->vocab_size);
            chosen[num_masked++] = index;
        }
    }
    qsort(chosen, num_masked, sizeof(Py_ssize_t), compare_sizes);
    return num_masked;
}

/* Append an instance's shape (four native ints) to the bytearray `shapes`. */
static int
append_shape(PyObject *shapes, Py_ssize_t n, Py_ssize_t num_masked, int is_random_next, Py_ssize_t num_truncated)
{
    int shape[4] = {(int)n, (int)num_masked, is_random_next, (int)num_truncated};
    Py_ssize_t size = PyByteArray_GET_SIZE(shapes);
    if (PyByteArray_Resize(shapes, size + (Py_ssize_t)sizeof shape) < 0)
        return -1;
    memcpy(PyByteArray_AS_STRING(shapes) + size, shape, sizeof shape);
    return 0;
}

/* One pass of create_instances_from_document, as serialised Examples. */
static PyObject *
Corpus_document_examples(CorpusObject *self, PyObject *args)
{
    TwisterObject *twister;
    Py_ssize_t document_index;
    PyObject *shapes;
    if (!PyArg_ParseTuple(args, "O!nO!", &TwisterType, &twister, &document_index, &PyByteArray_Type, &shapes))
        return NULL;
    if (document_index < 0 || document_index >= self->num_documents) {
        PyErr_Format(PyExc_IndexError, "document_examples(): document %zd of %zd", document_index,
                     self->num_documents);
        return NULL;
    }
    const int32_t *tokens = self->tokens;
    const Py_ssize_t *sentence_start = self->sentence_start;
    const Py_ssize_t max_num_tokens = self->max_seq_length - 3; /* [CLS], [SEP], [SEP] */

    Py_ssize_t target_seq_length = max_num_tokens;
    if (draw_random(twister) < self->short_seq_prob)
        target_seq_length = 2 + (Py_ssize_t)draw_below(twister, (uint64_t)(max_num_tokens - 1));

    PyObject *instances = PyList_New(0);
    if (instances == NULL)
        return NULL;
    /* The chunk is always the sentences chunk_first .. i of the document,
       which lie back to back in tokens: segments are spans. */
    const Py_ssize_t last = self->document_start[document_index + 1] - 1;
    Py_ssize_t i = self->document_start[document_index];
    Py_ssize_t chunk_first = i, current_length = 0;
    while (i <= last) {
        current_length += sentence_start[i + 1] - sentence_start[i];
        if (i == last || current_length >= target_seq_length) {
            Py_ssize_t chunk_size = i - chunk_first + 1;
            Py_ssize_t a_end = 1;
            if (chunk_size >= 2)
                a_end = 1 + (Py_ssize_t)draw_below(twister, (uint64_t)(chunk_size - 1));
            const int32_t *a = tokens + sentence_start[chunk_first];
            Py_ssize_t a_length = sentence_start[chunk_first + a_end] - sentence_start[chunk_first];
            const int32_t *b;
            Py_ssize_t b_length = 0;
            int is_random_next;
            if (chunk_size == 1 || draw_random(twister) < 0.5) {
                is_random_next = 1;
                Py_ssize_t target_b_length = target_seq_length - a_length;
                Py_ssize_t random_document = 0;
                for (int tries = 0; tries < 10; tries++) {
                    random_document = (Py_ssize_t)draw_below(twister, (uint64_t)self->num_documents);
                    if (random_document != document_index)
                        break;
                }
                Py_ssize_t first = self->document_start[random_document];
                Py_ssize_t end = self->document_start[random_document + 1];
                Py_ssize_t j = first + (Py_ssize_t)draw_below(twister, (uint64_t)(end - first));
                b = tokens + sentence_start[j];
                for (; j < end; j++) {
                    b_length += sentence_start[j + 1] - sentence_start[j];
                    if (b_length >= target_b_length)
                        break;
                }
                /* The chunk's sentences after A start the next chunk. */
                i -= chunk_size - a_end;
            } else {
                is_random_next = 0;
                b = tokens + sentence_start[chunk_first + a_end];
                b_length = sentence_start[i + 1] - sentence_start[chunk_first + a_end];
            }
            /* truncate_seq_pair: cut the longer (B on a tie), front or back. */
            Py_ssize_t a_start = 0, a_stop = a_length, b_start = 0, b_stop = b_length, num_truncated = 0;
            while ((a_stop - a_start) + (b_stop - b_start) > max_num_tokens) {
                int cut_a = (a_stop - a_start) > (b_stop - b_start);
                int from_front = draw_random(twister) < 0.5;
                if (cut_a) {
                    if (from_front)
                        a_start++;
                    else
                        a_stop--;
                } else if (from_front) {
                    b_start++;
                } else {
                    b_stop--;
                }
                num_truncated++;
            }
            a_length = a_stop - a_start;
            b_length = b_stop - b_start;
            if (a_length == 0 || b_length == 0) {
                PyErr_SetString(PyExc_RuntimeError, "document_examples(): an empty segment (an empty sentence?)");
                Py_DECREF(instances);
                return NULL;
            }
            int32_t *input = self->input;
            Py_ssize_t n = 0;
            input[n++] = self->cls_id;
            memcpy(input + n, a + a_start, sizeof(int32_t) * a_length);
            n += a_length;
            input[n++] = self->sep_id;
            memcpy(input + n, b + b_start, sizeof(int32_t) * b_length);
            n += b_length;
            input[n++] = self->sep_id;

            Py_ssize_t num_masked = mask_tokens(self, twister, n);
            if (append_shape(shapes, n, num_masked, is_random_next, num_truncated) < 0) {
                Py_DECREF(instances);
                return NULL;
            }
            PyObject *instance = serialize_instance(self, n, a_length + 2, num_masked, is_random_next);
            if (instance == NULL || PyList_Append(instances, instance) < 0) {
                Py_XDECREF(instance);
                Py_DECREF(instances);
                return NULL;
            }
            Py_DECREF(instance);
            chunk_first = i + 1;
            current_length = 0;
        }
        i++;
    }
    return instances;
}

static PyMethodDef Corpus_methods[] = {
    {"document_examples", (PyCFunction)Corpus_document_examples, METH_VARARGS,
     "document_examples(twister, index, shapes): the serialised Examples of one document pass."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject CorpusType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "bert_pretraining._fast_instances.Corpus",
    .tp_basicsize = sizeof(CorpusObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Documents as flat token ids, with the instance options.",
    .tp_new = Corpus_new,
    .tp_dealloc = (destructor)Corpus_dealloc,
    .tp_methods = Corpus_methods,
};

static struct PyModuleDef fast_instances_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "bert_pretraining._fast_instances",
    .m_doc = "The records stage's accelerator: instances.py's algorithm and the Example bytes, in C.",
    .m_size = -1,
};

PyMODINIT_FUNC
PyInit__fast_instances(void)
{
    if (PyType_Ready(&TwisterType) < 0 || PyType_Ready(&CorpusType) < 0)
        return NULL;
    PyObject *module = PyModule_Create(&fast_instances_module);
    if (module == NULL)
        return NULL;
    Py_INCREF(&TwisterType);
    Py_INCREF(&CorpusType);
    if (PyModule_AddObject(module, "Twister", (PyObject *)&TwisterType) < 0 ||
        PyModule_AddObject(module, "Corpus", (PyObject *)&CorpusType) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
