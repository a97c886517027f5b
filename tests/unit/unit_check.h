/* unit_check.h - the counting CHECK(cond, fmt, ...) of the C unit tests:
 * a failed check prints where and why and the test goes on; main() prints
 * "<name>: N passed, M failed" and exits non-zero when M > 0. */
#ifndef SAMSA_UNIT_CHECK_H
#define SAMSA_UNIT_CHECK_H

#include <stdio.h>

static int passed, failed;

#define CHECK(cond, ...)                                        \
    do {                                                        \
        if (cond) {                                             \
            passed++;                                           \
        } else {                                                \
            failed++;                                           \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
            fprintf(stderr, __VA_ARGS__);                       \
            fprintf(stderr, "\n");                              \
        }                                                       \
    } while (0)

#endif
