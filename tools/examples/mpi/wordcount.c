/* SPDX-License-Identifier: MIT */
/*
 * weft-wordcount: a batch job over many files, the shape of most real MPI work. The files are
 * split over the ranks, each rank counts its share with weft, and rank 0 gathers the counts.
 *
 *   mpirun -np R weft-wordcount [--threads N] [--chunk BYTES] [--top K] [--check]
 *                               [--dump PATH] FILE...
 *
 * A word is a maximal run of bytes that are not ASCII white space (what wc -w counts); words are
 * compared byte for byte, without case folding.
 *
 * The steps:
 *   1. Rank 0 measures the files and broadcasts their sizes; every rank then computes the same
 *      split, largest file first to the least-loaded rank (LPT), so the ranks get about equal
 *      bytes without any further message.
 *   2. Each rank cuts its files into chunks of --chunk bytes (default 1 MiB) and counts them
 *      with weft_parallel_reduce on a pool of --threads workers: each range of chunks fills a
 *      hash table, and neighbouring ranges' tables are merged as the reduction combines them.
 *      A chunk owns the words that start in it, reading past its end to finish the last one.
 *   3. Every other rank sends rank 0 its flattened table. Rank 0 posts the receives before it
 *      counts its own share, makes each a weft future with weft_mpi_future (libweft_mpi), and
 *      merges each table as it arrives, on its main thread, while its workers still count:
 *      early tables cost nothing, and only the last one is merged after the counting ends.
 *      This needs MPI_THREAD_MULTIPLE (libweft_mpi's progress thread calls MPI too); the
 *      workers never call MPI.
 *
 * Rank 0 prints
 *   words=N distinct=D files=F bytes=B time_ns=T ranks=R threads=W
 * (T from after start-up to the merged result; W the workers per rank), then the K most frequent
 * words (--top, default 10) as "COUNT WORD". --dump PATH writes every word as "COUNT WORD", in
 * byte order of the words. --check recounts every file on rank 0 alone, one file after another
 * with no chunks and no weft, and compares every word's count: "check=ok", or exit status 1.
 *
 * Exit status: 0; 1 for a failed check, an unreadable file or no memory (on every rank, after a
 * message from the rank that saw it); 2 for bad usage. Limit: a rank's flattened table must fit
 * in 2 GiB, since MPI counts in int.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <mpi.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <weft.h>
#include <weft_mpi.h>

/* ---------------------------------------------------------------------------------------------
 * A word table: open addressing over (hash, count, offset, length) slots, the words' bytes in
 * one arena.
 */

struct slot {
    uint64_t hash;
    uint64_t count; /* 0: empty */
    size_t off;
    size_t len;
};

struct table {
    struct slot *slots;
    size_t cap; /* a power of two */
    size_t used;
    char *arena;
    size_t arena_len, arena_cap;
    uint64_t words; /* sum of the counts */
};

static uint64_t hash_word(const char *w, size_t len)
{
    uint64_t h = 0xcbf29ce484222325u; /* FNV-1a */
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)w[i];
        h *= 0x100000001b3u;
    }
    return h ^ (h >> 29);
}

static struct table *table_new(void)
{
    struct table *t = calloc(1, sizeof *t);
    if (t == NULL)
        return NULL;
    t->cap = 1024;
    t->slots = calloc(t->cap, sizeof *t->slots);
    if (t->slots == NULL) {
        free(t);
        return NULL;
    }
    return t;
}

static void table_free(struct table *t)
{
    if (t == NULL)
        return;
    free(t->slots);
    free(t->arena);
    free(t);
}

static int table_grow(struct table *t)
{
    size_t ncap = t->cap * 2;
    struct slot *ns = calloc(ncap, sizeof *ns);
    if (ns == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < t->cap; i++) {
        if (t->slots[i].count == 0)
            continue;
        size_t j = t->slots[i].hash & (ncap - 1);
        while (ns[j].count != 0)
            j = (j + 1) & (ncap - 1);
        ns[j] = t->slots[i];
    }
    free(t->slots);
    t->slots = ns;
    t->cap = ncap;
    return 0;
}

