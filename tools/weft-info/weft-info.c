/* SPDX-License-Identifier: MIT */
/*
 * weft-info: the machine as weft sees it, and what a pool created here would do with it.
 *
 * Usage: weft-info [--json] [-t THREADS]
 *
 * Prints the hwloc topology (machine, packages, cores and processing units with their OS
 * indexes, marking those in this process's affinity mask), the affinity mask and the cgroup CPU
 * quota, the default thread count and why it is what it is (cores in the mask, capped by the
 * quota, overridden by $WEFT_THREADS), where each worker would go under WEFT_BIND_COMPACT and
 * WEFT_BIND_SPREAD (weft_bind_plan), the weft environment variables in effect, and the version.
 * -t gives the placement for another number of workers. --json prints the same as one JSON
 * object. The counts come from weft_machine_query, so they are exactly what the library uses;
 * the tree is read with hwloc directly.
 */
#include "weft.h"

#include <errno.h>
#include <getopt.h>
#include <hwloc.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The environment variables weft reads, as README.md lists them. */
static const char *const weft_env[] = {
    "WEFT_THREADS",      "WEFT_BIND",  "WEFT_STACK_SIZE",  "WEFT_TRACE",
    "WEFT_TRACE_EVENTS", "WEFT_STATS", "WEFT_DISPLAY_ENV", "WEFT_DEBUG",
};
#define NENV (sizeof(weft_env) / sizeof(weft_env[0]))

typedef struct info {
    weft_machine_info mi;
    unsigned mask_units;     /* cores in the mask (hwloc), else CPUs in it */
    const char *env_threads; /* $WEFT_THREADS, NULL when unset or empty */
    bool env_valid;
    unsigned effective; /* workers a pool with threads = 0 gets now; 0: creation would fail */
    const char *source; /* cores, cgroup, affinity, env */
    char reason[256];
    unsigned plan_n; /* workers of the placement tables */
    int *compact, *spread;
    cpu_set_t affinity;
    bool have_affinity;
    char affinity_list[4096];
    hwloc_topology_t topo; /* NULL when hwloc could not load it */
    hwloc_bitmap_t allowed;
} info;

static const char *env(const char *name)
{
    const char *v = getenv(name);
    return v != NULL && v[0] != '\0' ? v : NULL;
}

/* $WEFT_THREADS as weft_pool_create parses it: 1..WEFT_MAX_THREADS, trailing blanks allowed. */
static bool parse_threads(const char *v, unsigned *out)
{
    char *end;
    errno = 0;
    long n = strtol(v, &end, 10);
    while (*end == ' ' || *end == '\t' || *end == '\n')
        end++;
    if (errno != 0 || end == v || *end != '\0' || n < 1 || n > (long)WEFT_MAX_THREADS)
        return false;
    *out = (unsigned)n;
    return true;
}

/* "0-3,8,10-11" */
static void cpu_list(const cpu_set_t *set, char *out, size_t len)
{
    size_t used = 0;
    out[0] = '\0';
    for (int c = 0; c < CPU_SETSIZE; c++) {
        if (!CPU_ISSET(c, set))
            continue;
        int last = c;
        while (last + 1 < CPU_SETSIZE && CPU_ISSET(last + 1, set))
            last++;
        int n = last == c ? snprintf(out + used, len - used, "%s%d", used ? "," : "", c)
                          : snprintf(out + used, len - used, "%s%d-%d", used ? "," : "", c, last);
        if (n < 0 || (size_t)n >= len - used)
            break;
        used += (size_t)n;
        c = last;
    }
}

