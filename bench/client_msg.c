/*
 * Publishing and subscribing clients of mqtls-bench (client_msg.h).
 */
#include "bench/client_msg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/client.h"

/* Messages queued per call, so one fast publisher cannot starve the loop. */
#define PUMP_BATCH 64
/* Duplicate tracking keeps one bit per message up to this many. */
#define SEEN_BITS_MAX (16u * 1024 * 1024)
/* Packet identifiers cycle through 1..ID_SPAN; a multiple of every slot count. */
#define ID_SPAN 32768u

static void on_pace(evutil_socket_t fd, short what, void *arg);

/* Expands %i in the topic pattern; every other character is kept. */
static void expand_topic(struct bench_msg *m, const char *pattern, uint32_t i)
{
	size_t n = 0;
	const char *p;

	for (p = pattern; *p != '\0' && n < sizeof(m->topic) - 12; p++) {
		if (p[0] == '%' && p[1] == 'i') {
			n += (size_t)snprintf(&m->topic[n], sizeof(m->topic) - n, "%u", (unsigned)i);
			p++;
		} else {
			m->topic[n++] = *p;
		}
	}
	m->topic[n] = '\0';
	m->topic_len = (uint16_t)n;
}

static uint32_t pow2_at_least(uint32_t n)
{
	uint32_t p = 1;

	while (p < n)
		p <<= 1;
	return p;
}

int bench_msg_attach(struct bench_client *c)
{
	const struct bench_options *o = c->w->opt;
	struct bench_msg *m = calloc(1, sizeof(*m));
	size_t packet = (size_t)o->payload + sizeof(m->topic) + 16;

	if (m == NULL)
		return 0;
	c->msg = m;
	if (o->scenario == SCENARIO_PUBSUB) {
		m->role = c->index % 2 ? ROLE_PUB : ROLE_SUB;
		m->pair = c->index / 2;
	} else {
		m->role = o->scenario == SCENARIO_PUB ? ROLE_PUB : ROLE_SUB;
		m->pair = c->index;
	}
	expand_topic(m, o->topic, m->pair);
	event_assign(&m->pace, c->w->base, -1, 0, on_pace, c);
	if (m->role == ROLE_PUB) {
		/* Room for two whole PUBLISH packets keeps the socket busy while
		 * the previous one drains. */
		c->out_cap = (uint32_t)(2 * packet + CLIENT_OUT_MAX);
		m->out_big = malloc(c->out_cap);
		m->mask = pow2_at_least((uint32_t)o->inflight) - 1;
		if (c->w->pair_pub && m->pair - c->w->first_pair < c->w->n_pairs)
			c->w->pair_pub[m->pair - c->w->first_pair] = c;
		m->slots = calloc(m->mask + 1, sizeof(*m->slots));
		c->out = m->out_big;
		return m->out_big != NULL && m->slots != NULL;
	}
	c->in_cap = (uint32_t)(packet + CLIENT_IN_MAX);
	m->in_big = malloc(c->in_cap);
	c->in = m->in_big;
	/* Room for the acknowledgements of a whole input buffer of PUBLISHes. */
	c->out_cap = c->in_cap / 4 + CLIENT_OUT_MAX;
	m->out_big = malloc(c->out_cap);
	c->out = m->out_big;
	if (o->scenario == SCENARIO_PUBSUB && o->messages > 0 && (uint64_t)o->messages <= SEEN_BITS_MAX) {
		m->seen_bits = (uint64_t)o->messages;
		m->seen = calloc((size_t)(m->seen_bits + 7) / 8, 1);
		if (m->seen == NULL)
			return 0;
	}
	return m->in_big != NULL && m->out_big != NULL;
}

void bench_msg_detach(struct bench_client *c)
{
	struct bench_msg *m = c->msg;

	if (m == NULL)
		return;
	event_del(&m->pace);
	if (m->role == ROLE_PUB && c->w->pair_pub && m->pair - c->w->first_pair < c->w->n_pairs &&
	    c->w->pair_pub[m->pair - c->w->first_pair] == c)
		c->w->pair_pub[m->pair - c->w->first_pair] = NULL;
	free(m->slots);
	free(m->seen);
	free(m->out_big);
	free(m->in_big);
	free(m);
	c->msg = NULL;
}

