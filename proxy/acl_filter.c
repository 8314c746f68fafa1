/*
 * The ACL filter on a live stream (acl_filter.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mqtt/ack.h"
#include "mqtt/packet.h"
#include "proxy/acl_filter.h"
#include "proxy/log.h"
#include "proxy/metrics.h"

/* ---- state ------------------------------------------------------------------ */

struct acl_session *acl_session_new(struct acl *file, struct acl *claim, const struct slice *user,
                                    struct slice cid, uint8_t version, int disconnect)
{
	struct acl_session *a = calloc(1, sizeof(*a));

	if (a == NULL) {
		acl_free(file);
		acl_free(claim);
		return NULL;
	}
	a->file = file;
	a->claim = claim;
	a->version = version;
	a->disconnect = disconnect != 0;
	a->cid = slice_dup(cid);
	a->clen = cid.len;
	if (user) {
		a->user = slice_dup(*user);
		a->ulen = user->len;
	}
	if (a->cid == NULL || (user && a->user == NULL)) {
		acl_session_free(a);
		return NULL;
	}
	mqtt_follow_init(&a->up, version, MQTT_FOLLOW_TYPE(MQTT_PUBLISH) | MQTT_FOLLOW_TYPE(MQTT_SUBSCRIBE),
	                 ACL_MAX_INSPECT);
	return a;
}

static void hold_clear(struct acl_hold *h)
{
	free(h->p);
	h->p = NULL;
	h->len = 0;
}

void acl_session_free(struct acl_session *a)
{
	if (a == NULL)
		return;
	acl_free(a->file);
	acl_free(a->claim);
	free(a->user);
	free(a->cid);
	hold_clear(&a->up_held);
	hold_clear(&a->down_held);
	hold_clear(&a->backlog);
	free(a->order);
	for (int i = 0; i < a->n_merges; i++)
		free(a->merges[i].keep);
	free(a->aliases);
	free(a);
}

int acl_session_allows(const struct acl_session *a, struct slice topic, enum acl_access access)
{
	/* The token's claim is checked first and a grant there is final (as
	 * EMQX does with its JWT source); otherwise the file decides. */
	if (a->claim && acl_check(a->claim, a->user, a->ulen, a->cid, a->clen, topic.ptr, topic.len, access))
		return 1;
	return a->file != NULL &&
	       acl_check(a->file, a->user, a->ulen, a->cid, a->clen, topic.ptr, topic.len, access);
}

/* Moves the bytes of |q| from |from| to its end into |h| (empty before). */
static int hold_take(struct acl_hold *h, struct bufq *q, struct blk_cache *c, size_t from)
{
	size_t n = bufq_len(q) - from;

	if (n == 0)
		return 1;
	if ((h->p = malloc(n)) == NULL)
		return 0;
	(void)bufq_copyout(q, from, h->p, n);
	h->len = n;
	bufq_truncate(q, c, from);
	return 1;
}

/* Puts what |h| holds back into |q| at |at|. */
static int hold_put(struct acl_hold *h, struct bufq *q, struct blk_cache *c, size_t at)
{
	if (h->len == 0)
		return 1;
	if (!bufq_insert(q, c, at, h->p, h->len))
		return 0;
	hold_clear(h);
	return 1;
}

static void count(const struct acl_io *io, int subscribe, int allowed)
{
	if (io->m)
		counter_add(&io->m->acl_decisions[subscribe ? ACLP_SUBSCRIBE : ACLP_PUBLISH][allowed ? 0 : 1], 1);
}

static void log_denial(const struct acl_session *a, const char *packet, struct slice topic, int alias)
{
	char user[96], cid[96], t[200];

	if (!log_enabled(LOG_WARN))
		return;
	if (a->user)
		log_escape(user, sizeof(user), a->user, a->ulen);
	log_escape(cid, sizeof(cid), a->cid, a->clen);
	if (topic.len > 0)
		log_escape(t, sizeof(t), topic.ptr, topic.len);
	else
		snprintf(t, sizeof(t), "(topic alias %d)", alias);
	log_msg(LOG_WARN, "acl_deny packet=%s user=\"%s\" client_id=\"%s\" topic=\"%s\" reason=acl_denied",
	        packet, a->user ? user : "", cid, t);
}

