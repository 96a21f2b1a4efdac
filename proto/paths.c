/*
 * paths.c - the rules that keep file, cwd and paths inside the code root:
 * a lexical check at decode time and a resolving check (symlinks) against
 * the real directory.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "proto_internal.h"

int rb__path_lexical(const char *path, const char *key, rb_err *err)
{
    if (path[0] == '\0') return rb_err_set(err, "%s: must not be empty", key);
    if (path[0] == '/') return rb_err_set(err, "%s: path escapes the code root", key);
    /* Any ".." component is refused, even one that would come back inside
     * ("a/../b"): nobody needs it, and it keeps the rule one line long. */
    for (const char *p = path; *p;) {
        const char *slash = strchr(p, '/');
        size_t n = slash ? (size_t)(slash - p) : strlen(p);
        if (n == 2 && p[0] == '.' && p[1] == '.')
            return rb_err_set(err, "%s: path escapes the code root", key);
        p += n;
        if (*p == '/') p++;
    }
    return 0;
}

static bool is_under(const char *root, const char *real)
{
    size_t n = strlen(root);
    if (n == 1 && root[0] == '/') return true;
    return strncmp(real, root, n) == 0 && (real[n] == '\0' || real[n] == '/');
}

enum want { WANT_FILE, WANT_DIR };

/* Resolve root/rel with symlinks and check where it lands and what it is. */
static int check_one(const char *root, const char *rel, const char *key, enum want want,
                     rb_err *err)
{
    char *joined = NULL;
    if (asprintf(&joined, "%s/%s", root, rel) < 0) return rb_err_set(err, "%s: out of memory", key);
    char *real = realpath(joined, NULL);
    int saved = errno;
    free(joined);
    if (!real) {
        if (saved == ENOENT || saved == ENOTDIR)
            return rb_err_set(err, "%s: no such %s", key, want == WANT_FILE ? "file" : "directory");
        return rb_err_set(err, "%s: %s", key, strerror(saved));
    }
    int rc = 0;
    struct stat st;
    if (!is_under(root, real))
        rc = rb_err_set(err, "%s: path escapes the code root", key);
    else if (stat(real, &st) < 0)
        rc = rb_err_set(err, "%s: %s", key, strerror(errno));
    else if (want == WANT_FILE && !S_ISREG(st.st_mode))
        rc = rb_err_set(err, "%s: not a regular file", key);
    else if (want == WANT_DIR && !S_ISDIR(st.st_mode))
        rc = rb_err_set(err, "%s: not a directory", key);
    free(real);
    return rc;
}

int rb_job_check_paths(const rb_job *job, const char *code_root, rb_err *err)
{
    char *root = realpath(code_root, NULL);
    if (!root) return rb_err_set(err, "code root %s: %s", code_root, strerror(errno));

    int rc = 0;
    char key[64];
    for (size_t i = 0; rc == 0 && i < job->ncalls; i++) {
        const rb_call *c = &job->calls[i];
        if (c->file) {
            snprintf(key, sizeof key, "calls[%zu].file", i);
            rc = check_one(root, c->file, key, WANT_FILE, err);
        }
        if (rc == 0 && c->cwd) {
            snprintf(key, sizeof key, "calls[%zu].cwd", i);
            rc = check_one(root, c->cwd, key, WANT_DIR, err);
        }
        for (size_t j = 0; rc == 0 && j < c->npaths; j++) {
            snprintf(key, sizeof key, "calls[%zu].paths[%zu]", i, j);
            rc = check_one(root, c->paths[j], key, WANT_DIR, err);
        }
    }
    free(root);
    return rc;
}