int bench_msg_connected(struct bench_client *c)
{
	struct bench_msg *m = c->msg;
	struct outbuf o = bench_client_out_tail(c);
	struct slice filter = { (const uint8_t *)m->topic, m->topic_len };
	uint8_t opts = (uint8_t)c->w->opt->qos;

	if (m->role == ROLE_PUB)
		return 1;
	if (!mqttc_encode_subscribe(&o, c->w->opt->mqtt_version, 1, &filter, &opts, 1)) {
		bench_client_fail(c, BERR_PROTOCOL);
		return 0;
	}
	c->out_len += (uint32_t)o.len;
	m->sub_pending = 1;
	m->t_sub = bench_now_ns();
	bench_client_set_timer(c, c->w->opt->timeout);
	return bench_client_flush(c);
}

/* Marks the publisher finished once everything is queued and acknowledged. */
static void check_done(struct bench_client *c)
{
	struct bench_msg *m = c->msg;
	long max = c->w->opt->messages;

	if (m->done || !m->publishing)
		return;
	if (max > 0 && m->seq >= (uint64_t)max && m->outstanding == 0) {
		m->done = 1;
		bench_worker_publisher_done(c->w);
	}
}

void bench_msg_start(struct bench_client *c)
{
	struct bench_msg *m = c->msg;

	if (m == NULL || m->role != ROLE_PUB || m->publishing || c->state != CLIENT_CONNECTED)
		return;
	m->publishing = 1;
	m->t_begin = bench_now_ns();
	bench_msg_pump(c);
}

void bench_msg_stop(struct bench_client *c)
{
	struct bench_msg *m = c->msg;

	if (m == NULL || m->role != ROLE_PUB || m->done)
		return;
	event_del(&m->pace);
	c->pump_more = 0;
	if (m->publishing) {
		m->done = 1;
		bench_worker_publisher_done(c->w);
	}
}

/* Writes the stamp and queues one PUBLISH. Returns 0 if it does not fit. */
static int queue_publish(struct bench_client *c, uint64_t now)
{
	const struct bench_options *opt = c->w->opt;
	struct bench_msg *m = c->msg;
	struct outbuf o = bench_client_out_tail(c);
	struct mqttc_publish p = { 0 };
	uint32_t seq32 = (uint32_t)m->seq;
	uint8_t *payload = c->w->payload;

	if (opt->payload >= BENCH_STAMP_LEN) {
		memcpy(payload, &now, 8);
		memcpy(payload + 8, &m->pair, 4);
		memcpy(payload + 12, &seq32, 4);
	}
	p.topic = (struct slice){ (const uint8_t *)m->topic, m->topic_len };
	p.payload = (struct slice){ payload, (size_t)opt->payload };
	p.qos = (uint8_t)opt->qos;
	p.packet_id = (uint16_t)(m->seq % ID_SPAN + 1);
	if (!mqttc_encode_publish(&o, opt->mqtt_version, &p))
		return 0;
	c->out_len += (uint32_t)o.len;
	if (p.qos > 0) {
		m->slots[m->seq & m->mask] = (struct pub_slot){ now, 1 };
		m->outstanding++;
	}
	m->seq++;
	c->w->stats.published++;
	c->w->stats.pub_bytes += (uint64_t)opt->payload;
	return 1;
}

/* Makes room at the tail of the output buffer by moving unsent bytes to
 * the front (SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER allows it). */
static void compact(struct bench_client *c)
{
	if (c->out_off == 0)
		return;
	memmove(c->out, &c->out[c->out_off], c->out_len - c->out_off);
	c->out_len -= c->out_off;
	c->out_off = 0;
}

/* --window: QoS 0 has no acknowledgement, so "in flight" is what the
 * pair's subscriber has not received yet. */
static int window_full(const struct bench_client *c)
{
	const struct bench_worker *w = c->w;
	const struct bench_msg *m = c->msg;
	uint32_t i = m->pair - w->first_pair;

	if (w->pair_rx == NULL || w->opt->qos != 0 || i >= w->n_pairs)
		return 0;
	return m->seq - w->pair_rx[i] >= (uint64_t)w->opt->window;
}

