/*
 * http_file_server: serve one file over HTTP/1.0 with zcopy_transfer.
 *
 *   http_file_server [-p PORT] [-n COUNT] FILE
 *
 * Listens on 127.0.0.1:PORT (default 8080; 0 picks a free port), prints
 * "listening on http://127.0.0.1:PORT/", and answers GET and HEAD for "/" or "/NAME" (NAME
 * being FILE's base name) one connection at a time. After COUNT requests it exits (default:
 * never). The body goes out with zcopy_transfer, which picks sendfile or splice for a file to
 * a TCP socket; a client that hangs up midway is ZCOPY_STATUS_OS with EPIPE, not a SIGPIPE,
 * so this program does not need to ignore SIGPIPE (most servers still do).
 *
 * Build:  cc -std=c11 http_file_server.c $(pkg-config --cflags --libs zcopy)
 * Try:    ./a.out -p 8080 /etc/os-release & curl -v http://127.0.0.1:8080/
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <zcopy.h>

/* Reads the request head (up to the blank line) into buf; returns its length or -1. */
static ssize_t read_head(int conn, char *buf, size_t cap) {
    size_t len = 0;
    while (len + 1 < cap) {
        ssize_t r = recv(conn, buf + len, cap - 1 - len, 0);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return -1;
        len += (size_t)r;
        buf[len] = 0;
        if (strstr(buf, "\r\n\r\n") || strstr(buf, "\n\n")) return (ssize_t)len;
    }
    return -1; /* too long */
}

static int send_all(int conn, const char *p, size_t n) {
    while (n) {
        ssize_t w = send(conn, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static void reply_error(int conn, const char *status) {
    char msg[256];
    int n = snprintf(msg, sizeof msg,
                     "HTTP/1.0 %s\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n%s\n",
                     status, strlen(status) + 1, status);
    if (n > 0) send_all(conn, msg, (size_t)n);
}

/* Serves one connection; logs one line to stderr. */
static void serve(int conn, int file, uint64_t size, const char *name) {
    char head[8192];
    if (read_head(conn, head, sizeof head) < 0) {
        reply_error(conn, "400 Bad Request");
        fprintf(stderr, "bad request\n");
        return;
    }
    char method[8] = "", path[1024] = "";
    if (sscanf(head, "%7s %1023s", method, path) != 2) {
        reply_error(conn, "400 Bad Request");
        fprintf(stderr, "bad request line\n");
        return;
    }
    int get = strcmp(method, "GET") == 0, headonly = strcmp(method, "HEAD") == 0;
    if (!get && !headonly) {
        reply_error(conn, "405 Method Not Allowed");
        fprintf(stderr, "%s %s -> 405\n", method, path);
        return;
    }
    if (strcmp(path, "/") != 0 && !(path[0] == '/' && strcmp(path + 1, name) == 0)) {
        reply_error(conn, "404 Not Found");
        fprintf(stderr, "%s %s -> 404\n", method, path);
        return;
    }
    char hdr[256];
    int n = snprintf(hdr, sizeof hdr,
                     "HTTP/1.0 200 OK\r\nContent-Type: application/octet-stream\r\n"
                     "Content-Length: %" PRIu64 "\r\nConnection: close\r\n\r\n",
                     size);
    if (n < 0 || send_all(conn, hdr, (size_t)n) < 0) {
        fprintf(stderr, "%s %s -> client gone: %s\n", method, path, strerror(errno));
        return;
    }
    if (headonly) {
        fprintf(stderr, "HEAD %s -> 200\n", path);
        return;
    }

    zcopy_options opts;
    zcopy_options_init(&opts);
    opts.offset = 0;         /* read from the start; the shared file position is not touched */
    opts.count = size;       /* exactly what Content-Length promised, even if the file grows */
    opts.timeout_ms = 60000; /* one deadline for the whole body */
    zcopy_report rep;
    zcopy_status st = zcopy_transfer(file, conn, &opts, &rep);
    if (st == ZCOPY_STATUS_OK) {
        fprintf(stderr, "GET %s -> 200, %" PRIu64 " bytes via %s in %" PRIu64 " syscalls\n", path,
                rep.bytes, zcopy_method_name(rep.method), rep.syscalls);
    } else {
        fprintf(stderr, "GET %s -> 200 cut short after %" PRIu64 " bytes: %s%s%s\n", path,
                rep.bytes, zcopy_status_name(st), st == ZCOPY_STATUS_OS ? ": " : "",
                st == ZCOPY_STATUS_OS ? strerror(rep.os_errno) : "");
    }
}

int main(int argc, char **argv) {
    int port = 8080;
    long count = -1;
    int opt;
    while ((opt = getopt(argc, argv, "p:n:")) != -1) {
        switch (opt) {
        case 'p': port = atoi(optarg); break;
        case 'n': count = atol(optarg); break;
        default: goto usage;
        }
    }
    if (optind != argc - 1) goto usage;
    const char *path = argv[optind];
    const char *name = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;

    int file = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (file < 0 || fstat(file, &st) < 0 || !S_ISREG(st.st_mode)) {
        fprintf(stderr, "%s: not a readable regular file\n", path);
        return 1;
    }

    int lsock = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = htons((uint16_t)port);
    socklen_t sl = sizeof sa;
    if (lsock < 0 || setsockopt(lsock, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        bind(lsock, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(lsock, 16) < 0 ||
        getsockname(lsock, (struct sockaddr *)&sa, &sl) < 0) {
        perror("listen");
        return 1;
    }
    printf("listening on http://127.0.0.1:%d/ (zcopy %s)\n", ntohs(sa.sin_port), zcopy_version());
    fflush(stdout);

    for (long served = 0; count < 0 || served < count; served++) {
        int conn = accept4(lsock, NULL, NULL, SOCK_CLOEXEC);
        if (conn < 0) {
            if (errno == EINTR) continue;
            perror("accept");
            return 1;
        }
        struct timeval tv = {10, 0}; /* a silent client cannot hold the server forever */
        setsockopt(conn, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        serve(conn, file, (uint64_t)st.st_size, name);
        close(conn);
    }
    close(lsock);
    close(file);
    return 0;

usage:
    fprintf(stderr, "usage: %s [-p PORT] [-n COUNT] FILE\n", argv[0]);
    return 2;
}
