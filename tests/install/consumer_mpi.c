/* SPDX-License-Identifier: MIT */
/*
 * A program outside the weft tree that uses libweft_mpi, built by tests/install/run.sh with
 * `pkg-config weft-mpi` and with CMake's weft::weft_mpi. Runs as a single MPI process: a
 * message to itself, received through a future.
 */
#include <weft_mpi.h>

#include <stdio.h>

int main(int argc, char **argv)
{
    int provided = 0;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
    weft_pool *pool = NULL;
    int rc = weft_pool_create(NULL, &pool);
    if (rc != 0) {
        fprintf(stderr, "weft_pool_create: %s\n", weft_strerror(rc));
        MPI_Finalize();
        return 1;
    }
    int rank = 0, in = 0, out = 42;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Request rr, rs;
    MPI_Irecv(&in, 1, MPI_INT, rank, 7, MPI_COMM_WORLD, &rr);
    MPI_Isend(&out, 1, MPI_INT, rank, 7, MPI_COMM_WORLD, &rs);
    weft_future *f = NULL;
    rc = weft_mpi_future(pool, &rr, &f);
    void *status = NULL;
    if (rc == 0)
        rc = weft_future_result(f, &status);
    MPI_Wait(&rs, MPI_STATUS_IGNORE);
    int tag = status != NULL ? ((MPI_Status *)status)->MPI_TAG : -1;
    weft_future_release(f);
    weft_pool_destroy(pool);
    MPI_Finalize();
    if (rc != 0 || in != 42 || tag != 7) {
        fprintf(stderr, "rc %d (%s) in %d tag %d\n", rc, weft_strerror(rc), in, tag);
        return 1;
    }
    printf("ok (weft_mpi %s)\n", weft_version());
    return 0;
}
