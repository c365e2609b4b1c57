/* refvmm-tool: helper of the virtio integration tests, run in the L2 guest and on the board:
 * vsock and unix-socket (Firecracker protocol) echo servers and clients with hash checks,
 * abrupt closes, the virtio-console client, block ioctls (discard, write-zeroes), pattern
 * writes and checks, sha256 and throughput. Every verdict is one machine-readable line:
 *   REFVMM-RESULT op=NAME ok=0|1 key=value ...
 * Data streams are splitmix64 output (little-endian), reproducible from a seed (tests
 * recompute them in Python). Static, no dependencies beyond libc. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/fs.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <linux/vm_sockets.h> /* after sys/socket.h */
#include <time.h>
#include <unistd.h>

#define CHUNK 16384
#define MAX_CONNS 1024

/* ---- output ---------------------------------------------------------------------------- */

static const char *g_op = "none";
static char g_timeout_line[128];

static void result(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void result(const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	printf("REFVMM-RESULT op=%s %s\n", g_op, line);
	fflush(stdout);
}

static void on_alarm(int sig)
{
	(void)sig;
	ssize_t r = write(1, g_timeout_line, strlen(g_timeout_line));
	(void)r;
	_exit(3);
}

static const char *ename(int e)
{
	const char *n = e ? strerrorname_np(e) : "0";
	return n ? n : "EUNKNOWN";
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die_usage(const char *msg)
{
	fprintf(stderr, "refvmm-tool: %s (see refvmm-tool help)\n", msg);
	exit(2);
}

static uint64_t parse_size(const char *s)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 0);
	if (errno || end == s)
		die_usage("bad number");
	switch (*end) {
	case 'k': case 'K': v <<= 10; end++; break;
	case 'm': case 'M': v <<= 20; end++; break;
	case 'g': case 'G': v <<= 30; end++; break;
	default: break;
	}
	if (*end)
		die_usage("bad number suffix");
	return v;
}

/* ---- sha256 ---------------------------------------------------------------------------- */

struct sha256 {
	uint32_t h[8];
	uint64_t len;
	uint8_t buf[64];
	size_t n;
};

