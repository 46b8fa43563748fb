/* SPDX-License-Identifier: MIT */
#include "topology.h"

#include "alloc.h"
#include "platform.h"

#include <errno.h>
#include <pthread.h>
#include <hwloc.h>
#include <hwloc/glibc-sched.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <unistd.h>
#include <string.h>

static int read_two(const char *path, long long *a, long long *b, int *got)
{
    FILE *fp = fopen(path, "re");
    if (fp == NULL)
        return -1;
    char buf[128];
    char *line = fgets(buf, sizeof(buf), fp);
    fclose(fp);
    if (line == NULL)
        return -1;
    if (strncmp(line, "max", 3) == 0) {
        *got = 0;
        return 0;
    }
    *got = sscanf(line, "%lld %lld", a, b);
    return 0;
}

/* Quota over period, rounded up, or 0 for none. */
static unsigned quota_cpus(long long quota, long long period)
{
    if (quota <= 0 || period <= 0)
        return 0;
    return (unsigned)((quota + period - 1) / period);
}

/* The process's cgroup path for a controller ("" for the v2 unified hierarchy). */
static int cgroup_path(const char *controller, char *out, size_t len)
{
    FILE *fp = fopen("/proc/self/cgroup", "re");
    if (fp == NULL)
        return -1;
    char line[512];
    int found = -1;
    while (fgets(line, sizeof(line), fp) != NULL) {
        char *c1 = strchr(line, ':');
        char *c2 = c1 != NULL ? strchr(c1 + 1, ':') : NULL;
        if (c2 == NULL)
            continue;
        *c2 = '\0';
        const char *ctrls = c1 + 1;
        bool match = controller[0] == '\0' ? ctrls[0] == '\0' : false;
        if (!match && controller[0] != '\0') {
            char tmp[256];
            snprintf(tmp, sizeof(tmp), "%s", ctrls);
            for (char *tok = strtok(tmp, ","); tok != NULL; tok = strtok(NULL, ","))
                match = match || strcmp(tok, controller) == 0;
        }
        if (match) {
            char *p = c2 + 1;
            p[strcspn(p, "\n")] = '\0';
            snprintf(out, len, "%s", p);
            found = 0;
            break;
        }
    }
    fclose(fp);
    return found;
}

unsigned weft__cgroup_cpu_limit(void)
{
    char rel[256], path[600];
    long long a = 0, b = 0;
    int got = 0;
    /* cgroup v2: cpu.max holds "QUOTA PERIOD" or "max PERIOD". */
    if (cgroup_path("", rel, sizeof(rel)) == 0) {
        snprintf(path, sizeof(path), "/sys/fs/cgroup%s/cpu.max", rel);
        if (read_two(path, &a, &b, &got) == 0 ||
            read_two("/sys/fs/cgroup/cpu.max", &a, &b, &got) == 0)
            return got == 2 ? quota_cpus(a, b) : 0;
    }
    /* cgroup v1: cpu.cfs_quota_us (-1: none) and cpu.cfs_period_us. */
    if (cgroup_path("cpu", rel, sizeof(rel)) != 0)
        rel[0] = '\0';
    const char *roots[] = {"/sys/fs/cgroup/cpu,cpuacct", "/sys/fs/cgroup/cpu"};
    for (size_t r = 0; r < 2; r++) {
        for (int attempt = 0; attempt < 2; attempt++) {
            const char *sub = attempt == 0 ? rel : "";
            snprintf(path, sizeof(path), "%s%s/cpu.cfs_quota_us", roots[r], sub);
            if (read_two(path, &a, &b, &got) != 0 || got < 1)
                continue;
            snprintf(path, sizeof(path), "%s%s/cpu.cfs_period_us", roots[r], sub);
            long long period = 0, unused;
            int got2 = 0;
            if (read_two(path, &period, &unused, &got2) != 0 || got2 < 1)
                continue;
            return quota_cpus(a, period);
        }
    }
    return 0;
}