/* The subscriber of |pair| received up to |next|: its publisher may go on. */
static void window_advance(struct bench_worker *w, uint32_t pair, uint64_t next)
{
	uint32_t i = pair - w->first_pair;
	struct bench_client *pub;

	if (w->pair_rx == NULL || i >= w->n_pairs || next <= w->pair_rx[i])
		return;
	w->pair_rx[i] = next;
	pub = w->pair_pub[i];
	if (pub && pub->msg && pub->msg->window_full) {
		pub->msg->window_full = 0;
		event_active(&pub->msg->pace, EV_TIMEOUT, 0);
	}
}

int bench_msg_pump(struct bench_client *c)
{
	const struct bench_options *opt = c->w->opt;
	struct bench_msg *m = c->msg;
	uint64_t now = bench_now_ns(), due = UINT64_MAX;
	int n = 0;

	if (m == NULL || m->role != ROLE_PUB || !m->publishing || m->done)
		return 1;
	c->pump_more = 0;
	m->window_full = 0;
	if (opt->msg_rate > 0)
		due = (uint64_t)((double)(now - m->t_begin) / 1e9 * opt->msg_rate) + 1;
	if (opt->messages > 0 && due > (uint64_t)opt->messages)
		due = (uint64_t)opt->messages;
	compact(c);
	while (m->seq < due && n < PUMP_BATCH) {
		if (opt->qos > 0 && m->slots[m->seq & m->mask].state != 0)
			break;          /* window full: the next ack pumps again */
		if (window_full(c)) {
			m->window_full = 1;
			break;          /* the subscriber's next message pumps again */
		}
		if (!queue_publish(c, now))
			break;          /* buffer full: writable pumps again */
		n++;
	}
	if (m->seq < due && n == PUMP_BATCH && !m->window_full)
		c->pump_more = 1;
	else if (m->seq < due && c->out_len > 0 && !m->window_full &&
	         (opt->qos == 0 || m->slots[m->seq & m->mask].state == 0))
		c->pump_more = 1;
	if (opt->msg_rate > 0 && (opt->messages == 0 || m->seq < (uint64_t)opt->messages) &&
	    m->seq >= due) {
		double next_s = (double)m->seq / opt->msg_rate - (double)(now - m->t_begin) / 1e9;
		struct timeval tv = { 0, 0 };

		if (next_s > 0) {
			tv.tv_sec = (time_t)next_s;
			tv.tv_usec = (suseconds_t)((next_s - (double)tv.tv_sec) * 1e6);
		}
		event_add(&m->pace, &tv);
	}
	if (!bench_client_flush(c))
		return 0;
	check_done(c);
	return 1;
}

static void on_pace(evutil_socket_t fd, short what, void *arg)
{
	struct bench_client *c = arg;

	if (c->magic != CLIENT_MAGIC)
		abort();
	bench_msg_pump(c);
}

/* Queues an acknowledgement; the caller flushes. */
static int queue_ack(struct bench_client *c, uint8_t type, uint16_t id)
{
	struct outbuf o = bench_client_out_tail(c);

	if (!mqttc_encode_ack(&o, c->w->opt->mqtt_version, type, id, 0)) {
		bench_client_fail(c, BERR_PROTOCOL);   /* the reader keeps room for acks */
		return 0;
	}
	c->out_len += (uint32_t)o.len;
	return 1;
}

/* Sequence bookkeeping of one stamped payload. */
static void record_stamp(struct bench_client *c, const struct mqttc_packet *p, uint64_t now)
{
	struct bench_msg *m = c->msg;
	struct bench_stats *s = &c->w->stats;
	uint64_t t;
	uint32_t pair, seq;

	if (p->payload.len < BENCH_STAMP_LEN) {
		s->foreign++;
		return;
	}
	memcpy(&t, p->payload.ptr, 8);
	memcpy(&pair, p->payload.ptr + 8, 4);
	memcpy(&seq, p->payload.ptr + 12, 4);
	if (pair != m->pair || t > now) {
		s->foreign++;
		return;
	}
	histogram_record(s->e2e, now - t);
	if (m->seen != NULL && seq < m->seen_bits) {
		if (m->seen[seq / 8] & (1u << (seq % 8))) {
			s->duplicates++;
			return;
		}
		m->seen[seq / 8] |= (uint8_t)(1u << (seq % 8));
	}
	s->unique++;
	if (seq < m->next_seq)
		s->reordered++;
	else
		m->next_seq = (uint64_t)seq + 1;
	window_advance(c->w, m->pair, m->next_seq);
	bench_worker_message_received(c->w);
}