static const uint32_t K256[64] = {
	0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
	0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
	0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
	0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
	0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
	0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
	0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
	0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

#define ROR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void sha256_init(struct sha256 *s)
{
	static const uint32_t h0[8] = { 0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
					0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19 };
	memcpy(s->h, h0, sizeof(h0));
	s->len = 0;
	s->n = 0;
}

static void sha256_block(struct sha256 *s, const uint8_t *p)
{
	uint32_t w[64], a, b, c, d, e, f, g, h;
	for (int i = 0; i < 16; i++)
		w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
	for (int i = 16; i < 64; i++) {
		uint32_t s0 = ROR(w[i - 15], 7) ^ ROR(w[i - 15], 18) ^ (w[i - 15] >> 3);
		uint32_t s1 = ROR(w[i - 2], 17) ^ ROR(w[i - 2], 19) ^ (w[i - 2] >> 10);
		w[i] = w[i - 16] + s0 + w[i - 7] + s1;
	}
	a = s->h[0]; b = s->h[1]; c = s->h[2]; d = s->h[3];
	e = s->h[4]; f = s->h[5]; g = s->h[6]; h = s->h[7];
	for (int i = 0; i < 64; i++) {
		uint32_t t1 = h + (ROR(e, 6) ^ ROR(e, 11) ^ ROR(e, 25)) + ((e & f) ^ (~e & g)) + K256[i] + w[i];
		uint32_t t2 = (ROR(a, 2) ^ ROR(a, 13) ^ ROR(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
		h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2;
	}
	s->h[0] += a; s->h[1] += b; s->h[2] += c; s->h[3] += d;
	s->h[4] += e; s->h[5] += f; s->h[6] += g; s->h[7] += h;
}

static void sha256_update(struct sha256 *s, const void *data, size_t len)
{
	const uint8_t *p = data;
	s->len += len;
	if (s->n) {
		size_t take = 64 - s->n < len ? 64 - s->n : len;
		memcpy(s->buf + s->n, p, take);
		s->n += take; p += take; len -= take;
		if (s->n < 64)
			return;
		sha256_block(s, s->buf);
		s->n = 0;
	}
	for (; len >= 64; p += 64, len -= 64)
		sha256_block(s, p);
	memcpy(s->buf, p, len);
	s->n = len;
}

static void sha256_hex(struct sha256 *s, char out[65])
{
	uint64_t bits = s->len * 8;
	uint8_t pad = 0x80, zero = 0, lenb[8];
	sha256_update(s, &pad, 1);
	while (s->n != 56)
		sha256_update(s, &zero, 1);
	for (int i = 0; i < 8; i++)
		lenb[i] = (uint8_t)(bits >> (56 - 8 * i));
	sha256_update(s, lenb, 8);
	for (int i = 0; i < 8; i++)
		snprintf(out + 8 * i, 9, "%08x", s->h[i]);
}

/* ---- reproducible data: splitmix64, 8 little-endian bytes per step ---------------------- */

struct stream {
	uint64_t state;
	uint8_t buf[8];
	int pos; /* next unread byte of buf; 8 = empty */
};

static void stream_init(struct stream *st, uint64_t seed)
{
	st->state = seed;
	st->pos = 8;
}

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static void stream_fill(struct stream *st, uint8_t *out, size_t n)
{
	while (n && st->pos < 8) {
		*out++ = st->buf[st->pos++];
		n--;
	}
	for (; n >= 8; n -= 8, out += 8) {
		uint64_t v = splitmix64(&st->state);
		for (int i = 0; i < 8; i++)
			out[i] = (uint8_t)(v >> (8 * i));
	}
	if (n) {
		uint64_t v = splitmix64(&st->state);
		for (int i = 0; i < 8; i++)
			st->buf[i] = (uint8_t)(v >> (8 * i));
		st->pos = 0;
		while (n--)
			*out++ = st->buf[st->pos++];
	}
}

/* ---- sockets ------------------------------------------------------------------------------ */

static int wait_fd(int fd, short events, int timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = events };
	for (;;) {
		int r = poll(&p, 1, timeout_ms);
		if (r < 0 && errno == EINTR)
			continue;
		if (r == 0) {
			errno = ETIMEDOUT;
			return -1;
		}
		return r < 0 ? -1 : 0;
	}
}

static void set_nonblock(int fd, bool on)
{
	int fl = fcntl(fd, F_GETFL);
	fcntl(fd, F_SETFL, on ? fl | O_NONBLOCK : fl & ~O_NONBLOCK);
}

static int g_connect_timeout_s = 30; /* AF_VSOCK connect timeout (Linux default: 2 s) */

static int vsock_connect(unsigned cid, unsigned port)
{
	int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	struct timeval tv = { .tv_sec = g_connect_timeout_s };
	setsockopt(fd, AF_VSOCK, SO_VM_SOCKETS_CONNECT_TIMEOUT, &tv, sizeof(tv));
	struct sockaddr_vm a = { .svm_family = AF_VSOCK, .svm_cid = cid, .svm_port = port };
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

static int uds_connect_raw(const char *path)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(a.sun_path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	strcpy(a.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

/* Firecracker host→guest handshake: "CONNECT <port>\n" → "OK <hostport>\n". The answer is
 * read byte by byte so no payload is consumed. Returns the fd, or -1 with errno (ECONNRESET
 * when the VMM closed the socket: nobody listens on the guest port). */
static int uds_handshake(int fd, unsigned port, bool wait_ok, int timeout_ms)
{
	char line[40];
	int n = snprintf(line, sizeof(line), "CONNECT %u\n", port);
	if (write(fd, line, (size_t)n) != n)
		return -1;
	if (!wait_ok)
		return 0;
	size_t len = 0;
	for (;;) {
		if (wait_fd(fd, POLLIN, timeout_ms) < 0)
			return -1;
		char ch;
		ssize_t r = read(fd, &ch, 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			if (r == 0)
				errno = ECONNRESET;
			return -1;
		}
		if (ch == '\n')
			break;
		if (len + 1 >= sizeof(line)) {
			errno = EPROTO;
			return -1;
		}
		line[len++] = ch;
	}
	line[len] = '\0';
	if (strncmp(line, "OK ", 3) != 0) {
		errno = EPROTO;
		return -1;
	}
	return 0;
}

static int uds_open(const char *path, unsigned port, int timeout_ms)
{
	int fd = uds_connect_raw(path);
	if (fd < 0)
		return -1;
	if (uds_handshake(fd, port, true, timeout_ms) < 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

/* Until `retry_s` passes: a probe connection (opened and closed at once) succeeds. */
static int uds_wait_ready(const char *path, unsigned port, double retry_s, int *tries)
{
	double end = now() + retry_s;
	*tries = 0;
	for (;;) {
		++*tries;
		int fd = uds_open(path, port, 5000);
		if (fd >= 0) {
			close(fd);
			return 0;
		}
		if (now() >= end)
			return -1;
		usleep(100 * 1000);
	}
}

/* ---- echo clients with hash checks ------------------------------------------------------ */

enum client_kind { C_VSOCK, C_UDS };
enum abort_mode { A_NONE = -1, A_IMMEDIATE = 0, A_AFTER_SEND = 1, A_MID_ECHO = 2 };

struct job {
	/* in */
	enum client_kind kind;
	const char *path;
	unsigned cid, port;
	size_t bytes;
	uint64_t seed;
	int abort_mode;
	int timeout_ms;
	pthread_barrier_t *barrier;
	/* out */
	bool connected, ok;
	int err;
	const char *stage;
	size_t sent, recvd;
	double seconds, connect_s;
};

static int job_open(struct job *j)
{
	if (j->kind == C_VSOCK)
		return vsock_connect(j->cid, j->port);
	int fd = uds_connect_raw(j->path);
	if (fd < 0)
		return -1;
	if (uds_handshake(fd, j->port, j->abort_mode != A_IMMEDIATE, j->timeout_ms) < 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

static void abrupt_close(int fd)
{
	struct linger l = { .l_onoff = 1, .l_linger = 0 };
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
	close(fd);
}

/* Send `bytes` of the job's stream and read the echo concurrently; compare hashes. With an
 * abort mode, close abruptly part-way instead. */
static void job_transfer(struct job *j, int fd)
{
	struct sha256 hs, hr;
	struct stream st;
	uint8_t *wbuf = malloc(CHUNK), *rbuf = malloc(CHUNK);
	size_t woff = 0, wlen = 0;
	sha256_init(&hs);
	sha256_init(&hr);
	stream_init(&st, j->seed);
	size_t limit = j->abort_mode == A_NONE ? j->bytes : j->bytes / 2;
	set_nonblock(fd, true);
	j->stage = "transfer";
	while (j->abort_mode == A_NONE ? j->recvd < j->bytes : true) {
		if (j->abort_mode == A_AFTER_SEND && j->sent >= limit)
			break;
		if (j->abort_mode == A_MID_ECHO && j->recvd >= (j->bytes / 4 ? j->bytes / 4 : 1))
			break;
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (j->sent < limit)
			p.events |= POLLOUT;
		int r = poll(&p, 1, j->timeout_ms);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			j->err = r == 0 ? ETIMEDOUT : errno;
			goto out;
		}
		if ((p.revents & POLLOUT) && j->sent < limit) {
			if (woff == wlen) {
				wlen = limit - j->sent < CHUNK ? limit - j->sent : CHUNK;
				stream_fill(&st, wbuf, wlen);
				sha256_update(&hs, wbuf, wlen);
				woff = 0;
			}
			ssize_t n = send(fd, wbuf + woff, wlen - woff, MSG_NOSIGNAL);
			if (n < 0 && errno != EAGAIN && errno != EINTR) {
				j->err = errno;
				j->stage = "send";
				goto out;
			}
			if (n > 0) {
				woff += (size_t)n;
				j->sent += (size_t)n;
			}
		}
		if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
			size_t want = j->abort_mode == A_NONE && j->bytes - j->recvd < CHUNK ? j->bytes - j->recvd : CHUNK;
			ssize_t n = recv(fd, rbuf, want, 0);
			if (n == 0) {
				j->err = j->abort_mode == A_NONE ? EPIPE : 0;
				j->stage = "eof";
				goto out;
			}
			if (n < 0 && errno != EAGAIN && errno != EINTR) {
				j->err = errno;
				j->stage = "recv";
				goto out;
			}
			if (n > 0) {
				sha256_update(&hr, rbuf, (size_t)n);
				j->recvd += (size_t)n;
			}
		}
	}
	if (j->abort_mode == A_NONE) {
		char a[65], b[65];
		sha256_hex(&hs, a);
		sha256_hex(&hr, b);
		j->ok = j->recvd == j->bytes && strcmp(a, b) == 0;
		j->stage = j->ok ? "done" : "hash-mismatch";
	} else {
		j->ok = true;
		j->stage = "aborted";
	}
out:
	free(wbuf);
	free(rbuf);
}

static void *job_thread(void *arg)
{
	struct job *j = arg;
	double t0 = now();
	j->stage = "connect";
	int fd = job_open(j);
	j->connect_s = now() - t0;
	if (fd < 0)
		j->err = errno;
	else
		j->connected = true;
	if (j->barrier)
		pthread_barrier_wait(j->barrier);
	if (fd >= 0) {
		if (j->abort_mode == A_IMMEDIATE) {
			j->ok = true;
			j->stage = "aborted";
		} else {
			job_transfer(j, fd);
		}
		if (j->abort_mode == A_NONE)
			close(fd);
		else
			abrupt_close(fd);
	}
	j->seconds = now() - t0;
	return NULL;
}

/* Run n jobs concurrently (all connect, meet at a barrier, then transfer). */
static int run_jobs(struct job *tmpl, int n, bool abort, uint64_t seed)
{
	if (n < 1 || n > MAX_CONNS)
		die_usage("N must be 1..1024");
	struct job *jobs = calloc((size_t)n, sizeof(*jobs));
	pthread_t *th = calloc((size_t)n, sizeof(*th));
	pthread_barrier_t bar;
	pthread_barrier_init(&bar, NULL, (unsigned)n);
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 256 * 1024);
	double t0 = now();
	for (int i = 0; i < n; i++) {
		jobs[i] = *tmpl;
		jobs[i].seed = seed * 1000003u + (uint64_t)i;
		jobs[i].abort_mode = abort ? i % 3 : A_NONE;
		jobs[i].barrier = abort ? NULL : &bar;
		if (pthread_create(&th[i], &attr, job_thread, &jobs[i]) != 0) {
			fprintf(stderr, "refvmm-tool: pthread_create failed\n");
			exit(1);
		}
	}
	int connected = 0, ok = 0, first_bad = -1;
	size_t total = 0;
	double max_connect = 0;
	for (int i = 0; i < n; i++) {
		pthread_join(th[i], NULL);
		if (jobs[i].connect_s > max_connect)
			max_connect = jobs[i].connect_s;
		connected += jobs[i].connected;
		ok += jobs[i].ok;
		total += jobs[i].recvd + jobs[i].sent;
		if (!jobs[i].ok && first_bad < 0)
			first_bad = i;
	}
	double secs = now() - t0;
	if (first_bad < 0) {
		result("ok=1 n=%d connected=%d good=%d bytes_each=%zu total_bytes=%zu seconds=%.3f "
		       "max_connect_s=%.3f", n, connected, ok, tmpl->bytes, total, secs, max_connect);
	} else {
		struct job *b = &jobs[first_bad];
		result("ok=0 n=%d connected=%d good=%d bytes_each=%zu total_bytes=%zu seconds=%.3f "
		       "max_connect_s=%.3f first_bad=%d stage=%s errno=%s sent=%zu recvd=%zu after_s=%.3f",
		       n, connected, ok, tmpl->bytes, total, secs, max_connect, first_bad, b->stage, ename(b->err),
		       b->sent, b->recvd, b->seconds);
	}
	pthread_barrier_destroy(&bar);
	pthread_attr_destroy(&attr);
	free(jobs);
	free(th);
	return first_bad < 0 ? 0 : 1;
}

/* ---- echo servers ------------------------------------------------------------------------ */

static volatile sig_atomic_t g_stop;
static atomic_int s_accepted, s_active, s_eof, s_err;
static atomic_ullong s_bytes;

static void on_stop(int sig)
{
	(void)sig;
	g_stop = 1;
}

static void *echo_thread(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char *buf = malloc(65536);
	for (;;) {
		ssize_t n = read(fd, buf, 65536);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			atomic_fetch_add(n == 0 ? &s_eof : &s_err, 1);
			break;
		}
		ssize_t off = 0;
		while (off < n) {
			ssize_t w = send(fd, buf + off, (size_t)(n - off), MSG_NOSIGNAL);
			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0)
				goto err;
			off += w;
		}
		atomic_fetch_add(&s_bytes, (unsigned long long)n);
	}
	goto out;
err:
	atomic_fetch_add(&s_err, 1);
out:
	atomic_fetch_sub(&s_active, 1);
	close(fd);
	free(buf);
	return NULL;
}

/* Accept and echo until SIGTERM/SIGINT or `max` connections done (0: no limit), then print
 * the counts. */
static int serve(int lfd, int max, const char *what)
{
	signal(SIGTERM, on_stop);
	signal(SIGINT, on_stop);
	result("ok=1 state=listening on=%s", what);
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 256 * 1024);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	while (!g_stop) {
		if (max && atomic_load(&s_accepted) >= max && atomic_load(&s_active) == 0)
			break;
		struct pollfd p = { .fd = lfd, .events = POLLIN };
		if (poll(&p, 1, 200) <= 0)
			continue;
		int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		atomic_fetch_add(&s_accepted, 1);
		atomic_fetch_add(&s_active, 1);
		pthread_t t;
		if (pthread_create(&t, &attr, echo_thread, (void *)(intptr_t)fd) != 0) {
			atomic_fetch_sub(&s_active, 1);
			atomic_fetch_add(&s_err, 1);
			close(fd);
		}
	}
	result("ok=1 state=stopped on=%s accepted=%d active=%d eof=%d errors=%d bytes=%llu", what,
	       atomic_load(&s_accepted), atomic_load(&s_active), atomic_load(&s_eof), atomic_load(&s_err),
	       (unsigned long long)atomic_load(&s_bytes));
	return 0;
}

static int vsock_listener(unsigned port)
{
	int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_vm a = { .svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_ANY, .svm_port = port };
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, 256) < 0) {
		result("ok=0 state=listen-failed port=%u errno=%s", port, ename(errno));
		exit(1);
	}
	return fd;
}

static int uds_listener(const char *path)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(a.sun_path))
		die_usage("socket path too long");
	strcpy(a.sun_path, path);
	unlink(path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, 256) < 0) {
		result("ok=0 state=listen-failed path=%s errno=%s", path, ename(errno));
		exit(1);
	}
	return fd;
}