/* Adds n to the count of word w[0..len). 0 or -ENOMEM (the table unchanged). */
static int table_add(struct table *t, const char *w, size_t len, uint64_t h, uint64_t n)
{
    size_t j = h & (t->cap - 1);
    for (; t->slots[j].count != 0; j = (j + 1) & (t->cap - 1)) {
        struct slot *s = &t->slots[j];
        if (s->hash == h && s->len == len && memcmp(t->arena + s->off, w, len) == 0) {
            s->count += n;
            t->words += n;
            return 0;
        }
    }
    if (t->arena_cap - t->arena_len < len) {
        size_t ncap = t->arena_cap ? t->arena_cap * 2 : 4096;
        while (ncap - t->arena_len < len)
            ncap *= 2;
        char *na = realloc(t->arena, ncap);
        if (na == NULL)
            return -ENOMEM;
        t->arena = na;
        t->arena_cap = ncap;
    }
    memcpy(t->arena + t->arena_len, w, len);
    t->slots[j] = (struct slot){.hash = h, .count = n, .off = t->arena_len, .len = len};
    t->arena_len += len;
    t->used++;
    t->words += n;
    /* Keep the load at most 1/2: probes stay short. */
    if (t->used * 2 > t->cap && table_grow(t) != 0) {
        /* The word is in; only the growth failed. The table stays valid, just fuller: fail
         * anyway, since the next insertion might find no empty slot. */
        return -ENOMEM;
    }
    return 0;
}

static uint64_t table_get(const struct table *t, const char *w, size_t len)
{
    uint64_t h = hash_word(w, len);
    for (size_t j = h & (t->cap - 1); t->slots[j].count != 0; j = (j + 1) & (t->cap - 1)) {
        const struct slot *s = &t->slots[j];
        if (s->hash == h && s->len == len && memcmp(t->arena + s->off, w, len) == 0)
            return s->count;
    }
    return 0;
}

/* Adds every word of `from` into `to`. */
static int table_merge(struct table *to, const struct table *from)
{
    for (size_t i = 0; i < from->cap; i++) {
        const struct slot *s = &from->slots[i];
        if (s->count == 0)
            continue;
        int err = table_add(to, from->arena + s->off, s->len, s->hash, s->count);
        if (err != 0)
            return err;
    }
    return 0;
}

/* Flattened for MPI: per word, its count (8 bytes, host order), its length (4) and its bytes. */
static int table_flatten(const struct table *t, char **out, size_t *out_len)
{
    size_t len = t->used * 12 + t->arena_len;
    char *buf = malloc(len ? len : 1);
    if (buf == NULL)
        return -ENOMEM;
    char *p = buf;
    for (size_t i = 0; i < t->cap; i++) {
        const struct slot *s = &t->slots[i];
        if (s->count == 0)
            continue;
        uint32_t wl = (uint32_t)s->len;
        memcpy(p, &s->count, 8);
        memcpy(p + 8, &wl, 4);
        memcpy(p + 12, t->arena + s->off, s->len);
        p += 12 + s->len;
    }
    *out = buf;
    *out_len = len;
    return 0;
}

