// Small C helpers for the Go binding: each returns libsrt's error code in
// the same call that failed (srt_getlasterror is per OS thread, and a
// goroutine may move between threads between two cgo calls).
#ifndef RELAYMESH_LIBSRT_SHIM_H
#define RELAYMESH_LIBSRT_SHIM_H

#include <stdint.h>
#include <srt/srt.h>

int rm_startup(void);
int rm_socket(void);
int rm_setint(SRTSOCKET s, int opt, int v);
int rm_setint64(SRTSOCKET s, int opt, int64_t v);
int rm_setstr(SRTSOCKET s, int opt, const char* v, int len);
int rm_getint(SRTSOCKET s, int opt, int* v);
int rm_bind_acquire(SRTSOCKET s, int udpfd);
int rm_listen(SRTSOCKET s, int backlog);
int rm_connect(SRTSOCKET s, int family, const unsigned char* ip, int port);
int rm_sockname(SRTSOCKET s, unsigned char* ip, int* port);
int rm_peername(SRTSOCKET s, unsigned char* ip, int* port);
int rm_accept(SRTSOCKET lsn);
int rm_recv(SRTSOCKET s, char* buf, int len);
int rm_send(SRTSOCKET s, const char* buf, int len);
int rm_listen_callback(SRTSOCKET lsn, uintptr_t handle);
int rm_epoll_add(int eid, SRTSOCKET s, int events);
int rm_sndbuffer(SRTSOCKET s);
int rm_stats(SRTSOCKET s, SRT_TRACEBSTATS* st);
int rm_getstr(SRTSOCKET s, int opt, char* buf, int len);
int rm_events_start(int eid);
int rm_events_take(SRT_EPOLL_EVENT* out, int cap);

#endif