/* ---- small socket commands ----------------------------------------------------------------- */

static void printable(char *s)
{
	for (; *s; s++)
		if (*s <= ' ' || *s > '~')
			*s = '_';
}

/* Accept one connection, read until EOF, print what arrived. */
static int cmd_vsock_wait(unsigned port)
{
	int lfd = vsock_listener(port);
	int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0) {
		result("ok=0 errno=%s", ename(errno));
		return 1;
	}
	char buf[512];
	size_t len = 0;
	for (;;) {
		ssize_t n = read(fd, buf + len, sizeof(buf) - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0 || (len += (size_t)n) == sizeof(buf) - 1)
			break;
	}
	buf[len] = '\0';
	printable(buf);
	result("ok=1 port=%u text=%s", port, buf);
	close(fd);
	close(lfd);
	return 0;
}

static int cmd_uds_send(const char *path, unsigned port, const char *text, double retry_s)
{
	double end = now() + retry_s;
	int tries = 0, fd;
	for (;;) {
		tries++;
		fd = uds_open(path, port, 5000);
		if (fd >= 0 || now() >= end)
			break;
		usleep(100 * 1000);
	}
	if (fd < 0) {
		result("ok=0 tries=%d errno=%s", tries, ename(errno));
		return 1;
	}
	size_t len = strlen(text);
	bool ok = send(fd, text, len, MSG_NOSIGNAL) == (ssize_t)len;
	int e = errno;
	close(fd);
	result("ok=%d tries=%d errno=%s", ok, tries, ok ? "0" : ename(e));
	return ok ? 0 : 1;
}

