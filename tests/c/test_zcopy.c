/*
 * C tests of libzcopy, written only against include/zcopy.h: real files, pipes, loopback TCP
 * sockets and child processes, no mocks. Every test prints "ok - NAME" or "FAIL - NAME: why";
 * the last line is "N passed, N failed". Exit status 0 only when nothing failed.
 *
 *   test_zcopy [NAME...]      run all tests, or only those named
 *   ZCOPY_TEST_QUICK=1        skip the 3 GiB sparse-file test (used under valgrind)
 *
 * stream_source_disk_full mounts a 1 MiB tmpfs to get a real ENOSPC (root only; it prints
 * "# skipped" where mounting is not permitted).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "zcopy.h"

/* ---------------------------------------------------------------- harness */

static char fail_msg[512];

#define CHECK(cond)                                                                     \
    do {                                                                                \
        if (!(cond)) {                                                                  \
            snprintf(fail_msg, sizeof fail_msg, "%s:%d: %s", __FILE__, __LINE__, #cond); \
            return false;                                                               \
        }                                                                               \
    } while (0)

#define CHECKF(cond, ...)                                                       \
    do {                                                                        \
        if (!(cond)) {                                                          \
            int n_ = snprintf(fail_msg, sizeof fail_msg, "%s:%d: %s: ", __FILE__, \
                              __LINE__, #cond);                                 \
            if (n_ > 0 && (size_t)n_ < sizeof fail_msg)                          \
                snprintf(fail_msg + n_, sizeof fail_msg - (size_t)n_, __VA_ARGS__); \
            return false;                                                       \
        }                                                                       \
    } while (0)

/* Checks a status, printing both names when it differs. */
#define CHECK_STATUS(got, want)                                                           \
    CHECKF((got) == (want), "status %s (%d), expected %s", zcopy_status_name((int32_t)(got)), \
           (int)(got), zcopy_status_name((int32_t)(want)))

static void die(const char *what) {
    perror(what);
    exit(2);
}

/* ---------------------------------------------------------------- helpers */

static uint64_t fnv_update(uint64_t h, const unsigned char *p, size_t n) {
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}
#define FNV_INIT 0xcbf29ce484222325ULL

/* Deterministic pseudo-random bytes: byte i of stream `seed`. */
static void fill(unsigned char *buf, size_t n, uint64_t seed) {
    uint64_t x = seed * 0x9e3779b97f4a7c15ULL + 1;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        buf[i] = (unsigned char)(x >> 24);
    }
}

static uint64_t hash_of(uint64_t seed, size_t n) {
    unsigned char *b = malloc(n ? n : 1);
    if (!b) die("malloc");
    fill(b, n, seed);
    uint64_t h = fnv_update(FNV_INIT, b, n);
    free(b);
    return h;
}

/* An unlinked temporary file (read/write) holding `n` bytes of stream `seed`, position 0. */
static int temp_file(size_t n, uint64_t seed) {
    char path[] = "/tmp/zcopy-c-test-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) die("mkstemp");
    unlink(path);
    if (n) {
        unsigned char *b = malloc(n);
        if (!b) die("malloc");
        fill(b, n, seed);
        size_t off = 0;
        while (off < n) {
            ssize_t w = write(fd, b + off, n - off);
            if (w < 0) die("write");
            off += (size_t)w;
        }
        free(b);
    }
    if (lseek(fd, 0, SEEK_SET) < 0) die("lseek");
    return fd;
}

/* Reads what `fd` holds from offset 0 (without moving its position): length and hash. */
static void file_digest(int fd, uint64_t *len, uint64_t *hash) {
    unsigned char buf[65536];
    uint64_t h = FNV_INIT, total = 0;
    for (;;) {
        ssize_t r = pread(fd, buf, sizeof buf, (off_t)total);
        if (r < 0) die("pread");
        if (r == 0) break;
        h = fnv_update(h, buf, (size_t)r);
        total += (uint64_t)r;
    }
    *len = total;
    *hash = h;
}

static bool ioctl_fionread_ok(int fd, int *avail) { return ioctl(fd, FIONREAD, avail) == 0; }

static off_t pos(int fd) { return lseek(fd, 0, SEEK_CUR); }

static int fl(int fd) { return fcntl(fd, F_GETFL); }

/* A connected loopback TCP pair: *a is the connecting side, *b the accepted one. */
static void tcp_pair(int *a, int *b) {
    int l = socket(AF_INET, SOCK_STREAM, 0);
    if (l < 0) die("socket");
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t sl = sizeof sa;
    if (bind(l, (struct sockaddr *)&sa, sizeof sa) < 0) die("bind");
    if (listen(l, 1) < 0) die("listen");
    if (getsockname(l, (struct sockaddr *)&sa, &sl) < 0) die("getsockname");
    *a = socket(AF_INET, SOCK_STREAM, 0);
    if (*a < 0) die("socket");
    if (connect(*a, (struct sockaddr *)&sa, sizeof sa) < 0) die("connect");
    *b = accept(l, NULL, NULL);
    if (*b < 0) die("accept");
    close(l);
}

/* A child process reading `fd` to EOF; its result comes back through a pipe. */
typedef struct {
    pid_t pid;
    int result_fd;
} reader;

typedef struct {
    uint64_t len, hash;
} digest;

static reader spawn_reader(int fd, int close_in_child) {
    int p[2];
    if (pipe(p) < 0) die("pipe");
    pid_t pid = fork();
    if (pid < 0) die("fork");
    if (pid == 0) {
        close(p[0]);
        if (close_in_child >= 0) close(close_in_child);
        unsigned char buf[65536];
        digest d = {0, FNV_INIT};
        for (;;) {
            ssize_t r = read(fd, buf, sizeof buf);
            if (r < 0 && errno == EINTR) continue;
            if (r < 0) _exit(3);
            if (r == 0) break;
            d.hash = fnv_update(d.hash, buf, (size_t)r);
            d.len += (uint64_t)r;
        }
        if (write(p[1], &d, sizeof d) != (ssize_t)sizeof d) _exit(4);
        _exit(0);
    }
    close(p[1]);
    reader r = {pid, p[0]};
    return r;
}

static bool reader_wait(reader r, digest *d) {
    ssize_t n = read(r.result_fd, d, sizeof *d);
    close(r.result_fd);
    int st = 0;
    if (waitpid(r.pid, &st, 0) < 0) die("waitpid");
    return n == (ssize_t)sizeof *d && WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

/* A child process writing `n` bytes of stream `seed` to `fd`, then exiting (closing it). */
static pid_t spawn_writer(int fd, size_t n, uint64_t seed, int close_in_child) {
    pid_t pid = fork();
    if (pid < 0) die("fork");
    if (pid == 0) {
        if (close_in_child >= 0) close(close_in_child);
        unsigned char *b = malloc(n ? n : 1);
        if (!b) _exit(3);
        fill(b, n, seed);
        size_t off = 0;
        while (off < n) {
            ssize_t w = write(fd, b + off, n - off);
            if (w < 0 && errno == EINTR) continue;
            if (w < 0) _exit(4);
            off += (size_t)w;
        }
        free(b);
        _exit(0);
    }
    return pid;
}

static bool child_ok(pid_t pid) {
    int st = 0;
    if (waitpid(pid, &st, 0) < 0) die("waitpid");
    return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

static zcopy_options opts_with(zcopy_method m) {
    zcopy_options o;
    zcopy_options_init(&o);
    o.method = m;
    return o;
}

/* A report full of garbage, to see that the library writes every field. */
static zcopy_report garbage_report(void) {
    zcopy_report r;
    memset(&r, 0x5a, sizeof r);
    return r;
}

static bool supported(zcopy_method m) { return (zcopy_capabilities() >> (unsigned)m) & 1u; }

/* ---------------------------------------------------------------- tests */

static bool test_names_version_caps(void) {
    static const char *const statuses[] = {"OK",          "OS",        "UNSUPPORTED",
                                           "INVALID_ARGUMENT", "WOULD_BLOCK", "TIMED_OUT",
                                           "NULL_PARAMETER", "PANIC"};
    for (int i = 0; i < 8; i++) CHECKF(strcmp(zcopy_status_name(i), statuses[i]) == 0, "%d", i);
    CHECK(ZCOPY_STATUS_PANIC == 7 && ZCOPY_STATUS_NULL_PARAMETER == 6 && ZCOPY_STATUS_OS == 1);
    CHECK(strcmp(zcopy_status_name(8), "UNKNOWN") == 0);
    CHECK(strcmp(zcopy_status_name(-1), "UNKNOWN") == 0);
    CHECK(strcmp(zcopy_status_name(INT32_MAX), "UNKNOWN") == 0);
    static const char *const methods[] = {"auto",   "read_write",      "mmap",        "sendfile",
                                          "splice", "copy_file_range", "msg_zerocopy"};
    for (int i = 0; i < 7; i++) CHECKF(strcmp(zcopy_method_name(i), methods[i]) == 0, "%d", i);
    CHECK(ZCOPY_METHOD_MSG_ZEROCOPY == 6 && ZCOPY_METHOD_COPY_FILE_RANGE == 5);
    CHECK(strcmp(zcopy_method_name(7), "unknown") == 0);
    const char *v = zcopy_version();
    CHECK(v != NULL && v[0] >= '0' && v[0] <= '9' && strchr(v, '.') != NULL);
    uint32_t caps = zcopy_capabilities();
    CHECK(caps & (1u << ZCOPY_METHOD_AUTO));
    CHECK(caps & (1u << ZCOPY_METHOD_READ_WRITE));
    CHECK((caps >> 7) == 0);
    CHECK(zcopy_capabilities() == caps);
    CHECK(ZCOPY_TO_EOF == UINT64_MAX && ZCOPY_FLAG_ALLOW_FALLBACK == 1u);
    return true;
}

static bool test_options_init(void) {
    zcopy_options o;
    memset(&o, 0x77, sizeof o);
    zcopy_options_init(&o);
    CHECK(o.method == ZCOPY_METHOD_AUTO);
    CHECK(o.offset == -1);
    CHECK(o.count == ZCOPY_TO_EOF);
    CHECK(o.timeout_ms == -1);
    CHECK(o.flags == 0);
    zcopy_options_init(NULL); /* documented no-op */
    return true;
}

static bool test_file_to_file_auto(void) {
    const size_t n = (1u << 20) + 1;
    int src = temp_file(n, 1), dst = temp_file(0, 0);
    zcopy_report r = garbage_report();
    CHECK_STATUS(zcopy_transfer(src, dst, NULL, &r), ZCOPY_STATUS_OK);
    CHECK(r.bytes == n);
    CHECK(r.os_errno == 0);
    CHECK(r.method != ZCOPY_METHOD_AUTO && r.method <= ZCOPY_METHOD_MSG_ZEROCOPY);
    CHECK(r.syscalls > 0);
    CHECK(r.zc_sends == 0 && r.zc_copied == 0);
    CHECK(r.undelivered == 0 && r.zc_pending == 0); /* written on every status */
    CHECK(pos(src) == (off_t)n); /* offset -1: the source position advanced */
    CHECK(pos(dst) == (off_t)n); /* the destination position advanced */
    uint64_t len, h;
    file_digest(dst, &len, &h);
    CHECK(len == n && h == hash_of(1, n));
    /* At EOF: success with 0 bytes. */
    CHECK_STATUS(zcopy_transfer(src, dst, NULL, &r), ZCOPY_STATUS_OK);
    CHECK(r.bytes == 0);
    /* Two calls concatenate: rewind the source and go again. */
    CHECK(lseek(src, 0, SEEK_SET) == 0);
    CHECK_STATUS(zcopy_transfer(src, dst, NULL, NULL), ZCOPY_STATUS_OK);
    file_digest(dst, &len, &h);
    CHECK(len == 2 * n);
    close(src);
    close(dst);
    return true;
}

static bool test_file_to_file_each_method(void) {
    const zcopy_method ms[] = {ZCOPY_METHOD_READ_WRITE, ZCOPY_METHOD_MMAP, ZCOPY_METHOD_SENDFILE,
                               ZCOPY_METHOD_SPLICE, ZCOPY_METHOD_COPY_FILE_RANGE};
    const size_t sizes[] = {0, 1, 4095, 4096, 4097, 65537};
    for (size_t i = 0; i < sizeof ms / sizeof ms[0]; i++) {
        if (!supported(ms[i])) continue;
        for (size_t j = 0; j < sizeof sizes / sizeof sizes[0]; j++) {
            size_t n = sizes[j];
            int src = temp_file(n, 10 + j), dst = temp_file(0, 0);
            zcopy_options o = opts_with(ms[i]);
            zcopy_report r = garbage_report();
            zcopy_status st = zcopy_transfer(src, dst, &o, &r);
            CHECKF(st == ZCOPY_STATUS_OK, "%s size %zu: %s errno %d", zcopy_method_name((int32_t)ms[i]), n,
                   zcopy_status_name((int32_t)st), r.os_errno);
            CHECKF(r.bytes == n, "%s: %" PRIu64 " of %zu", zcopy_method_name((int32_t)ms[i]), r.bytes, n);
            if (n) CHECKF(r.method == ms[i], "%s moved by %s", zcopy_method_name((int32_t)ms[i]),
                          zcopy_method_name((int32_t)r.method));
            CHECK(r.fallbacks == 0);
            uint64_t len, h;
            file_digest(dst, &len, &h);
            CHECK(len == n && h == hash_of(10 + j, n));
            CHECK(pos(src) == (off_t)n);
            close(src);
            close(dst);
        }
    }
    return true;
}

static bool test_offset_and_count(void) {
    const size_t n = 100000;
    int src = temp_file(n, 3), dst = temp_file(0, 0);
    unsigned char *want = malloc(n);
    if (!want) die("malloc");
    fill(want, n, 3);
    CHECK(lseek(src, 5, SEEK_SET) == 5);
    zcopy_options o;
    zcopy_options_init(&o);
    o.offset = 1000;
    o.count = 5000;
    zcopy_report r;
    CHECK_STATUS(zcopy_transfer(src, dst, &o, &r), ZCOPY_STATUS_OK);
    CHECK(r.bytes == 5000);
    CHECK(pos(src) == 5); /* an explicit offset leaves the position alone */
    uint64_t len, h;
    file_digest(dst, &len, &h);
    CHECK(len == 5000 && h == fnv_update(FNV_INIT, want + 1000, 5000));
    /* Count past EOF: EOF first is not an error. */
    o.offset = (int64_t)n - 10;
    o.count = 1000;
    CHECK_STATUS(zcopy_transfer(src, dst, &o, &r), ZCOPY_STATUS_OK);
    CHECK(r.bytes == 10);
    /* Offset past EOF: nothing to move. */
    o.offset = (int64_t)n + 10;
    CHECK_STATUS(zcopy_transfer(src, dst, &o, &r), ZCOPY_STATUS_OK);
    CHECK(r.bytes == 0);
    /* Count 0: immediate success. */
    zcopy_options_init(&o);
    o.count = 0;
    CHECK_STATUS(zcopy_transfer(src, dst, &o, &r), ZCOPY_STATUS_OK);
    CHECK(r.bytes == 0 && r.os_errno == 0);
    CHECK(pos(src) == 5);
    /* Count from the position. */
    o.count = 7;
    CHECK_STATUS(zcopy_transfer(src, dst, &o, &r), ZCOPY_STATUS_OK);
    CHECK(r.bytes == 7 && pos(src) == 12);
    file_digest(dst, &len, &h);
    CHECK(len == 5017);
    free(want);
    close(src);
    close(dst);
    return true;
}

static bool test_append_destination(void) {
    const size_t n = 70000;
    int src = temp_file(n, 4);
    char path[] = "/tmp/zcopy-c-append-XXXXXX";
    int tmp = mkstemp(path);
    if (tmp < 0) die("mkstemp");
    if (write(tmp, "head", 4) != 4) die("write");
    close(tmp);
    int dst = open(path, O_WRONLY | O_APPEND);
    unlink(path);
    CHECK(dst >= 0);
    zcopy_report r;
    CHECK_STATUS(zcopy_transfer(src, dst, NULL, &r), ZCOPY_STATUS_OK);
    CHECK(r.bytes == n);
    CHECK(lseek(src, 0, SEEK_SET) == 0);
    CHECK_STATUS(zcopy_transfer(src, dst, NULL, &r), ZCOPY_STATUS_OK);
    CHECK(r.bytes == n);
    CHECK(fl(dst) & O_APPEND);
    struct stat st;
    CHECK(fstat(dst, &st) == 0 && st.st_size == (off_t)(4 + 2 * n));
    close(src);
    close(dst);
    return true;
}

static bool test_dev_zero_with_count(void) {
    int z = open("/dev/zero", O_RDONLY);
    CHECK(z >= 0);
    int dst = temp_file(0, 0);
    zcopy_options o;
    zcopy_options_init(&o);
    o.count = (1u << 20) + 3;
    zcopy_report r;
    CHECK_STATUS(zcopy_transfer(z, dst, &o, &r), ZCOPY_STATUS_OK);
    CHECK(r.bytes == o.count);
    uint64_t len, h;
    file_digest(dst, &len, &h);
    CHECK(len == o.count);
    close(z);
    close(dst);
    return true;
}

static bool file_to_tcp_with(zcopy_method m, size_t n, uint64_t seed) {
    int a, b;
    tcp_pair(&a, &b);
    reader rd = spawn_reader(b, a);
    close(b);
    int src = temp_file(n, seed);
    int flags_before = fl(a);
    zcopy_options o = opts_with(m);
    zcopy_report r = garbage_report();
    zcopy_status st = zcopy_transfer(src, a, &o, &r);
    CHECKF(st == ZCOPY_STATUS_OK, "%s: %s errno %d", zcopy_method_name((int32_t)m),
           zcopy_status_name((int32_t)st), r.os_errno);
    CHECK(r.bytes == n);
    CHECK(fl(a) == flags_before);
    if (m != ZCOPY_METHOD_AUTO) CHECK(r.method == m || (m == ZCOPY_METHOD_MSG_ZEROCOPY));
    if (m == ZCOPY_METHOD_MSG_ZEROCOPY) {
        /* Loopback: the kernel copies every zerocopy send it completes. */
        CHECKF(r.zc_copied == r.zc_sends, "zc_sends %" PRIu64 " zc_copied %" PRIu64, r.zc_sends,
               r.zc_copied);
    } else {
        CHECK(r.zc_sends == 0);
    }
    close(a);
    digest d;
    CHECK(reader_wait(rd, &d));
    CHECK(d.len == n && d.hash == hash_of(seed, n));
    close(src);
    return true;
}

static bool test_file_to_tcp(void) {
    const size_t n = (1u << 20) + 1;
    if (!file_to_tcp_with(ZCOPY_METHOD_AUTO, n, 5)) return false;
    const zcopy_method ms[] = {ZCOPY_METHOD_SENDFILE, ZCOPY_METHOD_SPLICE, ZCOPY_METHOD_MMAP,
                               ZCOPY_METHOD_READ_WRITE, ZCOPY_METHOD_MSG_ZEROCOPY};
    for (size_t i = 0; i < sizeof ms / sizeof ms[0]; i++)
        if (supported(ms[i]) && !file_to_tcp_with(ms[i], n, 6 + i)) return false;
    return true;
}

static bool test_file_to_pipe(void) {
    const size_t n = 300000;
    const zcopy_method ms[] = {ZCOPY_METHOD_AUTO, ZCOPY_METHOD_SPLICE, ZCOPY_METHOD_SENDFILE,
                               ZCOPY_METHOD_READ_WRITE};
    for (size_t i = 0; i < sizeof ms / sizeof ms[0]; i++) {
        if (!supported(ms[i])) continue;
        int p[2];
        CHECK(pipe(p) == 0);
        reader rd = spawn_reader(p[0], p[1]);
        close(p[0]);
        int src = temp_file(n, 20 + i);
        zcopy_options o = opts_with(ms[i]);
        zcopy_report r;
        CHECK_STATUS(zcopy_transfer(src, p[1], &o, &r), ZCOPY_STATUS_OK);
        CHECK(r.bytes == n);
        close(p[1]);
        digest d;
        CHECK(reader_wait(rd, &d));
        CHECKF(d.len == n && d.hash == hash_of(20 + i, n), "%s", zcopy_method_name((int32_t)ms[i]));
        close(src);
    }
    return true;
}

static bool test_pipe_to_file(void) {
    const size_t n = 500001;
    const zcopy_method ms[] = {ZCOPY_METHOD_AUTO, ZCOPY_METHOD_SPLICE, ZCOPY_METHOD_READ_WRITE};
    for (size_t i = 0; i < sizeof ms / sizeof ms[0]; i++) {
        if (!supported(ms[i])) continue;
        int p[2];
        CHECK(pipe(p) == 0);
        pid_t w = spawn_writer(p[1], n, 30 + i, p[0]);
        close(p[1]);
        int dst = temp_file(0, 0);
        zcopy_options o = opts_with(ms[i]);
        zcopy_report r;
        CHECK_STATUS(zcopy_transfer(p[0], dst, &o, &r), ZCOPY_STATUS_OK);
        CHECK(r.bytes == n);
        CHECK(child_ok(w));
        uint64_t len, h;
        file_digest(dst, &len, &h);
        CHECK(len == n && h == hash_of(30 + i, n));
        close(p[0]);
        close(dst);
    }
    return true;
}

static bool test_tcp_to_file(void) {
    const size_t n = (2u << 20) + 7;
    const zcopy_method ms[] = {ZCOPY_METHOD_AUTO, ZCOPY_METHOD_SPLICE, ZCOPY_METHOD_READ_WRITE};
    for (size_t i = 0; i < sizeof ms / sizeof ms[0]; i++) {
        if (!supported(ms[i])) continue;
        int a, b;
        tcp_pair(&a, &b);
        pid_t w = spawn_writer(a, n, 40 + i, b);
        close(a);
        int dst = temp_file(0, 0);
        zcopy_options o = opts_with(ms[i]);
        zcopy_report r;
        CHECK_STATUS(zcopy_transfer(b, dst, &o, &r), ZCOPY_STATUS_OK);
        CHECK(r.bytes == n);
        CHECK(child_ok(w));
        uint64_t len, h;
        file_digest(dst, &len, &h);
        CHECK(len == n && h == hash_of(40 + i, n));
        close(b);
        close(dst);
    }
    return true;
}

/* Reads `fd` to its end of file: length and hash. */
static void drain_digest(int fd, uint64_t *len, uint64_t *hash) {
    unsigned char buf[65536];
    uint64_t h = FNV_INIT, total = 0;
    for (;;) {
        ssize_t r = read(fd, buf, sizeof buf);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) die("read");
        if (r == 0) break;
        h = fnv_update(h, buf, (size_t)r);
        total += (uint64_t)r;
    }
    *len = total;
    *hash = h;
}

/* After a transfer from a stream `src` (a child `w` writes `n` bytes of stream `seed` into its
 * peer, then exits), every byte is accounted for: the file behind `check_fd` holds the first
 * `r->bytes` of the stream, `src` still holds its last bytes, and nothing else is missing but
 * what the report calls undelivered: bytes + undelivered + left in the source == n. */
static bool stream_accounted(int src, pid_t w, int check_fd, zcopy_status st,
                             const zcopy_report *r, size_t n, uint64_t seed, const char *what) {
    uint64_t left, left_hash, len, h;
    drain_digest(src, &left, &left_hash);
    printf("# %s: %s (errno %d), %" PRIu64 " delivered, %" PRIu64 " undelivered, %" PRIu64
           " left in the source\n",
           what, zcopy_status_name((int32_t)st), r->os_errno, r->bytes, r->undelivered, left);
    CHECKF(child_ok(w), "%s: the writer failed", what);
    file_digest(check_fd, &len, &h);
    unsigned char *want = malloc(n);
    if (!want) die("malloc");
    fill(want, n, seed);
    CHECKF(r->bytes + r->undelivered + left == n,
           "%s: bytes %" PRIu64 " + undelivered %" PRIu64 " + left %" PRIu64 " != sent %zu", what,
           r->bytes, r->undelivered, left, n);
    CHECKF(len == r->bytes, "%s: the file has %" PRIu64 " bytes, the report %" PRIu64, what, len,
           r->bytes);
    CHECKF(h == fnv_update(FNV_INIT, want, (size_t)len), "%s: the file is not the stream's head",
           what);
    CHECKF(left_hash == fnv_update(FNV_INIT, want + (n - left), (size_t)left),
           "%s: the source's rest is not the stream's tail", what);
    free(want);
    return true;
}

/* A stream source into a destination that fails after the read took the bytes: O_DIRECT takes
 * only aligned writes, so an unaligned write is EINVAL. The library may also refuse the pair up
 * front (UNSUPPORTED, nothing consumed). Either way no byte goes unaccounted for. */
static bool test_stream_source_odirect(void) {
    const size_t n = 300001;
    char path[] = "/tmp/zcopy-c-direct-XXXXXX";
    int tmp = mkstemp(path);
    if (tmp < 0) die("mkstemp");
    close(tmp);
    int dst = open(path, O_WRONLY | O_DIRECT), check_fd = open(path, O_RDONLY);
    int open_errno = errno;
    unlink(path);
    CHECK(check_fd >= 0);
    if (dst < 0) {
        printf("# skipped: O_DIRECT refused on /tmp (%s)\n", strerror(open_errno));
        close(check_fd);
        return true;
    }
    const zcopy_method ms[] = {ZCOPY_METHOD_READ_WRITE, ZCOPY_METHOD_AUTO, ZCOPY_METHOD_SPLICE};
    for (size_t i = 0; i < sizeof ms / sizeof ms[0]; i++) {
        if (!supported(ms[i])) continue;
        const char *name = zcopy_method_name((int32_t)ms[i]);
        CHECK(ftruncate(dst, 0) == 0 && lseek(dst, 0, SEEK_SET) == 0);
        int u[2];
        CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, u) == 0);
        pid_t w = spawn_writer(u[1], n, 50 + i, u[0]);
        close(u[1]);
        zcopy_options o = opts_with(ms[i]);
        o.flags = ZCOPY_FLAG_ALLOW_FALLBACK;
        zcopy_report r = garbage_report();
        zcopy_status st = zcopy_transfer(u[0], dst, &o, &r);
        if (st == ZCOPY_STATUS_UNSUPPORTED) {
            CHECKF(r.bytes == 0 && r.undelivered == 0 && r.os_errno == 0,
                   "%s: bytes %" PRIu64 " undelivered %" PRIu64, name, r.bytes, r.undelivered);
        } else {
            CHECKF(st == ZCOPY_STATUS_OS && r.os_errno == EINVAL, "%s: %s errno %d", name,
                   zcopy_status_name((int32_t)st), r.os_errno);
            CHECKF(r.undelivered > 0, "%s: EINVAL after a read, yet nothing undelivered", name);
        }
        if (!stream_accounted(u[0], w, check_fd, st, &r, n, 50 + i, name)) return false;
        close(u[0]);
    }
    close(dst);
    close(check_fd);
    return true;
}

