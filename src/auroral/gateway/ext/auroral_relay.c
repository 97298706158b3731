/*
 * auroral_relay: the gateway's data path in C (TLS termination and byte relay), driven from Python.
 *
 * The Python gateway keeps every decision: the accept-time verdict, SSLRequest/GSSENCRequest, the
 * startup packet, rds.force_ssl, IAM authentication, the upstream login. This library only moves
 * bytes, on one thread of its own (epoll, level-triggered), so the relay never waits for the GIL:
 *
 *   TLS connection:  ar_tls(id, client_fd, app_fd, ctx, direct)
 *       HANDSHAKE  (not direct: first the 'S' that answers the client's SSLRequest, sent from this
 *                  thread so the Python loop does not pay for the wakeup) TLS server handshake on
 *                  client_fd (direct: ALPN "postgresql" required)
 *       STARTUP    cleartext client <-> app_fd: one end of a socketpair whose other end Python reads
 *                  as if it were the decrypted client; Python runs the startup phase over it. The
 *                  first bytes on it are a length byte and "<TLS version> <cipher> <bits>".
 *       ar_handoff(id, upstream_fd, python_fd, to_client, to_upstream)   Python has logged in
 *                  upstream, written all it had for the client and handed over its end of the
 *                  socketpair too. Both ends are read out here, in one step, so no byte is lost or
 *                  reordered: toward the client, what app_fd holds (Python's last writes), then
 *                  `to_client` (server bytes Python had read but not passed on), then the upstream
 *                  stream; toward the server, `to_upstream` (client bytes Python had read but not
 *                  used), then what python_fd holds (client bytes passed to Python, not yet read by
 *                  it), then what this side had not yet passed to Python, then the client stream.
 *       RELAY      client (TLS) <-> upstream_fd.
 *   plain connection: ar_plain(id, client_fd, upstream_fd, to_client, to_upstream) -> RELAY at once.
 *
 * When Python closes app_fd during STARTUP (a refusal after an error message, a timeout), what it
 * wrote is flushed to the client and the connection closes. After a handoff the close is reported
 * through ar_events (byte and read counts for the flow record); ar_close(id) aborts.
 *
 * Bounded memory: two BUF-sized buffers per connection; a side is read only while the buffer toward
 * its peer has room (backpressure both ways). Commands reach the thread through a pipe (written by
 * any thread), closes leave through an event queue and an eventfd.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>

#define BUF (64 * 1024)
#define MAX_CTX 4096
#define BUCKETS 4096
#define MAX_EVENTS 256

enum { ST_HANDSHAKE = 1, ST_STARTUP, ST_RELAY };
enum { OP_TLS = 1, OP_PLAIN, OP_HANDOFF, OP_CLOSE };
enum { FD_CLIENT = 0, FD_APP = 1, FD_UP = 2 };

typedef struct {
    int op, fd1, fd2, ctx, direct;
    uint64_t id;
    char *d1, *d2;
    size_t l1, l2;
} cmd_t;

typedef struct {
    uint64_t id, client_bytes, client_reads, upstream_bytes, upstream_reads;
} ar_event_t;

struct conn;
typedef struct {
    struct conn *c;
    int which;
} fdref_t;

typedef struct {
    char *data;
    size_t len, off;
} chunk_t;

typedef struct conn {
    uint64_t id;
    int state, direct, dead, reported, closing;
    int fd[3];
    unsigned interest[3];
    int rd[3], wr[3];
    fdref_t ref[3];
    SSL *ssl;
    int write_wants_read, read_wants_write;
    int client_eof, app_eof, up_eof;
    char *c2x; /* client cleartext toward app_fd (STARTUP) or upstream (RELAY) */
    size_t c2x_s, c2x_e;
    char *x2c; /* toward the client: from app_fd, then upstream */
    size_t x2c_s, x2c_e;
    chunk_t pre_up, pre_client;
    uint64_t c_bytes, c_reads, u_bytes, u_reads;
    size_t buffered; /* accounted in g_buffered */
    struct conn *next, *dead_next;
} conn_t;

