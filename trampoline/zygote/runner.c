#include "runner.h"

#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char runner_source[] =
    "import sys, os, traceback, importlib.abc\n"
    "\n"
    "class _Forbidden(importlib.abc.MetaPathFinder):\n"
    "    def __init__(self, names):\n"
    "        self.names = names\n"
    "    def hit(self, fullname):\n"
    "        return any(fullname == n or fullname.startswith(n + '.') for n in self.names)\n"
    "    def find_spec(self, fullname, path=None, target=None):\n"
    "        if self.hit(fullname):\n"
    "            raise ImportError('import of %r is forbidden' % fullname, name=fullname)\n"
    "        return None\n"
    "\n"
    "def prepare(has_seed, seed, forbidden):\n"
    "    finder = _Forbidden(tuple(forbidden))\n"
    "    if forbidden:\n"
    "        for name in list(sys.modules):\n"
    "            if finder.hit(name):\n"
    "                del sys.modules[name]\n"
    "        sys.meta_path.insert(0, finder)\n"
    "    if has_seed:\n"
    "        if not finder.hit('random'):\n"
    "            import random\n"
    "            random.seed(seed)\n"
    "        np = sys.modules.get('numpy')\n"
    "        if np is not None:\n"
    "            np.random.seed(seed & 0xffffffff)\n"
    "\n"
    "def describe(e):\n"
    "    tb = e.__traceback__\n"
    "    while tb is not None and tb.tb_frame.f_code.co_filename == __file__:\n"
    "        tb = tb.tb_next\n"
    "    text = ''.join(traceback.format_exception(type(e), e, tb))\n"
    "    return (type(e).__name__, str(e), text)\n"
    "\n"
    "def reseed():\n"
    "    r = sys.modules.get('random')\n"
    "    if r is not None:\n"
    "        r.seed()\n"
    "    np = sys.modules.get('numpy.random')\n"
    "    if np is not None:\n"
    "        np.seed()\n";

static PyObject *fn_prepare, *fn_describe, *fn_reseed;

int runner_init(rb_err *err)
{
    PyObject *code = Py_CompileString(runner_source, "<rebound-runner>", Py_file_input);
    PyObject *mod =
        code ? PyImport_ExecCodeModuleEx("_rebound_runner", code, "<rebound-runner>") : NULL;
    Py_XDECREF(code);
    if (!mod) {
        PyErr_Print();
        return rb_err_set(err, "the runner helper failed to compile");
    }
    fn_prepare = PyObject_GetAttrString(mod, "prepare");
    fn_describe = PyObject_GetAttrString(mod, "describe");
    fn_reseed = PyObject_GetAttrString(mod, "reseed");
    Py_DECREF(mod);
    if (!fn_prepare || !fn_describe || !fn_reseed || call_init() != 0)
        return rb_err_set(err, "the runner helper is incomplete");
    return 0;
}

PyObject *runner_loaded_module(const char *name)
{
    PyObject *n = PyUnicode_FromString(name);
    PyObject *m = n ? PyImport_GetModule(n) : NULL;
    Py_XDECREF(n);
    PyErr_Clear();
    return m;
}

/*
 * Set in C, without os.environ.__setitem__'s Python frames: the process
 * environment and os.environ's own dict (bytes to bytes on POSIX).
 */
