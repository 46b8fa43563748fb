/* SPDX-License-Identifier: MIT */
/*
 * weft_mpi: weft past one machine, through MPI. A separate library (libweft_mpi, pkg-config
 * weft-mpi, CMake weft::weft_mpi) built when MPI is found; the core libweft never links MPI.
 * It does no networking of its own: everything goes through MPI.
 *
 * Two parts:
 *
 *  1. weft_mpi_future: an MPI request as a weft future, to gather, wait on, add to completion
 *     sets and continue with weft_future_then, next to local futures.
 *  2. weft_glb_run: lifeline-based global load balancing (Saraswat et al., PPoPP 2011) of a
 *     user's bag of irregular work over the ranks of a communicator and, inside each rank, over
 *     the workers of a pool.
 *
 * Thread level. weft_mpi_future needs MPI initialised with MPI_THREAD_MULTIPLE provided: its
 * progress thread calls MPI beside the application's threads. weft_glb_run needs less: during
 * the run only the calling thread calls MPI (the pool's workers never do, unless the user's
 * callbacks do), so MPI_THREAD_SERIALIZED suffices, or MPI_THREAD_FUNNELED when the caller is
 * the main thread.
 *
 * Which threads call MPI: the application's, the progress thread of weft_mpi_future (only
 * MPI_Testsome, MPI_Cancel, MPI_Test_cancelled and MPI_Request_free on the requests it took
 * over, plus MPI_Comm_set_attr once on MPI_COMM_SELF), and during weft_glb_run its caller.
 */
#ifndef WEFT_MPI_H
#define WEFT_MPI_H

#include <mpi.h>
#include <weft.h>

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(WEFT_STATIC)
#define WEFT_MPI_API
#elif defined(__GNUC__)
#define WEFT_MPI_API __attribute__((visibility("default")))
#else
#define WEFT_MPI_API
#endif

/* ---------------------------------------------------------------------------------------------
 * MPI requests as futures
 *
 * Progress. One progress thread per process (MPI's own state is per process, and one
 * MPI_Testsome over every pending request costs less than one call per request), started by the
 * first successful weft_mpi_future. It tests all pending requests together with MPI_Testsome,
 * never with a blocking wait: no worker and no thread of the library blocks inside MPI. While
 * requests are pending it tests back to back for about 20 us after each completion, then sleeps
 * between tests, doubling the sleep from 1 us up to $WEFT_MPI_POLL_US microseconds (default
 * 500; read once, when the thread starts). So a request that completes after a long quiet is
 * seen within that bound, and a burst of traffic is followed without sleeping. The price of a
 * request that stays pending is one wake-up per bound: measured at 18 us of CPU each on the
 * virtual machine of docs/mpi.md, about 4 % of a core at 500 us, 10 % at 100 us. With nothing
 * pending the thread sleeps on a condition variable without a timeout and costs no CPU at
 * all; a new request wakes it.
 *
 * Completion. When MPI completes a request, the progress thread copies its status into a record
 * the future owns and completes the future with it (weft_future_set_result_owned): DONE, with
 * weft_future_result giving a MPI_Status * that stays valid until the future is freed (the last
 * reference released, by the user or by a gather holding it). Completion runs the future's
 * on_done callbacks and queues its continuations on the progress thread, which is why
 * callbacks must not block. An MPI error in the status (MPI_ERR_IN_STATUS) does not fail the
 * future: read status->MPI_ERROR.
 *
 * Cancel. weft_future_cancel on a pending future makes it CANCELLED at once and returns 1. The
 * progress thread then calls MPI_Cancel on the request and goes on testing it until MPI is done
 * with it (cancelled, or completed anyway: a send already matched cannot be cancelled), then
 * frees it. The caller's buffers must stay valid until then; weft_mpi_pending() says when the
 * library holds no more requests.
 *
 * Pool. The future is created on behalf of pool: weft_mpi_future refuses with -ESHUTDOWN once
 * weft_pool_is_shutdown(pool). It is not a task of the pool: shutting the pool down (DRAIN or
 * CANCEL) or destroying it neither waits for nor cancels it, and it completes on the progress
 * thread whether or not the pool still exists (futures outlive pools). Continuations
 * (weft_future_then) on it run on the pool they name.
 *
 * MPI_Finalize. The library hangs a delete callback on MPI_COMM_SELF, which MPI_Finalize runs
 * first. It stops the progress thread and settles every request still pending: MPI_Cancel,
 * then tests for up to 100 ms; a request that completed anyway (a send that had been matched)
 * makes its future DONE as usual, every other future ends FAILED with -ESHUTDOWN, and a request
 * MPI still holds after the bound is freed with MPI_Request_free. Finalizing with requests
 * pending is erroneous in MPI anyway; this only bounds the damage. After MPI_Finalize,
 * weft_mpi_future returns -ENOTSUP. A process that exits without MPI_Finalize leaves the
 * progress thread to the exit.
 */

