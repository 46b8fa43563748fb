/* SPDX-License-Identifier: MIT */
/*
 * What the machine looks like and where workers go. hwloc behind this interface, with a
 * fallback on sched_getaffinity when hwloc cannot load the topology; hwloc never appears
 * outside topology.c.
 */
#ifndef WEFT_TOPOLOGY_H
#define WEFT_TOPOLOGY_H

#include "weft.h"

#include <sched.h>

/* The cores this process may use: its affinity mask, counted in cores (hwloc), capped by the
 * cgroup CPU quota (rounded up). At least 1. */
unsigned weft__default_threads(void);

/* The CPU set of each of n workers under policy bind (COMPACT or SPREAD). 0, -ENOMEM. */
int weft__bind_sets(weft_bind bind, unsigned n, cpu_set_t *sets);

/* The cgroup CPU quota in CPUs, rounded up; 0 when there is none. */
unsigned weft__cgroup_cpu_limit(void);

/* The CPUs the calling thread may run on (sched_getaffinity; one system call, no topology). */
unsigned weft__affinity_cpus(void);

#endif
