/* mpi.c — the `mpi` executor: one sweep spread over the ranks of an MPI job.
 *
 *     mpirun -n 4 build/prunelab run X.yaml --executor mpi --out DIR --threads 1
 *
 * Every rank runs the same host (same experiment, same job list). Rank 0
 * is the dispatcher: it hands out one task at a time to whichever worker
 * asks, baselines first (each distinct baseline once for the whole job),
 * then the runs whose baseline is done, so a rank that finishes early takes
 * the next run. Rank 0 also works, on a second thread, while its main
 * thread dispatches (MPI_THREAD_FUNNELED: only the main thread calls MPI).
 * Baselines reach the runs through the shared baseline cache (report.cache
 * or DIR/cache): the task that trains one saves it atomically, the runs
 * load it. Every worker writes its run records itself (atomically); rank 0
 * rebuilds the report once all tasks are done.
 *
 * Failures: a run that fails on its own is recorded by the host and the job
 * goes on. An error that stops everything (I/O, interrupted) stops the
 * dispatching; in-flight tasks finish, every rank returns, and rank 0 names
 * the rank and the cause. A rank that dies kills the job: MPI's default
 * error handler (MPI_ERRORS_ARE_FATAL) and mpirun end every rank, and mpirun
 * prints which rank died and how. Records already written stay; rerunning
 * the same command resumes from them (stale claims of the dead ranks are
 * recognised by pid and start time).
 *
 * Waiting never spins: MPI_Test/MPI_Iprobe and a short sleep, so the
 * dispatcher costs no CPU on an oversubscribed machine.
 */
#define _GNU_SOURCE /* dladdr */
#include <prunelab/plugin.h>

#include <dlfcn.h>
#include <mpi.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { TAG_WORK = 101, TAG_RESULT = 102 };
enum { T_STOP = 0, T_BASELINE = 1, T_RUN = 2 };

/* rank 0 -> worker */
typedef struct task_msg {
    int32_t type;
    int32_t pad;
    int64_t index; /* into rank 0's job list */
    char id[24];   /* run id (of a run that needs the baseline, for T_BASELINE) */
} task_msg;

/* worker -> rank 0 */
typedef struct result_msg {
    int32_t type;
    int32_t status;  /* pl_status */
    int64_t index;
    int32_t outcome; /* PL_RUN_* */
    int32_t pad;
    char msg[1024];
} result_msg;

typedef struct mpi_state {
    const pl_env *env;
    int rank, size;
    int funneled; /* MPI gave us MPI_THREAD_FUNNELED: rank 0 works too */
} mpi_state;

static void nap(long usec)
{
    struct timespec ts = {usec / 1000000, (usec % 1000000) * 1000};
    nanosleep(&ts, NULL);
}

/* Waits for a request without spinning a core. */
static void wait_req(MPI_Request *rq)
{
    long us = 50;
    for (;;) {
        int done = 0;
        MPI_Test(rq, &done, MPI_STATUS_IGNORE);
        if (done)
            return;
        nap(us);
        if (us < 5000)
            us *= 2;
    }
}

static pl_status mpi_init(const pl_env *env, void **state)
{
    /* Open MPI (before 3.0) loaded its components expecting libmpi's
     * symbols in the global namespace, which RTLD_LOCAL (how the host loads
     * plugins, and so this .so's libmpi) denies. Open MPI >= 3.0 links its
     * components against their libraries and works either way (checked:
     * Open MPI 4.1.4 on Debian 12). Promoting the already loaded libmpi to
     * RTLD_GLOBAL, as mpi4py does, keeps older builds working too. */
    Dl_info info;
    if (dladdr((void *)MPI_Init, &info) && info.dli_fname)
        (void)dlopen(info.dli_fname, RTLD_NOW | RTLD_GLOBAL | RTLD_NOLOAD);
    mpi_state *s = env->api->calloc(1, sizeof *s);
    if (!s)
        return PL_ENOMEM;
    s->env = env;
    int inited = 0, provided = MPI_THREAD_SINGLE;
    MPI_Initialized(&inited);
    if (!inited && MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) {
        env->api->set_error(env->ctx, "MPI_Init_thread failed (start the job with mpirun)");
        env->api->free(s);
        return PL_EPLUGIN;
    }
    if (inited)
        MPI_Query_thread(&provided);
    s->funneled = provided >= MPI_THREAD_FUNNELED;
    MPI_Comm_rank(MPI_COMM_WORLD, &s->rank);
    MPI_Comm_size(MPI_COMM_WORLD, &s->size);
    *state = s;
    return PL_OK;
}

