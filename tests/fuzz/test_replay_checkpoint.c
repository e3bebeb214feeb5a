/* test_replay_checkpoint.c — replays tests/fuzz/corpus/fuzz_checkpoint/ through the
 * fuzz_checkpoint harness (see replay.h); a harness finding aborts the test. */
#include "fuzz_checkpoint.c"
#include "replay.h"

Test(fuzz_replay, checkpoint)
{
    cr_expect_gt(pl_fuzz_replay("tests/fuzz/corpus/fuzz_checkpoint", LLVMFuzzerTestOneInput), 0);
}
