/*
 * The baseline for bench/relay/bench_relay.py: a TCP relay as one would write it in C without
 * zcopy. One thread per connection, poll on both sockets, read/write through a 64 KiB buffer
 * per direction, half-close forwarded. Prints the syscalls it made on exit (SIGTERM).
 *
 *   cc -O2 -pthread bench/relay/rw_relay.c -o /tmp/rw_relay
 *   /tmp/rw_relay LISTEN_PORT UPSTREAM_PORT     (both on 127.0.0.1)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUF (64 * 1024)

static atomic_ulong syscalls;
static int upstream_port;

struct dir {
    int from, to, eof;
    char buf[BUF];
    size_t len, off;
};

static void *serve(void *arg) {
    int c = (int)(long)arg;
    int u = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((unsigned short)upstream_port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(u, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(c);
        close(u);
        return NULL;
    }
    struct dir *d = calloc(2, sizeof *d);
    d[0].from = c, d[0].to = u, d[1].from = u, d[1].to = c;
    unsigned long n = 2;
    while (!(d[0].eof && d[1].eof)) {
        struct pollfd p[2];
        for (int i = 0; i < 2; i++) {
            p[i].fd = d[i].eof ? -1 : (d[i].len ? d[i].to : d[i].from);
            p[i].events = d[i].len ? POLLOUT : POLLIN;
        }
        n++;
        if (poll(p, 2, -1) < 0 && errno != EINTR) break;
        for (int i = 0; i < 2; i++) {
            struct dir *x = &d[i];
            if (x->eof || !p[i].revents) continue;
            if (!x->len) {
                ssize_t r = read(x->from, x->buf, BUF);
                n++;
                if (r <= 0) {
                    x->eof = 1;
                    shutdown(x->to, SHUT_WR);
                    n++;
                    continue;
                }
                x->len = (size_t)r, x->off = 0;
            }
            ssize_t w = write(x->to, x->buf + x->off, x->len - x->off);
            n++;
            if (w < 0 && errno != EAGAIN) {
                x->eof = 1;
                continue;
            }
            if (w > 0) {
                x->off += (size_t)w;
                if (x->off == x->len) x->len = 0;
            }
        }
    }
    close(c);
    close(u);
    free(d);
    atomic_fetch_add(&syscalls, n + 2);
    return NULL;
}

static void on_term(int sig) {
    (void)sig;
    char line[64];
    int k = snprintf(line, sizeof line, "syscalls %lu\n", atomic_load(&syscalls));
    if (write(2, line, (size_t)k) < 0) _exit(1);
    _exit(0);
}

int main(int argc, char **argv) {
    if (argc != 3) return 2;
    upstream_port = atoi(argv[2]);
    signal(SIGTERM, on_term);
    signal(SIGPIPE, SIG_IGN);
    int l = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((unsigned short)atoi(argv[1]))};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(l, (struct sockaddr *)&sa, sizeof sa) || listen(l, 4096)) return 3;
    fprintf(stderr, "listening\n");
    for (;;) {
        int c = accept(l, NULL, NULL);
        if (c < 0) continue;
        pthread_t t;
        pthread_attr_t a;
        pthread_attr_init(&a);
        pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
        pthread_attr_setstacksize(&a, 256 * 1024);
        if (pthread_create(&t, &a, serve, (void *)(long)c) != 0) close(c);
    }
}