static int g_epfd = -1, g_cmd_r = -1, g_cmd_w = -1, g_evfd = -1;
static pthread_t g_thread;
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static SSL_CTX *g_ctx[MAX_CTX];
static int g_nctx;
static char *g_noalpn;
static size_t g_noalpn_len;
static conn_t *g_table[BUCKETS];
static conn_t *g_dead;
static ar_event_t *g_events;
static size_t g_nevents, g_capevents;
static atomic_long g_buffered;
static atomic_long g_conns;
static fdref_t g_cmd_ref;

/* ---- table ------------------------------------------------------------------------------------ */
static conn_t *find(uint64_t id) {
    for (conn_t *c = g_table[id % BUCKETS]; c; c = c->next)
        if (c->id == id) return c;
    return NULL;
}

static void unlink_conn(conn_t *c) {
    conn_t **p = &g_table[c->id % BUCKETS];
    while (*p && *p != c) p = &(*p)->next;
    if (*p) *p = c->next;
}

static void post(ar_event_t ev) {
    pthread_mutex_lock(&g_lock);
    if (g_nevents == g_capevents) {
        size_t cap = g_capevents ? g_capevents * 2 : 64;
        ar_event_t *n = realloc(g_events, cap * sizeof *n);
        if (!n) { pthread_mutex_unlock(&g_lock); return; }
        g_events = n;
        g_capevents = cap;
    }
    g_events[g_nevents++] = ev;
    pthread_mutex_unlock(&g_lock);
    uint64_t one = 1;
    ssize_t w = write(g_evfd, &one, sizeof one);
    (void)w;
}

static void post_event(conn_t *c) { post((ar_event_t){c->id, c->c_bytes, c->c_reads, c->u_bytes, c->u_reads}); }

static void set_fd(conn_t *c, int which, int fd) {
    c->fd[which] = fd;
    c->interest[which] = 0;
    c->rd[which] = 0;
    c->wr[which] = 1;
    if (fd < 0) return;
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0) fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    if (which == FD_CLIENT) { /* request/response traffic: no Nagle delay (fails harmlessly on AF_UNIX) */
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    c->ref[which].c = c;
    c->ref[which].which = which;
    struct epoll_event ev = {.events = 0, .data.ptr = &c->ref[which]};
    epoll_ctl(g_epfd, EPOLL_CTL_ADD, fd, &ev);
}

static void drop_fd(conn_t *c, int which) {
    int fd = c->fd[which];
    if (fd < 0) return;
    epoll_ctl(g_epfd, EPOLL_CTL_DEL, fd, NULL); /* before close: Python may hold no dup, but be sure */
    close(fd);
    c->fd[which] = -1;
}

static void kill_conn(conn_t *c) {
    if (c->dead) return;
    c->dead = 1;
    if (c->ssl) {
        if (SSL_is_init_finished(c->ssl)) SSL_shutdown(c->ssl); /* close_notify, best effort */
        SSL_free(c->ssl);
        c->ssl = NULL;
    }
    for (int i = 0; i < 3; i++) drop_fd(c, i);
    unlink_conn(c);
    atomic_fetch_sub(&g_buffered, (long)c->buffered);
    c->buffered = 0;
    atomic_fetch_sub(&g_conns, 1);
    if (c->reported) post_event(c);
    c->dead_next = g_dead;
    g_dead = c;
}

static void free_dead(void) {
    while (g_dead) {
        conn_t *c = g_dead;
        g_dead = c->dead_next;
        free(c->c2x);
        free(c->x2c);
        free(c->pre_up.data);
        free(c->pre_client.data);
        free(c);
    }
}

static conn_t *new_conn(uint64_t id) {
    conn_t *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->c2x = malloc(BUF);
    c->x2c = malloc(BUF);
    if (!c->c2x || !c->x2c) {
        free(c->c2x);
        free(c->x2c);
        free(c);
        return NULL;
    }
    c->id = id;
    c->fd[0] = c->fd[1] = c->fd[2] = -1;
    c->next = g_table[id % BUCKETS];
    g_table[id % BUCKETS] = c;
    atomic_fetch_add(&g_conns, 1);
    return c;
}

static void account(conn_t *c) {
    size_t now = (c->c2x_e - c->c2x_s) + (c->x2c_e - c->x2c_s) + (c->pre_up.len - c->pre_up.off) +
                 (c->pre_client.len - c->pre_client.off);
    atomic_fetch_add(&g_buffered, (long)now - (long)c->buffered);
    c->buffered = now;
}

