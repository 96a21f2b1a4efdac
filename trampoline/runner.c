#include "runner.h"

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
    "def prepare(tmpdir, has_seed, seed, forbidden):\n"
    "    os.environ['TMPDIR'] = tmpdir\n"
    "    tf = sys.modules.get('tempfile')\n"
    "    if tf is not None:\n"
    "        tf.tempdir = tmpdir\n"
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
    "        np.seed()\n"
    "\n"
    "def flush():\n"
    "    for s in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):\n"
    "        try:\n"
    "            s.flush()\n"
    "        except Exception:\n"
    "            pass\n";

static PyObject *fn_prepare, *fn_describe, *fn_flush, *fn_reseed;

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
    fn_flush = PyObject_GetAttrString(mod, "flush");
    fn_reseed = PyObject_GetAttrString(mod, "reseed");
    Py_DECREF(mod);
    if (!fn_prepare || !fn_describe || !fn_flush || !fn_reseed || runner_call_init() != 0)
        return rb_err_set(err, "the runner helper is incomplete");
    return 0;
}

int runner_prepare(const char *tmpdir, const rb_job *job)
{
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
    PyObject *r =
        PyObject_CallFunction(fn_prepare, "sOLO", tmpdir, job->has_seed ? Py_True : Py_False,
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
    PyObject *r = PyObject_CallNoArgs(fn_flush);
    if (!r) PyErr_Clear();
    Py_XDECREF(r);
    fflush(NULL);
}
