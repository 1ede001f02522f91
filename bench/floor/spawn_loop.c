/* The floor of a process per item: PAR threads, each forking and exec'ing
 * PROG ARGS... ITEM for the next item and waiting for it, as a hand-written C program
 * would. With "capture", the child's stdout goes to a pipe that the parent reads to
 * its end (the output is counted, and the total printed at the end).
 *
 *   spawn_loop N PAR none|capture PROG [ARGS...]     (items are 1..N, appended as the last argument)
 *
 * Built by bench/run.sh with `cc -O2 -pthread`.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static long n_items;
static int capture;
static char **base_argv;
static int base_argc;
static atomic_long next_item = 1;
static atomic_long captured_bytes;
static atomic_int failures;

static void *slot(void *unused) {
    (void)unused;
    char **argv = calloc(base_argc + 2, sizeof *argv);
    char item[32];
    memcpy(argv, base_argv, base_argc * sizeof *argv);
    argv[base_argc] = item;
    for (;;) {
        long i = atomic_fetch_add(&next_item, 1);
        if (i > n_items) break;
        snprintf(item, sizeof item, "%ld", i);
        int fds[2];
        if (capture && pipe(fds) != 0) { perror("pipe"); exit(1); }
        pid_t pid = fork();
        if (pid < 0) { perror("fork"); exit(1); }
        if (pid == 0) {
            if (capture) { dup2(fds[1], 1); close(fds[0]); close(fds[1]); }
            execvp(argv[0], argv);
            _exit(127);
        }
        if (capture) {
            close(fds[1]);
            char buf[4096];
            ssize_t got;
            while ((got = read(fds[0], buf, sizeof buf)) > 0) atomic_fetch_add(&captured_bytes, got);
            close(fds[0]);
        }
        int status;
        if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
            atomic_fetch_add(&failures, 1);
    }
    free(argv);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: %s N PAR none|capture PROG [ARGS...]\n", argv[0]);
        return 2;
    }
    n_items = atol(argv[1]);
    int par = atoi(argv[2]);
    capture = strcmp(argv[3], "capture") == 0;
    base_argv = argv + 4;
    base_argc = argc - 4;
    pthread_t threads[64];
    if (par < 1 || par > 64) return 2;
    for (int t = 0; t < par; t++) pthread_create(&threads[t], NULL, slot, NULL);
    for (int t = 0; t < par; t++) pthread_join(threads[t], NULL);
    if (capture) printf("%ld bytes captured\n", (long)captured_bytes);
    if (failures) { fprintf(stderr, "%d items failed\n", (int)failures); return 1; }
    return 0;
}