/* The cases of test_stream_source_disk_full, on the 1 MiB file system mounted at `dir`. */
static bool disk_full_cases(const char *dir) {
    const size_t n = (2u << 20) + 5;
    char path[256];
    snprintf(path, sizeof path, "%s/out", dir);
    const zcopy_method ms[] = {ZCOPY_METHOD_AUTO, ZCOPY_METHOD_SPLICE, ZCOPY_METHOD_READ_WRITE};
    for (size_t i = 0; i < sizeof ms / sizeof ms[0]; i++) {
        if (!supported(ms[i])) continue;
        const char *name = zcopy_method_name((int32_t)ms[i]);
        int dst = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
        CHECK(dst >= 0);
        int u[2];
        CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, u) == 0);
        pid_t w = spawn_writer(u[1], n, 60 + i, u[0]);
        close(u[1]);
        zcopy_options o = opts_with(ms[i]);
        zcopy_report r = garbage_report();
        zcopy_status st = zcopy_transfer(u[0], dst, &o, &r);
        CHECKF(st == ZCOPY_STATUS_OS && r.os_errno == ENOSPC, "%s: %s errno %d", name,
               zcopy_status_name((int32_t)st), r.os_errno);
        CHECKF(r.bytes > 0 && r.bytes < n, "%s: bytes %" PRIu64, name, r.bytes);
        if (!stream_accounted(u[0], w, dst, st, &r, n, 60 + i, name)) return false;
        close(u[0]);
        close(dst);
        CHECK(unlink(path) == 0);
    }
    /* A file source gives undelivered bytes back by its position: undelivered stays 0. */
    int src = temp_file(n, 63);
    int dst = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    CHECK(dst >= 0);
    zcopy_report r = garbage_report();
    CHECK_STATUS(zcopy_transfer(src, dst, NULL, &r), ZCOPY_STATUS_OS);
    CHECK(r.os_errno == ENOSPC);
    CHECKF(r.undelivered == 0, "undelivered %" PRIu64 " from a file source", r.undelivered);
    CHECK(r.bytes > 0 && r.bytes < n && pos(src) == (off_t)r.bytes);
    uint64_t len, h;
    file_digest(dst, &len, &h);
    CHECK(len == r.bytes);
    close(src);
    close(dst);
    CHECK(unlink(path) == 0);
    return true;
}

