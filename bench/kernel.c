/*
 * Real-kernel side of the hmmsim benchmark: times a few mm operations on
 * 4 KiB pages and prints one JSON object on stdout.
 *
 *   usage: kernel [sizeBytes=1G] [forkBytes=256M] [repeats=5]
 *   (sizes accept an optional K/M/G suffix)
 *
 * Every rate is pages per second; each op is repeated and the median is
 * reported alongside all samples. Errors go to stderr with a non-zero exit.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static size_t page_size;
static volatile unsigned char sink; /* keeps read faults from being elided */

static void die(const char *what) {
    fprintf(stderr, "kernel bench: %s: %s\n", what, strerror(errno));
    exit(1);
}

static double now(void) {
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0) die("clock_gettime");
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Private anonymous mapping, forced to 4 KiB pages so THP cannot batch faults. */
static unsigned char *map(size_t bytes) {
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) die("mmap");
    if (madvise(p, bytes, MADV_NOHUGEPAGE) != 0) die("madvise(MADV_NOHUGEPAGE)");
    return p;
}

static void unmap(void *p, size_t bytes) {
    if (munmap(p, bytes) != 0) die("munmap");
}

static void write_pages(unsigned char *p, size_t npages) {
    volatile unsigned char *v = p;
    for (size_t i = 0; i < npages; i++) v[i * page_size] = 1;
}

static void read_pages(unsigned char *p, size_t npages) {
    volatile unsigned char *v = p;
    unsigned char acc = 0;
    for (size_t i = 0; i < npages; i++) acc ^= v[i * page_size];
    sink = acc;
}

/* ---- one sample of each op: returns elapsed seconds ---- */

static double op_anon_write_fault(size_t bytes) {
    unsigned char *p = map(bytes);
    double t0 = now();
    write_pages(p, bytes / page_size);
    double t = now() - t0;
    unmap(p, bytes);
    return t;
}

static double op_zero_read_fault(size_t bytes) {
    unsigned char *p = map(bytes);
    double t0 = now();
    read_pages(p, bytes / page_size);
    double t = now() - t0;
    unmap(p, bytes);
    return t;
}

static double op_mprotect(size_t bytes) {
    unsigned char *p = map(bytes);
    write_pages(p, bytes / page_size);
    double t0 = now();
    if (mprotect(p, bytes, PROT_READ) != 0) die("mprotect");
    double t = now() - t0;
    unmap(p, bytes);
    return t;
}

static double op_madvise_dontneed(size_t bytes) {
    unsigned char *p = map(bytes);
    write_pages(p, bytes / page_size);
    double t0 = now();
    if (madvise(p, bytes, MADV_DONTNEED) != 0) die("madvise(MADV_DONTNEED)");
    double t = now() - t0;
    unmap(p, bytes);
    return t;
}

static double op_munmap(size_t bytes) {
    unsigned char *p = map(bytes);
    write_pages(p, bytes / page_size);
    double t0 = now();
    unmap(p, bytes);
    return now() - t0;
}

static void reap(pid_t pid) {
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) die("waitpid");
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "kernel bench: child exited abnormally (status %d)\n", status);
        exit(1);
    }
}

/* Time only fork() as seen by the parent; the child leaves at once. */
static double op_fork(size_t bytes) {
    unsigned char *p = map(bytes);
    write_pages(p, bytes / page_size);
    double t0 = now();
    pid_t pid = fork();
    if (pid == 0) _exit(0);
    double t = now() - t0;
    if (pid < 0) die("fork");
    reap(pid);
    unmap(p, bytes);
    return t;
}

/* The child stays alive (blocked on a pipe) so every parent write must copy. */
static double op_cow_fault(size_t bytes) {
    unsigned char *p = map(bytes);
    write_pages(p, bytes / page_size);
    int fds[2];
    if (pipe(fds) != 0) die("pipe");
    pid_t pid = fork();
    if (pid < 0) die("fork");
    if (pid == 0) {
        char c;
        close(fds[1]);
        while (read(fds[0], &c, 1) < 0 && errno == EINTR) {}
        _exit(0);
    }
    if (close(fds[0]) != 0) die("close");
    double t0 = now();
    write_pages(p, bytes / page_size);
    double t = now() - t0;
    if (close(fds[1]) != 0) die("close"); /* EOF releases the child */
    reap(pid);
    unmap(p, bytes);
    return t;
}

