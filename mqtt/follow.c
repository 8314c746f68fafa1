/*
 * The client->broker packet follower (follow.h). Only fixed headers of
 * uninspected packets are read; their bodies are skipped by count.
 */
#include <string.h>

#include "mqtt/follow.h"
#include "mqtt/packet.h"

enum {
	AT_START,      /* the next byte starts a packet */
	PASSING,       /* |left| bytes of a forwarded packet to go */
	DROPPING,      /* |left| bytes of a dropped packet to go */
	DECIDING,      /* an INSPECT is waiting for mqtt_follow_decide */
	REFUSED,
};

#define UNDERSTOOD (MQTT_FOLLOW_TYPE(MQTT_PUBLISH) | MQTT_FOLLOW_TYPE(MQTT_SUBSCRIBE) | \
                    MQTT_FOLLOW_TYPE(MQTT_UNSUBSCRIBE))

void mqtt_follow_init(struct mqtt_follow *f, uint8_t version, unsigned inspect, size_t max_inspect)
{
	memset(f, 0, sizeof(*f));
	f->version = version;
	f->inspect = inspect & UNDERSTOOD;
	f->max_inspect = max_inspect;
	f->state = AT_START;
}

static enum mqtt_follow_step refuse(struct mqtt_follow *f, struct mqtt_follow_out *out,
                                    enum mqtt_follow_step step, enum mqtt_parse_result r,
                                    const char *why)
{
	f->state = REFUSED;
	f->refused = step;
	f->result = r;
	f->why = why;
	out->result = r;
	out->why = why;
	return step;
}

static enum mqtt_follow_step too_large(struct mqtt_follow *f, struct mqtt_follow_out *out)
{
	return refuse(f, out, MQTT_FOLLOW_TOO_LARGE, MQTT_PARSE_MALFORMED,
	              "[5.0 4.13] inspected packet header larger than the inspection limit");
}

/* A packet of an inspected type starts at |p|; its fixed header is |fr|. */
static enum mqtt_follow_step inspect(struct mqtt_follow *f, const uint8_t *p, size_t avail,
                                     const struct mqtt_frame *fr, struct mqtt_follow_out *out)
{
	enum mqtt_parse_result r;
	const char *why = NULL;

	out->type = fr->type;
	out->total_len = fr->total_len;
	if (fr->type == MQTT_PUBLISH) {
		/* The parser sees at most max_inspect bytes however many have
		 * arrived, so that the verdict (too large, or refused for what
		 * the header holds) never depends on how the stream was cut. */
		r = mqtt_publish_parse(p, avail < f->max_inspect ? avail : f->max_inspect, f->version,
		                       &out->publish, &why);
		if (r == MQTT_PARSE_NEED_MORE) {
			if (out->publish.need > f->max_inspect)
				return too_large(f, out);
			out->len = out->publish.need;
			return MQTT_FOLLOW_NEED_MORE;
		}
		out->len = out->publish.header_len;
	} else {
		/* SUBSCRIBE and UNSUBSCRIBE are all header. */
		if (fr->total_len > f->max_inspect)
			return too_large(f, out);
		if (avail < fr->total_len) {
			out->len = fr->total_len;
			return MQTT_FOLLOW_NEED_MORE;
		}
		r = mqtt_subscribe_parse(p, fr->total_len, f->version, &out->subscribe, &why);
		out->len = fr->total_len;
	}
	if (r != MQTT_PARSE_OK)
		return refuse(f, out, MQTT_FOLLOW_REFUSE, r, why);
	f->state = DECIDING;
	f->pending = fr->total_len;
	return MQTT_FOLLOW_INSPECT;
}

/* At a packet start: passes every whole uninspected packet it can see,
 * or inspects the packet here. */
static enum mqtt_follow_step at_start(struct mqtt_follow *f, const uint8_t *p, size_t avail,
                                      struct mqtt_follow_out *out)
{
	struct cursor c;
	struct slice here, skip;
	size_t passed = 0;

	cursor_init(&c, p, avail);
	for (;;) {
		struct mqtt_frame fr;
		enum mqtt_frame_result r;

		/* |here| is what is left, from this packet's start on. */
		here.ptr = c.ptr;
		here.len = cursor_left(&c);
		r = mqtt_frame_parse(here.ptr, here.len, SIZE_MAX, &fr);
		if (passed > 0 && (r != MQTT_FRAME_OK || (f->inspect & MQTT_FOLLOW_TYPE(fr.type)) ||
		                   here.len == 0)) {
			out->len = passed;
			return MQTT_FOLLOW_PASS;
		}
		if (r == MQTT_FRAME_NEED_MORE) {
			/* A fixed header is 2 to 5 bytes. */
			out->len = here.len < 2 ? 2 : here.len + 1;
			return MQTT_FOLLOW_NEED_MORE;
		}
		if (r != MQTT_FRAME_OK)
			return refuse(f, out, MQTT_FOLLOW_REFUSE, MQTT_PARSE_MALFORMED,
			              "[MQTT-1.5.5-1] remaining length malformed");
		if (f->inspect & MQTT_FOLLOW_TYPE(fr.type))
			return inspect(f, here.ptr, here.len, &fr, out);
		if (fr.total_len <= here.len) {
			(void)cursor_take(&c, fr.total_len, &skip);
			passed += fr.total_len;
			continue;
		}
		/* An uninspected packet that goes on past these bytes. */
		f->state = PASSING;
		f->left = fr.total_len - here.len;
		out->len = passed + here.len;
		return MQTT_FOLLOW_PASS;
	}
}

enum mqtt_follow_step mqtt_follow_next(struct mqtt_follow *f, const uint8_t *p, size_t avail,
                                       struct mqtt_follow_out *out)
{
	memset(out, 0, sizeof(*out));
	if (p == NULL)
		avail = 0;
	switch (f->state) {
	case REFUSED:
		out->result = f->result;
		out->why = f->why;
		return f->refused;
	case PASSING:
	case DROPPING: {
		enum mqtt_follow_step step = f->state == PASSING ? MQTT_FOLLOW_PASS : MQTT_FOLLOW_DROP;

		if (avail == 0) {
			out->len = 1;
			return MQTT_FOLLOW_NEED_MORE;
		}
		out->len = f->left < avail ? (size_t)f->left : avail;
		f->left -= out->len;
		if (f->left == 0)
			f->state = AT_START;
		return step;
	}
	case DECIDING:
		/* No decision yet: the same packet is inspected again. */
		f->state = AT_START;
		/* fall through */
	default:
		return at_start(f, p, avail, out);
	}
}

void mqtt_follow_decide(struct mqtt_follow *f, int forward)
{
	if (f->state != DECIDING)
		return;
	f->state = forward ? PASSING : DROPPING;
	f->left = f->pending;
	f->pending = 0;
	if (f->left == 0)   /* impossible: a packet has at least 2 bytes */
		f->state = AT_START;
}