/* ---- client I/O (TLS or plain): >0 bytes, 0 would block, -1 EOF, -2 error ---------------------- */
static ssize_t client_read(conn_t *c, char *buf, size_t n) {
    if (!c->ssl) {
        ssize_t r = read(c->fd[FD_CLIENT], buf, n);
        if (r > 0) return r;
        if (r == 0) return -1;
        if (errno == EAGAIN || errno == EINTR) { c->rd[FD_CLIENT] = 0; return 0; }
        return -2;
    }
    ERR_clear_error();
    int r = SSL_read(c->ssl, buf, (int)n);
    if (r > 0) { c->read_wants_write = 0; return r; }
    switch (SSL_get_error(c->ssl, r)) {
    case SSL_ERROR_WANT_READ: c->rd[FD_CLIENT] = 0; c->read_wants_write = 0; return 0;
    case SSL_ERROR_WANT_WRITE: c->wr[FD_CLIENT] = 0; c->read_wants_write = 1; return 0;
    case SSL_ERROR_ZERO_RETURN: return -1;
    case SSL_ERROR_SYSCALL: return (ERR_peek_error() == 0 && errno == 0) ? -1 : -2;
    default: return -2;
    }
}

static ssize_t client_write(conn_t *c, const char *buf, size_t n) {
    if (!c->ssl) {
        ssize_t r = send(c->fd[FD_CLIENT], buf, n, MSG_NOSIGNAL);
        if (r >= 0) return r;
        if (errno == EAGAIN || errno == EINTR) { c->wr[FD_CLIENT] = 0; return 0; }
        return -2;
    }
    ERR_clear_error();
    int r = SSL_write(c->ssl, buf, (int)(n > 0x7fffffff ? 0x7fffffff : n));
    if (r > 0) { c->write_wants_read = 0; return r; }
    switch (SSL_get_error(c->ssl, r)) {
    case SSL_ERROR_WANT_WRITE: c->wr[FD_CLIENT] = 0; c->write_wants_read = 0; return 0;
    case SSL_ERROR_WANT_READ: c->rd[FD_CLIENT] = 0; c->write_wants_read = 1; return 0;
    default: return -2;
    }
}

static int client_readable(conn_t *c) {
    if (c->rd[FD_CLIENT]) return 1;
    if (c->ssl && SSL_has_pending(c->ssl)) return 1;
    return c->read_wants_write && c->wr[FD_CLIENT];
}

static int client_writable(conn_t *c) {
    return c->wr[FD_CLIENT] || (c->write_wants_read && c->rd[FD_CLIENT]);
}

/* plain fd I/O: >0 bytes, 0 would block, -1 EOF/peer gone, -2 error */
static ssize_t plain_read(conn_t *c, int which, char *buf, size_t n) {
    ssize_t r = read(c->fd[which], buf, n);
    if (r > 0) return r;
    if (r == 0) return -1;
    if (errno == EAGAIN || errno == EINTR) { c->rd[which] = 0; return 0; }
    return errno == ECONNRESET ? -1 : -2;
}

static ssize_t plain_write(conn_t *c, int which, const char *buf, size_t n) {
    ssize_t r = send(c->fd[which], buf, n, MSG_NOSIGNAL);
    if (r >= 0) return r;
    if (errno == EAGAIN || errno == EINTR) { c->wr[which] = 0; return 0; }
    return (errno == EPIPE || errno == ECONNRESET) ? -1 : -2;
}

/* ---- the pump ---------------------------------------------------------------------------------- */
static int x2c_source_is_upstream(conn_t *c) {
    return c->fd[FD_UP] >= 0 && c->app_eof && c->pre_client.off == c->pre_client.len;
}

