/*
 * rng.h - a fresh random stream for every child (private to trampoline/).
 *
 * The mother locates the generators of `random` and `numpy.random` once;
 * each child overwrites their state with kernel randomness before it runs
 * anything, so no two children draw the same numbers unless a job asks for
 * a seed.
 */
#ifndef REBOUND_RNG_H
#define REBOUND_RNG_H

#include <Python.h>
#include <stdbool.h>

typedef struct rng_state {
    void *random_state;   /* random._inst's state, NULL when not found */
    void *numpy_state;    /* numpy's global MT19937 state, NULL when not found */
    bool python_fallback; /* a loaded generator whose layout did not match */
} rng_state;

/* Mother, after the preload (needs the interpreter). Seeds both generators
 * afresh and records where their state lives, if its layout is the one
 * expected. Never fails: what is not found is left to rng_reseed's caller. */
void rng_prepare(rng_state *rng);

/* Child, first thing: new state for each generator found. Returns false
 * when some generator still needs reseeding through Python. */
bool rng_reseed(const rng_state *rng);

#endif
