/* test_replay_onnx.c — replays tests/fuzz/corpus/fuzz_onnx/ (real PyTorch
 * exports and what fuzzing kept) through the fuzz_onnx harness (see
 * replay.h); a harness finding aborts the test. */
#include "fuzz_onnx.c"
#include "replay.h"

Test(fuzz_replay, onnx)
{
    cr_expect_gt(pl_fuzz_replay("tests/fuzz/corpus/fuzz_onnx", LLVMFuzzerTestOneInput), 0);
}