/* Move bytes until nothing moves; then set epoll interest. Closes the connection when it is over. */
static void pump(conn_t *c) {
    for (int round = 0; round < 64 && !c->dead; round++) {
        int moved = 0;
        if (c->state == ST_HANDSHAKE) {
            ERR_clear_error();
            int r = SSL_do_handshake(c->ssl);
            if (r == 1) {
                c->state = ST_STARTUP;
                moved = 1;
                /* first on app_fd: one length byte and "<version> <cipher> <bits>" (c2x is empty) */
                int bits = 0;
                SSL_get_cipher_bits(c->ssl, &bits);
                int n = snprintf(c->c2x + 1, 200, "%s %s %d", SSL_get_version(c->ssl), SSL_get_cipher_name(c->ssl),
                                 bits);
                c->c2x[0] = (char)(n > 0 && n < 200 ? n : 0);
                c->c2x_s = 0;
                c->c2x_e = 1 + (size_t)(unsigned char)c->c2x[0];
                if (c->direct) {
                    const unsigned char *p = NULL;
                    unsigned len = 0;
                    SSL_get0_alpn_selected(c->ssl, &p, &len);
                    if (len == 0) { /* PostgreSQL 17's refusal; then close */
                        size_t n = g_noalpn_len < BUF ? g_noalpn_len : BUF;
                        memcpy(c->x2c, g_noalpn, n);
                        c->x2c_s = 0;
                        c->x2c_e = n;
                        drop_fd(c, FD_APP);
                        c->app_eof = 1;
                        c->closing = 1;
                    }
                }
            } else {
                int e = SSL_get_error(c->ssl, r);
                if (e == SSL_ERROR_WANT_READ) c->rd[FD_CLIENT] = 0;
                else if (e == SSL_ERROR_WANT_WRITE) c->wr[FD_CLIENT] = 0;
                else { kill_conn(c); return; }
            }
        }
        int reading_client = !c->closing && !c->client_eof &&
                             (c->state == ST_STARTUP || c->state == ST_RELAY);
        /* 1. client -> c2x */
        if (reading_client && c->c2x_e < BUF && client_readable(c)) {
            ssize_t r = client_read(c, c->c2x + c->c2x_e, BUF - c->c2x_e);
            c->rd[FD_CLIENT] = 0;
            if (r > 0) {
                c->c2x_e += (size_t)r;
                if (c->state == ST_RELAY) { c->c_bytes += (uint64_t)r; c->c_reads++; }
                moved = 1;
            } else if (r == -1) {
                c->client_eof = 1;
                moved = 1;
            } else if (r == -2) { kill_conn(c); return; }
        }
        /* 2. c2x -> app (STARTUP) or pre_up, c2x -> upstream (RELAY) */
        int dest = c->state == ST_STARTUP ? FD_APP : c->state == ST_RELAY ? FD_UP : -1;
        if (dest >= 0 && c->fd[dest] >= 0 && c->wr[dest]) {
            chunk_t *pre = &c->pre_up;
            if (dest == FD_UP && pre->off < pre->len) {
                ssize_t r = plain_write(c, dest, pre->data + pre->off, pre->len - pre->off);
                if (r > 0) { pre->off += (size_t)r; moved = 1; }
                else if (r < 0) { kill_conn(c); return; }
            }
            if ((dest != FD_UP || pre->off == pre->len) && c->c2x_e > c->c2x_s && c->wr[dest]) {
                ssize_t r = plain_write(c, dest, c->c2x + c->c2x_s, c->c2x_e - c->c2x_s);
                if (r > 0) {
                    c->c2x_s += (size_t)r;
                    if (c->c2x_s == c->c2x_e) c->c2x_s = c->c2x_e = 0;
                    moved = 1;
                } else if (r < 0) {
                    if (dest == FD_APP) { /* Python went away: its EOF handling closes us */
                        c->c2x_s = c->c2x_e = 0;
                    } else { kill_conn(c); return; }
                }
            }
        }
        /* 3. app / upstream -> x2c */
        if (!c->closing && c->x2c_e < BUF) {
            int src = -1;
            if (c->fd[FD_APP] >= 0 && !c->app_eof) src = FD_APP;
            else if (x2c_source_is_upstream(c) && !c->up_eof) src = FD_UP;
            if (src >= 0 && c->rd[src]) {
                ssize_t r = plain_read(c, src, c->x2c + c->x2c_e, BUF - c->x2c_e);
                c->rd[src] = 0;
                if (r > 0) {
                    c->x2c_e += (size_t)r;
                    if (src == FD_UP) { c->u_bytes += (uint64_t)r; c->u_reads++; }
                    moved = 1;
                } else if (r == -1 || (r == -2 && src == FD_APP)) {
                    if (src == FD_APP) {
                        c->app_eof = 1;
                        drop_fd(c, FD_APP);
                        if (c->state == ST_HANDSHAKE || c->state == ST_STARTUP) c->closing = 1;
                    } else {
                        c->up_eof = 1;
                        c->closing = 1;
                    }
                    moved = 1;
                } else if (r == -2) { kill_conn(c); return; }
            }
        }
        /* 4. x2c, then pre_client -> client */
        if (c->state != ST_HANDSHAKE && client_writable(c)) {
            if (c->x2c_e > c->x2c_s) {
                ssize_t r = client_write(c, c->x2c + c->x2c_s, c->x2c_e - c->x2c_s);
                if (r > 0) {
                    c->x2c_s += (size_t)r;
                    if (c->x2c_s == c->x2c_e) c->x2c_s = c->x2c_e = 0;
                    moved = 1;
                } else if (r < 0) { kill_conn(c); return; }
            }
            chunk_t *pre = &c->pre_client;
            if (c->x2c_e == c->x2c_s && c->app_eof && pre->off < pre->len && client_writable(c)) {
                ssize_t r = client_write(c, pre->data + pre->off, pre->len - pre->off);
                if (r > 0) { pre->off += (size_t)r; moved = 1; }
                else if (r < 0) { kill_conn(c); return; }
            }
        }
        /* endings */
        int to_client_empty = c->x2c_e == c->x2c_s && c->pre_client.off == c->pre_client.len;
        if (c->closing && to_client_empty) { kill_conn(c); return; }
        if (c->client_eof) {
            if (c->state == ST_HANDSHAKE || c->state == ST_STARTUP) { kill_conn(c); return; }
            if (c->state == ST_RELAY && c->c2x_e == c->c2x_s && c->pre_up.off == c->pre_up.len) {
                kill_conn(c);
                return;
            }
        }
        if (!moved) break;
    }
    if (c->dead) return;
    account(c);
    /* interest */
    unsigned want[3] = {0, 0, 0};
    if (c->state == ST_HANDSHAKE) {
        want[FD_CLIENT] = c->wr[FD_CLIENT] ? EPOLLIN : EPOLLOUT;
    } else {
        int reading_client = !c->closing && !c->client_eof && (c->state == ST_STARTUP || c->state == ST_RELAY);
        int pending_client = c->x2c_e > c->x2c_s || (c->app_eof && c->pre_client.off < c->pre_client.len);
        if ((reading_client && c->c2x_e < BUF) || (c->write_wants_read && pending_client)) want[FD_CLIENT] |= EPOLLIN;
        if ((pending_client && !c->wr[FD_CLIENT]) || c->read_wants_write) want[FD_CLIENT] |= EPOLLOUT;
    }
    if (c->fd[FD_APP] >= 0) {
        if (!c->app_eof && c->x2c_e < BUF && !c->closing) want[FD_APP] |= EPOLLIN;
        if (c->state == ST_STARTUP && c->c2x_e > c->c2x_s && !c->wr[FD_APP]) want[FD_APP] |= EPOLLOUT;
    }
    if (c->fd[FD_UP] >= 0) {
        if (x2c_source_is_upstream(c) && !c->up_eof && c->x2c_e < BUF && !c->closing) want[FD_UP] |= EPOLLIN;
        int pending_up = c->c2x_e > c->c2x_s || c->pre_up.off < c->pre_up.len;
        if (c->state == ST_RELAY && pending_up && !c->wr[FD_UP]) want[FD_UP] |= EPOLLOUT;
    }
    for (int i = 0; i < 3; i++) {
        if (c->fd[i] < 0 || want[i] == c->interest[i]) continue;
        struct epoll_event ev = {.events = want[i], .data.ptr = &c->ref[i]};
        epoll_ctl(g_epfd, EPOLL_CTL_MOD, c->fd[i], &ev);
        c->interest[i] = want[i];
    }
}