/* Takes *req over and returns a future that completes with it. *req becomes MPI_REQUEST_NULL
 * at once; *out receives one reference to a future that becomes DONE when the request
 * completes, with a MPI_Status * result owned by the future (above). Non-blocking; any thread.
 * A persistent request is freed after its one completion.
 * Errors: -EINVAL (pool, req or out NULL, or *req MPI_REQUEST_NULL), -ENOTSUP (MPI not
 * initialised, already finalized, or initialised without MPI_THREAD_MULTIPLE provided),
 * -ESHUTDOWN (pool shut down), -ENOMEM, -EAGAIN (the progress thread could not be started).
 * On error *req and *out are left as they were, and the request is still the caller's. */
WEFT_MPI_API int weft_mpi_future(weft_pool *pool, MPI_Request *req, weft_future **out);

/* How many requests the library holds: pending, or cancelled and not yet released by MPI. 0
 * before the first weft_mpi_future. Any thread. */
WEFT_MPI_API size_t weft_mpi_pending(void);

/* ---------------------------------------------------------------------------------------------
 * Lifeline-based global load balancing
 *
 * weft_glb_run spreads a user's bag of irregular work (tree search, branch and bound, anything
 * where processing work makes more work and nobody knows how much) over every worker of every
 * rank of a communicator, and returns when all of it is done, with the result reduced over the
 * ranks. It is collective: every rank of comm calls it with the same ops and config.
 *
 * Inside a rank, every worker of the pool keeps a bag of its own, processes it in chunks and,
 * when it runs dry, steals half of another worker's bag (split into bytes, merged into its own).
 * Only when every worker of the rank is out of work does the rank steal from other ranks. The
 * calling thread does all MPI communication of the run: it answers steal requests of other
 * ranks by splitting a busy worker's bag, steals for its rank (w random victims first, then its
 * lifelines, a hypercube of about log2(ranks) buddies per rank, which then push work to it when
 * they get some), and runs Safra's termination detection. It polls MPI with a sleeping backoff
 * bounded by cfg.poll_max_ns, so a rank that waits for work or for termination uses a few
 * percent of a core, not a whole one. The algorithm, and why termination is detected exactly
 * once everything is done, are in lib/mpi/glb.c and docs/mpi.md.
 *
 * Callbacks. Each bag belongs to one worker; the library serialises every call on one bag
 * (process, split, merge), so a bag needs no locking of its own. Different bags are used in
 * parallel: what process writes often (a length, a top of stack) should not share a cache line
 * with another bag's, or workers of one rank slow each other down (allocate bags aligned to
 * 64 bytes). ctx is the user's, passed through.
 */

