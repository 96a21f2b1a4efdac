/*
 * call.c - loading a job's module and calling its function, in C.
 *
 * What a call does is small: sys.path, the working directory, the module
 * (read, compiled and run once per job), the function. Doing it through
 * the C API rather than a Python helper keeps the child from touching the
 * helper's frames, os.path, io and importlib objects: every object Python
 * touches gets its reference count written, and every page written in a
 * child is a page copied from the zygote. The behaviour is the helper's:
 * the same errors (OSError subclasses for a file that cannot be read,
 * ValueError for a NUL byte, SyntaxError from the compiler), the same
 * module attributes, and tracebacks that start in the job's own code.
 */
#define PY_SSIZE_T_CLEAN /* "y#" takes a Py_ssize_t length */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runner.h"

/* The job's modules: ("f", path) or ("s", source) -> module. One job per
 * child, so it only grows for the job's calls; the warm-up empties it. */
static PyObject *modules;

int call_init(void)
{
    modules = PyDict_New();
    return modules ? 0 : -1;
}

/* Each of paths at the front of sys.path (the first one first), where it is
 * not there already. */
static int add_paths(PyObject *paths)
{
    PyObject *sys_path = PySys_GetObject("path"); /* borrowed */
    if (!sys_path || !PyList_Check(sys_path)) {
        PyErr_SetString(PyExc_RuntimeError, "sys.path is not a list");
        return -1;
    }
    for (Py_ssize_t i = PyList_GET_SIZE(paths) - 1; i >= 0; i--) {
        PyObject *p = PyList_GET_ITEM(paths, i);
        int has = PySequence_Contains(sys_path, p);
        if (has < 0 || (!has && PyList_Insert(sys_path, 0, p) != 0)) return -1;
    }
    return 0;
}

/* Open a module's file: an fd and its identity, or -1 with the OSError
 * open() would raise. flags: 0, or O_NONBLOCK where a FIFO must not block. */
static int open_source(const char *path, int flags, struct stat *sb)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | flags);
    if (fd < 0) {
        PyErr_SetFromErrnoWithFilename(PyExc_OSError, path);
        return -1;
    }
    int bad = fstat(fd, sb) != 0 ? errno : S_ISDIR(sb->st_mode) ? EISDIR : 0;
    if (bad) {
        close(fd);
        errno = bad;
        PyErr_SetFromErrnoWithFilename(PyExc_OSError, path);
        return -1;
    }
    return fd;
}

/* The bytes of the file open on fd (closed here), or NULL with OSError. */
static PyObject *read_source(int fd, const char *path, const struct stat *sb)
{
    size_t cap = (size_t)sb->st_size + 1, len = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (!buf) {
            close(fd);
            return PyErr_NoMemory();
        }
        ssize_t n = read(fd, buf + len, cap - len);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            int saved = errno;
            free(buf);
            close(fd);
            errno = saved;
            return PyErr_SetFromErrnoWithFilename(PyExc_OSError, path);
        }
        if (n == 0) break;
        len += (size_t)n;
        if (len == cap) { /* the file grew: read on */
            char *more = realloc(buf, cap * 2);
            if (!more) free(buf);
            buf = more;
            cap *= 2;
        }
    }
    close(fd);
    PyObject *bytes = PyBytes_FromStringAndSize(buf, (Py_ssize_t)len);
    free(buf);
    return bytes;
}

/* A module's name from its file, as os.path.splitext(os.path.basename()). */
static void module_name(const char *path, char *out, size_t cap)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    snprintf(out, cap, "%s", base);
    const char *stem = out;
    while (*stem == '.')
        stem++; /* leading dots belong to the name */
    char *dot = strrchr(stem, '.');
    if (dot) *dot = '\0';
}

/* Compile a module's text: file bytes honour a coding declaration, source
 * (already text) does not, as with compile(). */
static PyObject *compile_text(const char *text, Py_ssize_t len, const char *filename, bool is_str)
{
    if (memchr(text, '\0', (size_t)len)) {
        PyErr_SetString(PyExc_ValueError, "source code string cannot contain null bytes");
        return NULL;
    }
    PyCompilerFlags flags = {.cf_flags = is_str ? PyCF_IGNORE_COOKIE | PyCF_SOURCE_IS_UTF8 : 0,
                             .cf_feature_version = PY_MINOR_VERSION};
    return Py_CompileStringExFlags(text, filename, Py_file_input, &flags, -1);
}