/* ---- commands ---------------------------------------------------------------------------------- */
static void take(chunk_t *ch, char *data, size_t len) {
    free(ch->data);
    ch->data = data;
    ch->len = data ? len : 0;
    ch->off = 0;
}

/* All that fd holds now (non-blocking), with `extra` before it (first = 1) or after it (first = 0). */
static int read_all(int fd, chunk_t *out, const char *extra, size_t extra_len, int first) {
    size_t cap = 4096 + extra_len, len = 0;
    char *buf = malloc(cap);
    if (!buf) return -1;
    if (first && extra_len) { memcpy(buf, extra, extra_len); len = extra_len; }
    for (;;) {
        if (cap - len < 4096 + extra_len) {
            char *n = realloc(buf, cap * 2);
            if (!n) { free(buf); return -1; }
            buf = n;
            cap *= 2;
        }
        ssize_t r = fd >= 0 ? recv(fd, buf + len, cap - len - extra_len, MSG_DONTWAIT) : 0;
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break; /* EAGAIN: all of it; 0: the other end is closed; errors: nothing more */
        len += (size_t)r;
    }
    if (!first && extra_len) { memcpy(buf + len, extra, extra_len); len += extra_len; }
    out->data = buf;
    out->len = len;
    out->off = 0;
    return 0;
}