static void explain(info *in)
{
    const weft_machine_info *mi = &in->mi;
    bool cores = mi->hwloc && mi->cores > 0;
    in->mask_units = cores ? mi->cores : mi->affinity_cpus;
    const char *unit = cores ? "cores" : "CPUs";
    if (mi->cgroup_cpus > 0 && mi->cgroup_cpus < in->mask_units) {
        in->source = "cgroup";
        snprintf(in->reason, sizeof(in->reason),
                 "the cgroup CPU quota (%u CPUs) is below the %u %s in the affinity mask",
                 mi->cgroup_cpus, in->mask_units, unit);
    } else {
        in->source = cores ? "cores" : "affinity";
        int n = snprintf(in->reason, sizeof(in->reason), "one worker per %s in the affinity mask",
                         cores ? "core" : "CPU");
        if (!cores)
            n += snprintf(in->reason + n, sizeof(in->reason) - (size_t)n,
                          " (hwloc could not load the topology)");
        if (mi->cgroup_cpus > 0)
            snprintf(in->reason + n, sizeof(in->reason) - (size_t)n,
                     "; the cgroup CPU quota (%u CPUs) is not lower", mi->cgroup_cpus);
        else
            snprintf(in->reason + n, sizeof(in->reason) - (size_t)n, "; no cgroup CPU quota");
    }
    in->effective = mi->default_threads;
    in->env_threads = env("WEFT_THREADS");
    if (in->env_threads != NULL) {
        unsigned n;
        in->env_valid = parse_threads(in->env_threads, &n);
        in->effective = in->env_valid ? n : 0;
    }
}

static int gather(info *in, unsigned plan_n)
{
    int rc = weft_machine_query(&in->mi);
    if (rc != 0)
        return rc;
    explain(in);
    in->plan_n = plan_n != 0 ? plan_n : in->effective != 0 ? in->effective : in->mi.default_threads;
    in->compact = calloc(in->plan_n, sizeof(int));
    in->spread = calloc(in->plan_n, sizeof(int));
    if (in->compact == NULL || in->spread == NULL)
        return -ENOMEM;
    rc = weft_bind_plan(WEFT_BIND_COMPACT, in->plan_n, in->compact);
    if (rc == 0)
        rc = weft_bind_plan(WEFT_BIND_SPREAD, in->plan_n, in->spread);
    if (rc != 0)
        return rc;

    in->have_affinity = sched_getaffinity(0, sizeof(in->affinity), &in->affinity) == 0;
    if (in->have_affinity)
        cpu_list(&in->affinity, in->affinity_list, sizeof(in->affinity_list));

    if (hwloc_topology_init(&in->topo) != 0) {
        in->topo = NULL;
    } else if (hwloc_topology_load(in->topo) != 0) {
        hwloc_topology_destroy(in->topo);
        in->topo = NULL;
    }
    if (in->topo != NULL) {
        in->allowed = hwloc_bitmap_alloc();
        if (in->allowed == NULL)
            return -ENOMEM;
        if (hwloc_get_cpubind(in->topo, in->allowed, HWLOC_CPUBIND_PROCESS) != 0)
            hwloc_bitmap_copy(in->allowed, hwloc_topology_get_allowed_cpuset(in->topo));
    }
    return 0;
}

static void release(info *in)
{
    free(in->compact);
    free(in->spread);
    if (in->allowed != NULL)
        hwloc_bitmap_free(in->allowed);
    if (in->topo != NULL)
        hwloc_topology_destroy(in->topo);
}

/* --- the topology tree --- */

/* The containers of cores: the packages, or the whole machine when hwloc reports none. */
static int ncontainers(hwloc_topology_t topo)
{
    int n = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_PACKAGE);
    return n > 0 ? n : 1;
}

static hwloc_obj_t container(hwloc_topology_t topo, int i)
{
    if (hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_PACKAGE) > 0)
        return hwloc_get_obj_by_type(topo, HWLOC_OBJ_PACKAGE, (unsigned)i);
    return hwloc_get_root_obj(topo);
}

/* The next core inside cont after prev; without cores in the topology, each PU stands for
 * one. */
static hwloc_obj_t next_core(hwloc_topology_t topo, hwloc_obj_t cont, hwloc_obj_t prev)
{
    hwloc_obj_type_t type =
        hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_CORE) > 0 ? HWLOC_OBJ_CORE : HWLOC_OBJ_PU;
    return hwloc_get_next_obj_inside_cpuset_by_type(topo, cont->cpuset, type, prev);
}