int runner_setenv(const char *name, const char *value)
{
    if (setenv(name, value, 1) != 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    PyObject *os = runner_loaded_module("os");
    PyObject *environ = os ? PyObject_GetAttrString(os, "environ") : NULL;
    PyObject *data = environ ? PyObject_GetAttrString(environ, "_data") : NULL;
    PyObject *key = PyBytes_FromString(name), *val = PyBytes_FromString(value);
    int rc = os ? -1 : 0; /* no os module: nothing in Python to update */
    if (data && PyDict_Check(data) && key && val) {
        rc = PyDict_SetItem(data, key, val);
    } else if (environ) {
        /* Not the os.environ we know: through its own __setitem__. */
        PyErr_Clear();
        PyObject *k = PyUnicode_FromString(name), *s = PyUnicode_DecodeFSDefault(value);
        rc = k && s ? PyObject_SetItem(environ, k, s) : -1;
        Py_XDECREF(k);
        Py_XDECREF(s);
    }
    Py_XDECREF(key);
    Py_XDECREF(val);
    Py_XDECREF(data);
    Py_XDECREF(environ);
    Py_XDECREF(os);
    return rc;
}

int runner_job_environment(const char *tmpdir, const char *mplconfig)
{
    if (runner_setenv("TMPDIR", tmpdir) != 0 || runner_setenv("HOME", tmpdir) != 0) return -1;
    if (mplconfig && runner_setenv("MPLCONFIGDIR", mplconfig) != 0) return -1;
    /* tempfile reads TMPDIR once; if it is loaded already, tell it too. */
    PyObject *tf = runner_loaded_module("tempfile");
    int rc = 0;
    if (tf) {
        PyObject *s = PyUnicode_DecodeFSDefault(tmpdir);
        rc = s ? PyObject_SetAttrString(tf, "tempdir", s) : -1;
        Py_XDECREF(s);
        Py_DECREF(tf);
    }
    return rc;
}

int runner_prepare(const rb_job *job)
{
    if (!job->has_seed && job->nforbidden == 0) return 0; /* the helper has nothing to do */
    PyObject *forbidden = PyList_New(0);
    if (!forbidden) return -1;
    for (size_t i = 0; i < job->nforbidden; i++) {
        PyObject *s = PyUnicode_FromString(job->forbidden_modules[i]);
        if (!s || PyList_Append(forbidden, s) != 0) {
            Py_XDECREF(s);
            Py_DECREF(forbidden);
            return -1;
        }
        Py_DECREF(s);
    }
    PyObject *r = PyObject_CallFunction(fn_prepare, "OLO", job->has_seed ? Py_True : Py_False,
                                        (long long)job->seed, forbidden);
    Py_DECREF(forbidden);
    if (!r) return -1;
    Py_DECREF(r);
    return 0;
}

static char *utf8_of(PyObject *o, const char *fallback)
{
    if (o && PyUnicode_Check(o)) {
        PyObject *b = PyUnicode_AsEncodedString(o, "utf-8", "backslashreplace");
        if (b) {
            char *s = strdup(PyBytes_AS_STRING(b));
            Py_DECREF(b);
            if (s) return s;
        }
        PyErr_Clear();
    }
    return strdup(fallback);
}

void runner_take_exception(char **type, char **message, char **traceback)
{
    PyObject *etype, *exc, *etb;
    PyErr_Fetch(&etype, &exc, &etb);
    PyErr_NormalizeException(&etype, &exc, &etb);
    if (exc && etb) PyException_SetTraceback(exc, etb);
    Py_XDECREF(etype);
    Py_XDECREF(etb);
    PyObject *d = exc ? PyObject_CallOneArg(fn_describe, exc) : NULL;
    if (d && PyTuple_Check(d) && PyTuple_GET_SIZE(d) == 3) {
        *type = utf8_of(PyTuple_GET_ITEM(d, 0), "Exception");
        *message = utf8_of(PyTuple_GET_ITEM(d, 1), "");
        *traceback = utf8_of(PyTuple_GET_ITEM(d, 2), "");
    } else {
        PyErr_Clear();
        *type = strdup(exc ? Py_TYPE(exc)->tp_name : "Exception");
        *message = strdup("(the exception could not be described)");
        *traceback = strdup("");
    }
    Py_XDECREF(d);
    Py_XDECREF(exc);
}

const char *const runner_warm_source = "import os\n"
                                       "def f(*a, **k):\n"
                                       "    return [1, 2.0, 'x', None]\n";

void runner_reseed(void)
{
    PyObject *r = PyObject_CallNoArgs(fn_reseed);
    if (!r) PyErr_Clear();
    Py_XDECREF(r);
}

void runner_flush(void)
{
    /* Whatever a job put there (a failing flush is the job's business). */
    static const char *const streams[] = {"stdout", "stderr", "__stdout__", "__stderr__"};
    for (size_t i = 0; i < sizeof streams / sizeof streams[0]; i++) {
        PyObject *s = PySys_GetObject(streams[i]); /* borrowed */
        PyObject *r = s && s != Py_None ? PyObject_CallMethod(s, "flush", NULL) : NULL;
        Py_XDECREF(r);
        PyErr_Clear();
    }
    fflush(NULL);
}

void runner_warm(const char *warm_file)
{
    static const rb_job none = {0};
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", warm_file);
    dirname(dir);
    if (runner_prepare(&none) == 0) {
        PyObject *paths = Py_BuildValue("[s]", dir);
        PyObject *args = Py_BuildValue("(i)", 1);
        PyObject *kwargs = Py_BuildValue("{s:i}", "a", 1);
        PyObject *r = paths && args && kwargs
                          ? call_run(warm_file, NULL, 0, "f", dir, paths, args, kwargs)
                          : NULL;
        Py_XDECREF(r);
        PyErr_Clear();
        /* Nothing of the warm-up stays for the job to see. */
        PyObject *sys_path = PySys_GetObject("path");
        Py_ssize_t at =
            paths && sys_path ? PySequence_Index(sys_path, PyList_GET_ITEM(paths, 0)) : -1;
        if (at >= 0) PySequence_DelItem(sys_path, at);
        Py_XDECREF(paths);
        Py_XDECREF(args);
        Py_XDECREF(kwargs);
        call_forget_modules();
    }
    PyErr_Clear();
    runner_flush();
}

size_t runner_import_dirs(char ***dirs)
{
    *dirs = NULL;
    PyObject *path = PySys_GetObject("path"); /* borrowed */
    Py_ssize_t n = path && PyList_Check(path) ? PyList_GET_SIZE(path) : 0;
    char **out = calloc((size_t)n + 1, sizeof *out);
    size_t count = 0;
    for (Py_ssize_t i = 0; out && i < n; i++) {
        PyObject *item = PyList_GET_ITEM(path, i);
        PyObject *b = PyUnicode_Check(item) ? PyUnicode_EncodeFSDefault(item) : NULL;
        const char *s = b ? PyBytes_AS_STRING(b) : NULL;
        if (s && s[0] == '/' && (out[count] = strdup(s)) != NULL) count++;
        Py_XDECREF(b);
        PyErr_Clear();
    }
    *dirs = out;
    return out ? count : 0;
}
