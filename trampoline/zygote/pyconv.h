/*
 * pyconv.h - msgpack <-> Python objects, directly in C (private).
 *
 * Inbound values were validated by rb_msgpack_check / rb_job_decode, so
 * every str is UTF-8 and nesting is bounded. Outbound, anything outside the
 * protocol's value set fails with TypeError naming the type.
 */
#ifndef REBOUND_PYCONV_H
#define REBOUND_PYCONV_H

#include <Python.h>
#include <msgpack.h>

/* Look up numpy's ndarray and generic types if numpy is loaded: in the
 * mother after the preload (children inherit them), and in a child after
 * each call, for a numpy the job imported itself (a dict lookup once
 * found: it returns at once). */
void pyconv_init(void);

/* New reference, or NULL with a Python exception set. */
PyObject *pyconv_from_msgpack(const msgpack_object *o);

/* Pack obj. Returns 0, or -1 with a Python exception set (the packer then
 * holds a partial object: pack into a scratch buffer). */
int pyconv_to_msgpack(msgpack_packer *pk, PyObject *obj);

#endif