static void run_cmd(cmd_t *m) {
    conn_t *c = m->op == OP_TLS || m->op == OP_PLAIN ? NULL : find(m->id);
    switch (m->op) {
    case OP_TLS: {
        SSL_CTX *ctx = NULL;
        pthread_mutex_lock(&g_lock);
        if (m->ctx >= 0 && m->ctx < g_nctx) ctx = g_ctx[m->ctx];
        pthread_mutex_unlock(&g_lock);
        c = ctx ? new_conn(m->id) : NULL;
        SSL *ssl = c ? SSL_new(ctx) : NULL;
        if (!ssl) {
            close(m->fd1);
            close(m->fd2);
            if (c) { c->fd[0] = c->fd[1] = -1; kill_conn(c); }
            break;
        }
        c->ssl = ssl;
        c->direct = m->direct;
        c->state = ST_HANDSHAKE;
        set_fd(c, FD_CLIENT, m->fd1);
        set_fd(c, FD_APP, m->fd2);
        c->rd[FD_CLIENT] = 1;
        c->rd[FD_APP] = 1;
        SSL_set_fd(ssl, m->fd1);
        SSL_set_accept_state(ssl);
        if (!c->direct && send(m->fd1, "S", 1, MSG_NOSIGNAL) != 1) { /* into an empty send buffer */
            kill_conn(c);
            break;
        }
        pump(c);
        break;
    }
    case OP_PLAIN:
        c = new_conn(m->id);
        if (!c) {
            close(m->fd1);
            close(m->fd2);
            post((ar_event_t){m->id, 0, 0, 0, 0});
            break;
        }
        c->state = ST_RELAY;
        c->reported = 1;
        c->app_eof = 1;
        set_fd(c, FD_CLIENT, m->fd1);
        set_fd(c, FD_UP, m->fd2);
        c->rd[FD_CLIENT] = c->rd[FD_UP] = 1;
        take(&c->pre_client, m->d1, m->l1);
        take(&c->pre_up, m->d2, m->l2);
        m->d1 = m->d2 = NULL;
        pump(c);
        break;
    case OP_HANDOFF: {
        if (!c || c->state != ST_STARTUP) { /* the client left meanwhile: the session still hears of it */
            if (m->fd1 >= 0) close(m->fd1);
            if (m->fd2 >= 0) close(m->fd2);
            post((ar_event_t){m->id, 0, 0, 0, 0});
            break;
        }
        /* Python wrote all it had before this command (its write buffer was empty) and reads its end no
         * more: what each end holds now is all there will be. */
        chunk_t to_client = {0}, to_up = {0};
        int ok = read_all(c->fd[FD_APP], &to_client, m->d1, m->l1, 0) == 0 &&
                 read_all(m->fd2, &to_up, m->d2, m->l2, 1) == 0;
        if (m->fd2 >= 0) close(m->fd2);
        if (!ok) {
            free(to_client.data);
            free(to_up.data);
            close(m->fd1);
            c->reported = 1;
            kill_conn(c);
            break;
        }
        take(&c->pre_client, to_client.data, to_client.len);
        take(&c->pre_up, to_up.data, to_up.len);
        drop_fd(c, FD_APP);
        c->app_eof = 1;
        c->state = ST_RELAY;
        c->reported = 1;
        set_fd(c, FD_UP, m->fd1);
        c->rd[FD_UP] = 1;
        c->rd[FD_CLIENT] = 1;
        pump(c); /* toward the server: pre_up, then c2x (never passed to Python), then the client */
        break;
    }
    case OP_CLOSE:
        if (c) kill_conn(c);
        break;
    }
    free(m->d1);
    free(m->d2);
}

