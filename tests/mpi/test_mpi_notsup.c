/* SPDX-License-Identifier: MIT */
/*
 * weft_mpi_future without MPI_THREAD_MULTIPLE: -ENOTSUP, and nothing changes. Before MPI_Init,
 * at the thread level given as argv[1] (single, funneled or serialized), and after
 * MPI_Finalize. A plain program: Check's fork mode cannot be used around MPI_Init.
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

/* The request comes back untouched, and *out too. */
static void expect_notsup(weft_pool *pool, MPI_Request *r)
{
    MPI_Request kept = *r;
    weft_future *sentinel = (weft_future *)&kept, *f = sentinel;
    EXPECT(weft_mpi_future(pool, r, &f) == -ENOTSUP);
    EXPECT(*r == kept);
    EXPECT(f == sentinel);
    EXPECT(weft_mpi_pending() == 0);
}

int main(int argc, char **argv)
{
    int want = MPI_THREAD_FUNNELED;
    if (argc > 1 && strcmp(argv[1], "single") == 0)
        want = MPI_THREAD_SINGLE;
    else if (argc > 1 && strcmp(argv[1], "serialized") == 0)
        want = MPI_THREAD_SERIALIZED;

    weft_config cfg;
    weft_config_init(&cfg);
    cfg.threads = 1;
    weft_pool *pool = NULL;
    if (weft_pool_create(&cfg, &pool) != 0) {
        fprintf(stderr, "weft_pool_create failed\n");
        return 1;
    }

    /* Before MPI_Init: any handle other than MPI_REQUEST_NULL, never touched. */
    MPI_Request fake;
    memset(&fake, 0x5a, sizeof fake);
    expect_notsup(pool, &fake);

    int provided = -1;
    MPI_Init_thread(&argc, &argv, want, &provided);
    if (provided == MPI_THREAD_MULTIPLE) {
        fprintf(stderr, "asked for level %d, MPI gave MPI_THREAD_MULTIPLE: nothing to test\n",
                want);
        MPI_Finalize();
        weft_pool_destroy(pool);
        return 1;
    }
    int rank = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    int buf = 0;
    MPI_Request r;
    MPI_Irecv(&buf, 1, MPI_INT, rank, 1, MPI_COMM_WORLD, &r);
    expect_notsup(pool, &r);
    MPI_Cancel(&r);
    MPI_Wait(&r, MPI_STATUS_IGNORE);
    MPI_Finalize();

    memset(&fake, 0x5a, sizeof fake);
    expect_notsup(pool, &fake);
    EXPECT(weft_pool_destroy(pool) == 0);
    if (failures == 0)
        printf("ok: rank %d, thread level %d: -ENOTSUP before, during and after MPI\n", rank,
               provided);
    return failures == 0 ? 0 : 1;
}