static void mpi_fini(void *state)
{
    mpi_state *s = state;
    int fin = 0;
    MPI_Finalized(&fin);
    if (!fin)
        MPI_Finalize();
    if (s)
        s->env->api->free(s);
}

/* Runs one task here. */
static void execute(const pl_executor_job *job, const task_msg *t, result_msg *r)
{
    memset(r, 0, sizeof *r);
    r->type = t->type;
    r->index = t->index;
    /* the rank's own job list should equal rank 0's; if another process
     * recorded runs between the ranks' starts it may not, so go by id */
    size_t k = (size_t)t->index;
    if (k >= job->n_runs || strcmp(job->run_id(job->host, k), t->id)) {
        for (k = 0; k < job->n_runs && strcmp(job->run_id(job->host, k), t->id); k++)
            ;
        if (k == job->n_runs) { /* recorded before this rank started */
            r->outcome = PL_RUN_SKIPPED;
            return;
        }
    }
    pl_status st;
    if (t->type == T_BASELINE)
        st = job->execute_baseline(job->host, job->run_baseline(job->host, k), PL_EXEC_QUIET);
    else {
        int oc = PL_RUN_DONE;
        st = job->execute_run(job->host, k, PL_EXEC_QUIET | PL_EXEC_WAIT, &oc);
        r->outcome = oc;
    }
    r->status = st;
    if (st)
        snprintf(r->msg, sizeof r->msg, "%s", job->error(job->host));
}

static pl_status worker(const pl_executor_job *job)
{
    for (;;) {
        task_msg t;
        MPI_Request rq;
        MPI_Irecv(&t, (int)sizeof t, MPI_BYTE, 0, TAG_WORK, MPI_COMM_WORLD, &rq);
        wait_req(&rq);
        if (t.type == T_STOP)
            return PL_OK;
        result_msg r;
        execute(job, &t, &r);
        MPI_Send(&r, (int)sizeof r, MPI_BYTE, 0, TAG_RESULT, MPI_COMM_WORLD);
    }
}

/* ---- rank 0 -------------------------------------------------------------- */

/* The worker thread of rank 0: takes a task from the dispatcher through
 * this mailbox and never calls MPI. */
typedef struct local_box {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    const pl_executor_job *job;
    int has_task, has_result, stop;
    task_msg task;
    result_msg result;
} local_box;

static void *local_main(void *arg)
{
    local_box *b = arg;
    pthread_mutex_lock(&b->mu);
    for (;;) {
        while (!b->has_task && !b->stop)
            pthread_cond_wait(&b->cv, &b->mu);
        if (b->stop)
            break;
        task_msg t = b->task;
        b->has_task = 0;
        pthread_mutex_unlock(&b->mu);
        result_msg r;
        execute(b->job, &t, &r);
        pthread_mutex_lock(&b->mu);
        b->result = r;
        b->has_result = 1;
    }
    pthread_mutex_unlock(&b->mu);
    return NULL;
}

typedef struct dispatch {
    const pl_executor_job *job;
    size_t n_b, n_r;
    unsigned char *bstate, *rstate; /* 0 pending, 1 running, 2 done */
    size_t *bfirst;                 /* a run that needs baseline b */
    size_t next_b, first_r;
    size_t tasks_done, tasks_total, runs_done;
    double t0;
} dispatch;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* The next task: a baseline while any is pending, else the first pending
 * run whose baseline is done. 0 when nothing can start now. */
static int pick(dispatch *d, task_msg *t)
{
    memset(t, 0, sizeof *t);
    if (d->next_b < d->n_b) {
        size_t b = d->next_b++;
        d->bstate[b] = 1;
        t->type = T_BASELINE;
        t->index = (int64_t)d->bfirst[b];
        snprintf(t->id, sizeof t->id, "%s", d->job->run_id(d->job->host, d->bfirst[b]));
        return 1;
    }
    while (d->first_r < d->n_r && d->rstate[d->first_r])
        d->first_r++;
    for (size_t k = d->first_r; k < d->n_r; k++) {
        if (d->rstate[k] || d->bstate[d->job->run_baseline(d->job->host, k)] != 2)
            continue;
        d->rstate[k] = 1;
        t->type = T_RUN;
        t->index = (int64_t)k;
        snprintf(t->id, sizeof t->id, "%s", d->job->run_id(d->job->host, k));
        return 1;
    }
    return 0;
}