static hwloc_obj_t next_pu(hwloc_topology_t topo, hwloc_obj_t core, hwloc_obj_t prev)
{
    return hwloc_get_next_obj_inside_cpuset_by_type(topo, core->cpuset, HWLOC_OBJ_PU, prev);
}

static int count_inside(hwloc_topology_t topo, hwloc_obj_t obj, hwloc_obj_type_t type)
{
    return hwloc_get_nbobjs_inside_cpuset_by_type(topo, obj->cpuset, type);
}

static void hwloc_version_string(char *out, size_t len)
{
    unsigned v = hwloc_get_api_version();
    snprintf(out, len, "%u.%u.%u", v >> 16, (v >> 8) & 0xffu, v & 0xffu);
}

static void text_topology(const info *in)
{
    char ver[32];
    hwloc_version_string(ver, sizeof(ver));
    if (in->topo == NULL) {
        printf("Topology: hwloc (API %s) could not load it (weft counts CPUs with "
               "sched_getaffinity)\n",
               ver);
        return;
    }
    hwloc_topology_t topo = in->topo;
    hwloc_obj_t root = hwloc_get_root_obj(topo);
    int npkg = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_PACKAGE);
    int ncore = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_CORE);
    int npu = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_PU);
    int nnuma = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_NUMANODE);
    printf("Topology (hwloc API %s; * marks the PUs in this process's affinity mask):\n", ver);
    printf("  Machine: %.1f GiB, %d NUMA node%s, %d package%s, %d core%s, %d PU%s\n",
           (double)root->total_memory / (1u << 30), nnuma, nnuma == 1 ? "" : "s", npkg,
           npkg == 1 ? "" : "s", ncore, ncore == 1 ? "" : "s", npu, npu == 1 ? "" : "s");
    for (int i = 0; i < ncontainers(topo); i++) {
        hwloc_obj_t cont = container(topo, i);
        int c = count_inside(topo, cont, HWLOC_OBJ_CORE);
        if (cont->type == HWLOC_OBJ_PACKAGE)
            printf("    Package P#%u: %d core%s\n", cont->os_index, c, c == 1 ? "" : "s");
        else
            printf("    (no package reported)\n");
        for (hwloc_obj_t core = next_core(topo, cont, NULL); core != NULL;
             core = next_core(topo, cont, core)) {
            if (core->type == HWLOC_OBJ_CORE)
                printf("      Core P#%u:", core->os_index);
            else
                printf("      (no core reported):");
            for (hwloc_obj_t pu = next_pu(topo, core, NULL); pu != NULL;
                 pu = next_pu(topo, core, pu))
                printf(" PU P#%u%s", pu->os_index,
                       hwloc_bitmap_isset(in->allowed, pu->os_index) ? "*" : "");
            printf("\n");
        }
    }
}

static void json_string(const char *s)
{
    if (s == NULL) {
        fputs("null", stdout);
        return;
    }
    putchar('"');
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        if (*p == '"' || *p == '\\')
            printf("\\%c", *p);
        else if (*p < 0x20 || *p >= 0x7f)
            printf("\\u%04x", *p); /* bytes as code points: an environment need not be UTF-8 */
        else
            putchar(*p);
    }
    putchar('"');
}

