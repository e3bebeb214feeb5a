/*
 * error.c: statuses, messages and PL_ASSERT, which stops the process on a
 * broken invariant (kept in release builds) and lets a true one pass.
 */
#include "error.h"
#include "pltest.h"

#include <signal.h>
#include <string.h>

TestSuite(error);

Test(error, assert_passes_when_the_invariant_holds)
{
    int calls = 0;
    PL_ASSERT(++calls == 1);
    cr_assert_eq(calls, 1, "the condition is evaluated exactly once");
}

Test(error, assert_aborts_when_it_does_not, .signal = SIGABRT)
{
    int k = 3;
    PL_ASSERT(k < 3);
}

Test(error, set_returns_the_code_and_keeps_one_line)
{
    pl_error e;
    pl_error_clear(&e);
    cr_assert_eq(pl_error_set(&e, PL_ECONFIG, "x.yaml:%d:%d: bad", 3, 4), PL_ECONFIG);
    cr_assert_str_eq(e.msg, "x.yaml:3:4: bad");
    pl_error_prefix(&e, "while %s", "loading");
    cr_assert_str_eq(e.msg, "while loading: x.yaml:3:4: bad");
    cr_assert_eq(pl_status_exit_code(PL_ECONFIG), 2);
    cr_assert_eq(pl_status_exit_code(PL_EDIVERGED), 1);
    cr_assert_eq(pl_status_exit_code(PL_OK), 0);
}