/* A stream source into a full disk (a 1 MiB tmpfs, mounted for the test; skipped where mounting
 * is not permitted): ENOSPC, and the bytes read from the socket that the disk refused are
 * reported in `undelivered`, so bytes + undelivered + left in the socket == sent. */
static bool test_stream_source_disk_full(void) {
    char dir[] = "/tmp/zcopy-c-enospc-XXXXXX";
    if (!mkdtemp(dir)) die("mkdtemp");
    if (mount("zcopy-enospc", dir, "tmpfs", 0, "size=1m") != 0) {
        printf("# skipped: cannot mount a 1 MiB tmpfs here (%s)\n", strerror(errno));
        rmdir(dir);
        return true;
    }
    bool ok = disk_full_cases(dir);
    if (umount2(dir, MNT_DETACH) != 0) perror("umount2");
    rmdir(dir);
    return ok;
}

/* A 3 GiB sparse file with a few marker bytes, to a TCP socket. The reader checks every byte:
 * zero everywhere except at the markers (so no byte is lost, duplicated or moved). */
#define BIG_SIZE (3ULL << 30)
static const uint64_t marker_at[] = {0, 4095, 1ULL << 30, 0x7ffff000ULL - 1, 0x7ffff000ULL,
                                     (2ULL << 30) + 12345, BIG_SIZE - 1};