/* ---- answers towards the client ------------------------------------------------ */

static void feed(struct mqtt_framer *f, const uint8_t *p, size_t n)
{
	if (f)
		mqtt_framer_feed(f, p, n);
}

/* Whether |down| ends on a broker packet boundary after the CONNACK, so
 * that a packet of ours can go at its end. */
static int at_boundary(const struct acl_io *io)
{
	const struct mqtt_framer *f = io->framer;

	return f && !f->lost && f->state == 0 && f->total > 0;
}

/* What an answer decided now waits for: the newest PUBLISH sent up and
 * not acknowledged yet, and all before it (0: none). */
static uint64_t need_now(const struct acl_session *a)
{
	const struct acl_order *o = a->order;

	return o == NULL || o->n == 0 ? 0 : o->ring[o->n - 1].seq + 1;
}

/* The |n| bytes just appended to the backlog (which held |len| before)
 * wait for |need|. Bytes past the last gate wait for nothing but what is
 * before them. */
static void gate(struct acl_session *a, size_t len, size_t n, uint64_t need)
{
	struct acl_order *o = a->order;
	struct acl_gate *last;

	if (o == NULL)
		return;
	last = o->n_gates > 0 ? &o->gates[o->n_gates - 1] : NULL;
	if (need == 0 && (last == NULL || last->end < len))
		return;
	if (last && last->end == len && last->need >= need) {
		last->end = len + n;
	} else if (o->n_gates < ACL_MAX_GATES) {
		o->gates[o->n_gates++] = (struct acl_gate){ len + n, need };
	} else {
		last->end = len + n;
		if (last->need < need)
			last->need = need;
	}
}

/* How many bytes at the front of the backlog may go now: those behind
 * gates whose PUBLISHes were all acknowledged. */
static size_t releasable(const struct acl_session *a)
{
	const struct acl_order *o = a->order;
	uint8_t i = 0;

	if (o == NULL || o->n == 0)
		return a->backlog.len;
	while (i < o->n_gates && o->gates[i].need <= o->ring[0].seq)
		i++;
	if (i == o->n_gates)
		return a->backlog.len;
	return i == 0 ? 0 : o->gates[i - 1].end;
}

/* The first |k| bytes of the backlog went to the client. */
static void backlog_consume(struct acl_session *a, size_t k)
{
	struct acl_order *o = a->order;
	uint8_t i = 0;

	if (k == a->backlog.len) {
		hold_clear(&a->backlog);
	} else {
		memmove(a->backlog.p, a->backlog.p + k, a->backlog.len - k);
		a->backlog.len -= k;
	}
	if (o == NULL)
		return;
	while (i < o->n_gates && o->gates[i].end <= k)
		i++;
	memmove(o->gates, o->gates + i, (size_t)(o->n_gates - i) * sizeof(o->gates[0]));
	o->n_gates = (uint8_t)(o->n_gates - i);
	for (i = 0; i < o->n_gates; i++)
		o->gates[i].end -= k;
}

/* Sends the |n| bytes at |p| (whole packets) to the client now if |down|
 * is at a boundary and no PUBLISH sent up before awaits its ack, else
 * queues them. Returns 1/0 (out of memory, or too much waiting). */
static int answer(struct acl_session *a, const struct acl_io *io, const uint8_t *p, size_t n,
                  struct acl_report *rep)
{
	uint64_t need = need_now(a);
	uint8_t *q;

	if (a->backlog.len == 0 && need == 0 && at_boundary(io)) {
		if (!bufq_add(io->down, io->c, p, n))
			return 0;
		feed(io->framer, p, n);
		rep->answered = 1;
		return 1;
	}
	if (a->backlog.len + n > ACL_MAX_BACKLOG || (q = realloc(a->backlog.p, a->backlog.len + n)) == NULL)
		return 0;
	memcpy(q + a->backlog.len, p, n);
	a->backlog.p = q;
	gate(a, a->backlog.len, n, need);
	a->backlog.len += n;
	return 1;
}