static void fmt_secs(char *buf, size_t n, double s)
{
    long v = (long)(s + 0.5);
    if (v >= 3600)
        snprintf(buf, n, "%ldh%02ldm", v / 3600, v / 60 % 60);
    else if (v >= 60)
        snprintf(buf, n, "%ldm%02lds", v / 60, v % 60);
    else
        snprintf(buf, n, "%lds", v);
}

static void finished(dispatch *d, const result_msg *r, int from)
{
    static const char *const oc[] = {"ok", "flagged (recorded)", "already recorded", "claimed elsewhere"};
    if (r->type == T_BASELINE) { /* index: a run that needs the baseline */
        d->bstate[d->job->run_baseline(d->job->host, (size_t)r->index)] = 2;
    } else {
        d->rstate[(size_t)r->index] = 2;
        d->runs_done++;
    }
    d->tasks_done++;
    if (d->job->quiet)
        return;
    double el = now() - d->t0;
    char eta[32], ela[32];
    fmt_secs(ela, sizeof ela, el);
    fmt_secs(eta, sizeof eta, el / (double)d->tasks_done * (double)(d->tasks_total - d->tasks_done));
    const char *what = r->status ? "error" : r->type == T_BASELINE ? "ready" : oc[r->outcome & 3];
    printf("[mpi] %zu/%zu runs done, %zu/%zu baselines | %s %s on rank %d: %s | %s elapsed, ETA %s\n",
           d->runs_done, d->n_r, d->tasks_done - d->runs_done, d->n_b,
           r->type == T_BASELINE ? "baseline for" : "run",
           d->job->run_id(d->job->host, (size_t)r->index), from, what, ela,
           d->tasks_done == d->tasks_total ? "0s" : eta);
    fflush(stdout);
}