static void *loop(void *arg) {
    (void)arg;
    pthread_setname_np(pthread_self(), "auroral-relay"); /* as top and /proc show it */
    struct epoll_event evs[MAX_EVENTS];
    for (;;) {
        int n = epoll_wait(g_epfd, evs, MAX_EVENTS, -1);
        if (n < 0) {
            if (errno == EINTR) continue;
            return NULL;
        }
        for (int i = 0; i < n; i++) {
            fdref_t *ref = evs[i].data.ptr;
            if (ref == &g_cmd_ref) {
                cmd_t cmds[64];
                ssize_t r = read(g_cmd_r, cmds, sizeof cmds);
                for (ssize_t k = 0; r > 0 && k < r / (ssize_t)sizeof(cmd_t); k++) run_cmd(&cmds[k]);
                continue;
            }
            conn_t *c = ref->c;
            if (c->dead) continue;
            unsigned e = evs[i].events;
            if (e & (EPOLLIN | EPOLLHUP | EPOLLERR)) c->rd[ref->which] = 1;
            if (e & (EPOLLOUT | EPOLLHUP | EPOLLERR)) c->wr[ref->which] = 1;
            pump(c);
        }
        free_dead();
    }
    return NULL;
}

/* ---- the API (called from Python through ctypes; any thread) ------------------------------------ */
int ar_init(const char *noalpn, size_t noalpn_len) {
    if (g_epfd >= 0) return g_evfd;
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) return -1;
    g_cmd_r = p[0];
    g_cmd_w = p[1];
    fcntl(g_cmd_r, F_SETFL, O_NONBLOCK);
    g_evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    g_epfd = epoll_create1(EPOLL_CLOEXEC);
    if (g_evfd < 0 || g_epfd < 0) return -1;
    g_noalpn = malloc(noalpn_len ? noalpn_len : 1);
    memcpy(g_noalpn, noalpn, noalpn_len);
    g_noalpn_len = noalpn_len;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &g_cmd_ref};
    epoll_ctl(g_epfd, EPOLL_CTL_ADD, g_cmd_r, &ev);
    if (pthread_create(&g_thread, NULL, loop, NULL) != 0) return -1;
    pthread_detach(g_thread);
    return g_evfd;
}

static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen, const unsigned char *in,
                       unsigned inlen, void *arg) {
    (void)ssl;
    (void)arg;
    static const unsigned char want[] = "\x0apostgresql";
    unsigned char *sel = NULL;
    if (SSL_select_next_proto(&sel, outlen, want, sizeof want - 1, in, inlen) != OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_NOACK; /* as Python's ssl (and so the Python relay) does */
    *out = sel;
    return SSL_TLSEXT_ERR_OK;
}

/* A server context from PEM in memory (certificate chain, private key). Returns its index, or -1 with
 * OpenSSL's reason in err. */
int ar_ctx_new(const char *cert, size_t cert_len, const char *key, size_t key_len, char *err, size_t errlen) {
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    BIO *b = NULL;
    X509 *x = NULL;
    EVP_PKEY *pk = NULL;
    if (!ctx) goto fail;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_TICKET |
                                 SSL_OP_NO_RENEGOTIATION);
    /* Python's default cipher string for TLS 1.2 (TLS 1.3 suites are OpenSSL's defaults) */
    if (!SSL_CTX_set_cipher_list(ctx, "@SECLEVEL=2:ECDH+AESGCM:ECDH+CHACHA20:ECDH+AES:DHE+AES:!aNULL:!eNULL:"
                                      "!aDSS:!SHA1:!AESCCM"))
        goto fail;
    SSL_CTX_set_num_tickets(ctx, 0);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    /* no SSL_MODE_RELEASE_BUFFERS: freeing and allocating the record buffers per message costs more
     * than the ~34 KB they hold per connection */
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_read_ahead(ctx, 1);
    SSL_CTX_set_alpn_select_cb(ctx, alpn_select, NULL);
    b = BIO_new_mem_buf(cert, (int)cert_len);
    if (!b || !(x = PEM_read_bio_X509(b, NULL, NULL, NULL)) || SSL_CTX_use_certificate(ctx, x) != 1) goto fail;
    X509_free(x);
    x = NULL;
    while ((x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) {
        if (SSL_CTX_add0_chain_cert(ctx, x) != 1) goto fail;
        x = NULL;
    }
    ERR_clear_error(); /* the end of the PEM stream */
    BIO_free(b);
    b = BIO_new_mem_buf(key, (int)key_len);
    if (!b || !(pk = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL)) || SSL_CTX_use_PrivateKey(ctx, pk) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1)
        goto fail;
    EVP_PKEY_free(pk);
    BIO_free(b);
    pthread_mutex_lock(&g_lock);
    int idx = g_nctx < MAX_CTX ? g_nctx++ : -1;
    if (idx >= 0) g_ctx[idx] = ctx;
    pthread_mutex_unlock(&g_lock);
    if (idx < 0) {
        snprintf(err, errlen, "too many TLS contexts");
        SSL_CTX_free(ctx);
    }
    return idx;
fail: {
    unsigned long e = ERR_get_error();
    const char *why = e ? ERR_reason_error_string(e) : NULL;
    snprintf(err, errlen, "%s", why ? why : "unknown error");
    ERR_clear_error();
}
    X509_free(x);
    EVP_PKEY_free(pk);
    BIO_free(b);
    SSL_CTX_free(ctx);
    return -1;
}