/* What the user's work is: a bag type and a result type. */
typedef struct weft_glb_ops {
    /* A new, empty bag in *bag; 0 or a negative errno value. Called on the calling thread. */
    int (*bag_create)(void *ctx, void **bag);
    /* Frees a bag (empty unless the run failed). */
    void (*bag_destroy)(void *bag, void *ctx);
    /* Puts this rank's initial work in bag (the bag of worker 0), e.g. a tree's root on rank 0
     * only. 0 or a negative errno value. Called once per rank before any worker starts. */
    int (*seed)(void *bag, int rank, int nranks, void *ctx);
    /* Processes up to n units of the bag's work, folding what it finds into result (this
     * worker's accumulator, result_size bytes, started as a copy of identity). Returns 1 when
     * the bag still holds work, 0 when it is empty, or a negative errno value to stop the run on
     * every rank (weft_glb_run then returns it here). */
    int (*process)(void *bag, size_t n, void *result, void *ctx);
    /* Takes about half of the bag's work out, for a thief, serialised into buf (at most cap
     * bytes): *len receives the bytes written, 0 when the bag has too little to share. 0 or a
     * negative errno value (stops the run as above). */
    int (*split)(void *bag, void *buf, size_t cap, size_t *len, void *ctx);
    /* Adds work that split serialised (on this or another rank) to bag. 0 or a negative errno
     * value (stops the run as above). */
    int (*merge)(void *bag, const void *buf, size_t len, void *ctx);
    /* Folds other into acc (both result_size bytes): results of workers, then of ranks, are
     * folded in order (worker 0 first, rank 0 first), so combine need only be associative. */
    void (*combine)(void *acc, const void *other, void *ctx);
    size_t result_size;   /* bytes of a result, 1..WEFT_GLB_MAX_RESULT */
    const void *identity; /* result_size bytes: the result of no work */
} weft_glb_ops;

#define WEFT_GLB_MAX_RESULT 4096u

typedef struct weft_glb_config {
    size_t chunk;           /* units per process call between checks; 0: 256 */
    unsigned steal_tries;   /* w: random victims a rank tries before its lifelines; 0: 1 */
    size_t max_steal_bytes; /* cap handed to split; 0: 64 KiB */
    int64_t poll_max_ns;    /* longest sleep of the communicating thread between polls while
                               it waits; 0: 500 us */
} weft_glb_config;

/* Sets every field to 0 (the defaults). */
WEFT_MPI_API void weft_glb_config_init(weft_glb_config *cfg);

/* What one rank did during a run (every field counts this rank only). */
typedef struct weft_glb_stats {
    uint64_t local_steals;    /* halves one worker took from another of this rank */
    uint64_t steals_sent;     /* random steal requests sent to other ranks */
    uint64_t steals_won;      /* of those, answered with work */
    uint64_t lifelines_sent;  /* lifeline requests sent */
    uint64_t lifeline_pushes; /* work sent to ranks that had asked through a lifeline */
    uint64_t work_sent;       /* work messages sent (steal answers and pushes) */
    uint64_t work_received;   /* work messages received */
    uint64_t tokens;          /* termination tokens this rank handled */
    int64_t time_ns;          /* wall time of the run on this rank */
} weft_glb_stats;

/* Runs the balanced computation and returns when every rank's work is done. Collective over
 * comm (duplicated inside, so the user's messages never mix with the library's). The calling
 * thread does the communication and must not be a worker of pool; the pool's workers are all
 * taken for the run (one long task each), so the pool should have no other work meanwhile.
 * On success every rank's *result (ops->result_size bytes) holds the fold of every worker's
 * result on every rank, and *stats, when stats is not NULL, this rank's counts.
 * A callback that fails on one rank stops the run everywhere: that rank returns the callback's
 * code, every other rank -ECANCELED, within about a chunk's processing time plus a message's
 * latency. After such an error comm's duplicate may hold unread messages, and the program is
 * expected to end with MPI_Abort (docs/mpi.md). MPI errors follow comm's error handler.
 * Errors: -EINVAL (pool, ops, any callback, identity or result NULL; result_size 0 or above
 * WEFT_GLB_MAX_RESULT), -ENOTSUP (MPI not initialised, or at a thread level below what the
 * run needs, see above), -EDEADLK (called on one of pool's workers), -ESHUTDOWN, -ENOMEM,
 * -EAGAIN (as weft_submit), -ECANCELED (another rank failed), or a callback's own code. The
 * argument checks are local: a rank that rejects its arguments returns without communicating,
 * and the others wait for it, so give every rank the same arguments. */
WEFT_MPI_API int weft_glb_run(weft_pool *pool, MPI_Comm comm, const weft_glb_ops *ops,
                              const weft_glb_config *cfg, void *ctx, void *result,
                              weft_glb_stats *stats);

#ifdef __cplusplus
}
#endif

#endif
