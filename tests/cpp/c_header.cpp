/* SPDX-License-Identifier: MIT */
/*
 * weft.h on its own, compiled as C++ (with -Wall -Wextra -pedantic like every test): its
 * extern "C" guards, its inline functions and its structs must all be valid C++. Called by
 * test_cpp.cpp, so that the C declarations link against libweft from C++.
 */
#include <weft.h>

int weft_c_header_as_cpp(void);

static int answer(void *arg, void **result)
{
    *result = arg;
    return 0;
}

int weft_c_header_as_cpp(void)
{
    weft_config cfg;
    weft_config_init(&cfg);
    cfg.threads = 1;
    weft_pool *pool = nullptr;
    if (weft_pool_create(&cfg, &pool) != 0)
        return 1;
    static int token;
    weft_future *f = nullptr;
    int rc = weft_submit(pool, answer, &token, &f);
    void *value = nullptr;
    if (rc == 0)
        rc = weft_future_result(f, &value);
    weft_future_release(f);
    weft_frame fr; /* the inline part of the header */
    weft_offer(
        &fr, [](void *) {}, nullptr);
    bool mine = weft_reclaim(&fr);
    int destroyed = weft_pool_destroy(pool);
    return rc == 0 && value == &token && mine && destroyed == 0 ? 0 : 1;
}