/* Guest: connecting to a host port nobody serves must fail promptly (reset/refused). */
static int cmd_vsock_refused(unsigned cid, unsigned port)
{
	double t0 = now();
	int fd = vsock_connect(cid, port);
	int e = errno;
	double secs = now() - t0;
	if (fd >= 0) {
		close(fd);
		result("ok=0 connected=1 seconds=%.3f", secs);
		return 1;
	}
	bool ok = e == ECONNRESET || e == ECONNREFUSED;
	result("ok=%d connected=0 errno=%s seconds=%.3f", ok, ename(e), secs);
	return ok ? 0 : 1;
}

/* Board: the virtio-console unix backend's client. Connects (retrying until the socket
 * exists), copies everything to OUT; once MARK has arrived sends LINE + "\n"; notes whether
 * EXPECT arrived after that; ends at EOF (VMM exit). */
static int cmd_uds_console(const char *path, const char *out, const char *mark, const char *line,
			   const char *expect, double retry_s)
{
	double end = now() + retry_s;
	int fd, tries = 0;
	for (;;) {
		tries++;
		fd = uds_connect_raw(path);
		if (fd >= 0 || now() >= end)
			break;
		usleep(20 * 1000);
	}
	if (fd < 0) {
		result("ok=0 stage=connect tries=%d errno=%s", tries, ename(errno));
		return 1;
	}
	FILE *f = fopen(out, "w");
	if (!f) {
		result("ok=0 stage=open-out errno=%s", ename(errno));
		return 1;
	}
	size_t cap = 1 << 20, len = 0, sent_at = 0;
	char *all = malloc(cap);
	bool sent = false, echoed = false;
	int err = 0;
	for (;;) {
		char buf[4096];
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			err = n < 0 ? errno : 0;
			break;
		}
		fwrite(buf, 1, (size_t)n, f);
		fflush(f);
		if (len + (size_t)n > cap) { /* keep the tail */
			size_t drop = len + (size_t)n - cap;
			memmove(all, all + drop, len - drop);
			len -= drop;
			sent_at = sent_at > drop ? sent_at - drop : 0;
		}
		memcpy(all + len, buf, (size_t)n);
		len += (size_t)n;
		if (!sent && memmem(all, len, mark, strlen(mark))) {
			char l[512];
			int m = snprintf(l, sizeof(l), "%s\n", line);
			if (send(fd, l, (size_t)m, MSG_NOSIGNAL) != m) {
				err = errno;
				break;
			}
			sent = true;
			sent_at = len;
		}
		if (sent && !echoed && memmem(all + sent_at, len - sent_at, expect, strlen(expect)))
			echoed = true;
	}
	fclose(f);
	free(all);
	close(fd);
	result("ok=%d connected=1 tries=%d sent=%d echoed=%d errno=%s", sent && echoed, tries, sent, echoed,
	       ename(err));
	return sent && echoed ? 0 : 1;
}

