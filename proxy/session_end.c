/*
 * Clean endings for MQTT 5 clients. When mqtls ends a forwarding session
 * itself (a token expired, the server stops), an MQTT 5 client can be told
 * why with a DISCONNECT, but only between two of the broker's packets: so
 * such sessions follow the broker->client packet boundaries (fixed headers
 * only, nothing is held). If the client already has the start of a packet,
 * the cut waits for that packet's end (the hub bounds the wait).
 *
 * A stage (session_int.h): it prepares to_client and reports; the hub sends
 * and closes.
 */
#include <stdlib.h>

#include "proxy/session_int.h"

int end_follow(struct session *s)
{
	if (s->end == NULL)
		s->end = calloc(1, sizeof(*s->end));
	return s->end != NULL;
}

void end_track(struct session *s, size_t from)
{
	struct session_end *e = s->end;
	size_t end = bufq_len(&s->to_client);

	if (e == NULL || e->down.lost)
		return;
	while (from < end) {
		struct iovec v[8];
		int n = bufq_peek(&s->to_client, from, v, 8);

		for (int i = 0; i < n && from < end; i++) {
			mqtt_framer_feed(&e->down, v[i].iov_base, v[i].iov_len);
			from += v[i].iov_len;
		}
		if (n == 0)
			break;
	}
}

size_t end_read_limit(const struct session *s, size_t room)
{
	const struct session_end *e = s->end;

	if (e == NULL || !e->ending)
		return room;
	if (e->down.state == 2)
		return e->down.left < room ? (size_t)e->down.left : room;
	return 1;   /* inside a fixed header: a byte at a time */
}

int end_ready(const struct session *s)
{
	return s->end && s->end->ending && s->end->down.state == 0;
}

enum end_step end_cut(struct session *s, uint8_t code, const char *reason)
{
	struct session_end *e = s->end;
	size_t have = bufq_len(&s->to_client), whole;
	uint64_t start, committed;
	uint8_t pkt[4];
	size_t n;

	if (e == NULL || e->down.lost || s->mqtt_version != MQTT_V5)
		return END_CUT;
	start = e->down.total - have;    /* stream offset of to_client's first byte */
	/* Bytes the client has, or that an unfinished SSL_write must still
	 * send as they are: the cut cannot go before them. */
	committed = start + s->write_pending;
	if (e->down.boundary < committed) {
		if (!e->ending) {
			e->ending = 1;
			e->code = code;
			e->reason = reason;
			return END_WAIT;
		}
		e->down.lost = 1;
		return END_CUT;
	}
	whole = (size_t)(e->down.boundary - start);
	/* Drop a trailing partial packet so the DISCONNECT starts on a packet
	 * boundary; the broker redelivers QoS 1/2 on reconnect. */
	bufq_truncate(&s->to_client, session_blocks(s), whole);
	n = mqtt_disconnect_build_v5(code, pkt, sizeof(pkt));
	if (n > 0)
		(void)bufq_add(&s->to_client, session_blocks(s), pkt, n);
	return END_CUT;
}
