/* test_replay_idx.c — replays tests/fuzz/corpus/fuzz_idx/ through the
 * fuzz_idx harness (see replay.h), with the idx plugin compiled in as the
 * harness has it; a harness finding aborts the test. */

/* sha256.c has a static compress(), which zlib.h (pulled in by idx.c)
 * declares too; one translation unit needs the rename */
#define compress pl__idx_sha256_compress
#include "../../core/src/sha256.c"
#undef compress
#include "../../plugins/datasets/idx/idx.c"
#include "fuzz_idx.c"
#include "replay.h"

Test(fuzz_replay, idx)
{
    cr_expect_gt(pl_fuzz_replay("tests/fuzz/corpus/fuzz_idx", LLVMFuzzerTestOneInput), 0);
}
