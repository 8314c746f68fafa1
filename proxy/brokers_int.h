/*
 * Inside the broker set: shared by brokers.c (selection, health) and
 * brokers_watch.c (the thread that probes and re-resolves).
 */
#ifndef PROXY_BROKERS_INT_H
#define PROXY_BROKERS_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include "proxy/brokers.h"

struct broker {
	char *spec;                     /* owned copy of the --upstream value */
	int by_name;                    /* a host name: re-resolved */
	uint64_t hkey[2];               /* SipHash key derived from spec (brokers_weight) */
	struct address addr;            /* a re-resolved name's: under brokers.lock; else fixed */
	/* 0 while up; while down, the monotonic ms at which the watcher
	 * probes it next. Sessions only move it from 0 (down) or to 0 (up);
	 * the watcher alone moves it from one back-off to the next. */
	_Atomic uint64_t down_until;
	_Atomic uint32_t fails;         /* failed probes in a row: the back-off's exponent */
	_Atomic uint64_t failures;      /* every failed connect, for /metrics */
};

struct brokers {
	int n;
	enum broker_balance balance;
	long resolve_interval_ms;       /* 0: resolved at startup only */
	long probe_timeout_ms;
	pthread_mutex_t lock;           /* guards the addr of brokers re-resolved */
	struct broker b[CONFIG_MAX_LIST];

	/* The watcher thread. */
	pthread_mutex_t wake_lock;
	pthread_cond_t wake;            /* on CLOCK_MONOTONIC */
	int stop;                       /* under wake_lock */
	int started;
	pthread_t thread;
};

/* Monotonic milliseconds (the clock down_until is in). */
uint64_t brokers_now_ms(void);
/* The watcher's probe of broker |i| failed (again): the next probe waits
 * twice as long, up to the cap. */
void brokers_probe_failed(struct brokers *b, int i, uint64_t now);
/* Broker |i| answered: up again; logs the return once. |who| says who saw
 * it ("probe" or "session"). */
void brokers_mark_up(struct brokers *b, int i, const char *who);
/* The thread's body (brokers_watch.c). */
void *brokers_watch_main(void *arg);

#endif
