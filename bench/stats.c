/*
 * Per-thread measurements of mqtls-bench (stats.h).
 */
#include "bench/stats.h"

#include <string.h>

static const char *const error_names[BERR_COUNT] = {
	[BERR_TCP_REFUSED] = "tcp_refused",
	[BERR_TCP_OTHER] = "tcp_error",
	[BERR_TLS_ALERT] = "tls_alert",
	[BERR_TLS_VERIFY] = "tls_verify",
	[BERR_TLS_OTHER] = "tls_error",
	[BERR_RESET] = "reset",
	[BERR_CLOSED] = "closed",
	[BERR_TIMEOUT] = "timeout",
	[BERR_REFUSED] = "connack_refused",
	[BERR_PROTOCOL] = "protocol",
};

const char *bench_error_name(enum bench_error e)
{
	return (unsigned)e < BERR_COUNT ? error_names[e] : "unknown";
}

int bench_stats_init(struct bench_stats *s)
{
	memset(s, 0, sizeof(*s));
	/* Two significant digits from 1 ns to one hour: ~19 KB each. */
	s->tcp_connect = histogram_new(HISTOGRAM_ONE_HOUR_NS, 2);
	s->tls_handshake = histogram_new(HISTOGRAM_ONE_HOUR_NS, 2);
	s->ws_upgrade = histogram_new(HISTOGRAM_ONE_HOUR_NS, 2);
	s->connack = histogram_new(HISTOGRAM_ONE_HOUR_NS, 2);
	s->total = histogram_new(HISTOGRAM_ONE_HOUR_NS, 2);
	s->ping = histogram_new(HISTOGRAM_ONE_HOUR_NS, 2);
	s->subscribe = histogram_new(HISTOGRAM_ONE_HOUR_NS, 2);
	s->pub_ack = histogram_new(HISTOGRAM_ONE_HOUR_NS, 2);
	s->e2e = histogram_new(HISTOGRAM_ONE_HOUR_NS, 2);
	return s->tcp_connect && s->tls_handshake && s->ws_upgrade && s->connack && s->total && s->ping &&
	       s->subscribe && s->pub_ack && s->e2e;
}

void bench_stats_cleanup(struct bench_stats *s)
{
	histogram_free(s->tcp_connect);
	histogram_free(s->tls_handshake);
	histogram_free(s->ws_upgrade);
	histogram_free(s->connack);
	histogram_free(s->total);
	histogram_free(s->ping);
	histogram_free(s->subscribe);
	histogram_free(s->pub_ack);
	histogram_free(s->e2e);
	memset(s, 0, sizeof(*s));
}

int bench_stats_merge(struct bench_stats *dst, const struct bench_stats *src)
{
	int i;

	if (!histogram_merge(dst->tcp_connect, src->tcp_connect) ||
	    !histogram_merge(dst->tls_handshake, src->tls_handshake) ||
	    !histogram_merge(dst->ws_upgrade, src->ws_upgrade) ||
	    !histogram_merge(dst->connack, src->connack) ||
	    !histogram_merge(dst->total, src->total) ||
	    !histogram_merge(dst->ping, src->ping) ||
	    !histogram_merge(dst->subscribe, src->subscribe) ||
	    !histogram_merge(dst->pub_ack, src->pub_ack) ||
	    !histogram_merge(dst->e2e, src->e2e))
		return 0;
	for (i = 0; i < BERR_COUNT; i++)
		dst->errors[i] += src->errors[i];
	for (i = 0; i < 256; i++)
		dst->refused_by_code[i] += src->refused_by_code[i];
	dst->pings += src->pings;
	dst->resumed += src->resumed;
	dst->jwt_minted += src->jwt_minted;
	dst->jwt_mint_ns += src->jwt_mint_ns;
	dst->published += src->published;
	dst->pub_acked += src->pub_acked;
	dst->pub_bytes += src->pub_bytes;
	dst->received += src->received;
	dst->recv_bytes += src->recv_bytes;
	dst->sub_refused += src->sub_refused;
	dst->expected += src->expected;
	dst->unique += src->unique;
	dst->duplicates += src->duplicates;
	dst->reordered += src->reordered;
	dst->foreign += src->foreign;
	atomic_fetch_add(&dst->started, atomic_load(&src->started));
	atomic_fetch_add(&dst->connected, atomic_load(&src->connected));
	atomic_fetch_add(&dst->active, atomic_load(&src->active));
	atomic_fetch_add(&dst->failed, atomic_load(&src->failed));
	return 1;
}

void bench_stats_error(struct bench_stats *s, enum bench_error e)
{
	if ((unsigned)e >= BERR_COUNT)
		return;
	s->errors[e]++;
	atomic_fetch_add_explicit(&s->failed, 1, memory_order_relaxed);
}
