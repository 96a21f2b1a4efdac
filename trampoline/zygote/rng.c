/*
 * rng.c - every child draws its own random numbers, without running Python.
 *
 * `random` and `numpy.random` keep their generator state in memory that
 * every child inherits: left alone, all children would draw the zygote's
 * numbers. Python's fork hooks reseed `random` (not numpy), but running
 * Python in each child or zygote copies a few hundred shared pages, which on
 * this kind of machine costs more than the rest of the child's setup.
 *
 * So the mother finds both generators' state arrays once, and checks their
 * layout against what the modules themselves report: only a layout that
 * matches word for word is written to. A child then fills each state with
 * bytes from the kernel and marks it used up, so the next draw regenerates
 * from it: the same thing `setstate` with a random key does, in two pages.
 * A generator whose layout does not match is reseeded through Python.
 */
#include "rng.h"
#include "runner.h"
#include "trampoline.h"

#include <string.h>
#include <sys/random.h>

#define MT_WORDS 624

/*
 * CPython's _random.Random object (Modules/_randommodule.c): PyObject_HEAD,
 * int index, uint32_t state[624], the same in 3.11, 3.12 and 3.13 (3.12's
 * immortal objects and 3.13's module state changed nothing here). Other
 * versions were never checked: there, `random` is reseeded through Python
 * (rng_prepare says why, once). Even on a checked version the layout is
 * only trusted after it matched the object's own getstate() word for word.
 */
#if PY_VERSION_HEX >= 0x030B0000 && PY_VERSION_HEX < 0x030E0000
#define RANDOM_LAYOUT_CHECKED 1
#else
#define RANDOM_LAYOUT_CHECKED 0
#endif
typedef struct py_random {
    PyObject_HEAD int index;
    uint32_t state[MT_WORDS];
} py_random;

/* numpy's bitgen_t and mt19937_state (numpy/random/bitgen.h, mt19937.h). */
typedef struct np_bitgen {
    void *state;
} np_bitgen;
typedef struct np_mt19937 {
    uint32_t key[MT_WORDS];
    int pos;
} np_mt19937;

/* random._inst matches its own getstate(): (3, (624 words..., index), gauss). */
static py_random *find_random(void)
{
    if (!RANDOM_LAYOUT_CHECKED) return NULL;
    py_random *found = NULL;
    PyObject *mod = runner_loaded_module("random");
    PyObject *inst = mod ? PyObject_GetAttrString(mod, "_inst") : NULL;
    /* Only a _random.Random at least as large as its C struct is read. */
    PyObject *cmod = runner_loaded_module("_random");
    PyObject *ctype = cmod ? PyObject_GetAttrString(cmod, "Random") : NULL;
    Py_XDECREF(cmod);
    bool typed = inst && ctype && PyType_Check(ctype) &&
                 PyObject_TypeCheck(inst, (PyTypeObject *)ctype) &&
                 Py_TYPE(inst)->tp_basicsize >= (Py_ssize_t)sizeof(py_random);
    Py_XDECREF(ctype);
    if (!typed) {
        Py_XDECREF(inst);
        Py_XDECREF(mod);
        PyErr_Clear();
        return NULL;
    }
    /* A fresh seed also clears a cached gauss value every child would
     * otherwise return first. */
    PyObject *r = inst ? PyObject_CallMethod(inst, "seed", NULL) : NULL;
    Py_XDECREF(r);
    PyObject *st = r ? PyObject_CallMethod(inst, "getstate", NULL) : NULL;
    PyObject *words =
        st && PyTuple_Check(st) && PyTuple_GET_SIZE(st) == 3 ? PyTuple_GET_ITEM(st, 1) : NULL;
    if (words && PyTuple_Check(words) && PyTuple_GET_SIZE(words) == MT_WORDS + 1) {
        py_random *obj = (py_random *)inst;
        bool same = PyLong_AsLong(PyTuple_GET_ITEM(words, MT_WORDS)) == obj->index;
        for (int i = 0; same && i < MT_WORDS; i++)
            same = PyLong_AsUnsignedLong(PyTuple_GET_ITEM(words, i)) == obj->state[i];
        if (same) found = obj;
    }
    Py_XDECREF(st);
    Py_XDECREF(inst);
    Py_XDECREF(mod);
    PyErr_Clear();
    return found;
}

