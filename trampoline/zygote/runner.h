/*
 * runner.h - the Python side of running a call (private).
 *
 * A small helper module, compiled once in the mother and inherited by every
 * child, does what is plainest in Python: seeding, forbidden modules, and
 * formatting tracebacks (runner.c). Loading the job's module and calling
 * its function is done through the C API (call.c, below runner.c: it calls
 * nothing of runner.c). Values cross between C and Python through pyconv.h,
 * never through a serialisation format.
 */
#ifndef REBOUND_RUNNER_H
#define REBOUND_RUNNER_H

#include <Python.h>
#include <stdbool.h>

#include "rebound_proto.h"

/* A module of sys.modules (new reference), or NULL (no exception set) when
 * it is not loaded: never imports. */
PyObject *runner_loaded_module(const char *name);

/* Compile the helper module. Returns 0 or -1 with err. */
int runner_init(rb_err *err);

/* Set an environment variable for this process, os.environ and whatever
 * it starts. Returns 0 or -1 with a Python exception set. */
int runner_setenv(const char *name, const char *value);

/* Child, before it says "ready": the job's environment. TMPDIR and HOME
 * are its private directory tmpdir; MPLCONFIGDIR is mplconfig unless NULL
 * (caches.h). Returns 0 or -1 with a Python exception set. */
int runner_job_environment(const char *tmpdir, const char *mplconfig);

/* Per job, before its first call: forbidden modules, seed.
 * Returns 0 or -1 with a Python exception set. */
int runner_prepare(const rb_job *job);

/* Take the pending exception and describe it. The strings are malloc'd
 * (caller frees); never NULL. */
void runner_take_exception(char **type, char **message, char **traceback);

/* Run the job path once on a dummy call, before the job arrives: the
 * pages it writes are copied from the zygote now rather than on the job's
 * time. warm_file holds runner_warm_source, written by the mother: loading
 * a file goes the same way as a job's. */
void runner_warm(const char *warm_file);
extern const char *const runner_warm_source;

/* Child: reseed random and numpy.random through Python, where rng.c could
 * not do it directly (see rng.h). */
void runner_reseed(void);

/* Flush sys.stdout/sys.stderr and C stdio so a call's output is in the
 * capture pipe before its result is reported. */
void runner_flush(void);

/* The absolute entries of sys.path (the interpreter's own directories and
 * site-packages): what the sandbox must keep visible. Returns their count
 * and a NULL-terminated array in *dirs, owned by the caller (free each,
 * then the array); 0 and NULL when there are none or memory ran out. */
size_t runner_import_dirs(char ***dirs);

/* ---- call.c: loading the job's module and calling its function, in C.
 * Below runner.c: nothing here calls runner.c. */

/* Part of runner_init. Returns 0 or -1 with a Python exception. */
int call_init(void);

/*
 * Run one call. module_path is the absolute file (NULL for source
 * calls), cwd and paths are absolute; paths is a list, args a sequence,
 * kwargs a dict or NULL. Returns a new (present, value) tuple, or NULL
 * with the call's exception set.
 */
PyObject *call_run(const char *module_path, const char *source, size_t source_len, const char *fcn,
                   const char *cwd, PyObject *paths, PyObject *args, PyObject *kwargs);

/* Zygote, when one of its children takes a job: compile (never run) the
 * job's file at path (absolute) unless it is compiled already, so later
 * children load it without reading or compiling it. Never fails:
 * a file that cannot be compiled is left to the children. */
void call_cache_file(const char *path);
/* The warm-up's file, in a place of its own: the jobs' 64 never evict it
 * (every child's warm-up would compile it again). */
void call_cache_warm_file(const char *path);

/* Take the job's modules out of sys.modules and forget them (after the
 * warm-up, so that the job finds nothing of it). */
void call_forget_modules(void);

#endif
