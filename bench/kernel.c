/*
 * Real-kernel side of the hmmsim benchmark: times one mm operation on 4 KiB pages, `repeats`
 * times, and prints one JSON object on stdout.
 *
 *   usage: kernel OP BYTES [REPEATS=1]      (BYTES accepts a K/M/G suffix)
 *   OP: anon_write_fault zero_read_fault mprotect madvise_dontneed munmap fork cow_fault
 *       mprotect_page (one-page mprotect, alternately read-only and read-write, 20,000 pairs)
 *
 * Each sample reports the work it did (pages, or mprotect calls) and both the CPU time of the
 * process (CLOCK_PROCESS_CPUTIME_ID, what the model's side measures with process.cpuUsage)
 * and the wall time (CLOCK_MONOTONIC) of the operation alone. Errors go to stderr with a
 * non-zero exit.
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

static double clock_s(clockid_t clock) {
    struct timespec ts;
    if (clock_gettime(clock, &ts) != 0) die("clock_gettime");
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* One timed window: CPU and wall seconds. */
struct span { double cpu, wall; };
static struct span t0;
static void tic(void) {
    t0.wall = clock_s(CLOCK_MONOTONIC);
    t0.cpu = clock_s(CLOCK_PROCESS_CPUTIME_ID);
}
static struct span toc(void) {
    struct span s;
    s.cpu = clock_s(CLOCK_PROCESS_CPUTIME_ID) - t0.cpu;
    s.wall = clock_s(CLOCK_MONOTONIC) - t0.wall;
    return s;
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

/* ---- one sample of each op: its timed window; *work is what it did ---- */

static struct span op_anon_write_fault(size_t bytes, size_t *work) {
    unsigned char *p = map(bytes);
    tic();
    write_pages(p, bytes / page_size);
    struct span t = toc();
    unmap(p, bytes);
    *work = bytes / page_size;
    return t;
}

static struct span op_zero_read_fault(size_t bytes, size_t *work) {
    unsigned char *p = map(bytes);
    tic();
    read_pages(p, bytes / page_size);
    struct span t = toc();
    unmap(p, bytes);
    *work = bytes / page_size;
    return t;
}

static struct span op_mprotect(size_t bytes, size_t *work) {
    unsigned char *p = map(bytes);
    write_pages(p, bytes / page_size);
    tic();
    if (mprotect(p, bytes, PROT_READ) != 0) die("mprotect");
    struct span t = toc();
    unmap(p, bytes);
    *work = bytes / page_size;
    return t;
}

static struct span op_madvise_dontneed(size_t bytes, size_t *work) {
    unsigned char *p = map(bytes);
    write_pages(p, bytes / page_size);
    tic();
    if (madvise(p, bytes, MADV_DONTNEED) != 0) die("madvise(MADV_DONTNEED)");
    struct span t = toc();
    unmap(p, bytes);
    *work = bytes / page_size;
    return t;
}

static struct span op_munmap(size_t bytes, size_t *work) {
    unsigned char *p = map(bytes);
    write_pages(p, bytes / page_size);
    tic();
    unmap(p, bytes);
    *work = bytes / page_size;
    return toc();
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
static struct span op_fork(size_t bytes, size_t *work) {
    unsigned char *p = map(bytes);
    write_pages(p, bytes / page_size);
    tic();
    pid_t pid = fork();
    if (pid == 0) _exit(0);
    struct span t = toc();
    if (pid < 0) die("fork");
    reap(pid);
    unmap(p, bytes);
    *work = bytes / page_size;
    return t;
}

/* The child stays alive (blocked on a pipe) so every parent write must copy. */
static struct span op_cow_fault(size_t bytes, size_t *work) {
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
    tic();
    write_pages(p, bytes / page_size);
    struct span t = toc();
    if (close(fds[1]) != 0) die("close"); /* EOF releases the child */
    reap(pid);
    unmap(p, bytes);
    *work = bytes / page_size;
    return t;
}

/*
 * One populated page in the middle of a mapping, made read-only and read-write again: each
 * mprotect is one invalidation of that page (and a VMA split or merge), as the model's
 * invalidation rows do with no interval notifier registered. `bytes` is unused.
 */
#define MPROTECT_PAIRS 20000
static struct span op_mprotect_page(size_t bytes, size_t *work) {
    (void)bytes;
    size_t len = 64 * page_size;
    unsigned char *p = map(len);
    unsigned char *page = p + 32 * page_size;
    page[0] = 1;
    tic();
    for (int r = 0; r < MPROTECT_PAIRS; r++) {
        if (mprotect(page, page_size, PROT_READ) != 0) die("mprotect");
        if (mprotect(page, page_size, PROT_READ | PROT_WRITE) != 0) die("mprotect");
    }
    struct span t = toc();
    unmap(p, len);
    *work = 2 * MPROTECT_PAIRS;
    return t;
}

/* ---- driver ---- */

static const struct { const char *name; struct span (*fn)(size_t, size_t *); } OPS[] = {
    {"anon_write_fault", op_anon_write_fault}, {"zero_read_fault", op_zero_read_fault},
    {"mprotect", op_mprotect}, {"madvise_dontneed", op_madvise_dontneed}, {"munmap", op_munmap},
    {"fork", op_fork}, {"cow_fault", op_cow_fault}, {"mprotect_page", op_mprotect_page},
};

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
    if (argc < 3 || argc > 4) {
        fprintf(stderr, "usage: kernel OP BYTES [REPEATS]\n");
        return 2;
    }
    int op = -1;
    for (size_t i = 0; i < sizeof OPS / sizeof OPS[0]; i++)
        if (strcmp(argv[1], OPS[i].name) == 0) op = (int)i;
    if (op < 0) {
        fprintf(stderr, "kernel bench: unknown op '%s'\n", argv[1]);
        return 2;
    }
    size_t bytes = parse_size(argv[2], "BYTES");
    size_t repeats = argc > 3 ? parse_size(argv[3], "REPEATS") : 1;
    if (repeats > 1000) {
        fprintf(stderr, "kernel bench: repeats must be 1..1000\n");
        return 2;
    }
    /* Whole pages only, so pages/s counts exactly what was touched. */
    bytes -= bytes % page_size;
    if (bytes == 0) {
        fprintf(stderr, "kernel bench: BYTES must be at least one page\n");
        return 2;
    }

    struct utsname u;
    if (uname(&u) != 0) die("uname");
    char uname_str[4 * sizeof u.sysname];
    snprintf(uname_str, sizeof uname_str, "%s %s %s %s", u.sysname, u.release, u.version, u.machine);
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);

    printf("{\"machine\": {\"uname\": ");
    print_json_string(uname_str);
    printf(", \"cpus\": %ld, \"pageSize\": %zu}, \"op\": \"%s\", \"samples\": [", cpus, page_size, OPS[op].name);
    /* Forked children leave via _exit(), so buffered stdout is never duplicated. */
    for (size_t r = 0; r < repeats; r++) {
        size_t work = 0;
        struct span t = OPS[op].fn(bytes, &work);
        printf("%s{\"work\": %zu, \"cpu\": %.9f, \"wall\": %.9f}", r ? ", " : "", work, t.cpu, t.wall);
    }
    printf("]}\n");
    return fflush(stdout) == 0 ? 0 : 1;
}