/*
 * Compiled files, kept by the zygote. When a job starts, its zygote
 * compiles the job's files (compiles, never runs them) before it forks the
 * next spare, so the children that follow inherit the code objects: a
 * question asked again skips compiling its files. A child still opens and
 * reads the file itself (its own permission to read it decides) and uses
 * the inherited code only if the bytes are the ones it was compiled from:
 * a file edited in place, however quickly, is compiled afresh.
 *
 * Only the public API is used (Py_CompileStringExFlags, code objects held
 * by reference), so this is the same on 3.11 to 3.13. Since 3.11 the
 * interpreter specializes a code object's bytecode in place as it runs:
 * the zygote never runs a cached job's code, so what a child specializes
 * goes to its own copy of those pages, and the next child starts from the
 * generic bytecode again.
 */
#define CACHE_SLOTS 64             /* the jobs' files; the warm-up's has a slot of its own */
#define CACHE_MAX_FILE (256 << 10) /* larger files are compiled by each child */

typedef struct cached_code {
    char *path;     /* NULL: a free slot */
    PyObject *text; /* the bytes the code was compiled from */
    PyObject *code;
} cached_code;

static cached_code cache[CACHE_SLOTS + 1]; /* [CACHE_SLOTS]: the warm-up's, never evicted */
static unsigned cache_next;                /* the slot to reuse when all are taken */

static cached_code *cache_find(const char *path)
{
    for (int i = 0; i <= CACHE_SLOTS; i++)
        if (cache[i].path && strcmp(cache[i].path, path) == 0) return &cache[i];
    return NULL;
}

static bool same_bytes(PyObject *a, PyObject *b)
{
    return PyBytes_GET_SIZE(a) == PyBytes_GET_SIZE(b) &&
           memcmp(PyBytes_AS_STRING(a), PyBytes_AS_STRING(b), (size_t)PyBytes_GET_SIZE(a)) == 0;
}

static PyObject *compile_bytes(PyObject *text, const char *path)
{
    return compile_text(PyBytes_AS_STRING(text), PyBytes_GET_SIZE(text), path, false);
}

static void cache_into(const char *path, bool pinned)
{
    struct stat sb;
    int fd = open_source(path, O_NONBLOCK, &sb); /* the zygote must never wait */
    if (fd < 0 || !S_ISREG(sb.st_mode) || sb.st_size > CACHE_MAX_FILE) {
        if (fd >= 0) close(fd);
        PyErr_Clear(); /* the child will say what is wrong */
        return;
    }
    PyObject *text = read_source(fd, path, &sb);
    cached_code *c = cache_find(path);
    if (text && c && same_bytes(c->text, text)) {
        Py_DECREF(text);
        return;
    }
    PyObject *code =
        text && PyBytes_GET_SIZE(text) <= CACHE_MAX_FILE ? compile_bytes(text, path) : NULL;
    char *copy = code ? strdup(path) : NULL;
    if (!copy) {
        Py_XDECREF(code);
        Py_XDECREF(text);
        PyErr_Clear();
        return;
    }
    if (!c) c = pinned ? &cache[CACHE_SLOTS] : &cache[cache_next++ % CACHE_SLOTS];
    free(c->path);
    Py_XDECREF(c->text);
    Py_XDECREF(c->code);
    *c = (cached_code){.path = copy, .text = text, .code = code};
}

void call_cache_file(const char *path)
{
    cache_into(path, false);
}

void call_cache_warm_file(const char *path)
{
    cache_into(path, true);
}

/* The code of a module's file: the zygote's if the file still holds the
 * bytes it was compiled from, otherwise compiled here. New reference, or
 * NULL with the error. */
static PyObject *file_code(const char *path)
{
    struct stat sb;
    int fd = open_source(path, 0, &sb);
    PyObject *text = fd >= 0 ? read_source(fd, path, &sb) : NULL;
    if (!text) return NULL;
    const cached_code *c = cache_find(path);
    PyObject *code =
        c && same_bytes(c->text, text) ? Py_NewRef(c->code) : compile_bytes(text, path);
    Py_DECREF(text);
    return code;
}

