/*
 * fanout.c: the machine's floor for the fixed-rate rows, without Go.
 *
 * `holocron-bench baseline` measures a bare Go WebSocket fan-out server;
 * this program takes Go, WebSocket framing and HTTP away too, so that what
 * it still shows belongs to the machine (kernel, loopback, hypervisor). It
 * forks a single-threaded epoll server that writes every 64-byte message it
 * reads to all N connections (TCP_NODELAY), and drives it from the parent:
 * N connections, a fixed total rate spread over them, latency counted from
 * each message's scheduled send time to the arrival of its own copy, after
 * a 2 s warm-up. No dependencies beyond libc.
 *
 *   cc -O2 -o bench/out/fanout-c bench/baseline/fanout.c
 *   bench/out/fanout-c RATE SECONDS [N]      (e.g. 5000 10 10)
 *
 * Prints p50/p90/p99/p99.9/max of send→echo in ms, then the slowest echo
 * of every 100 ms that exceeded 5 ms as (index, ms) — the same shape as
 * holocron-bench's slowestEchoPer100ms.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MSG 64
#define MAXN 256
#define WARMUP_NS 2000000000LL

static int64_t now_ns(void) {
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000000000LL + t.tv_nsec;
}

static void nodelay(int fd) {
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

static void die(const char *what) {
	perror(what);
	exit(1);
}

/* watch_all returns an epoll instance reporting each of the n connections
 * readable, with its index as the event's data. */
static int watch_all(const int *c, int n) {
	int ep = epoll_create1(0);
	if (ep < 0)
		die("epoll_create1");
	for (int i = 0; i < n; i++) {
		struct epoll_event e = {.events = EPOLLIN, .data.u32 = i};
		if (epoll_ctl(ep, EPOLL_CTL_ADD, c[i], &e))
			die("epoll_ctl");
	}
	return ep;
}

/* write_all writes the whole message (loopback writes of 64 bytes do not
 * split in practice, but a short write must not corrupt the stream). */
static void write_all(int fd, const char *p, int n) {
	while (n > 0) {
		int w = write(fd, p, n);
		if (w <= 0)
			die("write");
		p += w;
		n -= w;
	}
}

static void serve(int ls, int n) {
	int c[MAXN];
	for (int i = 0; i < n; i++) {
		c[i] = accept(ls, 0, 0);
		if (c[i] < 0)
			die("accept");
		nodelay(c[i]);
	}
	int ep = watch_all(c, n);
	static char buf[MAXN][MSG * 64];
	int have[MAXN] = {0};
	for (;;) {
		struct epoll_event ev[MAXN];
		int k = epoll_wait(ep, ev, n, -1);
		for (int j = 0; j < k; j++) {
			int i = ev[j].data.u32;
			int r = read(c[i], buf[i] + have[i], sizeof buf[i] - have[i]);
			if (r <= 0)
				exit(0);
			have[i] += r;
			int off = 0;
			for (; have[i] - off >= MSG; off += MSG)
				for (int q = 0; q < n; q++)
					write_all(c[q], buf[i] + off, MSG);
			memmove(buf[i], buf[i] + off, have[i] - off);
			have[i] -= off;
		}
	}
}

static int cmp64(const void *a, const void *b) {
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
	if (argc < 3) {
		fprintf(stderr, "usage: %s RATE SECONDS [N]\n", argv[0]);
		return 2;
	}
	double rate = atof(argv[1]), secs = atof(argv[2]);
	int n = argc > 3 ? atoi(argv[3]) : 10;
	if (rate <= 0 || secs <= 0 || n < 1 || n > MAXN) {
		fprintf(stderr, "RATE and SECONDS must be positive, N 1..%d\n", MAXN);
		return 2;
	}
	int ls = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	if (bind(ls, (void *)&a, sizeof a) || listen(ls, MAXN))
		die("listen");
	socklen_t alen = sizeof a;
	getsockname(ls, (void *)&a, &alen);
	pid_t srv = fork();
	if (srv == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		serve(ls, n);
		return 0;
	}
	close(ls);
	int c[MAXN];
	for (int i = 0; i < n; i++) {
		c[i] = socket(AF_INET, SOCK_STREAM, 0);
		if (connect(c[i], (void *)&a, sizeof a))
			die("connect");
		nodelay(c[i]);
	}
	int ep = watch_all(c, n);
	int64_t interval = (int64_t)(1e9 / rate);
	int64_t load = now_ns() + 100000000LL, next = load;
	int64_t start = load + WARMUP_NS, end = start + (int64_t)(secs * 1e9);
	int nb = (int)(secs * 10) + 1;
	int64_t *slow = calloc(nb, sizeof *slow);
	int64_t *lats = malloc(sizeof *lats * (size_t)(rate * secs + 1000));
	long nl = 0, sent = 0;
	static char buf[MAXN][MSG * 256];
	int have[MAXN] = {0};
	for (;;) {
		int64_t t = now_ns();
		for (; t >= next && next < end; next += interval, sent++) {
			char m[MSG] = {0};
			int who = sent % n;
			memcpy(m, &next, 8);
			memcpy(m + 8, &who, 4);
			write_all(c[who], m, MSG);
		}
		if (t > end + 500000000LL)
			break;
		int wait_ms = next < end ? (int)((next - t) / 1000000) : 50;
		struct epoll_event ev[MAXN];
		int k = epoll_wait(ep, ev, n, wait_ms < 0 ? 0 : wait_ms);
		int64_t tn = now_ns();
		for (int j = 0; j < k; j++) {
			int i = ev[j].data.u32;
			int r = read(c[i], buf[i] + have[i], sizeof buf[i] - have[i]);
			if (r <= 0)
				die("read");
			have[i] += r;
			int off = 0;
			for (; have[i] - off >= MSG; off += MSG) {
				int64_t s;
				int who;
				memcpy(&s, buf[i] + off, 8);
				memcpy(&who, buf[i] + off + 8, 4);
				if (who != i || s < start || s >= end)
					continue;
				int64_t l = tn - s;
				lats[nl++] = l;
				int b = (int)((s - start) / 100000000LL);
				if (b < nb && l > slow[b])
					slow[b] = l;
			}
			memmove(buf[i], buf[i] + off, have[i] - off);
			have[i] -= off;
		}
	}
	kill(srv, SIGKILL);
	waitpid(srv, 0, 0);
	if (nl == 0) {
		fprintf(stderr, "no echoes\n");
		return 1;
	}
	qsort(lats, nl, sizeof *lats, cmp64);
	printf("fanout-c rate %.0f/s, %d connections, %.0f s: %ld echoes (%.0f/s), %.0f deliveries/s\n",
	       rate, n, secs, nl, nl / secs, nl * n / secs);
	printf("send_to_echo p50 %.2f  p90 %.2f  p99 %.2f  p99.9 %.2f  max %.2f ms\n",
	       lats[nl / 2] / 1e6, lats[nl * 9 / 10] / 1e6, lats[nl * 99 / 100] / 1e6,
	       lats[nl * 999 / 1000] / 1e6, lats[nl - 1] / 1e6);
	printf("slowest per 100 ms over 5 ms (index ms):");
	for (int b = 0; b < nb; b++)
		if (slow[b] > 5000000)
			printf(" (%d %.1f)", b, slow[b] / 1e6);
	printf("\n");
	return 0;
}
