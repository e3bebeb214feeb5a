/*
 * claim.h — claims: "this process is doing X" as a file on a (possibly
 * shared) filesystem, so concurrent processes on one report folder or one
 * baseline cache never do the same run or train the same baseline twice.
 *
 * A claim is a small file (e.g. DIR/claims/<run_id>.claim) naming its
 * holder: host name, pid and the process's start time (field 22 of
 * /proc/PID/stat, so a recycled pid is not mistaken for the holder). It is
 * written to a temporary file and then hard-linked to its name: link()
 * fails with EEXIST when the name exists, atomically, on local filesystems
 * and NFS alike, and the claim never appears half-written.
 *
 * A claim whose holder ran on this host and no longer lives (no such pid,
 * or the pid now belongs to a process started at another time) is stale
 * and removed, under an flock on <folder>/.claims.lock so two processes
 * clearing the same stale claim cannot delete a fresh one. Claims of other
 * hosts cannot be checked and count as live; a waiter gives up after
 * PRUNELAB_CLAIM_WAIT seconds (see pl_claim_wait_limit).
 *
 *     pl_claim c;
 *     int got;
 *     char who[128];
 *     if (pl_claim_try("out/claims/abc.claim", &c, &got, who, sizeof who, &err)) ...
 *     if (got) { ...do the work...; pl_claim_release(&c); }
 *     else     { ...`who` is doing it... }
 */
#ifndef PL_CLAIM_H
#define PL_CLAIM_H

#include "error.h"

typedef struct pl_claim {
    char path[4200];
    int held; /* 1: this process created the file and removes it on release */
} pl_claim;

/* Tries to take the claim `path` (its folder must exist). *got = 1: this
 * process holds it now; *got = 0: a live process holds it, described in
 * holder ("host pid N") when holder != NULL. Errors: PL_EIO when the folder
 * cannot be written. */
pl_status pl_claim_try(const char *path, pl_claim *c, int *got, char *holder, size_t n,
                       pl_error *err);

/* Removes the claim if this process holds it; safe to call twice. */
void pl_claim_release(pl_claim *c);

/* 1 when `path` is a claim held by a live process (or one that cannot be
 * checked: another host), 0 when absent or stale. */
int pl_claim_live(const char *path, char *holder, size_t n);

/* Seconds a process waits for work another process claimed before it gives
 * up: $PRUNELAB_CLAIM_WAIT, default 3600. */
double pl_claim_wait_limit(void);

#endif
