/* test_replay_config.c — replays tests/fuzz/corpus/fuzz_config/ through the
 * fuzz_config harness (see replay.h); a harness finding aborts the test. */
#include "fuzz_config.c"
#include "replay.h"

Test(fuzz_replay, config)
{
    cr_expect_gt(pl_fuzz_replay("tests/fuzz/corpus/fuzz_config", LLVMFuzzerTestOneInput), 0);
}
