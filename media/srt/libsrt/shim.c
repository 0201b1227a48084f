#include <string.h>
#include <pthread.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <syslog.h>
#include <srt/srt.h>
#include <srt/logging_api.h>
#include "shim.h"
#include "_cgo_export.h"

static int lasterr(void) {
	int e = srt_getlasterror(NULL);
	return e > 0 ? -e : -1;
}

// The socket whose listen callback accepted last on this thread (libsrt's
// receive thread of one UDP port). When libsrt then rejects that
// handshake itself (wrong passphrase, encryption mismatch), it logs
// "rsp(REJECT)" on the same thread, before any other handshake of that
// port is processed: the log handler hands the socket to Go so the
// rejection is reported with the stream it was for.
static __thread SRTSOCKET last_ns = SRT_INVALID_SOCK;

static int listen_hook(void* opaq, SRTSOCKET ns, int hsversion, const struct sockaddr* peer, const char* streamid) {
	unsigned char ip[16];
	int port = 0, fam = 0;
	memset(ip, 0, sizeof ip);
	if (peer != NULL && peer->sa_family == AF_INET) {
		const struct sockaddr_in* a = (const struct sockaddr_in*)peer;
		memcpy(ip, &a->sin_addr, 4);
		port = ntohs(a->sin_port);
		fam = 4;
	} else if (peer != NULL && peer->sa_family == AF_INET6) {
		const struct sockaddr_in6* a = (const struct sockaddr_in6*)peer;
		memcpy(ip, &a->sin6_addr, 16);
		port = ntohs(a->sin6_port);
		fam = 6;
	}
	int code = goListenHook((uintptr_t)opaq, ns, hsversion, fam, ip, port, (char*)(streamid ? streamid : ""));
	if (code != 0) {
		last_ns = SRT_INVALID_SOCK;
		srt_setrejectreason(ns, code);
		return -1;
	}
	last_ns = ns;
	return 0;
}

static void log_handler(void* opaq, int level, const char* file, int line, const char* area, const char* message) {
	SRTSOCKET ns = SRT_INVALID_SOCK;
	if (strstr(message, "rsp(REJECT)") != NULL) {
		ns = last_ns;
		last_ns = SRT_INVALID_SOCK;
	}
	goLog(level, (char*)message, ns);
}

int rm_startup(void) {
	srt_setloghandler(NULL, log_handler);
	srt_setlogflags(SRT_LOGF_DISABLE_TIME | SRT_LOGF_DISABLE_THREADNAME | SRT_LOGF_DISABLE_SEVERITY | SRT_LOGF_DISABLE_EOL);
	srt_setloglevel(LOG_WARNING);
	if (srt_startup() < 0)
		return lasterr();
	return 0;
}

int rm_socket(void) {
	SRTSOCKET s = srt_create_socket();
	if (s == SRT_INVALID_SOCK)
		return lasterr();
	return s;
}

int rm_setint(SRTSOCKET s, int opt, int v) {
	if (srt_setsockflag(s, (SRT_SOCKOPT)opt, &v, sizeof v) < 0)
		return lasterr();
	return 0;
}

int rm_setint64(SRTSOCKET s, int opt, int64_t v) {
	if (srt_setsockflag(s, (SRT_SOCKOPT)opt, &v, sizeof v) < 0)
		return lasterr();
	return 0;
}

int rm_setstr(SRTSOCKET s, int opt, const char* v, int len) {
	if (srt_setsockflag(s, (SRT_SOCKOPT)opt, v, len) < 0)
		return lasterr();
	return 0;
}

int rm_getint(SRTSOCKET s, int opt, int* v) {
	int len = sizeof *v;
	if (srt_getsockflag(s, (SRT_SOCKOPT)opt, v, &len) < 0)
		return lasterr();
	return 0;
}

static socklen_t fill(struct sockaddr_storage* ss, int family, const unsigned char* ip, int port) {
	memset(ss, 0, sizeof *ss);
	if (family == 4) {
		struct sockaddr_in* a = (struct sockaddr_in*)ss;
		a->sin_family = AF_INET;
		a->sin_port = htons(port);
		memcpy(&a->sin_addr, ip, 4);
		return sizeof *a;
	}
	struct sockaddr_in6* a = (struct sockaddr_in6*)ss;
	a->sin6_family = AF_INET6;
	a->sin6_port = htons(port);
	memcpy(&a->sin6_addr, ip, 16);
	return sizeof *a;
}

static int unfill(const struct sockaddr_storage* ss, unsigned char* ip, int* port) {
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in* a = (const struct sockaddr_in*)ss;
		memcpy(ip, &a->sin_addr, 4);
		*port = ntohs(a->sin_port);
		return 4;
	}
	const struct sockaddr_in6* a = (const struct sockaddr_in6*)ss;
	memcpy(ip, &a->sin6_addr, 16);
	*port = ntohs(a->sin6_port);
	return 6;
}

int rm_bind_acquire(SRTSOCKET s, int udpfd) {
	if (srt_bind_acquire(s, udpfd) < 0)
		return lasterr();
	return 0;
}

