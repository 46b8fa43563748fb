/* SPDX-License-Identifier: MIT */
/*
 * mpi_latency: the round-trip time of a small message between ranks 0 and 1 through
 * weft_mpi_future (Irecv and Isend as futures, the receive waited on with weft_future_wait)
 * against plain blocking MPI_Send/MPI_Recv, and the same after a pause, when the progress
 * thread has backed off to its longest sleep. The numbers of docs/mpi.md:
 *
 *   mpirun -np 2 build/tests/mpi/mpi_latency [ROUNDS]
 *
 * Also a smoke test (mpi_latency, label mpi): it fails if a message is lost or mangled.
 */
#include <mpi.h>
#include <weft.h>
#include <weft_mpi.h>

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int exchange_future(weft_pool *pool, int rank, int peer, int value)
{
    int in = -1, out = value;
    MPI_Request rr, rs;
    weft_future *fr = NULL, *fs = NULL;
    if (rank == 0) {
        MPI_Irecv(&in, 1, MPI_INT, peer, 1, MPI_COMM_WORLD, &rr);
        MPI_Isend(&out, 1, MPI_INT, peer, 1, MPI_COMM_WORLD, &rs);
    } else {
        MPI_Irecv(&in, 1, MPI_INT, peer, 1, MPI_COMM_WORLD, &rr);
        if (weft_mpi_future(pool, &rr, &fr) != 0)
            return -1;
        weft_future_wait(fr, WEFT_FOREVER);
        weft_future_release(fr);
        out = in;
        MPI_Isend(&out, 1, MPI_INT, peer, 1, MPI_COMM_WORLD, &rs);
        if (weft_mpi_future(pool, &rs, &fs) != 0)
            return -1;
        weft_future_wait(fs, WEFT_FOREVER);
        weft_future_release(fs);
        return in;
    }
    if (weft_mpi_future(pool, &rr, &fr) != 0 || weft_mpi_future(pool, &rs, &fs) != 0)
        return -1;
    weft_future_wait(fr, WEFT_FOREVER);
    weft_future_wait(fs, WEFT_FOREVER);
    weft_future_release(fr);
    weft_future_release(fs);
    return in;
}

static int exchange_plain(int rank, int peer, int value)
{
    int in = -1;
    if (rank == 0) {
        MPI_Send(&value, 1, MPI_INT, peer, 2, MPI_COMM_WORLD);
        MPI_Recv(&in, 1, MPI_INT, peer, 2, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    } else {
        MPI_Recv(&in, 1, MPI_INT, peer, 2, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        MPI_Send(&in, 1, MPI_INT, peer, 2, MPI_COMM_WORLD);
    }
    return in;
}

int main(int argc, char **argv)
{
    int provided = 0;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
    int rank = 0, size = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    int rounds = argc > 1 ? atoi(argv[1]) : 1000;
    if (size != 2 || rounds < 1) {
        if (rank == 0)
            fprintf(stderr, "usage: mpirun -np 2 mpi_latency [ROUNDS]\n");
        MPI_Finalize();
        return 2;
    }
    weft_pool *pool = NULL;
    if (weft_pool_create(NULL, &pool) != 0)
        MPI_Abort(MPI_COMM_WORLD, 1);
    int peer = 1 - rank, bad = 0;

    double t = now_us();
    for (int i = 0; i < rounds; i++)
        bad += exchange_plain(rank, peer, i) != i;
    double plain = (now_us() - t) / rounds;

    t = now_us();
    for (int i = 0; i < rounds; i++)
        bad += exchange_future(pool, rank, peer, i) != i;
    double fut = (now_us() - t) / rounds;

    /* After 20 ms of quiet each time: the progress thread sleeps its longest. */
    int slow_rounds = rounds < 50 ? rounds : 50;
    double slow = 0;
    for (int i = 0; i < slow_rounds; i++) {
        MPI_Barrier(MPI_COMM_WORLD);
        struct timespec ts = {0, 20000000};
        nanosleep(&ts, NULL);
        t = now_us();
        bad += exchange_future(pool, rank, peer, i) != i;
        slow += now_us() - t;
    }
    slow /= slow_rounds;

    weft_pool_destroy(pool);
    int total = 0;
    MPI_Allreduce(&bad, &total, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    if (rank == 0)
        printf("round trip: MPI_Send/Recv %.1f us, weft_mpi_future %.1f us, "
               "after a pause %.1f us (%d rounds)%s\n",
               plain, fut, slow, rounds, total ? ", MESSAGES WRONG" : "");
    MPI_Finalize();
    return total == 0 ? 0 : 1;
}