#define N_MARKERS (sizeof marker_at / sizeof marker_at[0])

static unsigned char marker_val(size_t i) { return (unsigned char)(0xa0 + i); }

static bool test_big_sparse_to_tcp(void) {
    if (getenv("ZCOPY_TEST_QUICK")) {
        printf("# skipped: ZCOPY_TEST_QUICK is set\n");
        return true;
    }
    int src = temp_file(0, 0);
    CHECK(ftruncate(src, (off_t)BIG_SIZE) == 0);
    for (size_t i = 0; i < N_MARKERS; i++) {
        unsigned char v = marker_val(i);
        CHECK(pwrite(src, &v, 1, (off_t)marker_at[i]) == 1);
    }
    int a, b;
    tcp_pair(&a, &b);
    int res[2];
    CHECK(pipe(res) == 0);
    pid_t pid = fork();
    if (pid < 0) die("fork");
    if (pid == 0) {
        close(a);
        close(res[0]);
        static unsigned char buf[1 << 20], zero[1 << 20];
        uint64_t total = 0, found = 0, bad = 0;
        for (;;) {
            ssize_t r = read(b, buf, sizeof buf);
            if (r < 0 && errno == EINTR) continue;
            if (r < 0) _exit(3);
            if (r == 0) break;
            if (memcmp(buf, zero, (size_t)r) != 0) {
                for (size_t k = 0; k < (size_t)r; k++) {
                    if (!buf[k]) continue;
                    uint64_t at = total + k;
                    bool ok = false;
                    for (size_t i = 0; i < N_MARKERS; i++)
                        if (marker_at[i] == at && marker_val(i) == buf[k]) ok = true;
                    if (ok) found++; else bad++;
                }
            }
            total += (uint64_t)r;
        }
        uint64_t out[3] = {total, found, bad};
        if (write(res[1], out, sizeof out) != (ssize_t)sizeof out) _exit(4);
        _exit(0);
    }
    close(b);
    close(res[1]);
    zcopy_report r;
    zcopy_status st = zcopy_transfer(src, a, NULL, &r);
    close(a);
    uint64_t out[3] = {0, 0, 0};
    ssize_t got = read(res[0], out, sizeof out);
    close(res[0]);
    CHECK(child_ok(pid));
    CHECKF(st == ZCOPY_STATUS_OK, "%s errno %d after %" PRIu64, zcopy_status_name((int32_t)st),
           r.os_errno, r.bytes);
    CHECK(got == (ssize_t)sizeof out);
    CHECKF(r.bytes == BIG_SIZE, "report %" PRIu64, r.bytes);
    CHECKF(out[0] == BIG_SIZE, "received %" PRIu64, out[0]);
    CHECKF(out[1] == N_MARKERS && out[2] == 0, "markers found %" PRIu64 ", wrong bytes %" PRIu64,
           out[1], out[2]);
    CHECK(pos(src) == (off_t)BIG_SIZE);
    printf("# 3 GiB sparse file -> TCP with %s\n", zcopy_method_name((int32_t)r.method));
    close(src);
    return true;
}

/* Relay with half-close: client -> [a relay b] -> server. The client sends and shuts down its
 * write side; the server reads to EOF (only possible if the relay forwarded the half-close),
 * then answers and closes; the client reads the answer to EOF. */
static bool test_relay_half_close(void) {
    const size_t up = 100003, down = 250001;
    int client, a, b, server;
    tcp_pair(&client, &a);
    tcp_pair(&b, &server);
    pid_t pc = fork();
    if (pc < 0) die("fork");
    if (pc == 0) {
        close(a);
        close(b);
        close(server);
        unsigned char *buf = malloc(up > down ? up : down);
        if (!buf) _exit(3);
        fill(buf, up, 50);
        size_t off = 0;
        while (off < up) {
            ssize_t w = write(client, buf + off, up - off);
            if (w <= 0) _exit(4);
            off += (size_t)w;
        }
        if (shutdown(client, SHUT_WR) < 0) _exit(5);
        uint64_t h = FNV_INIT, total = 0;
        for (;;) {
            ssize_t r = read(client, buf, down);
            if (r < 0) _exit(6);
            if (r == 0) break;
            h = fnv_update(h, buf, (size_t)r);
            total += (uint64_t)r;
        }
        free(buf);
        _exit(total == down && h == hash_of(51, down) ? 0 : 7);
    }
    pid_t ps = fork();
    if (ps < 0) die("fork");
    if (ps == 0) {
        close(a);
        close(b);
        close(client);
        unsigned char *buf = malloc(up > down ? up : down);
        if (!buf) _exit(3);
        uint64_t h = FNV_INIT, total = 0;
        for (;;) {
            ssize_t r = read(server, buf, up);
            if (r < 0) _exit(6);
            if (r == 0) break;
            h = fnv_update(h, buf, (size_t)r);
            total += (uint64_t)r;
        }
        if (total != up || h != hash_of(50, up)) _exit(7);
        fill(buf, down, 51);
        size_t off = 0;
        while (off < down) {
            ssize_t w = write(server, buf + off, down - off);
            if (w <= 0) _exit(4);
            off += (size_t)w;
        }
        free(buf);
        _exit(0);
    }
    close(client);
    close(server);
    int fa = fl(a), fb = fl(b);
    zcopy_relay_report r;
    memset(&r, 0x5a, sizeof r);
    zcopy_status st = zcopy_relay(a, b, &r);
    CHECKF(st == ZCOPY_STATUS_OK, "%s errno %d", zcopy_status_name((int32_t)st), r.os_errno);
    CHECK(r.a_to_b == up);
    CHECK(r.b_to_a == down);
    CHECK(r.os_errno == 0);
    /* A lone relay gets pipes: the budget is far from exhausted (and does not bind root). */
    CHECK(r.buffered == 0);
    /* buffered took the padding after os_errno: memory sized by older callers still fits. */
    CHECK(sizeof(zcopy_relay_report) == 24);
    CHECK(fl(a) == fa && fl(b) == fb);
    CHECK(child_ok(pc));
    CHECK(child_ok(ps));
    close(a);
    close(b);
    return true;
}

static bool test_relay_errors(void) {
    zcopy_relay_report r;
    memset(&r, 0x5a, sizeof r);
    CHECK_STATUS(zcopy_relay(-1, 3, &r), ZCOPY_STATUS_INVALID_ARGUMENT);
    CHECK(r.a_to_b == 0 && r.b_to_a == 0 && r.os_errno == 0 && r.buffered == 0);
    CHECK_STATUS(zcopy_relay(3, -5, NULL), ZCOPY_STATUS_INVALID_ARGUMENT);
    int a, b;
    tcp_pair(&a, &b);
    CHECK_STATUS(zcopy_relay_with_timeout(a, b, -2, &r), ZCOPY_STATUS_INVALID_ARGUMENT);
    /* A file is not a stream socket. */
    int f = temp_file(10, 1);
    memset(&r, 0x5a, sizeof r);
    CHECK_STATUS(zcopy_relay(a, f, &r), ZCOPY_STATUS_UNSUPPORTED);
    CHECK(r.os_errno == 0 && r.buffered == 0);
    /* Nothing arrives: the deadline passes. */
    int c, d;
    tcp_pair(&c, &d);
    CHECK_STATUS(zcopy_relay_with_timeout(b, c, 100, &r), ZCOPY_STATUS_TIMED_OUT);
    CHECK(r.a_to_b == 0 && r.b_to_a == 0 && r.os_errno == 0);
    CHECK((fl(b) & O_NONBLOCK) == 0 && (fl(c) & O_NONBLOCK) == 0);
    /* Timeout 0 never waits: WOULD_BLOCK at the first wait, as for zcopy_transfer. */
    CHECK_STATUS(zcopy_relay_with_timeout(b, c, 0, &r), ZCOPY_STATUS_WOULD_BLOCK);
    CHECK(r.a_to_b == 0 && r.b_to_a == 0 && r.os_errno == 0);
    close(a);
    close(b);
    close(c);
    close(d);
    close(f);
    return true;
}