static char *copy(const char *d, size_t n) {
    if (!d || !n) return NULL;
    char *p = malloc(n);
    if (p) memcpy(p, d, n);
    return p;
}

static int send_cmd(cmd_t *m) {
    ssize_t w;
    do { w = write(g_cmd_w, m, sizeof *m); } while (w < 0 && errno == EINTR);
    return w == (ssize_t)sizeof *m ? 0 : -1;
}

int ar_tls(uint64_t id, int client_fd, int app_fd, int ctx, int direct) {
    cmd_t m = {.op = OP_TLS, .id = id, .fd1 = client_fd, .fd2 = app_fd, .ctx = ctx, .direct = direct};
    return send_cmd(&m);
}

int ar_plain(uint64_t id, int client_fd, int up_fd, const char *to_client, size_t lc, const char *to_up,
             size_t lu) {
    cmd_t m = {.op = OP_PLAIN, .id = id, .fd1 = client_fd, .fd2 = up_fd, .d1 = copy(to_client, lc), .l1 = lc,
               .d2 = copy(to_up, lu), .l2 = lu};
    return send_cmd(&m);
}

int ar_handoff(uint64_t id, int up_fd, int python_fd, const char *to_client, size_t lc, const char *to_up,
               size_t lu) {
    cmd_t m = {.op = OP_HANDOFF, .id = id, .fd1 = up_fd, .fd2 = python_fd, .d1 = copy(to_client, lc), .l1 = lc,
               .d2 = copy(to_up, lu), .l2 = lu};
    return send_cmd(&m);
}

int ar_close(uint64_t id) {
    cmd_t m = {.op = OP_CLOSE, .id = id, .fd1 = -1, .fd2 = -1};
    return send_cmd(&m);
}

/* Closed connections since the last call (at most max); reading resets the eventfd. */
int ar_events(ar_event_t *out, int max) {
    uint64_t v;
    ssize_t r = read(g_evfd, &v, sizeof v);
    (void)r;
    pthread_mutex_lock(&g_lock);
    int n = (int)(g_nevents < (size_t)max ? g_nevents : (size_t)max);
    memcpy(out, g_events, (size_t)n * sizeof *out);
    memmove(g_events, g_events + n, (g_nevents - (size_t)n) * sizeof *out);
    g_nevents -= (size_t)n;
    int more = g_nevents > 0;
    pthread_mutex_unlock(&g_lock);
    if (more) { uint64_t one = 1; ssize_t w = write(g_evfd, &one, sizeof one); (void)w; }
    return n;
}

long ar_buffered(void) { return atomic_load(&g_buffered); }
long ar_connections(void) { return atomic_load(&g_conns); }