/* ---- block and file commands -------------------------------------------------------------- */

static int open_maybe_direct(const char *path, int flags, bool *direct)
{
	int fd = open(path, flags | O_DIRECT | O_CLOEXEC, 0644);
	*direct = fd >= 0;
	if (fd < 0 && errno == EINVAL)
		fd = open(path, flags | O_CLOEXEC, 0644);
	return fd;
}

static void *aligned_buf(size_t n)
{
	void *p = NULL;
	if (posix_memalign(&p, 4096, n) != 0) {
		fprintf(stderr, "refvmm-tool: out of memory\n");
		exit(1);
	}
	return p;
}

static int cmd_blk_ioctl(const char *dev, uint64_t off, uint64_t len, unsigned long req)
{
	int fd = open(dev, O_WRONLY | O_CLOEXEC);
	if (fd < 0) {
		result("ok=0 dev=%s stage=open errno=%s", dev, ename(errno));
		return 1;
	}
	uint64_t range[2] = { off, len };
	int r = ioctl(fd, req, range);
	int e = errno;
	close(fd);
	result("ok=%d dev=%s offset=%" PRIu64 " len=%" PRIu64 " errno=%s", r == 0, dev, off, len,
	       r == 0 ? "0" : ename(e));
	return r == 0 ? 0 : 1;
}

