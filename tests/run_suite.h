/* run_suite.h — the one way the test programs run their Check suite. */
#ifndef GENC_TEST_RUN_SUITE_H
#define GENC_TEST_RUN_SUITE_H

#include <check.h>

/* Runs s (forking each test unless CK_NOFORK) and returns the exit status. */
static inline int run_suite(Suite *s, enum fork_status fork)
{
    SRunner *sr = srunner_create(s);
    if (fork == CK_NOFORK) srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}

#endif