/*
 * The job's module in sys.modules under its name, as an import would put
 * it, unless that name is taken (by a library, or by another file of the
 * job with the same name). pickle finds a function through
 * sys.modules[f.__module__]: without this, multiprocessing could not send
 * the job's own functions to its workers.
 */
static int publish_module(const char *name, PyObject *mod)
{
    PyObject *sys_modules = PyImport_GetModuleDict(); /* borrowed */
    PyObject *n = PyUnicode_FromString(name);
    int has = n ? PyDict_Contains(sys_modules, n) : -1;
    int rc = has < 0 ? -1 : has ? 0 : PyDict_SetItem(sys_modules, n, mod);
    Py_XDECREF(n);
    return rc;
}

void call_forget_modules(void)
{
    PyObject *sys_modules = PyImport_GetModuleDict(); /* borrowed */
    PyObject *key, *mod;
    Py_ssize_t pos = 0;
    while (PyDict_Next(modules, &pos, &key, &mod)) {
        PyObject *name = PyModule_GetNameObject(mod);
        if (name && PyDict_GetItemWithError(sys_modules, name) == mod)
            PyDict_DelItem(sys_modules, name);
        Py_XDECREF(name);
        PyErr_Clear();
    }
    PyDict_Clear(modules);
}

/* The job's module for key, loaded and run on first use. New reference. */
static PyObject *load_module(PyObject *key, const char *module_path, const char *source,
                             size_t source_len)
{
    PyObject *mod = PyDict_GetItemWithError(modules, key);
    if (mod) return Py_NewRef(mod);
    if (PyErr_Occurred()) return NULL;

    char name[NAME_MAX + 1] = "__source__";
    const char *filename = "<source>";
    PyObject *code = NULL, *file = NULL;
    if (module_path) {
        module_name(module_path, name, sizeof name);
        filename = module_path;
        code = file_code(module_path);
    } else {
        code = compile_text(source, (Py_ssize_t)source_len, filename, true);
    }
    if (!code) return NULL;

    mod = PyModule_New(name);
    PyObject *globals = mod ? PyModule_GetDict(mod) : NULL; /* borrowed */
    file = PyUnicode_DecodeFSDefault(filename);
    PyObject *ran = NULL;
    /* Cached before it runs, as an import would: a later call of the job
     * sees the module even if running it failed part way. */
    if (globals && file && PyDict_SetItemString(globals, "__file__", file) == 0 &&
        PyDict_SetItemString(globals, "__builtins__", PyEval_GetBuiltins()) == 0 &&
        PyDict_SetItem(modules, key, mod) == 0 && publish_module(name, mod) == 0)
        ran = PyEval_EvalCode(code, globals, globals);
    Py_XDECREF(file);
    Py_DECREF(code);
    if (!ran) {
        Py_XDECREF(mod);
        return NULL;
    }
    Py_DECREF(ran);
    return mod;
}

PyObject *call_run(const char *module_path, const char *source, size_t source_len, const char *fcn,
                   const char *cwd, PyObject *paths, PyObject *args, PyObject *kwargs)
{
    if (add_paths(paths) != 0) return NULL;
    if (chdir(cwd) != 0) return PyErr_SetFromErrnoWithFilename(PyExc_OSError, cwd);

    PyObject *key = module_path ? Py_BuildValue("(sy)", "f", module_path)
                                : Py_BuildValue("(sy#)", "s", source, (Py_ssize_t)source_len);
    PyObject *mod = key ? load_module(key, module_path, source, source_len) : NULL;
    Py_XDECREF(key);
    if (!mod) return NULL;

    PyObject *f = PyDict_GetItemString(PyModule_GetDict(mod), fcn); /* borrowed */
    PyObject *result = NULL;
    if (!f || f == Py_None) { /* as the job's module.get(fcn) would see it */
        result = Py_BuildValue("(OO)", Py_False, Py_None);
    } else {
        /* args is the job's list (return_args reports it after the call):
         * the call gets a tuple of the same objects, as f(*args) would. */
        Py_INCREF(f);
        PyObject *tuple = PySequence_Tuple(args);
        PyObject *val = tuple ? PyObject_Call(f, tuple, kwargs) : NULL;
        Py_XDECREF(tuple);
        Py_DECREF(f);
        if (val) {
            result = PyTuple_Pack(2, Py_True, val);
            Py_DECREF(val);
        }
    }
    Py_DECREF(mod);
    return result;
}
