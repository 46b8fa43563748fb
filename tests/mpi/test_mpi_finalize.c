/* SPDX-License-Identifier: MIT */
/*
 * MPI_Finalize with requests still pending (weft_mpi.h, "MPI_Finalize"): the library's hook
 * cancels them, their futures end FAILED with -ESHUTDOWN, finished futures keep their statuses,
 * the library holds no request afterwards, and weft_mpi_future then says -ENOTSUP.
 */
#include <mpi.h>
#include <weft.h>
#include <weft_mpi.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

static int failures;

#define EXPECT(cond)                                                                               \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);               \
            failures++;                                                                            \
        }                                                                                          \
    } while (0)

int main(int argc, char **argv)
{
    int provided = 0;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
    if (provided != MPI_THREAD_MULTIPLE) {
        fprintf(stderr, "this MPI does not provide MPI_THREAD_MULTIPLE\n");
        MPI_Finalize();
        return 1;
    }
    int rank = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    weft_pool *pool = NULL;
    if (weft_pool_create(NULL, &pool) != 0) {
        fprintf(stderr, "weft_pool_create failed\n");
        return 1;
    }

    enum { NPENDING = 4 };
    static int never[NPENDING];
    weft_future *pending[NPENDING] = {0}, *done = NULL, *cancelled = NULL;
    for (int i = 0; i < NPENDING; i++) {
        MPI_Request r;
        MPI_Irecv(&never[i], 1, MPI_INT, MPI_ANY_SOURCE, 10 + i, MPI_COMM_WORLD, &r);
        EXPECT(weft_mpi_future(pool, &r, &pending[i]) == 0);
    }
    int x = 1, y = 0;
    MPI_Request rr, rs;
    MPI_Irecv(&y, 1, MPI_INT, rank, 1, MPI_COMM_WORLD, &rr);
    MPI_Isend(&x, 1, MPI_INT, rank, 1, MPI_COMM_WORLD, &rs);
    EXPECT(weft_mpi_future(pool, &rr, &done) == 0);
    MPI_Wait(&rs, MPI_STATUS_IGNORE);
    EXPECT(weft_future_wait(done, (int64_t)30 * 1000000000) == 0);
    int z = 0;
    MPI_Irecv(&z, 1, MPI_INT, MPI_ANY_SOURCE, 2, MPI_COMM_WORLD, &rr);
    EXPECT(weft_mpi_future(pool, &rr, &cancelled) == 0);
    EXPECT(weft_future_cancel(cancelled) == 1);
    EXPECT(weft_mpi_pending() >= NPENDING);

    MPI_Barrier(MPI_COMM_WORLD);
    MPI_Finalize();

    for (int i = 0; i < NPENDING; i++) {
        EXPECT(weft_future_state(pending[i]) == WEFT_FAILED);
        EXPECT(weft_future_result(pending[i], NULL) == -ESHUTDOWN);
        weft_future_release(pending[i]);
    }
    void *v = NULL;
    EXPECT(weft_future_result(done, &v) == 0);
    EXPECT(v != NULL && ((MPI_Status *)v)->MPI_TAG == 1);
    EXPECT(y == 1);
    EXPECT(weft_future_state(cancelled) == WEFT_CANCELLED);
    EXPECT(weft_mpi_pending() == 0);
    MPI_Request fake;
    memset(&fake, 0x5a, sizeof fake);
    weft_future *f = NULL;
    EXPECT(weft_mpi_future(pool, &fake, &f) == -ENOTSUP);
    weft_future_release(done);
    weft_future_release(cancelled);
    EXPECT(weft_pool_destroy(pool) == 0);
    if (failures == 0)
        printf("ok: rank %d: pending futures failed with -ESHUTDOWN at MPI_Finalize\n", rank);
    return failures == 0 ? 0 : 1;
}
