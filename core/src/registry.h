/*
 * registry.h — finding, validating and instantiating plugins.
 *
 * Search path, in order: directories added with pl_registry_add_path
 * (--plugin-path, then the experiment's plugin_path:), $PRUNELAB_PLUGIN_PATH
 * (':' separated), then paths relative to the executable (<exe>/plugins — build tree;
 * <exe>/../<libdir>/prunelab/plugins — install tree). In each dir a plugin of kind K named N is the file
 * <dir>/<kinds>/<N>.so (kinds: criteria, schedules, datasets, backends, executors) or
 * <dir>/<N>.so directly. The first hit on the path wins.
 *
 * dlopen(RTLD_NOW|RTLD_LOCAL) and the descriptor's static data are checked
 * before any plugin code runs. Libraries are never dlclose'd while the
 * registry lives.
 *
 *     pl_registry *r = pl_registry_new(argv0);
 *     pl_registry_add_path(r, "/opt/plugins");
 *     pl_instance *be;
 *     if (pl_instance_new(r, PL_KIND_BACKEND, &ref, seed, threads, &be, &err)) ...
 *     const pl_backend_ops *ops = pl_instance_ops(be);
 *     ops->conv2d_forward(pl_instance_state(be), ...);
 *     pl_instance_free(be);
 *     pl_registry_free(r);
 */
#ifndef PL_REGISTRY_H
#define PL_REGISTRY_H

#include "config_types.h"
#include "error.h"

typedef struct pl_registry pl_registry;
typedef struct pl_plugin pl_plugin;     /* a loaded, validated .so */
typedef struct pl_instance pl_instance; /* init()ed state of a plugin */

/* argv0: used to find the executable's directory (via /proc/self/exe first). */
pl_registry *pl_registry_new(const char *argv0);
void pl_registry_free(pl_registry *r);
/* Adds a directory to the search path, after those already added. The env
 * var and exe-relative dirs are always searched last. */
pl_status pl_registry_add_path(pl_registry *r, const char *dir, pl_error *err);

/* Plural folder name of a kind ("criteria") and singular ("criterion"). */
const char *pl_kind_dir(pl_kind k);
const char *pl_kind_name(pl_kind k);
int pl_name_valid(const char *name); /* [a-z0-9_]+, 1..63 chars */

/* Finds and loads the plugin `name` of kind `kind`. The plugin stays loaded
 * until pl_registry_free. Errors: bad name, not found (lists available
 * names), not a shared object, no descriptor, ABI/kind/slot problems. */
pl_status pl_registry_find(pl_registry *r, pl_kind kind, const char *name,
                           const pl_plugin **out, pl_error *err);
/* Loads a plugin file directly (used by plugin-check and tests); expected
 * kind 0 = any. */
pl_status pl_registry_load_file(pl_registry *r, const char *path, pl_kind expect,
                                const pl_plugin **out, pl_error *err);

/* Visit every plugin found on the search path (for `prunelab plugins`);
 * shadowed = path of a same-kind same-name plugin later on the path, or NULL.
 * Broken files are reported through `bad` (may be NULL). */
typedef void (*pl_plugin_visit_fn)(void *ud, const pl_plugin *p, const char *shadowed);
typedef void (*pl_plugin_bad_fn)(void *ud, const char *path, const pl_error *why);
void pl_registry_each(pl_registry *r, pl_plugin_visit_fn fn, pl_plugin_bad_fn bad, void *ud);

/* The search path as "dir1, dir2, ..." into buf (for "not found" messages);
 * returns the length written. */
size_t pl_registry_search_path(const pl_registry *r, char *buf, size_t n);

/* Descriptors of plugins compiled into the host (executor.c). They are found
 * by name before the search path and listed by `prunelab plugins` as
 * "(built-in)". */
extern const pl_plugin_desc pl__executor_local_desc;

const pl_plugin_desc *pl_plugin_get_desc(const pl_plugin *p);
const char *pl_plugin_path(const pl_plugin *p);
/* "sha256:<64 hex>" of the plugin's file, computed once when it was loaded. */
const char *pl_plugin_sha256(const pl_plugin *p);

/* Validates `ref`'s parameters against the plugin's spec (file:line:col
 * errors), calls init. */
pl_status pl_instance_new(pl_registry *r, pl_kind kind, const pl_plugin_ref *ref,
                          uint64_t seed, int threads, pl_instance **out, pl_error *err);
/* Same, from an already loaded plugin and a NULL-terminated list of
 * "key=value" parameters (tests, plugin-check). */
pl_status pl_instance_new_kv(const pl_plugin *p, const char *const *kv, uint64_t seed,
                             int threads, pl_instance **out, pl_error *err);
void pl_instance_free(pl_instance *in);
const void *pl_instance_ops(const pl_instance *in);
void *pl_instance_state(const pl_instance *in);
const pl_plugin *pl_instance_plugin(const pl_instance *in);
const pl_params *pl_instance_params(const pl_instance *in);
/* The message a plugin set through api->set_error since the last call
 * (empty string if none); cleared by the call. */
const char *pl_instance_take_error(pl_instance *in);

/* The host API table given to plugins (also usable by the host itself). */
const pl_host_api *pl_host_api_get(void);

#endif