/* An allowed QoS 1/2 PUBLISH goes up: remembered until its ack goes by.
 * Returns 1, or 0 when out of memory. */
static int track(struct acl_session *a, const struct acl_io *io, const struct mqtt_publish *p)
{
	struct acl_order *o = a->order;

	if (o == NULL && (o = a->order = calloc(1, sizeof(*o))) == NULL)
		return 0;
	/* The same id again before its ack is a resend (or a client error):
	 * the broker's ack for the first one is the one that orders. */
	for (uint8_t i = 0; i < o->n; i++)
		if (o->ring[i].packet_id == p->packet_id)
			return 1;
	if (o->n == ACL_MAX_INFLIGHT) {
		if (io->m)
			counter_add(&io->m->acl_ack_untracked, 1);
		log_warn("acl: %d QoS 1/2 PUBLISHes await the broker's ack; packet id %u goes up unremembered, and an "
		         "answer of mqtls's may overtake its ack", ACL_MAX_INFLIGHT, p->packet_id);
		return 1;
	}
	o->ring[o->n++] = (struct acl_inflight){ o->next_seq++, p->packet_id,
		                                 p->qos == 1 ? MQTT_PUBACK : MQTT_PUBREC };
	return 1;
}

/* The broker's PUBACK or PUBREC (|type|) for |packet_id| goes by: the
 * oldest PUBLISH it acknowledges is no longer waited for. An ack for
 * nothing we sent is ignored. */
static void acked(struct acl_session *a, uint8_t type, uint16_t packet_id)
{
	struct acl_order *o = a->order;

	for (uint8_t i = 0; o && i < o->n; i++) {
		if (o->ring[i].packet_id == packet_id && o->ring[i].ack == type) {
			memmove(o->ring + i, o->ring + i + 1, (size_t)(o->n - i - 1) * sizeof(o->ring[0]));
			o->n--;
			return;
		}
	}
}

/* ---- client->broker ------------------------------------------------------------- */

/* Topic Alias decisions: bit 0 known, bit 1 allowed. */
static int alias_get(const struct acl_session *a, uint16_t alias, int *allowed)
{
	unsigned v;

	if (alias >= a->alias_cap)
		return 0;
	v = (a->aliases[alias / 4] >> (alias % 4 * 2)) & 3u;
	*allowed = (v & 2u) != 0;
	return (v & 1u) != 0;
}

static int alias_set(struct acl_session *a, uint16_t alias, int allowed)
{
	if (alias >= a->alias_cap) {
		/* Grown to the highest alias used: 16 KiB at most for 65,535. */
		uint32_t cap = a->alias_cap ? a->alias_cap : 64;
		uint8_t *p;

		while (cap <= alias)
			cap *= 2;
		if ((p = realloc(a->aliases, cap / 4)) == NULL)
			return 0;
		memset(p + a->alias_cap / 4, 0, (cap - a->alias_cap) / 4);
		a->aliases = p;
		a->alias_cap = cap;
	}
	a->aliases[alias / 4] &= (uint8_t)~(3u << (alias % 4 * 2));
	a->aliases[alias / 4] |= (uint8_t)((1u | (allowed ? 2u : 0u)) << (alias % 4 * 2));
	return 1;
}

static uint8_t refusal_code(enum mqtt_parse_result r)
{
	switch (r) {
	case MQTT_PARSE_PROTOCOL_ERROR:
		return 0x82;
	case MQTT_PARSE_TOPIC_INVALID:
		return 0x90;
	default:
		return 0x81;
	}
}

/* What a step in filter_up does next. */
enum next { GO_ON, STOP_OK, STOP };

static enum next deny_close(struct acl_session *a, const struct acl_io *io, size_t pos,
                            struct acl_report *rep, enum acl_step *res)
{
	bufq_truncate(io->up, io->c, pos);
	a->dead = 1;
	rep->code = MQTT_RC_NOT_AUTHORIZED;
	*res = ACL_DENY_CLOSE;
	return STOP;
}

