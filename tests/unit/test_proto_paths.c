/*
 * test_proto_paths.c - rb_job_check_paths against a real directory tree:
 * files and directories inside the code root pass, symlinks that lead out
 * of it, missing files and wrong kinds are rejected with the call named.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>

#include "proto_text.h"
#include "rebound_proto.h"

typedef struct tree {
    char base[64]; /* holds root/ and, next to it, rootevil/ */
    char root[96];
} tree;

static void touch(const char *dir, const char *rel)
{
    char p[256];
    snprintf(p, sizeof p, "%s/%s", dir, rel);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs("def f():\n    return 1\n", f);
    fclose(f);
}

static void mkdir_in(const char *dir, const char *rel)
{
    char p[256];
    snprintf(p, sizeof p, "%s/%s", dir, rel);
    assert_int_equal(mkdir(p, 0755), 0);
}

static void link_in(const char *dir, const char *rel, const char *target)
{
    char p[256];
    snprintf(p, sizeof p, "%s/%s", dir, rel);
    assert_int_equal(symlink(target, p), 0);
}

static int setup(void **state)
{
    tree *t = calloc(1, sizeof *t);
    snprintf(t->base, sizeof t->base, "/tmp/rebound-paths-XXXXXX");
    if (!mkdtemp(t->base)) return -1;
    snprintf(t->root, sizeof t->root, "%s/root", t->base);
    mkdir(t->root, 0755);
    mkdir_in(t->base, "rootevil");
    touch(t->base, "rootevil/f.py");
    touch(t->base, "outside.py");

    mkdir_in(t->root, "pkg");
    mkdir_in(t->root, "pkg/sub");
    mkdir_in(t->root, "dir.py");
    touch(t->root, "pkg/mod.py");
    touch(t->root, "top.py");
    link_in(t->root, "link_in.py", "pkg/mod.py");
    link_in(t->root, "link_out.py", "../outside.py");
    link_in(t->root, "link_sibling.py", "../rootevil/f.py");
    link_in(t->root, "dangling.py", "nowhere.py");
    link_in(t->root, "outdir", "..");
    link_in(t->root, "subdir", "pkg/sub");
    char abs[256];
    snprintf(abs, sizeof abs, "%s/pkg/mod.py", t->root);
    link_in(t->root, "abs_in.py", abs);
    link_in(t->base, "rootlink", "root");
    *state = t;
    return 0;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int teardown(void **state)
{
    tree *t = *state;
    nftw(t->base, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(t);
    return 0;
}

static rb_job *job_from(const char *text)
{
    mpbuf b = mp(text);
    rb_job *job = NULL;
    rb_err err = {""};
    if (rb_job_decode(b.data, b.len, NULL, &job, NULL, &err) != 0) fail_msg("decode: %s", err.msg);
    free(b.data);
    return job;
}

static void paths_ok(const tree *t, const char *text)
{
    rb_job *job = job_from(text);
    rb_err err = {""};
    if (rb_job_check_paths(job, t->root, &err) != 0) fail_msg("rejected %s: %s", text, err.msg);
    rb_job_free(job);
}

static void paths_err(const tree *t, const char *text, const char *message)
{
    rb_job *job = job_from(text);
    rb_err err = {""};
    assert_int_equal(rb_job_check_paths(job, t->root, &err), -1);
    assert_string_equal(err.msg, message);
    rb_job_free(job);
}

#define FILE_CALL(f) "{v: 1, id: 'p', calls: [{fcn: 'f', file: '" f "'}]}"

static void test_inside_root_accepted(void **state)
{
    tree *t = *state;
    paths_ok(t, FILE_CALL("top.py"));
    paths_ok(t, FILE_CALL("pkg/mod.py"));
    paths_ok(t, FILE_CALL("./pkg/mod.py"));
    paths_ok(t, FILE_CALL("link_in.py"));
    paths_ok(t, FILE_CALL("abs_in.py"));
    paths_ok(t, "{v: 1, id: 'p', calls: [{fcn: 'f', file: 'top.py', cwd: 'pkg',"
                " paths: ['pkg/sub', '.', 'subdir']}, {fcn: 'g', source: 'x', cwd: '.'}]}");
    /* Source-only calls have nothing to check. */
    paths_ok(t, "{v: 1, id: 'p', calls: [{fcn: 'f', source: 'x'}]}");
}

static void test_symlinks_out_rejected(void **state)
{
    tree *t = *state;
    paths_err(t, FILE_CALL("link_out.py"), "calls[0].file: path escapes the code root");
    /* "root" is a prefix of "rootevil": the check is by path component. */
    paths_err(t, FILE_CALL("link_sibling.py"), "calls[0].file: path escapes the code root");
    paths_err(t, FILE_CALL("outdir/outside.py"), "calls[0].file: path escapes the code root");
    paths_err(t, "{v: 1, id: 'p', calls: [{fcn: 'f', source: 'x', cwd: 'outdir'}]}",
              "calls[0].cwd: path escapes the code root");
    paths_err(t, "{v: 1, id: 'p', calls: [{fcn: 'f', source: 'x', paths: ['pkg', 'outdir']}]}",
              "calls[0].paths[1]: path escapes the code root");
    paths_err(t,
              "{v: 1, id: 'p', calls: [{fcn: 'f', file: 'top.py'}, {fcn: 'f', file: "
              "'link_out.py'}]}",
              "calls[1].file: path escapes the code root");
}

static void test_missing_and_wrong_kind(void **state)
{
    tree *t = *state;
    paths_err(t, FILE_CALL("missing.py"), "calls[0].file: no such file");
    paths_err(t, FILE_CALL("dangling.py"), "calls[0].file: no such file");
    paths_err(t, FILE_CALL("pkg/mod.py/x.py"), "calls[0].file: no such file");
    paths_err(t, FILE_CALL("dir.py"), "calls[0].file: not a regular file");
    paths_err(t, "{v: 1, id: 'p', calls: [{fcn: 'f', source: 'x', cwd: 'nope'}]}",
              "calls[0].cwd: no such directory");
    paths_err(t, "{v: 1, id: 'p', calls: [{fcn: 'f', source: 'x', cwd: 'top.py'}]}",
              "calls[0].cwd: not a directory");
    paths_err(t, "{v: 1, id: 'p', calls: [{fcn: 'f', source: 'x', paths: ['.', 'gone']}]}",
              "calls[0].paths[1]: no such directory");
}

static void test_code_root_forms(void **state)
{
    tree *t = *state;
    rb_job *job = job_from(FILE_CALL("pkg/mod.py"));
    rb_err err = {""};

    /* The root may itself be reached through a symlink or a trailing slash. */
    char alt[160];
    snprintf(alt, sizeof alt, "%s/rootlink", t->base);
    assert_int_equal(rb_job_check_paths(job, alt, &err), 0);
    snprintf(alt, sizeof alt, "%s/", t->root);
    assert_int_equal(rb_job_check_paths(job, alt, &err), 0);

    snprintf(alt, sizeof alt, "%s/absent", t->base);
    assert_int_equal(rb_job_check_paths(job, alt, &err), -1);
    char want[256];
    snprintf(want, sizeof want, "code root %s: No such file or directory", alt);
    assert_string_equal(err.msg, want);
    rb_job_free(job);

    /* With "/" as the root, any existing file is inside. */
    char text[512];
    snprintf(text, sizeof text, "{v: 1, id: 'p', calls: [{fcn: 'f', file: '%s/top.py'}]}",
             t->root + 1);
    job = job_from(text);
    assert_int_equal(rb_job_check_paths(job, "/", &err), 0);
    rb_job_free(job);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_inside_root_accepted),
        cmocka_unit_test(test_symlinks_out_rejected),
        cmocka_unit_test(test_missing_and_wrong_kind),
        cmocka_unit_test(test_code_root_forms),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