/* numpy.random.mtrand._rand's MT19937 matches its own state['state']. */
static np_mt19937 *find_numpy(void)
{
    np_mt19937 *found = NULL;
    PyObject *mod = runner_loaded_module("numpy.random.mtrand");
    PyObject *rs = mod ? PyObject_GetAttrString(mod, "_rand") : NULL;
    PyObject *r = rs ? PyObject_CallMethod(rs, "seed", NULL) : NULL; /* clears a cached gauss */
    Py_XDECREF(r);
    PyObject *bg = r ? PyObject_GetAttrString(rs, "_bit_generator") : NULL;
    PyObject *cap = bg ? PyObject_GetAttrString(bg, "capsule") : NULL;
    PyObject *st = bg ? PyObject_GetAttrString(bg, "state") : NULL;
    PyObject *kind = st && PyDict_Check(st) ? PyDict_GetItemString(st, "bit_generator") : NULL;
    bool mt =
        kind && PyUnicode_Check(kind) && PyUnicode_CompareWithASCIIString(kind, "MT19937") == 0;
    PyObject *inner = mt ? PyDict_GetItemString(st, "state") : NULL;
    PyObject *key = inner && PyDict_Check(inner) ? PyDict_GetItemString(inner, "key") : NULL;
    PyObject *pos = inner && PyDict_Check(inner) ? PyDict_GetItemString(inner, "pos") : NULL;
    np_bitgen *gen =
        cap && PyCapsule_CheckExact(cap) ? PyCapsule_GetPointer(cap, "BitGenerator") : NULL;
    Py_buffer view;
    if (gen && gen->state && key && pos &&
        PyObject_GetBuffer(key, &view, PyBUF_C_CONTIGUOUS) == 0) {
        np_mt19937 *mt = gen->state;
        if (view.len == (Py_ssize_t)sizeof mt->key &&
            memcmp(view.buf, mt->key, sizeof mt->key) == 0 && PyLong_AsLong(pos) == mt->pos)
            found = mt;
        PyBuffer_Release(&view);
    }
    Py_XDECREF(st);
    Py_XDECREF(cap);
    Py_XDECREF(bg);
    Py_XDECREF(rs);
    Py_XDECREF(mod);
    PyErr_Clear();
    return found;
}

static bool module_loaded(const char *name)
{
    PyObject *m = runner_loaded_module(name);
    bool loaded = m != NULL;
    Py_XDECREF(m);
    return loaded;
}

void rng_prepare(rng_state *rng)
{
    memset(rng, 0, sizeof *rng);
    rng->random_state = find_random();
    rng->numpy_state = find_numpy();
    /* A module imported later seeds itself from the kernel at import. */
    bool random_slow = module_loaded("random") && !rng->random_state;
    bool numpy_slow = module_loaded("numpy.random.mtrand") && !rng->numpy_state;
    rng->python_fallback = random_slow || numpy_slow;
    /* Once, at start: every child then runs Python to reseed (it works,
     * and costs a few hundred copied pages per child). */
    if (random_slow)
        tr_log("random's generator state is not laid out as on Python 3.11-3.13 (this is %s): "
               "each child reseeds it through Python",
               PY_VERSION);
    if (numpy_slow)
        tr_log("numpy's global generator is not an MT19937 laid out as expected: each child "
               "reseeds it through Python");
}

/* Fill buf from the kernel; false if it would not give enough. */
static bool fill(void *buf, size_t len)
{
    size_t off = 0;
    while (off < len) {
        ssize_t n = getrandom((char *)buf + off, len - off, 0);
        if (n <= 0) return false;
        off += (size_t)n;
    }
    return true;
}

bool rng_reseed(const rng_state *rng)
{
    bool ok = true;
    if (rng->random_state) {
        py_random *r = rng->random_state;
        ok = fill(r->state, sizeof r->state) && ok;
        r->index = MT_WORDS; /* the next draw regenerates from the new state */
    }
    if (rng->numpy_state) {
        np_mt19937 *mt = rng->numpy_state;
        ok = fill(mt->key, sizeof mt->key) && ok;
        mt->pos = MT_WORDS;
    }
    return ok && !rng->python_fallback;
}