/* ---- driver ---- */

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(const double *v, int n) {
    double *s = malloc((size_t)n * sizeof *s);
    if (!s) die("malloc");
    memcpy(s, v, (size_t)n * sizeof *s);
    qsort(s, (size_t)n, sizeof *s, cmp_double);
    double m = n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
    free(s);
    return m;
}

static void run_op(const char *name, double (*fn)(size_t), size_t bytes, int repeats, int first) {
    size_t npages = bytes / page_size;
    double *rates = malloc((size_t)repeats * sizeof *rates);
    if (!rates) die("malloc");
    for (int i = 0; i < repeats; i++) rates[i] = (double)npages / fn(bytes);
    printf("%s\"%s\": {\"pages\": %zu, \"median_pages_per_s\": %.1f, \"samples\": [",
           first ? "" : ", ", name, npages, median(rates, repeats));
    for (int i = 0; i < repeats; i++) printf("%s%.1f", i ? ", " : "", rates[i]);
    printf("]}");
    free(rates);
}

static size_t parse_size(const char *s, const char *what) {
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    switch (*end) {
    case 'K': case 'k': v <<= 10; end++; break;
    case 'M': case 'm': v <<= 20; end++; break;
    case 'G': case 'g': v <<= 30; end++; break;
    }
    if (errno || *end || v == 0) {
        fprintf(stderr, "kernel bench: bad %s '%s'\n", what, s);
        exit(2);
    }
    return (size_t)v;
}

static void print_json_string(const char *s) {
    putchar('"');
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') printf("\\%c", *s);
        else if ((unsigned char)*s < 0x20) printf("\\u%04x", *s);
        else putchar(*s);
    }
    putchar('"');
}

int main(int argc, char **argv) {
    long ps = sysconf(_SC_PAGESIZE);
    if (ps <= 0) die("sysconf(_SC_PAGESIZE)");
    page_size = (size_t)ps;

    size_t size = argc > 1 ? parse_size(argv[1], "sizeBytes") : (size_t)1 << 30;
    size_t fork_size = argc > 2 ? parse_size(argv[2], "forkBytes") : (size_t)256 << 20;
    size_t repeats_arg = argc > 3 ? parse_size(argv[3], "repeats") : 5;
    if (repeats_arg > 1000) {
        fprintf(stderr, "kernel bench: repeats must be 1..1000\n");
        return 2;
    }
    int repeats = (int)repeats_arg;
    /* Whole pages only, so pages/s counts exactly what was touched. */
    size -= size % page_size;
    fork_size -= fork_size % page_size;
    if (size == 0 || fork_size == 0) {
        fprintf(stderr, "kernel bench: sizes must be at least one page\n");
        return 2;
    }

    struct utsname u;
    if (uname(&u) != 0) die("uname");
    char uname_str[4 * sizeof u.sysname];
    snprintf(uname_str, sizeof uname_str, "%s %s %s %s", u.sysname, u.release, u.version,
             u.machine);
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);

    printf("{\"machine\": {\"uname\": ");
    print_json_string(uname_str);
    printf(", \"cpus\": %ld, \"pageSize\": %zu}, \"ops\": {", cpus, page_size);
    /* Forked children leave via _exit(), so buffered stdout is never duplicated. */
    run_op("anon_write_fault", op_anon_write_fault, size, repeats, 1);
    run_op("zero_read_fault", op_zero_read_fault, size, repeats, 0);
    run_op("mprotect", op_mprotect, size, repeats, 0);
    run_op("madvise_dontneed", op_madvise_dontneed, size, repeats, 0);
    run_op("munmap", op_munmap, size, repeats, 0);
    run_op("fork", op_fork, fork_size, repeats, 0);
    run_op("cow_fault", op_cow_fault, fork_size, repeats, 0);
    printf("}}\n");
    return fflush(stdout) == 0 ? 0 : 1;
}