static enum next on_publish(struct acl_session *a, const struct acl_io *io, size_t pos,
                            const struct mqtt_publish *p, struct acl_report *rep, enum acl_step *res)
{
	int allowed = 0;
	uint8_t ack[8];
	size_t n;

	if (p->has_topic_alias && p->topic.len == 0) {
		/* The topic is the one the client last set for this alias. */
		if (!alias_get(a, p->topic_alias, &allowed)) {
			bufq_truncate(io->up, io->c, pos);
			a->dead = 1;
			rep->code = 0x82;
			rep->why = "[MQTT-3.3.2-7] Topic Alias used before it was set";
			*res = ACL_REFUSE;
			return STOP;
		}
	} else {
		allowed = acl_session_allows(a, p->topic, ACL_WRITE);
		if (p->has_topic_alias && !alias_set(a, p->topic_alias, allowed)) {
			*res = ACL_OOM;
			return STOP;
		}
	}
	count(io, 0, allowed);
	if (allowed) {
		/* With --acl-deny disconnect mqtls never answers a PUBLISH:
		 * nothing to order. */
		if (p->qos > 0 && !a->disconnect && !track(a, io, p)) {
			*res = ACL_OOM;
			return STOP;
		}
		mqtt_follow_decide(&a->up, 1);
		return GO_ON;
	}
	log_denial(a, "publish", p->topic, p->topic_alias);
	if (a->disconnect)
		return deny_close(a, io, pos, rep, res);
	/* Dropped as it streams by (the next steps are DROPs). An answer
	 * keeps a QoS 1/2 sender from resending it forever; before 5.0 it
	 * carries no reason, as mosquitto's own does. */
	mqtt_follow_decide(&a->up, 0);
	n = p->qos == 0 ? 0 : mqtt_ack_write(p->qos == 1 ? MQTT_PUBACK : MQTT_PUBREC, a->version,
	                                     p->packet_id, MQTT_RC_NOT_AUTHORIZED, ack, sizeof(ack));
	if (n > 0 && !answer(a, io, ack, n, rep)) {
		*res = ACL_OOM;
		return STOP;
	}
	return GO_ON;
}

/* A SUBSCRIBE some of whose filters are denied: the broker gets the others
 * in a packet of its own, in place of the client's. */
static enum next forward_subset(struct acl_session *a, const struct acl_io *io, size_t *pos,
                                const struct mqtt_subscribe *s, uint8_t *keep, enum acl_step *res)
{
	struct mqtt_follow_out o;
	struct iovec v;
	size_t n = mqtt_subscribe_subset_len(s, keep);
	uint8_t *pkt = n > 0 ? malloc(n) : NULL;
	struct acl_merge *mg = &a->merges[a->n_merges];

	if (pkt == NULL || mqtt_subscribe_write_subset(s, keep, pkt, n) != n) {
		free(pkt);
		*res = ACL_OOM;
		return STOP;
	}
	/* The original goes (one DROP over the bytes INSPECT saw), the
	 * subset takes its place. */
	mqtt_follow_decide(&a->up, 0);
	if (bufq_peek(io->up, *pos, &v, 1) < 1 ||
	    mqtt_follow_next(&a->up, v.iov_base, v.iov_len, &o) != MQTT_FOLLOW_DROP || o.len != s->total_len) {
		free(pkt);
		*res = ACL_OOM;    /* cannot happen: INSPECT had the packet contiguous */
		return STOP;
	}
	bufq_cut(io->up, io->c, *pos, s->total_len);
	if (!bufq_insert(io->up, io->c, *pos, pkt, n)) {
		free(pkt);
		*res = ACL_OOM;
		return STOP;
	}
	free(pkt);
	*pos += n;
	mg->packet_id = s->packet_id;
	mg->n = (uint32_t)s->count;
	mg->keep = keep;
	a->n_merges++;
	return GO_ON;
}

