/*
 * config_doc.c — the key reference (docs/config-keys.md) written from the
 * schema tables of config.c, so the documentation of a key is where the key
 * is: `prunelab config-keys` prints it, and tests/core/test_config.c checks
 * that the file is its output.
 */
#include "config_internal.h"
#include "strbuf.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *type_name(const field *f)
{
    switch (f->kind) {
    case F_INT: case F_I64: return "integer";
    case F_UINT: return "integer >= 0";
    case F_NUM: return "number";
    case F_BOOL: return "true/false";
    case F_STR: return "string";
    case F_ENUM: return "choice";
    case F_LIST: return "list";
    case F_MAP: return "section";
    case F_PLUGIN: return "plugin";
    case F_LAYERS: return "map of layers";
    case F_SWEEP: return "map of lists";
    default: return "";
    }
}

static void default_text(pl__buf *b, const field *f)
{
    if (f->def_doc) {
        pl__buf_printf(b, "%s", f->def_doc);
    } else if (!(f->flags & FL_STORED)) {
        pl__buf_printf(b, "-");
    } else if (f->kind == F_BOOL) {
        pl__buf_printf(b, "%s", f->def ? "true" : "false");
    } else if (f->kind == F_ENUM) {
        pl__buf_printf(b, "%s", f->names[(size_t)f->def]);
    } else {
        pl__buf_printf(b, "%g", f->def);
    }
}

static void range_text(pl__buf *b, const field *f)
{
    if (!(f->flags & FL_STORED))
        return;
    switch (f->kind) {
    case F_INT: case F_I64:
        if (isinf(f->hi))
            pl__buf_printf(b, ">= %.0f%s", f->lo, f->rule ? f->rule : "");
        else
            pl__buf_printf(b, "[%.0f, %.0f]%s", f->lo, f->hi, f->rule ? f->rule : "");
        break;
    case F_NUM:
        pl__buf_printf(b, "%s", f->rule);
        break;
    case F_ENUM:
        for (size_t i = 0; i < f->n_names; i++)
            pl__buf_printf(b, "%s%s", i ? ", " : "", f->names[i]);
        break;
    default:
        break;
    }
}

/* `path` is the dotted prefix; a section table already written (retrain's
 * and finetune's are train's) is named, not written again. */
static void rows(pl__buf *b, const char *path, const field *tbl, const field **done, size_t *n_done)
{
    for (const field *f = tbl; f->key; f++) {
        char key[160];
        snprintf(key, sizeof key, "%s%s%s", path, *path ? "." : "", f->key);
        pl__buf_printf(b, "| `%s` | %s | ", key, type_name(f));
        default_text(b, f);
        pl__buf_printf(b, " | ");
        range_text(b, f);
        pl__buf_printf(b, " | %s |\n", f->doc ? f->doc : "");
        if (!f->sub)
            continue;
        size_t i = 0;
        while (i < *n_done && done[i] != f->sub)
            i++;
        if (i < *n_done)
            continue;
        if (*n_done < 32)
            done[(*n_done)++] = f->sub;
        if (f->kind == F_LAYERS)
            snprintf(key + strlen(key), sizeof key - strlen(key), ".LAYER");
        rows(b, key, f->sub, done, n_done);
    }
}

char *pl_config_keys_markdown(void)
{
    pl__buf b = {0};
    pl__buf_printf(&b,
                   "# Experiment keys\n\n"
                   "Every key of an experiment file, as `prunelab config-keys` prints it from the\n"
                   "schema in `core/src/config.c` (the table that also decodes, checks, fills in\n"
                   "and dumps the values); `tests/core/test_config.c` checks that this file is\n"
                   "that output, so regenerate it with `build/prunelab config-keys >\n"
                   "docs/config-keys.md` after changing a key. `retrain` and `finetune` take the\n"
                   "keys of `train` and start from train's values; a plugin's own parameters are\n"
                   "listed by `prunelab plugins` and in each plugin's documentation.\n\n"
                   "| key | type | default | range or choices | meaning |\n"
                   "|---|---|---|---|---|\n");
    const field *done[32];
    size_t n_done = 0;
    rows(&b, "", pl__cfg_root_f, done, &n_done);
    if (b.failed) {
        free(b.data);
        return NULL;
    }
    return b.data;
}
