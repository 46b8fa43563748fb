/* SPDX-License-Identifier: MIT */
/*
 * A program outside the weft tree, built against an installed weft by tests/install/run.sh
 * (with pkg-config, and with CMake's find_package). It uses only the public header.
 */
#include <weft.h>

#include <stdint.h>
#include <stdio.h>

static int answer(void *arg, void **result)
{
    (void)arg;
    *result = (void *)(intptr_t)42;
    return 0;
}

int main(void)
{
    weft_pool *pool = NULL;
    int rc = weft_pool_create(NULL, &pool);
    if (rc != 0) {
        fprintf(stderr, "weft_pool_create: %s\n", weft_strerror(rc));
        return 1;
    }

    weft_future *f = NULL;
    rc = weft_submit(pool, answer, NULL, &f);
    if (rc != 0) {
        fprintf(stderr, "weft_submit: %s\n", weft_strerror(rc));
        weft_pool_destroy(pool);
        return 1;
    }

    void *value = NULL;
    rc = weft_future_result(f, &value);
    weft_future_release(f);
    int destroyed = weft_pool_destroy(pool);
    if (rc != 0 || (intptr_t)value != 42 || destroyed != 0) {
        fprintf(stderr, "result %d value %ld destroy %d\n", rc, (long)(intptr_t)value, destroyed);
        return 1;
    }
    printf("ok (weft %s)\n", weft_version());
    return 0;
}