static pl_status dispatcher(mpi_state *s, const pl_executor_job *job)
{
    dispatch d = {.job = job, .n_b = job->n_baselines, .n_r = job->n_runs};
    d.tasks_total = d.n_b + d.n_r;
    d.bstate = calloc(d.n_b + 1, 1);
    d.rstate = calloc(d.n_r + 1, 1);
    d.bfirst = calloc(d.n_b + 1, sizeof *d.bfirst);
    int *busy = calloc((size_t)s->size, sizeof *busy);
    if (!d.bstate || !d.rstate || !d.bfirst || !busy) {
        free(d.bstate), free(d.rstate), free(d.bfirst), free(busy);
        MPI_Abort(MPI_COMM_WORLD, 1); /* the workers wait for us: take them down too */
        return PL_ENOMEM;
    }
    for (size_t k = d.n_r; k-- > 0;)
        d.bfirst[job->run_baseline(job->host, k)] = k;
    d.t0 = now();
    if (!job->quiet) {
        printf("[mpi] %d rank(s)%s: %zu run(s) from %zu baseline(s) to execute\n", s->size,
               s->funneled ? "" : " (rank 0 only dispatches: no MPI_THREAD_FUNNELED)", d.n_r, d.n_b);
        fflush(stdout);
    }
    local_box box = {.job = job};
    pthread_t th;
    int have_local = s->funneled && pthread_mutex_init(&box.mu, NULL) == 0;
    if (have_local && pthread_cond_init(&box.cv, NULL) != 0) {
        pthread_mutex_destroy(&box.mu);
        have_local = 0;
    }
    if (have_local && pthread_create(&th, NULL, local_main, &box) != 0) {
        pthread_cond_destroy(&box.cv);
        pthread_mutex_destroy(&box.mu);
        have_local = 0;
    }
    if (!have_local && s->size == 1) {
        /* nobody else to do the work: do it on this thread */
        pl_status st = PL_OK;
        task_msg t;
        result_msg r;
        while (!st && pick(&d, &t)) {
            execute(job, &t, &r);
            finished(&d, &r, 0);
            st = r.status;
        }
        free(d.bstate), free(d.rstate), free(d.bfirst), free(busy);
        return st ? st : job->write_report(job->host);
    }
    pl_status first = PL_OK;
    char why[1200] = "";
    int local_busy = 0;
    long us = 50;
    for (;;) {
        int progress = 0;
        int flag = 0;
        MPI_Status ms;
        MPI_Iprobe(MPI_ANY_SOURCE, TAG_RESULT, MPI_COMM_WORLD, &flag, &ms);
        if (flag) {
            result_msg r;
            MPI_Recv(&r, (int)sizeof r, MPI_BYTE, ms.MPI_SOURCE, TAG_RESULT, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
            busy[ms.MPI_SOURCE] = 0;
            finished(&d, &r, ms.MPI_SOURCE);
            if (r.status && !first) {
                first = r.status;
                snprintf(why, sizeof why, "rank %d: %s", ms.MPI_SOURCE, r.msg);
            }
            progress = 1;
        }
        if (have_local) {
            pthread_mutex_lock(&box.mu);
            if (box.has_result) {
                result_msg r = box.result;
                box.has_result = 0;
                local_busy = 0;
                pthread_mutex_unlock(&box.mu);
                finished(&d, &r, 0);
                if (r.status && !first) {
                    first = r.status;
                    snprintf(why, sizeof why, "rank 0: %s", r.msg);
                }
                progress = 1;
            } else {
                pthread_mutex_unlock(&box.mu);
            }
        }
        if (!first && job->interrupted && *job->interrupted) {
            first = PL_EINTR;
            snprintf(why, sizeof why, "interrupted; finished runs are kept in %s/runs (rerun the same command "
                     "to resume)", job->report_dir);
        }
        int any_busy = local_busy;
        for (int r = 1; r < s->size; r++) {
            task_msg t;
            if (!busy[r] && !first && pick(&d, &t)) {
                MPI_Send(&t, (int)sizeof t, MPI_BYTE, r, TAG_WORK, MPI_COMM_WORLD);
                busy[r] = 1;
                progress = 1;
            }
            any_busy |= busy[r];
        }
        if (have_local && !local_busy && !first) {
            task_msg t;
            if (pick(&d, &t)) {
                pthread_mutex_lock(&box.mu);
                box.task = t;
                box.has_task = 1;
                pthread_cond_signal(&box.cv);
                pthread_mutex_unlock(&box.mu);
                local_busy = any_busy = 1;
                progress = 1;
            }
        }
        if (!any_busy) {
            if (!first && d.tasks_done < d.tasks_total) { /* cannot happen: every baseline is handed out first */
                first = PL_EPLUGIN;
                snprintf(why, sizeof why, "%zu task(s) could not be scheduled", d.tasks_total - d.tasks_done);
            }
            break;
        }
        if (progress) {
            us = 50;
        } else {
            nap(us);
            if (us < 2000)
                us *= 2;
        }
    }
    task_msg stop = {.type = T_STOP};
    for (int r = 1; r < s->size; r++)
        MPI_Send(&stop, (int)sizeof stop, MPI_BYTE, r, TAG_WORK, MPI_COMM_WORLD);
    if (have_local) {
        pthread_mutex_lock(&box.mu);
        box.stop = 1;
        pthread_cond_signal(&box.cv);
        pthread_mutex_unlock(&box.mu);
        pthread_join(th, NULL);
        pthread_cond_destroy(&box.cv);
        pthread_mutex_destroy(&box.mu);
    }
    if (!first && !job->quiet) {
        char ela[32];
        fmt_secs(ela, sizeof ela, now() - d.t0);
        printf("[mpi] all done: %zu run(s) and %zu baseline(s) on %d rank(s) in %s; rank 0 writes the report\n",
               d.n_r, d.n_b, s->size, ela);
        fflush(stdout);
    }
    free(d.bstate), free(d.rstate), free(d.bfirst), free(busy);
    if (first) {
        s->env->api->set_error(s->env->ctx, "%s", why);
        return first;
    }
    return job->write_report(job->host);
}

static pl_status mpi_run(void *state, const pl_executor_job *job)
{
    mpi_state *s = state;
    if (job->struct_size < sizeof(pl_executor_job)) {
        s->env->api->set_error(s->env->ctx, "the host's job table is older than this plugin");
        return PL_EPLUGIN;
    }
    return s->rank == 0 ? dispatcher(s, job) : worker(job);
}

static const pl_executor_ops ops = {.run = mpi_run};

PL_PLUGIN_EXPORT const pl_plugin_desc prunelab_plugin_desc = {
    PL_PLUGIN_DESC_HEADER,
    .kind = PL_KIND_EXECUTOR,
    .name = "mpi",
    .version = "1.0.0",
    .description = "spreads a sweep over the ranks of an MPI job (mpirun -n N)",
    .init = mpi_init,
    .fini = mpi_fini,
    .ops = &ops,
};
