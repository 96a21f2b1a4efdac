#include "pyconv.h"

#include "rebound_proto.h"

static PyObject *np_ndarray; /* borrowed from numpy's module, or NULL */
static PyObject *np_generic;

void pyconv_init(void)
{
    if (np_ndarray) return; /* found in the mother already */
    PyObject *np = PyDict_GetItemString(PyImport_GetModuleDict(), "numpy");
    if (!np) return;
    np_ndarray = PyObject_GetAttrString(np, "ndarray");
    np_generic = PyObject_GetAttrString(np, "generic");
    if (!np_ndarray || !np_generic) PyErr_Clear();
}

PyObject *pyconv_from_msgpack(const msgpack_object *o)
{
    switch (o->type) {
    case MSGPACK_OBJECT_NIL:
        Py_RETURN_NONE;
    case MSGPACK_OBJECT_BOOLEAN:
        return PyBool_FromLong(o->via.boolean);
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        return PyLong_FromUnsignedLongLong(o->via.u64);
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        return PyLong_FromLongLong(o->via.i64);
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        return PyFloat_FromDouble(o->via.f64);
    case MSGPACK_OBJECT_STR:
        return PyUnicode_DecodeUTF8(o->via.str.ptr, o->via.str.size, "strict");
    case MSGPACK_OBJECT_BIN:
        return PyBytes_FromStringAndSize(o->via.bin.ptr, o->via.bin.size);
    case MSGPACK_OBJECT_ARRAY: {
        PyObject *list = PyList_New(o->via.array.size);
        if (!list) return NULL;
        for (uint32_t i = 0; i < o->via.array.size; i++) {
            PyObject *item = pyconv_from_msgpack(&o->via.array.ptr[i]);
            if (!item) {
                Py_DECREF(list);
                return NULL;
            }
            PyList_SET_ITEM(list, i, item);
        }
        return list;
    }
    case MSGPACK_OBJECT_MAP: {
        PyObject *dict = PyDict_New();
        if (!dict) return NULL;
        for (uint32_t i = 0; i < o->via.map.size; i++) {
            PyObject *k = pyconv_from_msgpack(&o->via.map.ptr[i].key);
            PyObject *v = k ? pyconv_from_msgpack(&o->via.map.ptr[i].val) : NULL;
            int rc = v ? PyDict_SetItem(dict, k, v) : -1;
            Py_XDECREF(k);
            Py_XDECREF(v);
            if (rc != 0) {
                Py_DECREF(dict);
                return NULL;
            }
        }
        return dict;
    }
    default:
        PyErr_Format(PyExc_TypeError, "msgpack type %d has no Python value", (int)o->type);
        return NULL;
    }
}

static int pack_int(msgpack_packer *pk, PyObject *obj)
{
    int overflow = 0;
    long long v = PyLong_AsLongLongAndOverflow(obj, &overflow);
    if (v == -1 && PyErr_Occurred()) return -1;
    if (!overflow) return msgpack_pack_int64(pk, v);
    if (overflow > 0) {
        unsigned long long u = PyLong_AsUnsignedLongLong(obj);
        if (!PyErr_Occurred()) return msgpack_pack_uint64(pk, u);
        PyErr_Clear();
    }
    PyErr_SetString(PyExc_OverflowError, "int out of the msgpack range (int64/uint64)");
    return -1;
}

static int pack_str(msgpack_packer *pk, PyObject *obj)
{
    Py_ssize_t n;
    const char *s = PyUnicode_AsUTF8AndSize(obj, &n);
    if (!s) return -1;
    msgpack_pack_str(pk, (size_t)n);
    return msgpack_pack_str_body(pk, s, (size_t)n);
}

static int is_key_type(PyObject *k)
{
    return k == Py_None || PyBool_Check(k) || PyLong_Check(k) || PyFloat_Check(k) ||
           PyUnicode_Check(k) || PyBytes_Check(k);
}

static int pack_any(msgpack_packer *pk, PyObject *obj, int depth);

static int pack_dict(msgpack_packer *pk, PyObject *obj, int depth)
{
    msgpack_pack_map(pk, (size_t)PyDict_Size(obj));
    Py_ssize_t pos = 0;
    PyObject *k, *v;
    while (PyDict_Next(obj, &pos, &k, &v)) {
        if (!is_key_type(k)) {
            PyErr_Format(PyExc_TypeError, "dict key of type %.100s cannot be converted to msgpack",
                         Py_TYPE(k)->tp_name);
            return -1;
        }
        if (pack_any(pk, k, depth + 1) != 0 || pack_any(pk, v, depth + 1) != 0) return -1;
    }
    return 0;
}

static int pack_seq(msgpack_packer *pk, PyObject *obj, int depth)
{
    PyObject *fast = PySequence_Fast(obj, "not a sequence");
    if (!fast) return -1;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(fast);
    msgpack_pack_array(pk, (size_t)n);
    int rc = 0;
    for (Py_ssize_t i = 0; i < n && rc == 0; i++)
        rc = pack_any(pk, PySequence_Fast_GET_ITEM(fast, i), depth + 1);
    Py_DECREF(fast);
    return rc;
}

/* numpy values become their plain Python equivalents first. */
static int pack_via(msgpack_packer *pk, PyObject *obj, const char *method, int depth)
{
    PyObject *plain = PyObject_CallMethod(obj, method, NULL);
    if (!plain) return -1;
    int rc = pack_any(pk, plain, depth);
    Py_DECREF(plain);
    return rc;
}

static int pack_any(msgpack_packer *pk, PyObject *obj, int depth)
{
    if (depth > RB_MAX_DEPTH) {
        PyErr_Format(PyExc_ValueError, "value nested deeper than %d levels", RB_MAX_DEPTH);
        return -1;
    }
    if (obj == Py_None) return msgpack_pack_nil(pk);
    if (PyBool_Check(obj)) return obj == Py_True ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
    if (PyLong_Check(obj)) return pack_int(pk, obj);
    if (PyFloat_Check(obj)) return msgpack_pack_double(pk, PyFloat_AS_DOUBLE(obj));
    if (PyUnicode_Check(obj)) return pack_str(pk, obj);
    if (PyBytes_Check(obj)) {
        msgpack_pack_bin(pk, (size_t)PyBytes_GET_SIZE(obj));
        return msgpack_pack_bin_body(pk, PyBytes_AS_STRING(obj), (size_t)PyBytes_GET_SIZE(obj));
    }
    if (PyByteArray_Check(obj)) {
        msgpack_pack_bin(pk, (size_t)PyByteArray_GET_SIZE(obj));
        return msgpack_pack_bin_body(pk, PyByteArray_AS_STRING(obj),
                                     (size_t)PyByteArray_GET_SIZE(obj));
    }
    if (PyList_Check(obj) || PyTuple_Check(obj)) return pack_seq(pk, obj, depth);
    if (PyDict_Check(obj)) return pack_dict(pk, obj, depth);
    if (np_ndarray && PyObject_TypeCheck(obj, (PyTypeObject *)np_ndarray))
        return pack_via(pk, obj, "tolist", depth);
    if (np_generic && PyObject_TypeCheck(obj, (PyTypeObject *)np_generic))
        return pack_via(pk, obj, "item", depth);
    PyErr_Format(PyExc_TypeError, "cannot convert a value of type %.100s to msgpack",
                 Py_TYPE(obj)->tp_name);
    return -1;
}

int pyconv_to_msgpack(msgpack_packer *pk, PyObject *obj)
{
    return pack_any(pk, obj, 1);
}