static int cmd_pattern_write(const char *path, uint64_t off, uint64_t len, uint64_t seed)
{
	bool direct;
	int fd = open_maybe_direct(path, O_WRONLY | O_CREAT, &direct);
	if (fd < 0) {
		result("ok=0 file=%s stage=open errno=%s", path, ename(errno));
		return 1;
	}
	uint8_t *buf = aligned_buf(1 << 20);
	struct stream st;
	struct sha256 h;
	stream_init(&st, seed);
	sha256_init(&h);
	uint64_t done = 0;
	int e = 0;
	while (done < len) {
		size_t n = len - done < (1 << 20) ? (size_t)(len - done) : (1 << 20);
		stream_fill(&st, buf, n);
		sha256_update(&h, buf, n);
		ssize_t w = pwrite(fd, buf, n, (off_t)(off + done));
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			e = w < 0 ? errno : EIO;
			break;
		}
		done += (uint64_t)w;
		if ((size_t)w != n) { /* short write: continue with a fresh stream position */
			e = EIO;
			break;
		}
	}
	if (!e && fsync(fd) < 0)
		e = errno;
	close(fd);
	char hex[65];
	sha256_hex(&h, hex);
	result("ok=%d file=%s offset=%" PRIu64 " len=%" PRIu64 " written=%" PRIu64 " direct=%d sha256=%s errno=%s",
	       !e, path, off, len, done, direct, hex, ename(e));
	free(buf);
	return e ? 1 : 0;
}

/* check: "pattern" (seeded stream) or "zero" */
static int cmd_check(const char *path, uint64_t off, uint64_t len, bool zero, uint64_t seed)
{
	bool direct;
	int fd = open_maybe_direct(path, O_RDONLY, &direct);
	if (fd < 0) {
		result("ok=0 file=%s stage=open errno=%s", path, ename(errno));
		return 1;
	}
	size_t bs = 1 << 20;
	uint8_t *buf = aligned_buf(bs), *want = malloc(bs);
	struct stream st;
	struct sha256 h;
	stream_init(&st, seed);
	sha256_init(&h);
	uint64_t done = 0, bad = UINT64_MAX;
	int e = 0;
	if (zero)
		memset(want, 0, bs);
	while (done < len) {
		size_t n = len - done < bs ? (size_t)(len - done) : bs;
		ssize_t r = pread(fd, buf, n, (off_t)(off + done));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			e = r < 0 ? errno : ENODATA;
			break;
		}
		if (!zero)
			stream_fill(&st, want, (size_t)r);
		sha256_update(&h, buf, (size_t)r);
		if (bad == UINT64_MAX && memcmp(buf, want, (size_t)r) != 0) {
			for (size_t i = 0; i < (size_t)r; i++)
				if (buf[i] != want[i]) {
					bad = off + done + i;
					break;
				}
		}
		done += (uint64_t)r;
	}
	close(fd);
	char hex[65];
	sha256_hex(&h, hex);
	bool ok = !e && bad == UINT64_MAX && done == len;
	if (bad == UINT64_MAX)
		result("ok=%d file=%s offset=%" PRIu64 " len=%" PRIu64 " read=%" PRIu64 " direct=%d sha256=%s errno=%s",
		       ok, path, off, len, done, direct, hex, ename(e));
	else
		result("ok=0 file=%s offset=%" PRIu64 " len=%" PRIu64 " read=%" PRIu64 " direct=%d first_mismatch=%" PRIu64
		       " sha256=%s errno=%s", path, off, len, done, direct, bad, hex, ename(e));
	free(buf);
	free(want);
	return ok ? 0 : 1;
}

static int cmd_sha256(const char *path, uint64_t off, uint64_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		result("ok=0 file=%s errno=%s", path, ename(errno));
		return 1;
	}
	uint8_t *buf = malloc(1 << 20);
	struct sha256 h;
	sha256_init(&h);
	uint64_t done = 0;
	int e = 0;
	while (len == 0 || done < len) {
		size_t n = (1 << 20);
		if (len && len - done < n)
			n = (size_t)(len - done);
		ssize_t r = pread(fd, buf, n, (off_t)(off + done));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			e = errno;
		if (r <= 0)
			break;
		sha256_update(&h, buf, (size_t)r);
		done += (uint64_t)r;
	}
	close(fd);
	char hex[65];
	sha256_hex(&h, hex);
	bool ok = !e && (len == 0 || done == len);
	result("ok=%d file=%s offset=%" PRIu64 " read=%" PRIu64 " sha256=%s errno=%s", ok, path, off, done, hex,
	       ename(e));
	free(buf);
	return ok ? 0 : 1;
}

/* Sequential throughput: O_DIRECT when the file allows it (else buffered; writes end with
 * fsync, included in the time). */