static void json_topology(const info *in)
{
    char ver[32];
    hwloc_version_string(ver, sizeof(ver));
    printf("  \"hwloc_api_version\": \"%s\",\n  \"topology\": ", ver);
    if (in->topo == NULL) {
        printf("null,\n");
        return;
    }
    hwloc_topology_t topo = in->topo;
    hwloc_obj_t root = hwloc_get_root_obj(topo);
    printf("{\n    \"memory_bytes\": %llu,\n    \"numa_nodes\": %d,\n    \"packages\": [",
           (unsigned long long)root->total_memory,
           hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_NUMANODE));
    for (int i = 0; i < ncontainers(topo); i++) {
        hwloc_obj_t cont = container(topo, i);
        printf("%s\n      {\"os_index\": ", i > 0 ? "," : "");
        if (cont->type == HWLOC_OBJ_PACKAGE)
            printf("%u", cont->os_index);
        else
            printf("null");
        printf(", \"cores\": [");
        int k = 0;
        for (hwloc_obj_t core = next_core(topo, cont, NULL); core != NULL;
             core = next_core(topo, cont, core), k++) {
            printf("%s\n        {\"os_index\": ", k > 0 ? "," : "");
            if (core->type == HWLOC_OBJ_CORE)
                printf("%u", core->os_index);
            else
                printf("null");
            printf(", \"pus\": [");
            int j = 0;
            for (hwloc_obj_t pu = next_pu(topo, core, NULL); pu != NULL;
                 pu = next_pu(topo, core, pu), j++)
                printf("%s{\"os_index\": %u, \"allowed\": %s}", j > 0 ? ", " : "", pu->os_index,
                       hwloc_bitmap_isset(in->allowed, pu->os_index) ? "true" : "false");
            printf("]}");
        }
        printf("]}");
    }
    printf("\n    ]\n  },\n");
}

/* --- the two outputs --- */

static void print_text(const info *in)
{
    const weft_machine_info *mi = &in->mi;
    printf("weft %s\n\n", weft_version());
    text_topology(in);

    printf("\nAffinity mask:     %s (%u CPU%s)\n", in->have_affinity ? in->affinity_list : "?",
           mi->affinity_cpus, mi->affinity_cpus == 1 ? "" : "s");
    if (mi->hwloc)
        printf("In the mask:       %u core%s, %u PU%s\n", mi->cores, mi->cores == 1 ? "" : "s",
               mi->pus, mi->pus == 1 ? "" : "s");
    if (mi->cgroup_cpus > 0)
        printf("cgroup CPU quota:  %u CPU%s (rounded up)\n", mi->cgroup_cpus,
               mi->cgroup_cpus == 1 ? "" : "s");
    else
        printf("cgroup CPU quota:  none\n");

    printf("\nDefault thread count: %u\n", mi->default_threads);
    printf("  %s in the affinity mask: %u\n", mi->hwloc && mi->cores > 0 ? "cores" : "CPUs ",
           in->mask_units);
    if (mi->cgroup_cpus > 0)
        printf("  cgroup CPU quota:           %u\n", mi->cgroup_cpus);
    else
        printf("  cgroup CPU quota:           none\n");
    printf("  => %u: %s\n", mi->default_threads, in->reason);
    if (in->env_threads == NULL)
        printf("$WEFT_THREADS is not set: a pool with threads = 0 gets %u worker%s\n",
               in->effective, in->effective == 1 ? "" : "s");
    else if (in->env_valid)
        printf("$WEFT_THREADS=%s overrides it: a pool with threads = 0 gets %u worker%s\n",
               in->env_threads, in->effective, in->effective == 1 ? "" : "s");
    else
        printf("$WEFT_THREADS=%s is not a count in 1..%u: weft_pool_create fails with -EINVAL\n",
               in->env_threads, WEFT_MAX_THREADS);

    const char *bind = env("WEFT_BIND");
    printf("\nWorker placement for %u worker%s (first CPU of each worker's set):\n", in->plan_n,
           in->plan_n == 1 ? "" : "s");
    printf("  %6s %8s %8s\n", "worker", "COMPACT", "SPREAD");
    for (unsigned i = 0; i < in->plan_n; i++)
        printf("  %6u %8d %8d\n", i, in->compact[i], in->spread[i]);
    if (bind == NULL)
        printf("$WEFT_BIND is not set: workers are not pinned unless weft_config.bind says so\n");
    else
        printf("$WEFT_BIND=%s\n", bind);

    printf("\nEnvironment:\n");
    for (size_t i = 0; i < NENV; i++) {
        const char *v = getenv(weft_env[i]);
        printf("  %-18s %s\n", weft_env[i], v != NULL ? v : "(not set)");
    }
    char why[256];
    int rc = weft_config_check(NULL, why, sizeof(why));
    printf("  => a pool with the defaults: %s%s\n", rc == 0 ? "" : "weft_pool_create fails: ", why);
}

