/* test_replay_model.c — replays tests/fuzz/corpus/fuzz_model/ through the
 * fuzz_model harness (see replay.h); a harness finding aborts the test. */
#include "fuzz_model.c"
#include "replay.h"

Test(fuzz_replay, model)
{
    cr_expect_gt(pl_fuzz_replay("tests/fuzz/corpus/fuzz_model", LLVMFuzzerTestOneInput), 0);
}
