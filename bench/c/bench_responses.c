/*
 * Small HTTP-style responses (a 200-byte header + a 4 KiB file range) over loopback TCP from C:
 * send(header) + sendfile against one zcopy_send_parts call. Run by hand (not part of the tests):
 *
 *   cargo build --release -p zcopy-ffi
 *   cc -O2 -Iinclude bench/c/bench_responses.c -o /tmp/bench_responses -Ltarget/release -lzcopy
 *   LD_LIBRARY_PATH=target/release /tmp/bench_responses [rounds] [seconds]
 *
 * Two workloads, each on one connection per round, the two senders alternating in blocks (the
 * ratio is the median of paired per-block ratios), TCP_NODELAY on as servers set it:
 * request/response (a client process sends a 1-byte request and reads the whole response before
 * the next) and streaming (responses back to back to a client that drains). Segments per
 * response come from TCP_INFO tcpi_segs_out (offset 136 of the kernel's struct tcp_info).
 * SIGPIPE is ignored, as servers set it.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "zcopy.h"

#define BODY 4096
#define FILE_SIZE (64u << 20)
#define MAX_BLOCKS 4096

static char header[200];
static int file_fd;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static unsigned segs_out(int fd) {
    unsigned char ti[256];
    socklen_t len = sizeof ti;
    memset(ti, 0, sizeof ti);
    if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, ti, &len) != 0 || len < 140) return 0;
    unsigned v;
    memcpy(&v, ti + 136, sizeof v);
    return v;
}

static void die(const char *what) {
    perror(what);
    exit(2);
}

/* The client process: requests and reads whole responses, or drains. */
static void client(unsigned short port, int request) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(s, (struct sockaddr *)&sa, sizeof sa) != 0) _exit(3);
    int one = 1;
    setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    static char buf[1 << 16];
    for (;;) {
        if (request && send(s, "r", 1, MSG_NOSIGNAL) != 1) _exit(0);
        size_t want = request ? sizeof header + BODY : sizeof buf, got = 0;
        while (got < want) {
            ssize_t n = recv(s, buf, request ? want - got : sizeof buf, 0);
            if (n <= 0) _exit(0);
            got += (size_t)n;
            if (!request) break;
        }
    }
}

static void respond_plain(int c, off_t off) {
    if (send(c, header, sizeof header, MSG_NOSIGNAL) != (ssize_t)sizeof header) die("send");
    if (sendfile(c, file_fd, &off, BODY) != BODY) die("sendfile");
}

static void respond_parts(int c, off_t off) {
    zcopy_part parts[2] = {{(const uint8_t *)header, -1, 0, 0, sizeof header},
                           {NULL, file_fd, 0, off, BODY}};
    zcopy_report r;
    if (zcopy_send_parts(c, parts, 2, 0, -1, 0, &r) != ZCOPY_STATUS_OK) die("zcopy_send_parts");
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int main(int argc, char **argv) {
    int rounds = argc > 1 ? atoi(argv[1]) : 5;
    /* As servers do (a peer that closes must not kill the process on sendfile); the engine then
     * skips blocking SIGPIPE around its calls. */
    signal(SIGPIPE, SIG_IGN);
    double seconds = argc > 2 ? atof(argv[2]) : 0.5;
    memset(header, 'p', sizeof header);
    memcpy(header, "HTTP/1.1 200 OK\r\nContent-Length: 4096\r\nX-Pad: ", 46);
    memcpy(header + sizeof header - 4, "\r\n\r\n", 4);
    char path[] = "/tmp/zcopy-bench-resp-XXXXXX";
    file_fd = mkstemp(path);
    if (file_fd < 0) die("mkstemp");
    unlink(path);
    char *chunk = malloc(1 << 20);
    for (unsigned i = 0; i < FILE_SIZE >> 20; i++) {
        for (int k = 0; k < 1 << 20; k++) chunk[k] = (char)(rand() & 0xff);
        if (write(file_fd, chunk, 1 << 20) != 1 << 20) die("write");
    }
    int l = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t sl = sizeof sa;
    if (bind(l, (struct sockaddr *)&sa, sizeof sa) || listen(l, 16) || getsockname(l, (struct sockaddr *)&sa, &sl))
        die("listen");
    printf("zcopy %s, C: %zu B header + %d B file range per response, %d rounds\n", zcopy_version(),
           sizeof header, BODY, rounds);
    const char *names[2] = {"send(header) + sendfile", "zcopy_send_parts"};
    void (*fns[2])(int, off_t) = {respond_plain, respond_parts};
    for (int request = 1; request >= 0; request--) {
        int ops = request ? 500 : 2000, nb = 0;
        static double rate[2][MAX_BLOCKS], segs[2][MAX_BLOCKS];
        for (int rnd = 0; rnd < rounds; rnd++) {
            pid_t pid = fork();
            if (pid == 0) client(ntohs(sa.sin_port), request);
            int c = accept(l, NULL, NULL), one = 1;
            setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            off_t off = 0;
            char req;
            double end = now() + seconds;
            for (int k = 0; now() < end && nb < MAX_BLOCKS; k++, nb++) {
                for (int j = 0; j < 2; j++) {
                    int w = (k % 2) ? 1 - j : j;
                    unsigned s0 = segs_out(c);
                    double t0 = now();
                    for (int i = 0; i < ops; i++) {
                        if (request && recv(c, &req, 1, 0) != 1) die("recv");
                        fns[w](c, off);
                        off = (off + BODY) % (FILE_SIZE - BODY);
                    }
                    rate[w][nb] = ops / (now() - t0);
                    segs[w][nb] = (double)(segs_out(c) - s0) / ops;
                }
            }
            close(c);
            waitpid(pid, NULL, 0);
        }
        double ratio[MAX_BLOCKS];
        for (int i = 0; i < nb; i++) ratio[i] = rate[1][i] / rate[0][i];
        printf("\n%-32s %12s %9s %14s   (%d paired blocks of %d)\n",
               request ? "request/response (keep-alive)" : "streaming (back to back)", "responses/s", "vs first",
               "segments/resp", nb, ops);
        double r = median(ratio, nb);
        for (int w = 0; w < 2; w++)
            printf("%-32s %12.0f %8.3fx %14.2f\n", names[w], median(rate[w], nb), w ? r : 1.0, median(segs[w], nb));
    }
    return 0;
}