static void json_cpus(const int *cpus, unsigned n)
{
    putchar('[');
    for (unsigned i = 0; i < n; i++)
        printf("%s%d", i > 0 ? ", " : "", cpus[i]);
    putchar(']');
}

static void print_json(const info *in)
{
    const weft_machine_info *mi = &in->mi;
    printf("{\n  \"weft_version\": ");
    json_string(weft_version());
    printf(",\n");
    json_topology(in);
    printf("  \"machine\": {\n"
           "    \"default_threads\": %u,\n"
           "    \"cores\": %u,\n"
           "    \"pus\": %u,\n"
           "    \"affinity_cpus\": %u,\n"
           "    \"cgroup_cpus\": %u,\n"
           "    \"hwloc\": %s\n  },\n",
           mi->default_threads, mi->cores, mi->pus, mi->affinity_cpus, mi->cgroup_cpus,
           mi->hwloc ? "true" : "false");
    printf("  \"affinity\": {\"list\": ");
    json_string(in->have_affinity ? in->affinity_list : NULL);
    printf(", \"cpus\": [");
    int k = 0;
    for (int c = 0; in->have_affinity && c < CPU_SETSIZE; c++) {
        if (CPU_ISSET(c, &in->affinity))
            printf("%s%d", k++ > 0 ? ", " : "", c);
    }
    printf("]},\n");
    printf("  \"threads\": {\n    \"default\": %u,\n    \"source\": \"%s\",\n    \"reason\": ",
           mi->default_threads, in->source);
    json_string(in->reason);
    printf(",\n    \"env\": ");
    json_string(in->env_threads);
    printf(",\n    \"effective\": ");
    if (in->effective != 0)
        printf("%u", in->effective);
    else
        printf("null");
    printf("\n  },\n  \"bind_plan\": {\n    \"threads\": %u,\n    \"compact\": ", in->plan_n);
    json_cpus(in->compact, in->plan_n);
    printf(",\n    \"spread\": ");
    json_cpus(in->spread, in->plan_n);
    printf("\n  },\n  \"env\": {");
    for (size_t i = 0; i < NENV; i++) {
        printf("%s\n    \"%s\": ", i > 0 ? "," : "", weft_env[i]);
        json_string(getenv(weft_env[i]));
    }
    char why[256];
    int rc = weft_config_check(NULL, why, sizeof(why));
    printf(",\n    \"check\": {\"ok\": %s, \"message\": ", rc == 0 ? "true" : "false");
    json_string(why);
    printf("}");
    printf("\n  }\n}\n");
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"json", no_argument, NULL, 'j'},
        {"threads", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    bool json = false;
    unsigned plan_n = 0;
    int opt;
    while ((opt = getopt_long(argc, argv, "jt:h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'j':
            json = true;
            break;
        case 't':
            if (!parse_threads(optarg, &plan_n)) {
                fprintf(stderr, "weft-info: --threads: '%s' is not a thread count in 1..%u\n",
                        optarg, WEFT_MAX_THREADS);
                return 2;
            }
            break;
        case 'h':
            printf("usage: weft-info [--json] [-t THREADS]\n"
                   "The topology, affinity mask, cgroup quota and default thread count as weft\n"
                   "sees them, and where workers go under each binding policy.\n"
                   "  -j, --json           the same facts as one JSON object, for scripts\n"
                   "  -t, --threads N      the placement table for N workers (default: the\n"
                   "                       number a pool would get now)\n"
                   "  -h, --help           this text\n"
                   "Exit status: 0; 2 for a usage error.\n");
            return 0;
        default:
            return 2;
        }
    }
    if (optind != argc) {
        fprintf(stderr, "weft-info: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }

    info in;
    memset(&in, 0, sizeof(in));
    int rc = gather(&in, plan_n);
    if (rc != 0) {
        fprintf(stderr, "weft-info: %s\n", weft_strerror(rc));
        release(&in);
        return 1;
    }
    if (json)
        print_json(&in);
    else
        print_text(&in);
    release(&in);
    return fflush(stdout) == 0 && !ferror(stdout) ? 0 : 1;
}