static int cmd_bench(const char *mode, const char *path, uint64_t size, uint64_t bs)
{
	bool wr = strcmp(mode, "write") == 0;
	if (!wr && strcmp(mode, "read") != 0)
		die_usage("bench read|write");
	if (bs == 0 || bs > (64u << 20) || size % bs)
		die_usage("bench: SIZE must be a multiple of BS (BS <= 64M)");
	bool direct;
	int fd = open_maybe_direct(path, wr ? O_WRONLY | O_CREAT : O_RDONLY, &direct);
	if (fd < 0) {
		result("ok=0 mode=%s file=%s stage=open errno=%s", mode, path, ename(errno));
		return 1;
	}
	uint8_t *buf = aligned_buf((size_t)bs);
	struct stream st;
	stream_init(&st, 42);
	stream_fill(&st, buf, (size_t)bs);
	uint64_t done = 0;
	int e = 0;
	double t0 = now();
	while (done < size) {
		ssize_t n = wr ? pwrite(fd, buf, (size_t)bs, (off_t)done) : pread(fd, buf, (size_t)bs, (off_t)done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			e = n < 0 ? errno : ENODATA;
			break;
		}
		done += (uint64_t)n;
	}
	if (wr && !e && fsync(fd) < 0)
		e = errno;
	double secs = now() - t0;
	close(fd);
	free(buf);
	double mbps = secs > 0 ? (double)done / 1e6 / secs : 0;
	result("ok=%d mode=%s file=%s bytes=%" PRIu64 " bs=%" PRIu64 " direct=%d seconds=%.4f mbps=%.2f errno=%s",
	       !e && done == size, mode, path, done, bs, direct, secs, mbps, ename(e));
	return !e && done == size ? 0 : 1;
}

/* ---- main ---------------------------------------------------------------------------------- */

static const char usage[] =
	"usage: refvmm-tool COMMAND ARGS [--timeout S] [--retry S] [--seed N] [--connect-timeout S]\n"
	"guest (AF_VSOCK):\n"
	"  vsock-listen PORT [MAX]          echo server (thread per connection); SIGTERM or MAX\n"
	"                                   connections done end it with a summary line\n"
	"  vsock-connect CID PORT N BYTES   N concurrent connections, each sends BYTES and checks\n"
	"                                   the echo by sha256\n"
	"  vsock-abort CID PORT N BYTES     N connections closed abruptly mid-transfer\n"
	"  vsock-refused CID PORT           connect must fail with ECONNRESET/ECONNREFUSED\n"
	"  (AF_VSOCK connects wait --connect-timeout S, default 30; Linux's own default is 2)\n"
	"  vsock-wait PORT                  accept one connection, print what it sends\n"
	"board (unix sockets, Firecracker protocol: CONNECT <port>\\n -> OK <hostport>\\n):\n"
	"  uds-echo-server PATH [MAX]       echo server on a unix socket (guest->host: PATH_PORT)\n"
	"  uds-connect PATH PORT N BYTES    like vsock-connect through the VMM's socket; --retry S\n"
	"                                   first waits until the guest port answers\n"
	"  uds-abort PATH PORT N BYTES      like vsock-abort\n"
	"  uds-send PATH PORT TEXT          one connection sending TEXT (--retry S)\n"
	"  uds-console PATH OUT MARK LINE EXPECT\n"
	"                                   virtio-console unix client: log to OUT, send LINE after\n"
	"                                   MARK, expect EXPECT afterwards; ends at EOF (--retry S)\n"
	"block devices and files:\n"
	"  zeroout DEV OFFSET LEN           BLKZEROOUT (virtio-blk WRITE_ZEROES)\n"
	"  discard DEV OFFSET LEN           BLKDISCARD (virtio-blk DISCARD)\n"
	"  pattern-write FILE OFFSET LEN    write the --seed stream (O_DIRECT if possible), fsync\n"
	"  pattern-check FILE OFFSET LEN    compare with the --seed stream\n"
	"  zero-check FILE OFFSET LEN       all bytes zero?\n"
	"  sha256 FILE [OFFSET LEN]\n"
	"  bench read|write FILE SIZE BS    sequential throughput (O_DIRECT if possible)\n"
	"numbers take K/M/G suffixes; every verdict is a 'REFVMM-RESULT op=... ok=0|1 ...' line\n";