static bool test_sender(void) {
    if (!supported(ZCOPY_METHOD_MSG_ZEROCOPY)) {
        printf("# skipped: no MSG_ZEROCOPY on this kernel\n");
        return true;
    }
    int a, b;
    tcp_pair(&a, &b);
    reader rd = spawn_reader(b, a);
    close(b);
    enum { NBUF = 4, LEN = 256 * 1024 };
    unsigned char *bufs[NBUF];
    uint64_t h = FNV_INIT;
    for (int i = 0; i < NBUF; i++) {
        bufs[i] = malloc(LEN);
        if (!bufs[i]) die("malloc");
        fill(bufs[i], LEN, 60 + (uint64_t)i);
        h = fnv_update(h, bufs[i], LEN);
    }
    zcopy_sender *s = NULL;
    CHECK_STATUS(zcopy_sender_new(a, &s), ZCOPY_STATUS_OK);
    CHECK(s != NULL);
    for (int i = 0; i < NBUF; i++) {
        uint64_t id = 99;
        CHECK_STATUS(zcopy_sender_send(s, bufs[i], LEN, &id), ZCOPY_STATUS_OK);
        CHECK(id == (uint64_t)i);
    }
    uint64_t done = 0, copied = 0;
    CHECK_STATUS(zcopy_sender_poll(s, -1, &done, &copied), ZCOPY_STATUS_OK);
    CHECK(done == NBUF);
    zcopy_sender_stats stats;
    CHECK_STATUS(zcopy_sender_get_stats(s, &stats), ZCOPY_STATUS_OK);
    CHECK(stats.sent == NBUF && stats.done == NBUF && stats.pending == 0);
    CHECK(stats.completions >= NBUF);
    /* On loopback the kernel copies: every completion says so. */
    CHECKF(stats.copied == stats.completions && copied == stats.copied,
           "completions %" PRIu64 " copied %" PRIu64 "/%" PRIu64, stats.completions, stats.copied,
           copied);
    /* Poll with nothing pending returns at once. */
    CHECK_STATUS(zcopy_sender_poll(s, 0, &done, &copied), ZCOPY_STATUS_OK);
    CHECK(done == NBUF);
    /* An empty buffer still gets an id. */
    uint64_t id = 0;
    CHECK_STATUS(zcopy_sender_send(s, bufs[0], 0, &id), ZCOPY_STATUS_OK);
    CHECK(id == NBUF);
    CHECK_STATUS(zcopy_sender_close(s, -1), ZCOPY_STATUS_OK);
    /* The caller's socket is still the caller's and still works. */
    CHECK(write(a, "!", 1) == 1);
    h = fnv_update(h, (const unsigned char *)"!", 1);
    close(a);
    digest d;
    CHECK(reader_wait(rd, &d));
    CHECK(d.len == (uint64_t)NBUF * LEN + 1 && d.hash == h);
    for (int i = 0; i < NBUF; i++) free(bufs[i]);
    /* zcopy_sender_free waits for completions too; NULL is fine. */
    tcp_pair(&a, &b);
    rd = spawn_reader(b, a);
    close(b);
    unsigned char small[1000];
    fill(small, sizeof small, 70);
    CHECK_STATUS(zcopy_sender_new(a, &s), ZCOPY_STATUS_OK);
    CHECK_STATUS(zcopy_sender_send(s, small, sizeof small, &id), ZCOPY_STATUS_OK);
    CHECK(id == 0);
    zcopy_sender_free(s);
    zcopy_sender_free(NULL);
    close(a);
    CHECK(reader_wait(rd, &d));
    CHECK(d.len == sizeof small && d.hash == hash_of(70, sizeof small));
    return true;
}

static bool test_sender_errors(void) {
    zcopy_sender *s = (zcopy_sender *)&s; /* must stay untouched on failure */
    zcopy_sender *const sentinel = s;
    int a, b;
    tcp_pair(&a, &b);
    CHECK_STATUS(zcopy_sender_new(a, NULL), ZCOPY_STATUS_NULL_PARAMETER);
    CHECK_STATUS(zcopy_sender_new(-1, &s), ZCOPY_STATUS_INVALID_ARGUMENT);
    CHECK(s == sentinel);
    int f = temp_file(1, 1);
    /* A valid descriptor of the wrong kind is UNSUPPORTED, as everywhere else. */
    CHECK_STATUS(zcopy_sender_new(f, &s), ZCOPY_STATUS_UNSUPPORTED);
    int u[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, u) == 0);
    CHECK_STATUS(zcopy_sender_new(u[0], &s), ZCOPY_STATUS_UNSUPPORTED);
    int udp = socket(AF_INET, SOCK_DGRAM, 0);
    CHECK(udp >= 0);
    CHECK_STATUS(zcopy_sender_new(udp, &s), ZCOPY_STATUS_UNSUPPORTED);
    CHECK(s == sentinel);
    int closed = dup(f);
    close(closed);
    errno = 0;
    CHECK_STATUS(zcopy_sender_new(closed, &s), ZCOPY_STATUS_OS);
    CHECK(errno == EBADF);
    uint64_t id = 0, done = 0, copied = 0;
    char byte = 0;
    CHECK_STATUS(zcopy_sender_send(NULL, &byte, 1, &id), ZCOPY_STATUS_NULL_PARAMETER);
    CHECK_STATUS(zcopy_sender_poll(NULL, 0, &done, &copied), ZCOPY_STATUS_NULL_PARAMETER);
    CHECK_STATUS(zcopy_sender_get_stats(NULL, NULL), ZCOPY_STATUS_NULL_PARAMETER);
    CHECK_STATUS(zcopy_sender_close(NULL, 0), ZCOPY_STATUS_NULL_PARAMETER);
    if (supported(ZCOPY_METHOD_MSG_ZEROCOPY)) {
        s = NULL;
        CHECK_STATUS(zcopy_sender_new(a, &s), ZCOPY_STATUS_OK);
        CHECK_STATUS(zcopy_sender_send(s, NULL, 0, &id), ZCOPY_STATUS_NULL_PARAMETER);
        CHECK_STATUS(zcopy_sender_send(s, &byte, 1, NULL), ZCOPY_STATUS_NULL_PARAMETER);
        CHECK_STATUS(zcopy_sender_poll(s, 0, NULL, &copied), ZCOPY_STATUS_NULL_PARAMETER);
        CHECK_STATUS(zcopy_sender_poll(s, 0, &done, NULL), ZCOPY_STATUS_NULL_PARAMETER);
        CHECK_STATUS(zcopy_sender_poll(s, -2, &done, &copied), ZCOPY_STATUS_INVALID_ARGUMENT);
        CHECK_STATUS(zcopy_sender_get_stats(s, NULL), ZCOPY_STATUS_NULL_PARAMETER);
        CHECK_STATUS(zcopy_sender_close(s, -2), ZCOPY_STATUS_INVALID_ARGUMENT); /* not freed */
        /* A closed peer: EPIPE or ECONNRESET in errno, and no SIGPIPE (MSG_NOSIGNAL). */
        close(b);
        b = -1;
        static unsigned char big[1 << 20];
        zcopy_status st = ZCOPY_STATUS_OK;
        for (int i = 0; i < 64 && st == ZCOPY_STATUS_OK; i++) {
            errno = 0;
            st = zcopy_sender_send(s, big, sizeof big, &id);
        }
        CHECK_STATUS(st, ZCOPY_STATUS_OS);
        CHECKF(errno == EPIPE || errno == ECONNRESET, "errno %d", errno);
        zcopy_sender_close(s, 1000);
    }
    close(a);
    if (b >= 0) close(b);
    close(f);
    close(u[0]);
    close(u[1]);
    close(udp);
    return true;
}

/* Every bad input of the engine issue, with its documented status and errno. */
static bool test_transfer_errors(void) {
    int src = temp_file(1000, 8), dst = temp_file(0, 0);
    zcopy_options o;
    zcopy_report r = garbage_report();

    /* Negative descriptors. */
    CHECK_STATUS(zcopy_transfer(-1, dst, NULL, &r), ZCOPY_STATUS_INVALID_ARGUMENT);
    CHECK(r.bytes == 0 && r.os_errno == 0 && r.fallbacks == 0 && r.zc_sends == 0);
    CHECK_STATUS(zcopy_transfer(src, -7, NULL, NULL), ZCOPY_STATUS_INVALID_ARGUMENT);
    /* Out-of-range options. */
    zcopy_options_init(&o);
    o.offset = -2;
    CHECK_STATUS(zcopy_transfer(src, dst, &o, &r), ZCOPY_STATUS_INVALID_ARGUMENT);
    zcopy_options_init(&o);
    o.timeout_ms = -2;
    CHECK_STATUS(zcopy_transfer(src, dst, &o, &r), ZCOPY_STATUS_INVALID_ARGUMENT);
    zcopy_options_init(&o);
    o.method = (zcopy_method)99;
    CHECK_STATUS(zcopy_transfer(src, dst, &o, &r), ZCOPY_STATUS_INVALID_ARGUMENT);
    zcopy_options_init(&o);
    o.flags = 0x80;
    CHECK_STATUS(zcopy_transfer(src, dst, &o, &r), ZCOPY_STATUS_INVALID_ARGUMENT);
    CHECK(pos(src) == 0); /* nothing happened */

    /* A closed descriptor: OS / EBADF. */
    int closed = dup(src);
    close(closed);
    r = garbage_report();
    CHECK_STATUS(zcopy_transfer(closed, dst, NULL, &r), ZCOPY_STATUS_OS);
    CHECK(r.os_errno == EBADF && r.bytes == 0);
    CHECK_STATUS(zcopy_transfer(src, closed, NULL, &r), ZCOPY_STATUS_OS);
    CHECK(r.os_errno == EBADF);

    /* A directory: OS / EISDIR, either way round. */
    int dir = open("/tmp", O_RDONLY | O_DIRECTORY);
    CHECK(dir >= 0);
    CHECK_STATUS(zcopy_transfer(dir, dst, NULL, &r), ZCOPY_STATUS_OS);
    CHECK(r.os_errno == EISDIR);
    CHECK_STATUS(zcopy_transfer(src, dir, NULL, &r), ZCOPY_STATUS_OS);
    CHECK(r.os_errno == EISDIR);

    /* Wrong access mode: OS / EBADF. */
    char path[] = "/tmp/zcopy-c-mode-XXXXXX";
    int tmp = mkstemp(path);
    if (tmp < 0) die("mkstemp");
    close(tmp);
    int wo = open(path, O_WRONLY), ro = open(path, O_RDONLY);
    unlink(path);
    CHECK(wo >= 0 && ro >= 0);
    CHECK_STATUS(zcopy_transfer(wo, dst, NULL, &r), ZCOPY_STATUS_OS);
    CHECK(r.os_errno == EBADF);
    CHECK_STATUS(zcopy_transfer(src, ro, NULL, &r), ZCOPY_STATUS_OS);
    CHECK(r.os_errno == EBADF);
    CHECK(pos(src) == 0);

    /* A UDP destination: UNSUPPORTED. */
    int udp = socket(AF_INET, SOCK_DGRAM, 0);
    CHECK(udp >= 0);
    r = garbage_report();
    CHECK_STATUS(zcopy_transfer(src, udp, NULL, &r), ZCOPY_STATUS_UNSUPPORTED);
    CHECK(r.os_errno == 0 && r.bytes == 0);

    /* An explicit method that cannot work: UNSUPPORTED, and nothing taken from a pipe. */
    int p[2], q[2];
    CHECK(pipe(p) == 0 && pipe(q) == 0);
    CHECK(write(p[1], "abcdef", 6) == 6);
    o = opts_with(ZCOPY_METHOD_COPY_FILE_RANGE);
    CHECK_STATUS(zcopy_transfer(p[0], dst, &o, &r), ZCOPY_STATUS_UNSUPPORTED);
    o = opts_with(ZCOPY_METHOD_SENDFILE);
    CHECK_STATUS(zcopy_transfer(p[0], q[1], &o, &r), ZCOPY_STATUS_UNSUPPORTED);
    o = opts_with(ZCOPY_METHOD_MMAP);
    CHECK_STATUS(zcopy_transfer(p[0], dst, &o, &r), ZCOPY_STATUS_UNSUPPORTED);
    CHECK(r.bytes == 0);
    int avail = 0;
    CHECK(ioctl_fionread_ok(p[0], &avail) && avail == 6);
    /* ... unless fallback is allowed. */
    o = opts_with(ZCOPY_METHOD_COPY_FILE_RANGE);
    o.flags = ZCOPY_FLAG_ALLOW_FALLBACK;
    o.count = 6;
    CHECK_STATUS(zcopy_transfer(p[0], dst, &o, &r), ZCOPY_STATUS_OK);
    CHECK(r.bytes == 6 && r.fallbacks >= 1 && r.method != ZCOPY_METHOD_COPY_FILE_RANGE);

    /* MSG_ZEROCOPY to a Unix socket: UNSUPPORTED. */
    int u[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, u) == 0);
    o = opts_with(ZCOPY_METHOD_MSG_ZEROCOPY);
    CHECK_STATUS(zcopy_transfer(src, u[0], &o, &r), ZCOPY_STATUS_UNSUPPORTED);
    CHECK(pos(src) == 0);

    close(src);
    close(dst);
    close(dir);
    close(wo);
    close(ro);
    close(udp);
    close(p[0]);
    close(p[1]);
    close(q[0]);
    close(q[1]);
    close(u[0]);
    close(u[1]);
    return true;
}