static enum next on_subscribe(struct acl_session *a, const struct acl_io *io, size_t *pos,
                              const struct mqtt_subscribe *s, struct acl_report *rep, enum acl_step *res)
{
	struct mqtt_sub_iter it;
	struct mqtt_sub_entry e;
	uint8_t *keep = malloc(s->count), *codes = NULL, *ack = NULL;
	size_t kept = 0, i = 0, n;
	uint8_t deny = a->version == 5 ? MQTT_RC_NOT_AUTHORIZED : MQTT_RC_SUBACK_FAILURE_V3;
	enum next out = GO_ON;

	if (keep == NULL) {
		*res = ACL_OOM;
		return STOP;
	}
	mqtt_sub_iter_init(&it, s);
	while (i < s->count && mqtt_sub_iter_next(&it, &e)) {
		keep[i] = (uint8_t)acl_session_allows(a, e.acl_filter, ACL_READ);
		count(io, 1, keep[i]);
		if (!keep[i])
			log_denial(a, "subscribe", e.filter, 0);
		kept += keep[i];
		i++;
	}
	if (kept == s->count) {
		mqtt_follow_decide(&a->up, 1);
		goto done;
	}
	if (a->disconnect) {
		out = deny_close(a, io, *pos, rep, res);
		goto done;
	}
	if (kept > 0 && a->n_merges < ACL_MAX_MERGES) {
		out = forward_subset(a, io, pos, s, keep, res);
		if (out == GO_ON)
			keep = NULL;    /* the merge owns it */
		goto done;
	}
	/* All denied (or too many merges waiting: then the allowed filters
	 * are refused too, rather than left without an answer): mqtls
	 * answers alone and the broker never sees it. */
	mqtt_follow_decide(&a->up, 0);
	codes = malloc(s->count);
	ack = malloc(s->count + 16);
	if (codes == NULL || ack == NULL) {
		out = STOP;
		*res = ACL_OOM;
		goto done;
	}
	memset(codes, deny, s->count);
	n = mqtt_suback_write(a->version, s->packet_id, (struct slice){ NULL, 0 }, codes, s->count, ack,
	                      s->count + 16);
	if (n == 0 || !answer(a, io, ack, n, rep)) {
		out = STOP;
		*res = ACL_OOM;
	}
done:
	free(keep);
	free(codes);
	free(ack);
	return out;
}

enum acl_step acl_filter_up(struct acl_session *a, const struct acl_io *io, size_t from,
                            struct acl_report *rep)
{
	struct bufq *q = io->up;
	size_t pos = from;
	enum acl_step res = ACL_OK;

	memset(rep, 0, sizeof(*rep));
	if (a->dead) {
		bufq_truncate(q, io->c, from);
		return ACL_OK;
	}
	if (!hold_put(&a->up_held, q, io->c, from))
		goto oom;
	for (;;) {
		struct mqtt_follow_out o;
		struct iovec v = { NULL, 0 };
		size_t len = bufq_len(q);
		enum next nx = GO_ON;
		enum mqtt_follow_step step;

		if (pos < len)
			(void)bufq_peek(q, pos, &v, 1);
		step = mqtt_follow_next(&a->up, v.iov_base, v.iov_len, &o);
		switch (step) {
		case MQTT_FOLLOW_PASS:
			pos += o.len;
			break;
		case MQTT_FOLLOW_DROP:
			bufq_cut(q, io->c, pos, o.len);
			break;
		case MQTT_FOLLOW_NEED_MORE:
			if (o.len > v.iov_len && len - pos >= o.len) {
				if (bufq_pullup_at(q, io->c, pos, o.len) == NULL)
					goto oom;
				break;
			}
			/* The rest waits for more bytes, out of the broker's way. */
			if (!hold_take(&a->up_held, q, io->c, pos))
				goto oom;
			return ACL_OK;
		case MQTT_FOLLOW_INSPECT:
			if (o.type == MQTT_PUBLISH)
				nx = on_publish(a, io, pos, &o.publish, rep, &res);
			else
				nx = on_subscribe(a, io, &pos, &o.subscribe, rep, &res);
			break;
		case MQTT_FOLLOW_REFUSE:
		case MQTT_FOLLOW_TOO_LARGE:
			bufq_truncate(q, io->c, pos);
			a->dead = 1;
			/* 5.0 0x95 Packet too large, or what the parser found. */
			rep->code = step == MQTT_FOLLOW_TOO_LARGE ? 0x95 : refusal_code(o.result);
			rep->why = o.why;
			return ACL_REFUSE;
		}
		if (nx == STOP && res == ACL_OOM)
			goto oom;
		if (nx == STOP)
			return res;
	}
oom:
	/* Nothing undecided may reach the broker while the session closes. */
	bufq_truncate(q, io->c, pos);
	a->dead = 1;
	return ACL_OOM;
}