static int on_publish(struct bench_client *c, const struct mqttc_packet *p)
{
	struct bench_stats *s = &c->w->stats;

	s->received++;
	s->recv_bytes += p->payload.len;
	if (p->qos == 1 && !queue_ack(c, MQTT_PUBACK, p->packet_id))
		return 0;
	if (p->qos == 2 && !queue_ack(c, MQTT_PUBREC, p->packet_id))
		return 0;
	if (c->w->opt->scenario == SCENARIO_PUBSUB)
		record_stamp(c, p, bench_now_ns());
	return c->state != CLIENT_CLOSED;
}

/* PUBACK, PUBREC or PUBCOMP for one of our PUBLISHes. */
static int on_pub_ack(struct bench_client *c, const struct mqttc_packet *p)
{
	struct bench_msg *m = c->msg;
	struct pub_slot *slot;
	uint8_t want_state = p->type == MQTT_PUBCOMP ? 2 : 1;
	uint8_t want_type = c->w->opt->qos == 1 ? MQTT_PUBACK : MQTT_PUBREC;

	if (m->role != ROLE_PUB || m->slots == NULL || p->packet_id == 0)
		goto err;
	slot = &m->slots[(p->packet_id - 1u) & m->mask];
	if (slot->state != want_state || (want_state == 1 && p->type != want_type))
		goto err;
	if (p->reason >= 0x80)
		c->w->stats.errors[BERR_REFUSED]++;   /* 5.0: the broker refused it */
	if (p->type == MQTT_PUBREC) {
		slot->state = 2;
		return queue_ack(c, MQTT_PUBREL, p->packet_id);
	}
	histogram_record(c->w->stats.pub_ack, bench_now_ns() - slot->t_sent);
	slot->state = 0;
	m->outstanding--;
	c->w->stats.pub_acked++;
	return 1;
err:
	bench_client_fail(c, BERR_PROTOCOL);
	return 0;
}

static int on_suback(struct bench_client *c, const struct mqttc_packet *p)
{
	struct bench_msg *m = c->msg;
	uint8_t code = 0x80;

	if (!m->sub_pending || p->packet_id != 1) {
		bench_client_fail(c, BERR_PROTOCOL);
		return 0;
	}
	if (p->codes.len > 0)
		code = p->codes.ptr[0];
	m->sub_pending = 0;
	histogram_record(c->w->stats.subscribe, bench_now_ns() - m->t_sub);
	event_del(&c->timer);
	if (code >= 0x80) {
		c->w->stats.sub_refused++;
		bench_client_fail(c, BERR_REFUSED);
		return 0;
	}
	if (c->w->opt->keepalive > 0)
		bench_client_set_timer(c, (double)c->w->opt->keepalive);
	bench_client_ready(c);
	return c->state == CLIENT_CONNECTED;
}

int bench_msg_packet(struct bench_client *c, const struct mqttc_packet *p)
{
	int ok;

	switch (p->type) {
	case MQTT_PUBLISH:
		return on_publish(c, p);
	case MQTT_PUBREL:
		return queue_ack(c, MQTT_PUBCOMP, p->packet_id);
	case MQTT_PUBACK:
	case MQTT_PUBREC:
	case MQTT_PUBCOMP:
		ok = on_pub_ack(c, p);
		if (ok && c->state == CLIENT_CONNECTED) {
			check_done(c);
			/* An ack frees a window slot: send what it held back. */
			if (c->state == CLIENT_CONNECTED && !c->msg->done)
				c->pump_more = 1;
		}
		return ok && c->state == CLIENT_CONNECTED;
	case MQTT_SUBACK:
		return on_suback(c, p);
	default:
		return 1;
	}
}