/* A non-blocking socket whose peer does not read: WOULD_BLOCK with timeout 0, TIMED_OUT with a
 * short timeout, both with progress and a resumable source position; then the peer reads and
 * the caller resumes to the end. */
static bool test_would_block_and_timeout(void) {
    const size_t n = 16u << 20;
    int a, b;
    tcp_pair(&a, &b);
    int small = 16384;
    setsockopt(a, SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    setsockopt(b, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    CHECK(fcntl(a, F_SETFL, fl(a) | O_NONBLOCK) == 0);
    int before = fl(a);
    int src = temp_file(n, 9);
    uint64_t moved = 0;
    zcopy_options o;
    zcopy_options_init(&o);
    o.timeout_ms = 0;
    zcopy_report r = garbage_report();
    CHECK_STATUS(zcopy_transfer(src, a, &o, &r), ZCOPY_STATUS_WOULD_BLOCK);
    CHECK(r.bytes > 0 && r.bytes < n && r.os_errno == 0);
    moved += r.bytes;
    CHECK(pos(src) == (off_t)moved);
    CHECK(fl(a) == before);

    o.timeout_ms = 150;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    r = garbage_report();
    CHECK_STATUS(zcopy_transfer(src, a, &o, &r), ZCOPY_STATUS_TIMED_OUT);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    CHECK(r.bytes < n && r.os_errno == 0);
    moved += r.bytes;
    CHECK(pos(src) == (off_t)moved);
    CHECK(fl(a) == before);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    CHECKF(secs >= 0.1, "returned after %.3f s", secs); /* it did wait for the deadline */

    /* Now the peer reads; resume from the source position until everything is there. */
    reader rd = spawn_reader(b, a);
    close(b);
    o.timeout_ms = -1;
    CHECK_STATUS(zcopy_transfer(src, a, &o, &r), ZCOPY_STATUS_OK);
    moved += r.bytes;
    CHECK(moved == n);
    CHECK(fl(a) == before);
    close(a);
    digest d;
    CHECK(reader_wait(rd, &d));
    CHECK(d.len == n && d.hash == hash_of(9, n));
    close(src);
    return true;
}

/* Blocking descriptors stay blocking; O_NONBLOCK ones stay non-blocking. */
static bool test_flags_preserved(void) {
    int p[2];
    CHECK(pipe(p) == 0);
    reader rd = spawn_reader(p[0], p[1]);
    close(p[0]);
    int src = temp_file(200000, 11);
    int sf = fl(src), pf = fl(p[1]);
    CHECK_STATUS(zcopy_transfer(src, p[1], NULL, NULL), ZCOPY_STATUS_OK);
    CHECK(fl(src) == sf && fl(p[1]) == pf);
    CHECK((pf & O_NONBLOCK) == 0);
    close(p[1]);
    digest d;
    CHECK(reader_wait(rd, &d));
    CHECK(d.len == 200000);
    close(src);
    return true;
}

/* ---------------------------------------------------------------- send_parts */

static zcopy_part bytes_part(const void *data, size_t len) {
    zcopy_part p = {(const uint8_t *)data, -1, 0, 0, (uint64_t)len};
    return p;
}

static zcopy_part file_part(int fd, int64_t offset, uint64_t len) {
    zcopy_part p = {NULL, fd, 0, offset, len};
    return p;
}

/* TCP_INFO's tcpi_segs_out (Linux 4.2+), at its fixed offset in the kernel's struct tcp_info:
 * glibc's <netinet/tcp.h> stops before it and <linux/tcp.h> clashes with that header. */
#define TCPI_SEGS_OUT_OFFSET 136
static uint32_t segs_out(int fd) {
    unsigned char ti[256];
    socklen_t len = sizeof ti;
    memset(ti, 0, sizeof ti);
    if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, ti, &len) != 0) die("TCP_INFO");
    if (len < TCPI_SEGS_OUT_OFFSET + 4) die("TCP_INFO too short for tcpi_segs_out");
    uint32_t v;
    memcpy(&v, ti + TCPI_SEGS_OUT_OFFSET, sizeof v);
    return v;
}

/* The hash of header + file[off, off + len) of stream `seed` + trailer. */
static uint64_t response_hash(const char *head, uint64_t seed, size_t file_len, size_t off,
                              size_t len, const char *tail) {
    unsigned char *b = malloc(file_len);
    if (!b) die("malloc");
    fill(b, file_len, seed);
    uint64_t h = fnv_update(FNV_INIT, (const unsigned char *)head, strlen(head));
    h = fnv_update(h, b + off, len);
    h = fnv_update(h, (const unsigned char *)tail, strlen(tail));
    free(b);
    return h;
}

static const char HEAD[] = "HTTP/1.1 200 OK\r\nContent-Length: 4096\r\nContent-Type: text/plain\r\n\r\n";

static bool test_send_parts(void) {
    const size_t n = 1u << 20;
    int src = temp_file(n, 21);
    int a, b;
    tcp_pair(&a, &b);
    reader rd = spawn_reader(b, a);
    close(b);
    /* A small response: header + 4 KiB leave as one segment. */
    zcopy_part small[] = {bytes_part(HEAD, strlen(HEAD)), file_part(src, 0, 4096)};
    uint32_t before = segs_out(a);
    zcopy_report r = garbage_report();
    CHECK_STATUS(zcopy_send_parts(a, small, 2, 0, -1, 0, &r), ZCOPY_STATUS_OK);
    CHECK(r.bytes == strlen(HEAD) + 4096 && r.os_errno == 0);
    CHECK(r.method == ZCOPY_METHOD_SENDFILE);
    CHECKF(segs_out(a) - before == 1, "%u segments", segs_out(a) - before);
    CHECK(pos(src) == 0);
    /* A large range between two bytes parts, with the timeout set. */
    zcopy_part big[] = {bytes_part(HEAD, strlen(HEAD)), file_part(src, 1000, n - 2000),
                        bytes_part("\r\n--end--\r\n", 11)};
    r = garbage_report();
    CHECK_STATUS(zcopy_send_parts(a, big, 3, 0, 10000, 0, &r), ZCOPY_STATUS_OK);
    CHECK(r.bytes == strlen(HEAD) + (n - 2000) + 11);
    int cork = -1;
    socklen_t cl = sizeof cork;
    CHECK(getsockopt(a, IPPROTO_TCP, TCP_CORK, &cork, &cl) == 0 && cork == 0);
    close(a);
    digest d;
    CHECK(reader_wait(rd, &d));
    uint64_t h = response_hash(HEAD, 21, n, 0, 4096, "");
    unsigned char *buf = malloc(n);
    CHECK(buf != NULL);
    fill(buf, n, 21);
    h = fnv_update(h, (const unsigned char *)HEAD, strlen(HEAD));
    h = fnv_update(h, buf + 1000, n - 2000);
    h = fnv_update(h, (const unsigned char *)"\r\n--end--\r\n", 11);
    free(buf);
    CHECK(d.len == 2 * strlen(HEAD) + 4096 + (n - 2000) + 11);
    CHECK(d.hash == h);
    close(src);
    return true;
}

/* Against a peer that stalls first: WOULD_BLOCK / TIMED_OUT calls resumed with `skip` deliver
 * the whole response exactly once. */