int rm_listen(SRTSOCKET s, int backlog) {
	if (srt_listen(s, backlog) < 0)
		return lasterr();
	return 0;
}

int rm_connect(SRTSOCKET s, int family, const unsigned char* ip, int port) {
	struct sockaddr_storage ss;
	socklen_t n = fill(&ss, family, ip, port);
	if (srt_connect(s, (struct sockaddr*)&ss, n) < 0)
		return lasterr();
	return 0;
}

int rm_sockname(SRTSOCKET s, unsigned char* ip, int* port) {
	struct sockaddr_storage ss;
	int n = sizeof ss;
	if (srt_getsockname(s, (struct sockaddr*)&ss, &n) < 0)
		return lasterr();
	return unfill(&ss, ip, port);
}

int rm_peername(SRTSOCKET s, unsigned char* ip, int* port) {
	struct sockaddr_storage ss;
	int n = sizeof ss;
	if (srt_getpeername(s, (struct sockaddr*)&ss, &n) < 0)
		return lasterr();
	return unfill(&ss, ip, port);
}

int rm_accept(SRTSOCKET lsn) {
	struct sockaddr_storage ss;
	int n = sizeof ss;
	SRTSOCKET s = srt_accept(lsn, (struct sockaddr*)&ss, &n);
	if (s == SRT_INVALID_SOCK)
		return lasterr();
	return s;
}

int rm_recv(SRTSOCKET s, char* buf, int len) {
	int n = srt_recvmsg(s, buf, len);
	if (n < 0)
		return lasterr();
	return n;
}

int rm_send(SRTSOCKET s, const char* buf, int len) {
	int n = srt_sendmsg(s, buf, len, -1, 0);
	if (n < 0)
		return lasterr();
	return n;
}

int rm_listen_callback(SRTSOCKET lsn, uintptr_t handle) {
	if (srt_listen_callback(lsn, listen_hook, (void*)handle) < 0)
		return lasterr();
	return 0;
}

int rm_epoll_add(int eid, SRTSOCKET s, int events) {
	if (srt_epoll_add_usock(eid, s, &events) < 0)
		return lasterr();
	return 0;
}

int rm_sndbuffer(SRTSOCKET s) {
	size_t blocks = 0, bytes = 0;
	if (srt_getsndbuffer(s, &blocks, &bytes) < 0)
		return lasterr();
	return (int)blocks;
}

int rm_stats(SRTSOCKET s, SRT_TRACEBSTATS* st) {
	if (srt_bistats(s, st, 0, 1) < 0)
		return lasterr();
	return 0;
}

int rm_getstr(SRTSOCKET s, int opt, char* buf, int len) {
	int n = len;
	if (srt_getsockflag(s, (SRT_SOCKOPT)opt, buf, &n) < 0)
		return lasterr();
	return n;
}

// ---------------------------------------------------------------------
// The event thread: the one OS thread that waits in srt_epoll_uwait. It
// queues the events it gets for Go and, when the queue was empty, makes
// an eventfd readable, which Go's netpoller waits on: no goroutine (and
// so no Go P) sits in a long cgo call, so the Go runtime's monitor
// (sysmon) can sleep while nothing happens instead of waking every few
// tens of microseconds to retake a P from a "system call".

#define RM_EVQ 1024

static int evq_eid = -1, evq_fd = -1;
static pthread_mutex_t evq_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t evq_room = PTHREAD_COND_INITIALIZER;
static SRT_EPOLL_EVENT evq[RM_EVQ];
static int evq_n;

static void* event_thread(void* arg) {
	(void)arg;
	SRT_EPOLL_EVENT got[256];
	for (;;) {
		int k = srt_epoll_uwait(evq_eid, got, 256, 1000);
		if (k <= 0) {
			if (k < 0)
				usleep(10000); // not expected; do not spin
			continue;
		}
		pthread_mutex_lock(&evq_mu);
		while (evq_n + k > RM_EVQ) // Go is behind: wait for it
			pthread_cond_wait(&evq_room, &evq_mu);
		int was = evq_n;
		memcpy(&evq[evq_n], got, (size_t)k * sizeof got[0]);
		evq_n += k;
		pthread_mutex_unlock(&evq_mu);
		if (was == 0) {
			uint64_t one = 1;
			ssize_t w = write(evq_fd, &one, sizeof one);
			(void)w; // EAGAIN only when the counter is full: Go is woken anyway
		}
	}
	return NULL;
}

int rm_events_start(int eid) {
	evq_eid = eid;
	evq_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (evq_fd < 0)
		return -1;
	pthread_t t;
	if (pthread_create(&t, NULL, event_thread, NULL) != 0)
		return -1;
	pthread_detach(t);
	return evq_fd;
}

int rm_events_take(SRT_EPOLL_EVENT* out, int cap) {
	pthread_mutex_lock(&evq_mu);
	int n = evq_n < cap ? evq_n : cap;
	memcpy(out, evq, (size_t)n * sizeof evq[0]);
	memmove(evq, &evq[n], (size_t)(evq_n - n) * sizeof evq[0]);
	evq_n -= n;
	pthread_cond_signal(&evq_room);
	pthread_mutex_unlock(&evq_mu);
	return n;
}