static int table_unflatten_into(struct table *t, const char *buf, size_t len)
{
    size_t i = 0;
    while (i < len) {
        uint64_t count;
        uint32_t wl;
        if (len - i < 12)
            return -EPROTO;
        memcpy(&count, buf + i, 8);
        memcpy(&wl, buf + i + 8, 4);
        if (len - i - 12 < wl)
            return -EPROTO;
        const char *w = buf + i + 12;
        int err = table_add(t, w, wl, hash_word(w, wl), count);
        if (err != 0)
            return err;
        i += 12 + (size_t)wl;
    }
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Counting
 */

static bool is_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

/* Reads up to len bytes at off; returns the bytes read (short only at end of file) or -errno. */
static ssize_t read_at(int fd, char *buf, size_t len, off_t off)
{
    size_t got = 0;
    while (got < len) {
        ssize_t n = pread(fd, buf + got, len - got, off + (off_t)got);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (n == 0)
            break;
        got += (size_t)n;
    }
    return (ssize_t)got;
}

/* A piece of one file: the words that start in [off, off + len). */
struct unit {
    unsigned file;
    off_t off;
    size_t len;
};

/*
 * Counts the words that start in [off, off + len) of fd into t. The byte before off says
 * whether the first bytes finish a word of the previous piece (skipped); the last word is read
 * to its end past off + len.
 */
static int count_piece(int fd, off_t off, size_t len, struct table *t)
{
    size_t lead = off > 0 ? 1 : 0;
    size_t cap = len + lead + 64;
    char *buf = malloc(cap);
    if (buf == NULL)
        return -ENOMEM;
    ssize_t got = read_at(fd, buf, len + lead, off - (off_t)lead);
    if (got < 0) {
        free(buf);
        return (int)got;
    }
    size_t n = (size_t)got, i = 0;
    size_t end = n < len + lead ? n : len + lead; /* words must start before this */
    bool eof = n < len + lead;
    if (lead != 0) {
        i = 1;
        if (n > 0 && !is_space((unsigned char)buf[0]))
            while (i < n && !is_space((unsigned char)buf[i]))
                i++;
    }
    int err = 0;
    while (err == 0) {
        while (i < end && is_space((unsigned char)buf[i]))
            i++;
        if (i >= end)
            break;
        size_t start = i;
        while (i < n && !is_space((unsigned char)buf[i]))
            i++;
        /* A word that reaches the end of what was read may go on in the file. */
        while (i == n && !eof) {
            if (cap - n < 4096) {
                size_t ncap = cap * 2 > n + 4096 ? cap * 2 : n + 4096;
                char *nb = realloc(buf, ncap);
                if (nb == NULL) {
                    err = -ENOMEM;
                    break;
                }
                buf = nb;
                cap = ncap;
            }
            got = read_at(fd, buf + n, 4096, off - (off_t)lead + (off_t)n);
            if (got < 0) {
                err = (int)got;
                break;
            }
            eof = got < 4096;
            n += (size_t)got;
            while (i < n && !is_space((unsigned char)buf[i]))
                i++;
        }
        if (err == 0)
            err = table_add(t, buf + start, i - start, hash_word(buf + start, i - start), 1);
    }
    free(buf);
    return err;
}

/* No file to blame: an error of memory, not of a file. */
#define NO_FILE UINT_MAX

/* One rank's share of the work, and its outcome. */
struct job {
    int *fds; /* this rank's files, open; -1 for the others */
    struct unit *units;
    size_t nunits;
    uint64_t bytes;         /* in this rank's files */
    struct table *table;    /* the result of count_task */
    atomic_int error;       /* the first error: 0 or -errno */
    atomic_uint error_file; /* its file, or NO_FILE */
};

static void job_fail(struct job *j, int err, unsigned file)
{
    int none = 0;
    /* relaxed: read by the main thread after weft_parallel_reduce has returned, which orders
     * every body and combine before its return. */
    if (atomic_compare_exchange_strong_explicit(&j->error, &none, err, memory_order_relaxed,
                                                memory_order_relaxed))
        atomic_store_explicit(&j->error_file, file, memory_order_relaxed);
}

static void count_units(size_t lo, size_t hi, void *acc, void *ctx)
{
    struct job *j = ctx;
    struct table **t = acc;
    if (atomic_load_explicit(&j->error, memory_order_relaxed) != 0)
        return; /* relaxed: only an early exit; the result is discarded anyway */
    if (*t == NULL && (*t = table_new()) == NULL) {
        job_fail(j, -ENOMEM, NO_FILE);
        return;
    }
    for (size_t u = lo; u < hi; u++) {
        const struct unit *un = &j->units[u];
        int err = count_piece(j->fds[un->file], un->off, un->len, *t);
        if (err != 0) {
            job_fail(j, err, un->file);
            return;
        }
    }
}

static void merge_tables(void *acc, const void *other, void *ctx)
{
    struct job *j = ctx;
    struct table **into = acc;
    struct table *from = *(struct table *const *)other;
    if (from == NULL)
        return;
    if (*into == NULL) {
        *into = from;
        return;
    }
    /* Merge the smaller into the larger. */
    if ((*into)->used < from->used) {
        struct table *tmp = *into;
        *into = from;
        from = tmp;
    }
    if (table_merge(*into, from) != 0)
        job_fail(j, -ENOMEM, NO_FILE);
    table_free(from);
}

/* The task that counts a rank's chunks: a reduction over them on the pool it runs on. */
static int count_task(void *arg, void **result)
{
    (void)result;
    struct job *j = arg;
    struct table *none = NULL;
    /* Grain 1: a chunk is already a good task, and the files may differ a lot in size. */
    int err = weft_parallel_reduce(NULL, 0, j->nunits, 1, sizeof(struct table *), &none,
                                   count_units, merge_tables, j, &j->table);
    if (err != 0)
        job_fail(j, err, NO_FILE);
    else if (j->table == NULL && (j->table = table_new()) == NULL)
        job_fail(j, -ENOMEM, NO_FILE); /* no chunks here: an empty table */
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * The job
 */

struct options {
    unsigned threads;
    size_t chunk;
    unsigned top;
    bool check;
    const char *dump;
    int nfiles;
    char **files;
};

static int usage(FILE *to)
{
    fprintf(to, "usage: mpirun -np R weft-wordcount [--threads N] [--chunk BYTES] [--top K] "
                "[--check] [--dump PATH] FILE...\n");
    return 2;
}

static bool parse_size(const char *s, unsigned long long max, unsigned long long *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (*s == '\0' || *s == '-' || *end != '\0' || errno != 0 || v > max)
        return false;
    *out = v;
    return true;
}

static int parse_options(int argc, char **argv, struct options *o)
{
    *o = (struct options){.chunk = 1u << 20, .top = 10};
    int i = 1;
    for (; i < argc; i++) {
        unsigned long long v;
        const char *a = argv[i];
        if (strcmp(a, "--") == 0) {
            i++;
            break;
        }
        if (a[0] != '-')
            break;
        if (strcmp(a, "--check") == 0) {
            o->check = true;
        } else if (i + 1 >= argc) {
            fprintf(stderr, "weft-wordcount: '%s' wants a value or is unknown\n", a);
            return usage(stderr);
        } else if (strcmp(a, "--threads") == 0 && parse_size(argv[i + 1], WEFT_MAX_THREADS, &v)) {
            o->threads = (unsigned)v;
            i++;
        } else if (strcmp(a, "--chunk") == 0 && parse_size(argv[i + 1], SIZE_MAX / 4, &v) &&
                   v > 0) {
            o->chunk = (size_t)v;
            i++;
        } else if (strcmp(a, "--top") == 0 && parse_size(argv[i + 1], 1000000, &v)) {
            o->top = (unsigned)v;
            i++;
        } else if (strcmp(a, "--dump") == 0) {
            o->dump = argv[++i];
        } else {
            fprintf(stderr, "weft-wordcount: bad option or value: '%s %s'\n", a, argv[i + 1]);
            return usage(stderr);
        }
    }
    o->nfiles = argc - i;
    o->files = argv + i;
    if (o->nfiles == 0) {
        fprintf(stderr, "weft-wordcount: no input files\n");
        return usage(stderr);
    }
    return 0;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Whether any rank failed: every rank learns it, so all leave together. */
static bool any_failed(bool failed)
{
    int mine = failed, any = 0;
    MPI_Allreduce(&mine, &any, 1, MPI_INT, MPI_LOR, MPI_COMM_WORLD);
    return any != 0;
}

/* LPT: files by size, largest first, each to the least-loaded rank (ties: lowest index). */
static void split_files(const uint64_t *sizes, int nfiles, int nranks, int *owner)
{
    int *order = malloc((size_t)nfiles * sizeof *order);
    uint64_t *load = calloc((size_t)nranks, sizeof *load);
    if (order == NULL || load == NULL) {
        /* Owner -1 marks the failure, which the caller reports; a fallback split could differ
         * between ranks. */
        free(order);
        free(load);
        for (int f = 0; f < nfiles; f++)
            owner[f] = -1;
        return;
    }
    for (int f = 0; f < nfiles; f++)
        order[f] = f;
    /* Insertion sort, stable: the file lists of a batch job are thousands, not millions. */
    for (int a = 1; a < nfiles; a++) {
        int f = order[a], b = a;
        while (b > 0 && sizes[order[b - 1]] < sizes[f]) {
            order[b] = order[b - 1];
            b--;
        }
        order[b] = f;
    }
    for (int a = 0; a < nfiles; a++) {
        int best = 0;
        for (int r = 1; r < nranks; r++)
            if (load[r] < load[best])
                best = r;
        owner[order[a]] = best;
        load[best] += sizes[order[a]];
    }
    free(order);
    free(load);
}

/* Entries of a table, for sorting. */
struct entry {
    const char *w;
    size_t len;
    uint64_t count;
};

static int by_word(const void *a, const void *b)
{
    const struct entry *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->w, y->w, n);
    if (c != 0)
        return c;
    return (x->len > y->len) - (x->len < y->len);
}

static int by_count(const void *a, const void *b)
{
    const struct entry *x = a, *y = b;
    if (x->count != y->count)
        return x->count < y->count ? 1 : -1;
    return by_word(a, b);
}

static struct entry *table_entries(const struct table *t)
{
    struct entry *e = malloc((t->used ? t->used : 1) * sizeof *e);
    if (e == NULL)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < t->cap; i++)
        if (t->slots[i].count != 0)
            e[k++] = (struct entry){t->arena + t->slots[i].off, t->slots[i].len, t->slots[i].count};
    return e;
}

/* "COUNT WORD": the word's bytes as they are. */
static void print_entry(FILE *fp, const struct entry *e)
{
    fprintf(fp, "%llu ", (unsigned long long)e->count);
    fwrite(e->w, 1, e->len, fp);
    fputc('\n', fp);
}

/* The serial recount of --check: whole files, one after another. */
static int recount_serial(const struct options *o, struct table *t)
{
    for (int f = 0; f < o->nfiles; f++) {
        int fd = open(o->files[f], O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            return -errno;
        struct stat st;
        int err = fstat(fd, &st) == 0 ? 0 : -errno;
        if (err == 0 && st.st_size > 0)
            err = count_piece(fd, 0, (size_t)st.st_size, t);
        close(fd);
        if (err != 0)
            return err;
    }
    return 0;
}

static bool tables_equal(const struct table *a, const struct table *b)
{
    if (a->used != b->used || a->words != b->words)
        return false;
    for (size_t i = 0; i < a->cap; i++) {
        const struct slot *s = &a->slots[i];
        if (s->count != 0 && table_get(b, a->arena + s->off, s->len) != s->count)
            return false;
    }
    return true;
}

/* Rank 0's report: the line, the top words, the dump and the check. Returns the exit status. */
static int report(const struct options *o, const struct table *t, uint64_t bytes, uint64_t elapsed,
                  int nranks, unsigned threads)
{
    printf("words=%llu distinct=%zu files=%d bytes=%llu time_ns=%llu ranks=%d threads=%u\n",
           (unsigned long long)t->words, t->used, o->nfiles, (unsigned long long)bytes,
           (unsigned long long)elapsed, nranks, threads);
    struct entry *e = table_entries(t);
    if (e == NULL) {
        fprintf(stderr, "weft-wordcount: out of memory\n");
        return 1;
    }
    qsort(e, t->used, sizeof *e, by_count);
    for (size_t i = 0; i < t->used && i < o->top; i++)
        print_entry(stdout, &e[i]);
    int status = 0;
    if (o->dump != NULL) {
        qsort(e, t->used, sizeof *e, by_word);
        FILE *fp = fopen(o->dump, "w");
        if (fp == NULL) {
            fprintf(stderr, "weft-wordcount: %s: %s\n", o->dump, strerror(errno));
            status = 1;
        } else {
            for (size_t i = 0; i < t->used; i++)
                print_entry(fp, &e[i]);
            if (fclose(fp) != 0) {
                fprintf(stderr, "weft-wordcount: %s: %s\n", o->dump, strerror(errno));
                status = 1;
            }
        }
    }
    free(e);
    if (o->check) {
        struct table *serial = table_new();
        int err = serial != NULL ? recount_serial(o, serial) : -ENOMEM;
        if (err != 0) {
            fprintf(stderr, "weft-wordcount: --check: %s\n", strerror(-err));
            status = 1;
        } else if (!tables_equal(t, serial)) {
            fprintf(stderr,
                    "weft-wordcount: --check: the serial count differs: words=%llu "
                    "distinct=%zu\n",
                    (unsigned long long)serial->words, serial->used);
            status = 1;
        } else {
            printf("check=ok\n");
        }
        table_free(serial);
    }
    return status;
}

/* ---------------------------------------------------------------------------------------------
 * Bringing the tables to rank 0
 *
 * Every other rank sends rank 0 a header and then, unless it failed, its flattened table. Rank 0
 * posts the header receives before it starts its own count, makes each receive a future with
 * weft_mpi_future, and takes them from one completion set together with the future of its own
 * count. A header makes it post the receive of that rank's table (another future in the set); a
 * table is merged on the main thread into `remote`, while the workers still count rank 0's own
 * chunks. So the tables that arrive early are merged while there is still counting to do, and
 * nobody waits for the slowest rank before merging the rest.
 */

enum { TAG_HEADER = 1, TAG_TABLE = 2 };

/* The first message: the length of the flattened table that follows (FAILED_LEN: none follows,
 * the sender failed and said why), the sender's word count and its bytes. */
#define FAILED_LEN   UINT64_MAX
#define HEADER_WORDS 3

struct header {
    uint64_t len, words, bytes;
};

/* A rank other than 0: its header, then its table. */
static void send_table(const struct job *j, bool failed, int rank)
{
    struct header h = {.len = FAILED_LEN, .words = 0, .bytes = j->bytes};
    char *flat = NULL;
    size_t len = 0;
    if (!failed) {
        if (table_flatten(j->table, &flat, &len) != 0 || len > INT_MAX)
            fprintf(stderr, "weft-wordcount: rank %d: cannot send a table of %zu bytes\n", rank,
                    len);
        else
            h = (struct header){.len = len, .words = j->table->words, .bytes = j->bytes};
    }
    MPI_Send(&h, HEADER_WORDS, MPI_UINT64_T, 0, TAG_HEADER, MPI_COMM_WORLD);
    if (h.len != FAILED_LEN)
        MPI_Send(flat, (int)len, MPI_BYTE, 0, TAG_TABLE, MPI_COMM_WORLD);
    free(flat);
}

/* Rank 0's side of the exchange. */
struct collect {
    weft_pool *pool;
    weft_completion *set;
    struct header *headers; /* by rank */
    char **tables;          /* by rank: the flattened table being received */
    struct table *remote;   /* the other ranks' tables, merged */
    uint64_t words, bytes;  /* the other ranks' totals, from their headers */
    bool failed;
};

static void arrived(struct collect *c, const MPI_Status *st);

/* Posts a receive and puts its future in the set. If weft cannot take the request (no memory),
 * it is waited for here instead, and handled at once. */
static void post_recv(struct collect *c, void *buf, int count, MPI_Datatype type, int source,
                      int tag)
{
    MPI_Request req;
    MPI_Irecv(buf, count, type, source, tag, MPI_COMM_WORLD, &req);
    weft_future *f;
    if (weft_mpi_future(c->pool, &req, &f) == 0) {
        if (weft_completion_add(c->set, f) != 0) {
            void *st;
            if (weft_future_result(f, &st) == 0)
                arrived(c, st);
            else
                c->failed = true;
        }
        weft_future_release(f);
        return;
    }
    MPI_Status st;
    MPI_Wait(&req, &st);
    arrived(c, &st);
}

/* A header or a table has come in. */
static void arrived(struct collect *c, const MPI_Status *st)
{
    int r = st->MPI_SOURCE;
    struct header *h = &c->headers[r];
    if (st->MPI_TAG == TAG_HEADER) {
        c->bytes += h->bytes;
        if (h->len == FAILED_LEN) {
            c->failed = true;
            return;
        }
        c->words += h->words;
        c->tables[r] = malloc(h->len ? h->len : 1);
        if (c->tables[r] == NULL) {
            /* The table is on its way and must land somewhere: give up the whole job. */
            fprintf(stderr, "weft-wordcount: no memory for the table of rank %d\n", r);
            MPI_Abort(MPI_COMM_WORLD, 1);
        }
        post_recv(c, c->tables[r], (int)h->len, MPI_BYTE, r, TAG_TABLE);
        return;
    }
    if (!c->failed && table_unflatten_into(c->remote, c->tables[r], h->len) != 0) {
        fprintf(stderr, "weft-wordcount: cannot merge the table of rank %d\n", r);
        c->failed = true;
    }
    free(c->tables[r]);
    c->tables[r] = NULL;
}

/* Rank 0: counts its own share on the pool while it receives and merges everyone else's. On
 * return job->table holds rank 0's count and c->remote the others'. */
static void count_and_collect(struct collect *c, struct job *job, int nranks)
{
    for (int r = 1; r < nranks; r++)
        post_recv(c, &c->headers[r], HEADER_WORDS, MPI_UINT64_T, r, TAG_HEADER);

    weft_future *own = NULL;
    int err = weft_submit(c->pool, count_task, job, &own);
    if (err != 0) {
        fprintf(stderr, "weft-wordcount: rank 0: weft_submit: %s\n", weft_strerror(err));
        c->failed = true;
    } else if (weft_completion_add(c->set, own) != 0) {
        /* Not in the set: waited for on its own after the loop. */
    }

    weft_future *f;
    while (weft_completion_next(c->set, WEFT_FOREVER, &f) == 0) {
        if (f != own) {
            void *st;
            if (weft_future_result(f, &st) == 0)
                arrived(c, st);
            else
                c->failed = true; /* cancelled at MPI_Finalize: not before it, here */
        }
        weft_future_release(f);
    }
    if (own != NULL) {
        weft_future_wait(own, WEFT_FOREVER);
        weft_future_release(own);
    }
}

int main(int argc, char **argv)
{
    int provided, rank, nranks;
    /* MULTIPLE: weft_mpi_future's progress thread calls MPI beside the main thread. */
    if (MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided) != MPI_SUCCESS)
        return 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &nranks);

    struct options o;
    int status = parse_options(argc, argv, &o);
    if (status != 0) {
        MPI_Finalize();
        return status; /* every rank parsed the same arguments and failed alike */
    }
    if (provided < MPI_THREAD_MULTIPLE) {
        if (rank == 0)
            fprintf(stderr, "weft-wordcount: MPI gives no MPI_THREAD_MULTIPLE\n");
        MPI_Finalize();
        return 1;
    }

    struct job job = {.fds = NULL};
    uint64_t *sizes = calloc((size_t)o.nfiles, sizeof *sizes);
    int *owner = calloc((size_t)o.nfiles, sizeof *owner);
    job.fds = malloc((size_t)o.nfiles * sizeof *job.fds);
    weft_pool *pool = NULL;
    struct collect coll = {.pool = NULL};
    bool failed = sizes == NULL || owner == NULL || job.fds == NULL;
    if (job.fds != NULL)
        for (int f = 0; f < o.nfiles; f++)
            job.fds[f] = -1;

    weft_config cfg;
    weft_config_init(&cfg);
    cfg.threads = o.threads;
    cfg.name = "wordcount";
    int err = weft_pool_create(&cfg, &pool);
    if (err != 0) {
        fprintf(stderr, "weft-wordcount: rank %d: weft_pool_create: %s\n", rank,
                weft_strerror(err));
        failed = true;
    }
    if (any_failed(failed))
        goto out;
    unsigned threads = weft_pool_size(pool);

    MPI_Barrier(MPI_COMM_WORLD);
    uint64_t t0 = now_ns();

    /* 1. The sizes, measured once, on rank 0; then everyone computes the same split. */
    if (rank == 0) {
        for (int f = 0; f < o.nfiles; f++) {
            struct stat st;
            const char *why = NULL;
            if (stat(o.files[f], &st) != 0)
                why = strerror(errno);
            else if (!S_ISREG(st.st_mode))
                why = "not a regular file";
            if (why != NULL) {
                fprintf(stderr, "weft-wordcount: %s: %s\n", o.files[f], why);
                failed = true;
                break;
            }
            sizes[f] = (uint64_t)st.st_size;
        }
    }
    if (any_failed(failed))
        goto out;
    MPI_Bcast(sizes, o.nfiles, MPI_UINT64_T, 0, MPI_COMM_WORLD);
    split_files(sizes, o.nfiles, nranks, owner);

    /* 2. This rank's files, in chunks. */
    for (int f = 0; f < o.nfiles && !failed; f++) {
        if (owner[f] < 0) {
            failed = true;
            fprintf(stderr, "weft-wordcount: rank %d: out of memory\n", rank);
        } else if (owner[f] == rank) {
            job.fds[f] = open(o.files[f], O_RDONLY | O_CLOEXEC);
            if (job.fds[f] < 0) {
                fprintf(stderr, "weft-wordcount: rank %d: %s: %s\n", rank, o.files[f],
                        strerror(errno));
                failed = true;
            }
            job.nunits += (size_t)((sizes[f] + o.chunk - 1) / o.chunk);
            job.bytes += sizes[f];
        }
    }
    if (!failed) {
        job.units = malloc((job.nunits ? job.nunits : 1) * sizeof *job.units);
        failed = job.units == NULL;
    }
    if (any_failed(failed))
        goto out;
    size_t u = 0;
    for (int f = 0; f < o.nfiles; f++) {
        if (owner[f] != rank)
            continue;
        for (uint64_t off = 0; off < sizes[f]; off += o.chunk) {
            uint64_t left = sizes[f] - off;
            job.units[u++] = (struct unit){.file = (unsigned)f,
                                           .off = (off_t)off,
                                           .len = (size_t)(left < o.chunk ? left : o.chunk)};
        }
    }

    /* 3. Count on the pool; rank 0 meanwhile collects and merges the other ranks' tables. */
    if (rank == 0) {
        coll.pool = pool;
        coll.headers = calloc((size_t)nranks, sizeof *coll.headers);
        coll.tables = calloc((size_t)nranks, sizeof *coll.tables);
        coll.remote = table_new();
        err = weft_completion_create(&coll.set);
        if (coll.headers == NULL || coll.tables == NULL || coll.remote == NULL || err != 0) {
            /* The other ranks send all the same: nothing can receive it. */
            fprintf(stderr, "weft-wordcount: rank 0: out of memory\n");
            MPI_Abort(MPI_COMM_WORLD, 1);
        }
        count_and_collect(&coll, &job, nranks);
    } else {
        err = weft_pool_run(pool, count_task, &job, NULL);
        if (err != 0)
            job_fail(&job, err, NO_FILE);
    }
    /* relaxed: the count's tasks have finished (weft_pool_run or the future's wait) */
    if ((err = atomic_load_explicit(&job.error, memory_order_relaxed)) != 0) {
        unsigned f = atomic_load_explicit(&job.error_file, memory_order_relaxed);
        fprintf(stderr, "weft-wordcount: rank %d: %s%s%s\n", rank, f == NO_FILE ? "" : o.files[f],
                f == NO_FILE ? "" : ": ", strerror(-err));
        failed = true;
    }
    if (rank != 0) {
        send_table(&job, failed, rank);
    } else if (!failed && !coll.failed) {
        uint64_t remote_words = coll.remote->words;
        if (table_merge(job.table, coll.remote) != 0) {
            fprintf(stderr, "weft-wordcount: rank 0: out of memory while merging\n");
            failed = true;
        } else if (remote_words != coll.words) {
            fprintf(stderr, "weft-wordcount: the tables hold %llu words, the ranks counted %llu\n",
                    (unsigned long long)remote_words, (unsigned long long)coll.words);
            failed = true;
        } else {
            uint64_t t1 = now_ns();
            status = report(&o, job.table, job.bytes + coll.bytes, t1 - t0, nranks, threads);
        }
    } else {
        failed = true;
    }

out:
    if (failed)
        status = 1;
    /* The exit status is rank 0's verdict, on every rank. */
    MPI_Bcast(&status, 1, MPI_INT, 0, MPI_COMM_WORLD);
    weft_completion_destroy(coll.set);
    weft_pool_destroy(pool);
    if (job.fds != NULL)
        for (int f = 0; f < o.nfiles; f++)
            if (job.fds[f] >= 0)
                close(job.fds[f]);
    free(job.fds);
    free(job.units);
    table_free(job.table);
    free(sizes);
    free(owner);
    free(coll.headers);
    if (coll.tables != NULL)
        for (int r = 0; r < nranks; r++)
            free(coll.tables[r]);
    free(coll.tables);
    table_free(coll.remote);
    MPI_Finalize();
    return status;
}
