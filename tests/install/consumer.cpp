/* SPDX-License-Identifier: MIT */
/*
 * A C++ program outside the weft tree, built against an installed weft by tests/install/run.sh
 * (with pkg-config, and with CMake's find_package). It uses only the installed weft.hpp.
 */
#include <weft.hpp>

#include <cstdio>
#include <stdexcept>

static long fib(long n)
{
    if (n < 2)
        return n;
    auto [a, b] = weft::join([&] { return fib(n - 1); }, [&] { return fib(n - 2); });
    return a + b;
}

int main()
{
    try {
        weft::pool pool(2);
        long f = pool.run([] { return fib(20); });
        long sum = pool.parallel_reduce(
            0, 1000, 0L,
            [](size_t lo, size_t hi, long acc) {
                for (size_t i = lo; i < hi; i++)
                    acc += static_cast<long>(i);
                return acc;
            },
            [](long a, long b) { return a + b; });
        auto thrower = pool.submit([]() -> int { throw std::runtime_error("carried"); });
        bool carried = false;
        try {
            thrower.get();
        } catch (const std::runtime_error &) {
            carried = true;
        }
        if (f != 6765 || sum != 499500 || !carried) {
            std::fprintf(stderr, "fib %ld sum %ld carried %d\n", f, sum, carried);
            return 1;
        }
    } catch (const weft::error &e) {
        std::fprintf(stderr, "weft: %s\n", e.what());
        return 1;
    }
    std::printf("ok (weft %s, C++)\n", weft_version());
    return 0;
}
