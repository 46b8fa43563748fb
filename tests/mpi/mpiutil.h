/* SPDX-License-Identifier: MIT */
/*
 * Helpers of the MPI suites (tests/mpi/), on top of testutil.h.
 *
 * The suites run under mpirun (tests/mpi/run_mpi.sh): every rank runs the same tests in the same
 * order, and a test may talk to other ranks. Check must not fork here (a forked child cannot use
 * MPI), so the suites run with CK_NOFORK: a failed assertion ends that test on that rank only,
 * its peers then wait for it and the script's timeout ends the job, which fails the test.
 */
#ifndef WEFT_MPIUTIL_H
#define WEFT_MPIUTIL_H

#include "../testutil.h"

#include <mpi.h>
#include <weft_mpi.h>

static inline int mu_rank(void)
{
    int r = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &r);
    return r;
}

static inline int mu_size(void)
{
    int n = 1;
    MPI_Comm_size(MPI_COMM_WORLD, &n);
    return n;
}

/* Runs s without forking; returns the number of failures summed over every rank, so that all
 * ranks agree on the exit status. */
static inline int mu_run_suite(Suite *s)
{
    SRunner *sr = srunner_create(s);
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, mu_rank() == 0 ? CK_NORMAL : CK_SILENT);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    int total = 0;
    MPI_Allreduce(&failed, &total, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    if (failed != 0)
        fprintf(stderr, "rank %d: %d test(s) failed\n", mu_rank(), failed);
    return total;
}

/* A pool of $WEFT_THREADS workers (one per core without it), as `mpirun` users get. */
static inline weft_pool *mu_pool_env(void)
{
    weft_pool *p = NULL;
    int rc = weft_pool_create(NULL, &p);
    ck_assert_msg(rc == 0, "weft_pool_create: %s", weft_strerror(rc));
    return p;
}

/* Waits until the library holds no request, at most timeout_s. */
static inline bool mu_wait_no_pending(double timeout_s)
{
    int64_t deadline = tu_now_ns() + (int64_t)(timeout_s * 1e9);
    while (weft_mpi_pending() != 0) {
        if (tu_now_ns() > deadline)
            return false;
        tu_sleep_ms(1);
    }
    return true;
}

#endif
