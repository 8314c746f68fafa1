/*
 * libFuzzer target for what the ACL reads of a client's stream: the
 * PUBLISH header parser (mqtt/publish.c), the SUBSCRIBE/UNSUBSCRIBE parser
 * and its re-written subset (mqtt/subscribe.c), the packet follower
 * (mqtt/follow.c), topic matching (mqtt/topic.c) and the SUBACK the
 * client gets (mqtt/ack.c).
 *
 * Input: an options byte (protocol level, cut position, inspection limit),
 * then a client->broker byte stream. Checked, beyond memory safety: the
 * PUBLISH parser asks only for bytes the packet has and reaches the same
 * verdict from any prefix; a parsed SUBSCRIBE walks to exactly its count
 * and its subset re-parses to the kept filters; the follower forwards,
 * drops and inspects the same bytes however the stream is cut; coverage
 * implies overlap; a SUBACK that parses is written back identically.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mqtt/ack.h"
#include "mqtt/follow.h"
#include "mqtt/packet.h"
#include "mqtt/publish.h"
#include "mqtt/subscribe.h"
#include "mqtt/topic.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_publish(const uint8_t *data, size_t size, uint8_t version)
{
	struct mqtt_publish whole, m;
	enum mqtt_parse_result want, r;
	const char *why = NULL;
	size_t avail = 0;
	int rounds = 0;

	want = mqtt_publish_parse(data, size, version, &whole, &why);
	if (want == MQTT_PARSE_NEED_MORE) {
		if (whole.need <= size)
			abort();
		return;
	}
	if (want != MQTT_PARSE_OK && why == NULL)
		abort();
	if (want == MQTT_PARSE_OK && (whole.header_len > size || whole.header_len > whole.total_len))
		abort();
	/* From nothing, supplying what is asked for, in exact-size copies. */
	for (;;) {
		uint8_t *copy = malloc(avail + 1);

		if (copy == NULL)
			return;
		memcpy(copy, data, avail);
		r = mqtt_publish_parse(copy, avail, version, &m, NULL);
		free(copy);
		if (r != MQTT_PARSE_NEED_MORE)
			break;
		if (m.need <= avail || m.need > size)
			abort();
		avail = m.need;
		if (++rounds > 16)
			abort();
	}
	if (r != want || (r == MQTT_PARSE_OK && m.header_len != whole.header_len))
		abort();
}

static void check_filters(const struct mqtt_subscribe *s)
{
	struct mqtt_sub_iter a, b;
	struct mqtt_sub_entry ea, eb;
	size_t n = 0;

	mqtt_sub_iter_init(&a, s);
	while (mqtt_sub_iter_next(&a, &ea)) {
		n++;
		if (!mqtt_topic_filter_valid(ea.acl_filter))
			abort();
		if (!mqtt_topic_filter_covers(ea.acl_filter, ea.acl_filter) ||
		    !mqtt_topic_filters_overlap(ea.acl_filter, ea.acl_filter))
			abort();
		mqtt_sub_iter_init(&b, s);
		for (int k = 0; k < 8 && mqtt_sub_iter_next(&b, &eb); k++) {
			int cov = mqtt_topic_filter_covers(ea.acl_filter, eb.acl_filter);

			if (cov && !mqtt_topic_filters_overlap(ea.acl_filter, eb.acl_filter))
				abort();
			if (mqtt_topic_filters_overlap(ea.acl_filter, eb.acl_filter) !=
			    mqtt_topic_filters_overlap(eb.acl_filter, ea.acl_filter))
				abort();
		}
	}
	if (n != s->count)
		abort();
}

static void check_subscribe(const uint8_t *data, size_t size, uint8_t version, uint8_t opt)
{
	struct mqtt_frame f;
	struct mqtt_subscribe s, t;
	uint8_t *pkt, *keep, *out;
	size_t kept = 0, len, i;
	const char *why = NULL;

	if (mqtt_frame_parse(data, size, size, &f) != MQTT_FRAME_OK || f.total_len > size)
		return;
	pkt = malloc(f.total_len);
	if (pkt == NULL)
		return;
	memcpy(pkt, data, f.total_len);
	if (mqtt_subscribe_parse(pkt, f.total_len, version, &s, &why) != MQTT_PARSE_OK) {
		if (why == NULL)
			abort();
		free(pkt);
		return;
	}
	if (s.count == 0)
		abort();
	check_filters(&s);
	keep = calloc(s.count, 1);
	if (keep == NULL) {
		free(pkt);
		return;
	}
	for (i = 0; i < s.count; i++) {
		keep[i] = (uint8_t)(((opt >> (i & 7)) ^ i) & 1);
		kept += keep[i];
	}
	len = mqtt_subscribe_subset_len(&s, keep);
	if (s.type != MQTT_SUBSCRIBE || kept == 0) {
		if (len != 0)
			abort();
	} else if ((out = malloc(len)) != NULL) {
		if (mqtt_subscribe_write_subset(&s, keep, out, len) != len ||
		    mqtt_subscribe_parse(out, len, version, &t, NULL) != MQTT_PARSE_OK || t.count != kept ||
		    t.packet_id != s.packet_id)
			abort();
		if (kept == s.count && (len != f.total_len || memcmp(out, pkt, len) != 0))
			abort();
		free(out);
	}
	free(keep);
	free(pkt);
}

