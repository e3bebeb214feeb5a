/*
 * cli_help.h — what each command of the prunelab CLI accepts and says about
 * itself: `prunelab COMMAND --help` and the check that an option given to a
 * command applies to it (an option that does not is a usage error, exit 2,
 * rather than being silently ignored).
 */
#ifndef PL_CLI_HELP_H
#define PL_CLI_HELP_H

/* The help text of `cmd` (usage, options, an example), or NULL when there
 * is no such command. */
const char *pl__cli_help(const char *cmd);

/* 1 when option `opt` ("--set", "--tolerance", ...) applies to command
 * `cmd`; the global options (--plugin-path, --threads, --quiet) apply to
 * every command. Unknown commands accept only the global options. */
int pl__cli_option_applies(const char *cmd, const char *opt);

#endif