/* ---- broker->client ------------------------------------------------------------ */

int acl_down_busy(const struct acl_session *a)
{
	return a->n_merges > 0 || a->backlog.len > 0 || a->down_held.len > 0 || (a->order && a->order->n > 0);
}

static void feed_range(const struct acl_io *io, size_t from, size_t n)
{
	while (n > 0) {
		struct iovec v;
		size_t k;

		if (bufq_peek(io->down, from, &v, 1) < 1)
			return;
		k = v.iov_len < n ? v.iov_len : n;
		feed(io->framer, v.iov_base, k);
		from += k;
		n -= k;
	}
}

/* The merge waiting for |packet_id|, or -1. */
static int find_merge(const struct acl_session *a, uint16_t packet_id)
{
	for (int i = 0; i < a->n_merges; i++)
		if (a->merges[i].packet_id == packet_id)
			return i;
	return -1;
}

/* The complete SUBACK of |len| bytes at |pos|: if a merge waits for it,
 * it is replaced by the client's answer. Sets *out_len to the length it
 * has now. Returns 1, or 0 when out of memory. */
static int rewrite_suback(struct acl_session *a, const struct acl_io *io, size_t pos, size_t len,
                          size_t *out_len)
{
	uint8_t deny = a->version == 5 ? MQTT_RC_NOT_AUTHORIZED : MQTT_RC_SUBACK_FAILURE_V3;
	const uint8_t *pkt = bufq_pullup_at(io->down, io->c, pos, len);
	struct mqtt_suback sa;
	struct acl_merge mg;
	uint8_t *codes = NULL, *out = NULL;
	size_t cap, n;
	int i, ok = 0;

	*out_len = len;
	if (pkt == NULL)
		return 0;
	if (mqtt_suback_parse(pkt, len, a->version, &sa, NULL) != MQTT_PARSE_OK ||
	    (i = find_merge(a, sa.packet_id)) < 0)
		return 1;    /* not one we wait for: the client gets it as it is */
	mg = a->merges[i];
	a->merges[i] = a->merges[--a->n_merges];
	cap = len + mg.n + 8;
	codes = malloc(mg.n);
	out = malloc(cap);
	if (codes == NULL || out == NULL)
		goto done;
	if (!mqtt_suback_merge(mg.keep, mg.n, sa.codes, deny, codes)) {
		/* The broker answered for a different number of filters: its
		 * SUBACK goes on untouched, which the client will find wrong. */
		uint32_t sent = 0;

		for (uint32_t k = 0; k < mg.n; k++)
			sent += mg.keep[k] != 0;
		log_warn("acl: the broker's SUBACK %u has %zu codes for the %u filters it was sent; passed on",
		         sa.packet_id, sa.codes.len, sent);
		ok = 1;
		goto done;
	}
	n = mqtt_suback_write(a->version, sa.packet_id, sa.properties, codes, mg.n, out, cap);
	if (n == 0)
		goto done;
	bufq_cut(io->down, io->c, pos, len);
	if (!bufq_insert(io->down, io->c, pos, out, n))
		goto done;
	*out_len = n;
	ok = 1;
done:
	free(mg.keep);
	free(codes);
	free(out);
	return ok;
}

