/*
 * harness.h - drives a real trampoline pool for tests and benchmarks: a
 * temporary code root, jobs written as JSON for readability, and results
 * unpacked for assertions.
 */
#ifndef REBOUND_TEST_HARNESS_H
#define REBOUND_TEST_HARNESS_H

#include <msgpack.h>
#include <stdbool.h>

#include "rebound_pool.h"

/* A fresh code root (mode 0755, readable by the sandbox user) under /tmp.
 * Returns a malloc'd path; harness_rmtree it when done. */
char *harness_code_root(void);
/* A directory both the test and its jobs can write (mode 1777), where a
 * job's sandbox does not cover it: a job's /tmp is its own. Owned by the
 * caller (free, and harness_rmtree). */
#define HARNESS_SHARED_BASE "/var/cache/rebound-tests"
char *harness_shared_dir(void);
/* The mother of the pool that process owner started, and its first
 * zygote, as this process sees them (/proc). false if not found. */
bool harness_pool_pids(pid_t owner, pid_t *mother, pid_t *zygote);
/* Processes on the host in the PID namespace that /proc/<pid>/ns/pid reads
 * as link ("pid:[4026532...]", as a job reads its own), or -1; and a
 * bounded wait for none to be left. */
int harness_procs_in_pidns(const char *link);
bool harness_pidns_gone(const char *link, int ms);
/* Write text into root/name (creating parent directories). */
void harness_write(const char *root, const char *name, const char *text);
void harness_rmtree(const char *path);

/* A pool from defaults plus: mode ("internal"/"native"), slots, root. The
 * trampoline comes from $REBOUND_BIN_DIR; $REBOUND_TEST_PRELOAD, when set,
 * replaces the default preload. Aborts the test on failure. */
rb_pool *harness_pool(const char *mode, int slots, const char *root, rb_pool_config *tweak);
void harness_config(rb_pool_config *cfg, const char *mode, int slots, const char *root);

/* Whether the pool's Python lacks module (a probe job, from a file written
 * into root); when it does, prints the "cannot run here: ..." line that
 * run_test records as the reason of the cmocka skip() that should follow. */
bool harness_lacks_module(rb_pool *pool, const char *root, const char *module);

/* JSON text -> msgpack bytes (malloc'd, *len set). Aborts on bad JSON. */
char *harness_json_to_msgpack(const char *json, size_t *len);

/* Run one job (JSON or msgpack body) to completion, bounded by wait_ms.
 * The result (as the worker would pack it) is unpacked into *out, which
 * the caller destroys. Returns false when no result came in time. */
bool harness_run_json(rb_pool *pool, const char *json, msgpack_unpacked *out, int wait_ms);
bool harness_run_body(rb_pool *pool, const char *body, size_t len, msgpack_unpacked *out,
                      int wait_ms);

/* Pack a pool result as the worker would (id: the job's, worker: the
 * name in the result) into sb. Returns rb_result_pack's result. */
int harness_pack_result(const rb_pool_result *res, const char *id, const char *worker,
                        msgpack_sbuffer *sb);

/* Drive the pool's loop for up to ms milliseconds or until done() says so. */
void harness_drive(rb_pool *pool, int ms, bool (*done)(void *), void *ctx);

/* Path lookup: "status", "results.0.val", "error.message". NULL if absent. */
const msgpack_object *harness_get(const msgpack_object *root, const char *path);
/* A str object as a NUL-terminated static buffer (truncated at 64 KiB;
 * the last four returned stay valid). */
const char *harness_str(const msgpack_object *o);
/* harness_str(harness_get(root, path)), "" when absent. */
const char *harness_sget(const msgpack_object *root, const char *path);

#endif