static bool test_send_parts_resume(void) {
    const size_t n = 4u << 20;
    int src = temp_file(n, 22);
    int a, b;
    tcp_pair(&a, &b);
    int small = 16384;
    setsockopt(a, SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    setsockopt(b, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    zcopy_part parts[] = {bytes_part(HEAD, strlen(HEAD)), file_part(src, 0, n),
                          bytes_part("TAIL", 4)};
    uint64_t total = strlen(HEAD) + n + 4, done = 0;
    int early = 0;
    zcopy_report r;
    /* Stalled: the first two calls end early. */
    CHECK_STATUS(zcopy_send_parts(a, parts, 3, done, 0, 0, &r), ZCOPY_STATUS_WOULD_BLOCK);
    CHECK(r.bytes > 0 && r.bytes < total);
    done += r.bytes;
    CHECK_STATUS(zcopy_send_parts(a, parts, 3, done, 50, 0, &r), ZCOPY_STATUS_TIMED_OUT);
    done += r.bytes;
    reader rd = spawn_reader(b, a);
    close(b);
    while (done < total) {
        zcopy_status st = zcopy_send_parts(a, parts, 3, done, early % 2 ? 0 : 20, 0, &r);
        done += r.bytes;
        if (st == ZCOPY_STATUS_OK) break;
        CHECKF(st == ZCOPY_STATUS_WOULD_BLOCK || st == ZCOPY_STATUS_TIMED_OUT, "status %s",
               zcopy_status_name((int32_t)st));
        early++;
        struct pollfd pf = {a, POLLOUT, 0};
        poll(&pf, 1, 20);
    }
    CHECK(done == total);
    close(a);
    digest d;
    CHECK(reader_wait(rd, &d));
    CHECK(d.len == total && d.hash == response_hash(HEAD, 22, n, 0, n, "TAIL"));
    close(src);
    return true;
}

static bool test_send_parts_errors(void) {
    int src = temp_file(1000, 23);
    int a, b;
    tcp_pair(&a, &b);
    int p[2];
    CHECK(pipe(p) == 0);
    zcopy_report r = garbage_report();
    CHECK_STATUS(zcopy_send_parts(a, NULL, 0, 0, -1, 0, &r), ZCOPY_STATUS_OK);
    CHECK(r.bytes == 0);
    r = garbage_report();
    CHECK_STATUS(zcopy_send_parts(a, NULL, 1, 0, -1, 0, &r), ZCOPY_STATUS_NULL_PARAMETER);
    CHECK(r.bytes == 0 && r.os_errno == 0);
    zcopy_part null_data = bytes_part(NULL, 5);
    CHECK_STATUS(zcopy_send_parts(a, &null_data, 1, 0, -1, 0, &r), ZCOPY_STATUS_NULL_PARAMETER);
    zcopy_part bad_fd = file_part(-2, 0, 1);
    CHECK_STATUS(zcopy_send_parts(a, &bad_fd, 1, 0, -1, 0, &r), ZCOPY_STATUS_INVALID_ARGUMENT);
    zcopy_part neg_off = file_part(src, -1, 1);
    CHECK_STATUS(zcopy_send_parts(a, &neg_off, 1, 0, -1, 0, &r), ZCOPY_STATUS_INVALID_ARGUMENT);
    zcopy_part reserved = bytes_part("x", 1);
    reserved.reserved = 1;
    CHECK_STATUS(zcopy_send_parts(a, &reserved, 1, 0, -1, 0, &r), ZCOPY_STATUS_INVALID_ARGUMENT);
    zcopy_part ok = bytes_part("x", 1);
    CHECK_STATUS(zcopy_send_parts(a, &ok, 1, 0, -1, 1, &r), ZCOPY_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(zcopy_send_parts(a, &ok, 1, 0, -2, 0, &r), ZCOPY_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(zcopy_send_parts(a, &ok, 1, 2, -1, 0, &r), ZCOPY_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(zcopy_send_parts(-1, &ok, 1, 0, -1, 0, &r), ZCOPY_STATUS_INVALID_ARGUMENT);
    zcopy_part past[] = {bytes_part("x", 1), file_part(src, 999, 2)};
    r = garbage_report();
    CHECK_STATUS(zcopy_send_parts(a, past, 2, 0, -1, 0, &r), ZCOPY_STATUS_INVALID_ARGUMENT);
    CHECK(r.bytes == 0);
    zcopy_part from_pipe = file_part(p[0], 0, 1);
    CHECK_STATUS(zcopy_send_parts(a, &from_pipe, 1, 0, -1, 0, &r), ZCOPY_STATUS_UNSUPPORTED);
    int closed = dup(src);
    close(closed);
    zcopy_part gone = file_part(closed, 0, 1);
    r = garbage_report();
    CHECK_STATUS(zcopy_send_parts(a, &gone, 1, 0, -1, 0, &r), ZCOPY_STATUS_OS);
    CHECK(r.os_errno == EBADF);
    r = garbage_report();
    CHECK_STATUS(zcopy_send_parts(closed, &ok, 1, 0, -1, 0, &r), ZCOPY_STATUS_OS);
    CHECK(r.os_errno == EBADF);
    /* Nothing reached the peer from any refused call. */
    int avail = -1;
    CHECK(ioctl_fionread_ok(b, &avail) && avail == 0);
    close(a);
    close(b);
    close(p[0]);
    close(p[1]);
    close(src);
    return true;
}

/* ---------------------------------------------------------------- page-cache policy */

/* Bytes of the file behind fd in the page cache (mincore over an untouched mapping). */
static size_t resident(int fd, size_t len) {
    void *p = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) die("mmap");
    size_t pages = (len + 4095) / 4096, n = 0;
    unsigned char *vec = malloc(pages);
    if (!vec) die("malloc");
    if (mincore(p, len, vec) != 0) die("mincore");
    for (size_t i = 0; i < pages; i++) n += vec[i] & 1;
    free(vec);
    munmap(p, len);
    return n * 4096;
}

static bool cache_case(uint32_t flags, size_t n, bool expect_cached) {
    int src = temp_file(n, 31);
    CHECK(fsync(src) == 0);
    unsigned char *buf = malloc(1 << 20);
    CHECK(buf != NULL);
    for (off_t off = 0; off < (off_t)n; off += 1 << 20) CHECK(pread(src, buf, 1 << 20, off) > 0);
    free(buf);
    CHECK(resident(src, n) >= n * 9 / 10);
    int a, b;
    tcp_pair(&a, &b);
    reader rd = spawn_reader(b, a);
    close(b);
    zcopy_options o;
    zcopy_options_init(&o);
    o.flags = flags;
    zcopy_report r = garbage_report();
    CHECK_STATUS(zcopy_transfer(src, a, &o, &r), ZCOPY_STATUS_OK);
    close(a);
    digest d;
    CHECK(reader_wait(rd, &d));
    CHECK(d.len == n && d.hash == hash_of(31, n) && r.bytes == n);
    size_t left = resident(src, n);
    if (expect_cached)
        CHECKF(left >= n * 9 / 10, "flags %u left %zu of %zu cached", flags, left, n);
    else
        CHECKF(left <= (24u << 20), "flags %u left %zu bytes resident", flags, left);
    close(src);
    return true;
}

static bool test_cache_policy(void) {
    const size_t n = 64u << 20;
    if (!cache_case(0, n, true)) return false;
    if (!cache_case(ZCOPY_FLAG_CACHE_DROP_BEHIND, n, false)) return false;
    if (!cache_case(ZCOPY_FLAG_CACHE_DIRECT, n, false)) return false;
    /* Refusals: both bits; Direct with a method that reads through the page cache. */
    int src = temp_file(4096, 32), p[2];
    CHECK(pipe(p) == 0);
    zcopy_options o;
    zcopy_options_init(&o);
    o.flags = ZCOPY_FLAG_CACHE_DROP_BEHIND | ZCOPY_FLAG_CACHE_DIRECT;
    CHECK_STATUS(zcopy_transfer(src, p[1], &o, NULL), ZCOPY_STATUS_INVALID_ARGUMENT);
    o.flags = ZCOPY_FLAG_CACHE_DIRECT;
    o.method = ZCOPY_METHOD_SPLICE;
    CHECK_STATUS(zcopy_transfer(src, p[1], &o, NULL), ZCOPY_STATUS_INVALID_ARGUMENT);
    zcopy_part part = file_part(src, 0, 4096);
    CHECK_STATUS(zcopy_send_parts(p[1], &part, 1, 0, -1, ZCOPY_FLAG_CACHE_DIRECT | 1, NULL),
                 ZCOPY_STATUS_INVALID_ARGUMENT);
    zcopy_report r;
    CHECK_STATUS(zcopy_send_parts(p[1], &part, 1, 0, -1, ZCOPY_FLAG_CACHE_DIRECT, &r), ZCOPY_STATUS_OK);
    CHECK(r.bytes == 4096 && r.method == ZCOPY_METHOD_READ_WRITE);
    close(p[0]);
    close(p[1]);
    close(src);
    return true;
}

/* Run in a child that leaves SIGPIPE at its default (kill) disposition: a transfer into a
 * closed peer must return OS / EPIPE with the bytes moved, the child must survive, and its
 * signal state must be unchanged. */
static int closed_peer_child(void) {
    struct sigaction sa;
    if (sigaction(SIGPIPE, NULL, &sa) != 0 || sa.sa_handler != SIG_DFL) return 10;
    sigset_t mask;
    if (sigprocmask(SIG_SETMASK, NULL, &mask) != 0 || sigismember(&mask, SIGPIPE)) return 11;
    const size_t n = 4u << 20;
    int src = temp_file(n, 12);

    /* A pipe whose reader is gone. */
    int p[2];
    if (pipe(p) != 0) return 12;
    close(p[0]);
    zcopy_report r = garbage_report();
    zcopy_status st = zcopy_transfer(src, p[1], NULL, &r);
    if (st != ZCOPY_STATUS_OS || r.os_errno != EPIPE) return 13;
    if (r.bytes != 0 || pos(src) != 0) return 14;
    close(p[1]);

    /* A TCP peer that closed: the first bytes may go out before the reset arrives. */
    int a, b;
    tcp_pair(&a, &b);
    close(b);
    usleep(20000);
    const zcopy_method ms[] = {ZCOPY_METHOD_AUTO, ZCOPY_METHOD_SENDFILE, ZCOPY_METHOD_SPLICE,
                               ZCOPY_METHOD_READ_WRITE};
    for (size_t i = 0; i < sizeof ms / sizeof ms[0]; i++) {
        if (lseek(src, 0, SEEK_SET) != 0) return 15;
        zcopy_options o = opts_with(ms[i]);
        r = garbage_report();
        st = zcopy_transfer(src, a, &o, &r);
        if (st != ZCOPY_STATUS_OS || r.os_errno != EPIPE) {
            fprintf(stderr, "closed peer with %s: %s errno %d\n", zcopy_method_name((int32_t)ms[i]),
                    zcopy_status_name((int32_t)st), r.os_errno);
            return 16;
        }
        if (r.bytes >= n || pos(src) != (off_t)r.bytes) return 17;
    }
    close(a);

    /* A response into a closed TCP peer: an error with the count, no SIGPIPE. */
    tcp_pair(&a, &b);
    close(b);
    usleep(20000);
    if (lseek(src, 0, SEEK_SET) != 0) return 24;
    zcopy_part resp[] = {bytes_part(HEAD, strlen(HEAD)), file_part(src, 0, n)};
    r = garbage_report();
    st = zcopy_send_parts(a, resp, 2, 0, -1, 0, &r);
    if (st != ZCOPY_STATUS_OS || (r.os_errno != EPIPE && r.os_errno != ECONNRESET)) return 25;
    if (r.bytes >= strlen(HEAD) + n) return 26;
    close(a);

    /* A relay whose one direction hits EPIPE while it ends with another status (here the
     * deadline, waiting on the other direction): the engine's SIGPIPE must not be delivered. */
    int x[2], y[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, x) != 0 || socketpair(AF_UNIX, SOCK_STREAM, 0, y) != 0)
        return 21;
    if (write(y[1], "hello", 5) != 5) return 22;
    shutdown(x[0], SHUT_WR);
    zcopy_relay_report rr;
    st = zcopy_relay_with_timeout(x[0], y[0], 50, &rr);
    if (st == ZCOPY_STATUS_OK) return 23;
    close(x[0]);
    close(x[1]);
    close(y[0]);
    close(y[1]);

    /* The signal state is as it was: default disposition, not blocked, nothing pending. */
    if (sigaction(SIGPIPE, NULL, &sa) != 0 || sa.sa_handler != SIG_DFL) return 18;
    if (sigprocmask(SIG_SETMASK, NULL, &mask) != 0 || sigismember(&mask, SIGPIPE)) return 19;
    sigset_t pend;
    if (sigpending(&pend) != 0 || sigismember(&pend, SIGPIPE)) return 20;
    close(src);
    return 0;
}

static bool test_closed_peer_sigpipe(void) {
    pid_t pid = fork();
    if (pid < 0) die("fork");
    if (pid == 0) {
        /* Reset SIGPIPE to the default in case the harness inherited an ignored one. */
        signal(SIGPIPE, SIG_DFL);
        _exit(closed_peer_child());
    }
    int st = 0;
    CHECK(waitpid(pid, &st, 0) == pid);
    CHECKF(!WIFSIGNALED(st), "child killed by signal %d", WTERMSIG(st));
    CHECKF(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child failed check %d", WEXITSTATUS(st));
    return true;
}

/* ---------------------------------------------------------------- main */

/* ---- a thousand concurrent transfers ---- */

/* Past Auto's 4 MiB splice threshold for file -> TCP, unaligned at the end. */
#define CONC_EACH ((size_t)(4 << 20) + 4096)
#define CONC_FILE ((size_t)16 << 20)

typedef struct {
    int src, tx, rx;
    size_t off;
    pthread_barrier_t *start;
    zcopy_status status;
    uint64_t reported, len, hash;
} conc_job;

/* Reads the receiving end to EOF: length and hash. */
static void *conc_read(void *arg) {
    conc_job *j = arg;
    unsigned char buf[65536];
    j->len = 0;
    j->hash = FNV_INIT;
    for (;;) {
        ssize_t r = read(j->rx, buf, sizeof buf);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        j->hash = fnv_update(j->hash, buf, (size_t)r);
        j->len += (uint64_t)r;
    }
    return NULL;
}

/* Waits for every sender, sends its range, half-closes. */
static void *conc_send(void *arg) {
    conc_job *j = arg;
    pthread_barrier_wait(j->start);
    zcopy_options o = opts_with(ZCOPY_METHOD_AUTO);
    o.offset = (int64_t)j->off;
    o.count = CONC_EACH;
    zcopy_report r = garbage_report();
    j->status = zcopy_transfer(j->src, j->tx, &o, &r);
    j->reported = r.bytes;
    shutdown(j->tx, SHUT_WR);
    return NULL;
}

/* A thousand file -> TCP transfers at once, each from its own thread on one shared file
 * descriptor (8 under ZCOPY_TEST_QUICK, i.e. valgrind): every peer gets exactly its range. */
static bool test_concurrent_transfers(void) {
    struct rlimit lim;
    if (getrlimit(RLIMIT_NOFILE, &lim) == 0) {
        lim.rlim_cur = lim.rlim_max;
        setrlimit(RLIMIT_NOFILE, &lim);
        getrlimit(RLIMIT_NOFILE, &lim);
    }
    /* Each transfer holds about eight descriptors (two sockets, duplicates, a pipe). */
    size_t n = getenv("ZCOPY_TEST_QUICK") ? 8 : 1000;
    if (lim.rlim_cur < 256 + 8 * n) {
        n = lim.rlim_cur > 256 + 8 ? (size_t)(lim.rlim_cur - 256) / 8 : 1;
        printf("# only %zu transfers: RLIMIT_NOFILE is too low for a thousand\n", n);
    }
    unsigned char *data = malloc(CONC_FILE);
    conc_job *jobs = calloc(n, sizeof *jobs);
    pthread_t *threads = calloc(2 * n, sizeof *threads);
    if (!data || !jobs || !threads) die("malloc");
    fill(data, CONC_FILE, 21);
    int src = temp_file(CONC_FILE, 21);
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, (unsigned)n);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 << 10);
    for (size_t i = 0; i < n; i++) {
        conc_job *j = &jobs[i];
        j->src = src;
        j->off = (i * 4096) % (CONC_FILE - CONC_EACH);
        j->start = &start;
        tcp_pair(&j->tx, &j->rx);
        if (pthread_create(&threads[2 * i], &attr, conc_read, j) != 0 ||
            pthread_create(&threads[2 * i + 1], &attr, conc_send, j) != 0)
            die("pthread_create");
    }
    size_t bad = 0, first_bad = n;
    for (size_t i = 0; i < n; i++) {
        conc_job *j = &jobs[i];
        pthread_join(threads[2 * i + 1], NULL);
        pthread_join(threads[2 * i], NULL);
        close(j->tx);
        close(j->rx);
        uint64_t want = fnv_update(FNV_INIT, data + j->off, CONC_EACH);
        if (j->status != ZCOPY_STATUS_OK || j->reported != CONC_EACH || j->len != CONC_EACH ||
            j->hash != want) {
            bad++;
            if (first_bad == n) first_bad = i;
        }
    }
    pthread_attr_destroy(&attr);
    pthread_barrier_destroy(&start);
    close(src);
    bool ok = bad == 0;
    if (!ok) {
        conc_job *j = &jobs[first_bad];
        snprintf(fail_msg, sizeof fail_msg,
                 "%zu of %zu transfers wrong; transfer %zu: %s, reported %" PRIu64
                 ", received %" PRIu64,
                 bad, n, first_bad, zcopy_status_name((int32_t)j->status), j->reported, j->len);
    }
    free(data);
    free(jobs);
    free(threads);
    return ok;
}

typedef struct {
    const char *name;
    bool (*fn)(void);
} test_case;

static const test_case tests[] = {
    {"names_version_caps", test_names_version_caps},
    {"options_init", test_options_init},
    {"file_to_file_auto", test_file_to_file_auto},
    {"file_to_file_each_method", test_file_to_file_each_method},
    {"offset_and_count", test_offset_and_count},
    {"append_destination", test_append_destination},
    {"dev_zero_with_count", test_dev_zero_with_count},
    {"file_to_tcp", test_file_to_tcp},
    {"file_to_pipe", test_file_to_pipe},
    {"pipe_to_file", test_pipe_to_file},
    {"tcp_to_file", test_tcp_to_file},
    {"stream_source_odirect", test_stream_source_odirect},
    {"stream_source_disk_full", test_stream_source_disk_full},
    {"big_sparse_to_tcp", test_big_sparse_to_tcp},
    {"relay_half_close", test_relay_half_close},
    {"relay_errors", test_relay_errors},
    {"sender", test_sender},
    {"sender_errors", test_sender_errors},
    {"transfer_errors", test_transfer_errors},
    {"would_block_and_timeout", test_would_block_and_timeout},
    {"flags_preserved", test_flags_preserved},
    {"send_parts", test_send_parts},
    {"send_parts_resume", test_send_parts_resume},
    {"send_parts_errors", test_send_parts_errors},
    {"cache_policy", test_cache_policy},
    {"concurrent_transfers", test_concurrent_transfers},
    {"closed_peer_sigpipe", test_closed_peer_sigpipe},
};

int main(int argc, char **argv) {
    int passed = 0, failed = 0;
    for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++) {
        bool wanted = argc < 2;
        for (int k = 1; k < argc; k++)
            if (strcmp(argv[k], tests[i].name) == 0) wanted = true;
        if (!wanted) continue;
        fail_msg[0] = 0;
        fflush(stdout);
        if (tests[i].fn()) {
            printf("ok - %s\n", tests[i].name);
            passed++;
        } else {
            printf("FAIL - %s: %s\n", tests[i].name, fail_msg);
            failed++;
        }
        fflush(stdout);
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