unsigned weft__affinity_cpus(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0)
        return (unsigned)CPU_COUNT(&set);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (unsigned)n : 1;
}

/* The machine's topology, loaded once per process and only when something needs it (loading
 * takes milliseconds: a pool made with the default thread count paid that every time). It is
 * the library's one process-wide object besides the thread-locals: immutable once loaded,
 * read concurrently (hwloc allows concurrent reads of a loaded topology), never freed. The
 * CPUs the process may use are read again at every use, since its affinity may change. */
static pthread_once_t topo_once = PTHREAD_ONCE_INIT;
static hwloc_topology_t topo_shared; /* NULL: hwloc could not load it */

static void topo_load_once(void)
{
    hwloc_topology_t topo;
    if (hwloc_topology_init(&topo) != 0) {
        weft__debug("hwloc_topology_init failed (%s); using sched_getaffinity", strerror(errno));
        return;
    }
    if (hwloc_topology_load(topo) != 0) {
        weft__debug("hwloc_topology_load failed (%s); using sched_getaffinity", strerror(errno));
        hwloc_topology_destroy(topo);
        return;
    }
    topo_shared = topo;
}

/* The topology and the process's allowed CPU set (the caller frees *allowed, never *topo);
 * false (with a debug message, once) when hwloc cannot. */
static bool load(hwloc_topology_t *topo, hwloc_bitmap_t *allowed)
{
    pthread_once(&topo_once, topo_load_once); /* its memory effects are seen by every caller */
    if (topo_shared == NULL)
        return false;
    *topo = topo_shared;
    *allowed = hwloc_bitmap_alloc();
    if (*allowed == NULL)
        return false;
    if (hwloc_get_cpubind(*topo, *allowed, HWLOC_CPUBIND_PROCESS) != 0)
        hwloc_bitmap_copy(*allowed, hwloc_topology_get_allowed_cpuset(*topo));
    hwloc_bitmap_and(*allowed, *allowed, hwloc_topology_get_allowed_cpuset(*topo));
    if (hwloc_bitmap_iszero(*allowed))
        hwloc_bitmap_copy(*allowed, hwloc_topology_get_topology_cpuset(*topo));
    return true;
}

int weft_machine_query(weft_machine_info *out)
{
    if (out == NULL)
        return -EINVAL;
    memset(out, 0, sizeof(*out));
    hwloc_topology_t topo;
    hwloc_bitmap_t allowed;
    if (load(&topo, &allowed)) {
        int cores = hwloc_get_nbobjs_inside_cpuset_by_type(topo, allowed, HWLOC_OBJ_CORE);
        int pus = hwloc_get_nbobjs_inside_cpuset_by_type(topo, allowed, HWLOC_OBJ_PU);
        out->cores = cores > 0 ? (unsigned)cores : 0;
        out->pus = pus > 0 ? (unsigned)pus : 0;
        out->hwloc = true;
        hwloc_bitmap_free(allowed);
    }
    out->affinity_cpus = weft__affinity_cpus();
    out->cgroup_cpus = weft__cgroup_cpu_limit();
    out->default_threads = weft__default_threads();
    return 0;
}

int weft_bind_plan(weft_bind bind, unsigned n, int *cpus)
{
    if ((unsigned)bind > WEFT_BIND_SPREAD || n == 0 || n > WEFT_MAX_THREADS || cpus == NULL)
        return -EINVAL;
    if (bind == WEFT_BIND_NONE) {
        for (unsigned i = 0; i < n; i++)
            cpus[i] = -1;
        return 0;
    }
    cpu_set_t *sets = weft__calloc(n, sizeof(*sets));
    if (sets == NULL)
        return -ENOMEM;
    int rc = weft__bind_sets(bind, n, sets);
    for (unsigned i = 0; rc == 0 && i < n; i++) {
        cpus[i] = -1;
        for (int c = 0; c < CPU_SETSIZE; c++) {
            if (CPU_ISSET(c, &sets[i])) {
                cpus[i] = c;
                break;
            }
        }
    }
    weft__free(sets);
    return rc;
}