static void check_suback(const uint8_t *data, size_t size, uint8_t version)
{
	struct mqtt_frame f;
	struct mqtt_suback s;
	uint8_t *pkt, *out;
	size_t n;

	if (mqtt_frame_parse(data, size, size, &f) != MQTT_FRAME_OK || f.total_len > size)
		return;
	if ((pkt = malloc(f.total_len)) == NULL)
		return;
	memcpy(pkt, data, f.total_len);
	if (mqtt_suback_parse(pkt, f.total_len, version, &s, NULL) == MQTT_PARSE_OK &&
	    (out = malloc(f.total_len)) != NULL) {
		n = mqtt_suback_write(version, s.packet_id, s.properties, s.codes.ptr, s.codes.len, out,
		                      f.total_len);
		/* Parsing admits only minimal varints: the same bytes. */
		if (n != 0 && (n != f.total_len || memcmp(out, pkt, n) != 0))
			abort();
		free(out);
	}
	free(pkt);
}

struct follow_run {
	uint8_t *fwd;
	size_t nfwd, dropped, inspections;
	enum mqtt_follow_step last;
	size_t pos;
};

/* Runs the follower over |data| as it arrives in two pieces split at |at|,
 * answering NEED_MORE by "pulling up" once enough has arrived. */
static void follow(const uint8_t *data, size_t size, size_t at, uint8_t version, size_t max_inspect,
                   struct follow_run *r)
{
	struct mqtt_follow f;
	size_t pulled = 0;

	memset(r, 0, sizeof(*r));
	r->fwd = malloc(size + 1);
	if (r->fwd == NULL)
		abort();
	mqtt_follow_init(&f, version,
	                 MQTT_FOLLOW_TYPE(MQTT_PUBLISH) | MQTT_FOLLOW_TYPE(MQTT_SUBSCRIBE) |
	                 MQTT_FOLLOW_TYPE(MQTT_UNSUBSCRIBE), max_inspect);
	for (int piece = 0; piece < 2; piece++) {
		size_t received = piece == 0 ? at : size;

		for (int steps = 0;; steps++) {
			struct mqtt_follow_out out;
			size_t end = (r->pos < at && at < received) ? at : received, avail;
			uint8_t *copy;

			if (pulled > end)
				end = pulled;
			avail = end - r->pos;
			copy = malloc(avail + 1);
			if (copy == NULL)
				abort();
			memcpy(copy, data + r->pos, avail);
			r->last = mqtt_follow_next(&f, copy, avail, &out);
			if (steps > 100000)
				abort();   /* no progress */
			switch (r->last) {
			case MQTT_FOLLOW_PASS:
			case MQTT_FOLLOW_DROP:
				if (out.len == 0 || out.len > avail)
					abort();
				if (r->last == MQTT_FOLLOW_PASS)
					memcpy(r->fwd + r->nfwd, copy, out.len), r->nfwd += out.len;
				else
					r->dropped += out.len;
				r->pos += out.len;
				break;
			case MQTT_FOLLOW_INSPECT:
				r->inspections++;
				if (out.len > avail || out.len > max_inspect)
					abort();
				/* Drop a PUBLISH whose topic starts with an odd byte. */
				mqtt_follow_decide(&f, !(out.type == MQTT_PUBLISH && out.publish.topic.len > 0 &&
				                         (out.publish.topic.ptr[0] & 1)));
				break;
			case MQTT_FOLLOW_NEED_MORE:
				if (out.len <= avail)
					abort();
				if (out.len > max_inspect && out.len > 5)
					abort();
				free(copy);
				if (received - r->pos < out.len)
					goto next_piece;
				pulled = r->pos + out.len;
				continue;
			default:
				if (out.why == NULL)
					abort();
				free(copy);
				return;
			}
			free(copy);
			if (pulled <= r->pos)
				pulled = 0;
		}
next_piece:;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct follow_run whole, cut;
	uint8_t opt, version;
	size_t max_inspect, at;

	if (size < 1)
		return 0;
	opt = data[0];
	data++;
	size--;
	version = (uint8_t)(3 + opt % 3);
	max_inspect = (opt & 0x08) ? 24 : 4096;

	check_publish(data, size, version);
	check_subscribe(data, size, version, opt);
	check_suback(data, size, version);

	at = (size_t)(opt >> 4) * (size + 1) / 16;
	follow(data, size, 0, version, max_inspect, &whole);
	follow(data, size, at, version, max_inspect, &cut);
	if (whole.last != cut.last || whole.nfwd != cut.nfwd || whole.dropped != cut.dropped ||
	    whole.inspections != cut.inspections || whole.pos != cut.pos ||
	    memcmp(whole.fwd, cut.fwd, whole.nfwd) != 0)
		abort();
	free(whole.fwd);
	free(cut.fwd);
	return 0;
}
