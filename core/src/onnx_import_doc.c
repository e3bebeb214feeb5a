/*
 * onnx_import_doc.c — the operator reference (docs/onnx-operators.md)
 * written from the importer's operator table (pl__onnx_ops in
 * onnx_import_ops.c), so the documentation of an operator is where its
 * translator is registered: `prunelab onnx-ops` prints it, and
 * tests/core/test_onnx_import.c checks that the file is its output.
 */
#include "onnx_import_internal.h"
#include "strbuf.h"

#include <stdio.h>
#include <stdlib.h>

char *pl_onnx_ops_markdown(void)
{
    pl__buf b = {0};
    pl__buf_printf(&b,
                   "# ONNX operators\n\n"
                   "Every operator the ONNX importer reads, as `prunelab onnx-ops` prints it from\n"
                   "the operator table in `core/src/onnx_import_ops.c` (the table that dispatches\n"
                   "each node to its translator); `tests/core/test_onnx_import.c` checks that this\n"
                   "file is that output, so regenerate it with `build/prunelab onnx-ops >\n"
                   "docs/onnx-operators.md` after changing an operator. Every other operator is\n"
                   "refused with one line naming the node; [onnx.md](onnx.md) has the rest of the\n"
                   "import (opsets before 7, padding, what is refused, the conformance counts).\n\n"
                   "| ONNX operator | opsets | prunelab layer and limits |\n"
                   "|---|---|---|\n");
    for (const op_def *o = pl__onnx_ops; o->op_type; o++) {
        char opsets[32];
        snprintf(opsets, sizeof opsets, "%d–%d", o->min_opset, o->max_opset ? o->max_opset : OPSET_MAX);
        const char *cells[] = {o->op_type, opsets, o->doc};
        pl__md_row(&b, cells, sizeof cells / sizeof cells[0]);
    }
    if (b.failed) {
        free(b.data);
        return NULL;
    }
    return b.data;
}