unsigned weft__default_threads(void)
{
    unsigned n;
    hwloc_topology_t topo;
    hwloc_bitmap_t allowed;
    if (load(&topo, &allowed)) {
        int cores = hwloc_get_nbobjs_inside_cpuset_by_type(topo, allowed, HWLOC_OBJ_CORE);
        if (cores <= 0)
            cores = hwloc_get_nbobjs_inside_cpuset_by_type(topo, allowed, HWLOC_OBJ_PU);
        n = cores > 0 ? (unsigned)cores : weft__affinity_cpus();
        hwloc_bitmap_free(allowed);
    } else {
        n = weft__affinity_cpus();
    }
    unsigned quota = weft__cgroup_cpu_limit();
    if (quota > 0 && quota < n)
        n = quota;
    if (n > WEFT_MAX_THREADS)
        n = WEFT_MAX_THREADS;
    return n > 0 ? n : 1;
}

static void fallback_sets(weft_bind bind, unsigned n, cpu_set_t *sets)
{
    cpu_set_t mask;
    int cpus[CPU_SETSIZE], ncpu = 0;
    if (sched_getaffinity(0, sizeof(mask), &mask) == 0) {
        for (int c = 0; c < CPU_SETSIZE; c++) {
            if (CPU_ISSET(c, &mask))
                cpus[ncpu++] = c;
        }
    }
    if (ncpu == 0)
        cpus[ncpu++] = 0;
    for (unsigned i = 0; i < n; i++) {
        CPU_ZERO(&sets[i]);
        unsigned k = i;
        if (bind == WEFT_BIND_SPREAD && n < (unsigned)ncpu)
            k = i * ((unsigned)ncpu / n);
        CPU_SET(cpus[k % (unsigned)ncpu], &sets[i]);
    }
}

int weft__bind_sets(weft_bind bind, unsigned n, cpu_set_t *sets)
{
    hwloc_topology_t topo;
    hwloc_bitmap_t allowed;
    if (!load(&topo, &allowed)) {
        fallback_sets(bind, n, sets);
        return 0;
    }
    int rc = 0;
    int npu = hwloc_get_nbobjs_inside_cpuset_by_type(topo, allowed, HWLOC_OBJ_PU);
    if (npu <= 0) {
        fallback_sets(bind, n, sets);
    } else if (bind == WEFT_BIND_COMPACT) {
        /* consecutive PUs in topology order: hyperthread siblings, then the next core */
        for (unsigned i = 0; i < n; i++) {
            hwloc_obj_t pu =
                hwloc_get_obj_inside_cpuset_by_type(topo, allowed, HWLOC_OBJ_PU, i % (unsigned)npu);
            hwloc_cpuset_to_glibc_sched_affinity(topo, pu->cpuset, &sets[i], sizeof(sets[i]));
        }
    } else {
        /* hwloc_distrib splits the allowed set as evenly as the tree allows: packages, then
         * cores; each worker then keeps one PU of its share. */
        hwloc_bitmap_t *parts = weft__calloc(n, sizeof(*parts));
        hwloc_obj_t root = hwloc_get_root_obj(topo);
        if (parts == NULL) {
            rc = -ENOMEM;
        } else if (hwloc_distrib(topo, &root, 1, parts, n, INT_MAX, 0) != 0) {
            fallback_sets(bind, n, sets);
        } else {
            for (unsigned i = 0; i < n; i++) {
                hwloc_bitmap_and(parts[i], parts[i], allowed);
                if (hwloc_bitmap_iszero(parts[i]))
                    hwloc_bitmap_copy(parts[i], allowed);
                hwloc_bitmap_singlify(parts[i]);
                hwloc_cpuset_to_glibc_sched_affinity(topo, parts[i], &sets[i], sizeof(sets[i]));
            }
        }
        if (parts != NULL) {
            for (unsigned i = 0; i < n; i++)
                hwloc_bitmap_free(parts[i]);
            weft__free(parts);
        }
    }
    hwloc_bitmap_free(allowed);
    return rc;
}