/* The broker packet starting at |pos| of |down| (which ends at |len|): if
 * it is a PUBACK or PUBREC, the PUBLISH it acknowledges is no longer
 * waited for. Returns 1 to go on, 0 when out of memory, -1 when the rest
 * of |down| was held because the packet id is not all there yet. */
static int note_ack(struct acl_session *a, const struct acl_io *io, size_t pos, size_t len)
{
	uint8_t hdr[7];
	size_t hn = len - pos < sizeof(hdr) ? len - pos : sizeof(hdr);
	struct mqtt_frame fr;
	enum mqtt_frame_result r;

	(void)bufq_copyout(io->down, pos, hdr, hn);
	if ((hdr[0] >> 4) != MQTT_PUBACK && (hdr[0] >> 4) != MQTT_PUBREC)
		return 1;
	r = mqtt_frame_parse(hdr, hn, SIZE_MAX, &fr);
	if (r == MQTT_FRAME_NEED_MORE || (r == MQTT_FRAME_OK && fr.remaining_len >= 2 && fr.header_len + 2 > hn))
		/* A few bytes, held until the id is there: the client gets
		 * nothing of the packet before it was noted. */
		return hold_take(&a->down_held, io->down, io->c, pos) ? -1 : 0;
	if (r == MQTT_FRAME_OK && fr.remaining_len >= 2)
		acked(a, fr.type, (uint16_t)(hdr[fr.header_len] << 8 | hdr[fr.header_len + 1]));
	return 1;
}

int acl_filter_down(struct acl_session *a, const struct acl_io *io, size_t from)
{
	struct mqtt_framer *f = io->framer;
	size_t pos = from, k;

	if (f == NULL)
		return 1;
	if (!hold_put(&a->down_held, io->down, io->c, from))
		return 0;
	for (;;) {
		size_t len = bufq_len(io->down);
		struct iovec v;

		if (f->lost)
			return 1;
		if (f->state == 0 && f->total > 0 && a->backlog.len > 0 && (k = releasable(a)) > 0) {
			/* Our own answers, at this boundary, once the acks they
			 * wait for went by. */
			if (!bufq_insert(io->down, io->c, pos, a->backlog.p, k))
				return 0;
			feed(f, a->backlog.p, k);
			pos += k;
			backlog_consume(a, k);
			continue;
		}
		if (pos >= len)
			return 1;
		if (f->state == 0 && a->order && a->order->n > 0) {
			int r = note_ack(a, io, pos, len);

			if (r <= 0)
				return r < 0;    /* -1: held until the id is whole */
		}
		if (f->state == 0 && a->n_merges > 0) {
			uint8_t hdr[5];
			size_t hn = len - pos < sizeof(hdr) ? len - pos : sizeof(hdr), plen;
			struct mqtt_frame fr;

			(void)bufq_copyout(io->down, pos, hdr, hn);
			if ((hdr[0] >> 4) == MQTT_SUBACK) {
				enum mqtt_frame_result r = mqtt_frame_parse(hdr, hn, ACL_MAX_INSPECT, &fr);

				if (r == MQTT_FRAME_NEED_MORE || (r == MQTT_FRAME_OK && fr.total_len > len - pos))
					/* Held until it is whole: the client must not get
					 * the start of a packet that will change. */
					return hold_take(&a->down_held, io->down, io->c, pos);
				if (r == MQTT_FRAME_OK) {
					if (!rewrite_suback(a, io, pos, fr.total_len, &plen))
						return 0;
					feed_range(io, pos, plen);
					pos += plen;
					continue;
				}
			}
		}
		/* A packet at a time: a byte in headers, the body in one go. */
		(void)bufq_peek(io->down, pos, &v, 1);
		if (f->state == 2 && f->left < v.iov_len)
			v.iov_len = (size_t)f->left;
		else if (f->state != 2)
			v.iov_len = 1;
		feed(f, v.iov_base, v.iov_len);
		pos += v.iov_len;
	}
}