int main(int argc, char **argv)
{
	double timeout = 120, retry = 0;
	uint64_t seed = 1;
	char *pos[16];
	int np = 0;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--timeout") && i + 1 < argc)
			timeout = atof(argv[++i]);
		else if (!strcmp(argv[i], "--retry") && i + 1 < argc)
			retry = atof(argv[++i]);
		else if (!strcmp(argv[i], "--connect-timeout") && i + 1 < argc)
			g_connect_timeout_s = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--seed") && i + 1 < argc)
			seed = parse_size(argv[++i]);
		else if (!strcmp(argv[i], "help") || !strcmp(argv[i], "--help")) {
			fputs(usage, stdout);
			return 0;
		} else if (np < 16)
			pos[np++] = argv[i];
		else
			die_usage("too many arguments");
	}
	if (np < 1) {
		fputs(usage, stderr);
		return 2;
	}
	const char *cmd = pos[0];
	g_op = cmd;
	snprintf(g_timeout_line, sizeof(g_timeout_line), "REFVMM-RESULT op=%s ok=0 error=timeout seconds=%.0f\n", cmd,
		 timeout);
	signal(SIGALRM, on_alarm);
	signal(SIGPIPE, SIG_IGN);
	if (timeout > 0)
		alarm((unsigned)(timeout + retry + 0.999));
	setvbuf(stdout, NULL, _IOLBF, 0);
#define NEED(k) do { if (np != (k) + 1) die_usage("wrong number of arguments"); } while (0)
	int tmo_ms = (int)(timeout * 1000);
	struct job t = { .timeout_ms = tmo_ms > 0 ? tmo_ms : 120000 };

	if (!strcmp(cmd, "vsock-listen")) {
		if (np != 2 && np != 3)
			die_usage("vsock-listen PORT [MAX]");
		alarm(0);
		char what[32];
		snprintf(what, sizeof(what), "vsock:%s", pos[1]);
		return serve(vsock_listener((unsigned)parse_size(pos[1])), np == 3 ? (int)parse_size(pos[2]) : 0, what);
	}
	if (!strcmp(cmd, "uds-echo-server")) {
		if (np != 2 && np != 3)
			die_usage("uds-echo-server PATH [MAX]");
		alarm(0);
		return serve(uds_listener(pos[1]), np == 3 ? (int)parse_size(pos[2]) : 0, pos[1]);
	}
	if (!strcmp(cmd, "vsock-connect") || !strcmp(cmd, "vsock-abort")) {
		NEED(4);
		t.kind = C_VSOCK;
		t.cid = (unsigned)parse_size(pos[1]);
		t.port = (unsigned)parse_size(pos[2]);
		t.bytes = (size_t)parse_size(pos[4]);
		return run_jobs(&t, (int)parse_size(pos[3]), !strcmp(cmd, "vsock-abort"), seed);
	}
	if (!strcmp(cmd, "uds-connect") || !strcmp(cmd, "uds-abort")) {
		NEED(4);
		t.kind = C_UDS;
		t.path = pos[1];
		t.port = (unsigned)parse_size(pos[2]);
		t.bytes = (size_t)parse_size(pos[4]);
		if (retry > 0) {
			int tries;
			if (uds_wait_ready(t.path, t.port, retry, &tries) < 0) {
				result("ok=0 stage=wait-ready tries=%d errno=%s", tries, ename(errno));
				return 1;
			}
		}
		return run_jobs(&t, (int)parse_size(pos[3]), !strcmp(cmd, "uds-abort"), seed);
	}
	if (!strcmp(cmd, "vsock-refused")) {
		NEED(2);
		return cmd_vsock_refused((unsigned)parse_size(pos[1]), (unsigned)parse_size(pos[2]));
	}
	if (!strcmp(cmd, "vsock-wait")) {
		NEED(1);
		return cmd_vsock_wait((unsigned)parse_size(pos[1]));
	}
	if (!strcmp(cmd, "uds-send")) {
		NEED(3);
		return cmd_uds_send(pos[1], (unsigned)parse_size(pos[2]), pos[3], retry);
	}
	if (!strcmp(cmd, "uds-console")) {
		NEED(5);
		return cmd_uds_console(pos[1], pos[2], pos[3], pos[4], pos[5], retry);
	}
	if (!strcmp(cmd, "zeroout") || !strcmp(cmd, "discard")) {
		NEED(3);
		return cmd_blk_ioctl(pos[1], parse_size(pos[2]), parse_size(pos[3]),
				     !strcmp(cmd, "zeroout") ? BLKZEROOUT : BLKDISCARD);
	}
	if (!strcmp(cmd, "pattern-write")) {
		NEED(3);
		return cmd_pattern_write(pos[1], parse_size(pos[2]), parse_size(pos[3]), seed);
	}
	if (!strcmp(cmd, "pattern-check") || !strcmp(cmd, "zero-check")) {
		NEED(3);
		return cmd_check(pos[1], parse_size(pos[2]), parse_size(pos[3]), !strcmp(cmd, "zero-check"), seed);
	}
	if (!strcmp(cmd, "sha256")) {
		if (np != 2 && np != 4)
			die_usage("sha256 FILE [OFFSET LEN]");
		return cmd_sha256(pos[1], np == 4 ? parse_size(pos[2]) : 0, np == 4 ? parse_size(pos[3]) : 0);
	}
	if (!strcmp(cmd, "bench")) {
		NEED(4);
		return cmd_bench(pos[1], pos[2], parse_size(pos[3]), parse_size(pos[4]));
	}
	fprintf(stderr, "refvmm-tool: unknown command '%s'\n%s", cmd, usage);
	return 2;
}
