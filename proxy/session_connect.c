/*
 * From the client's first bytes to a connected broker: frame and parse the
 * CONNECT, refuse a bad one with the CONNACK its version understands, then
 * open the broker connection and hand over to forwarding.
 *
 * The CONNECT and anything the client pipelines behind it stay in to_up, in
 * order; nothing reaches the broker before the whole CONNECT was accepted.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "mqtt/connack.h"
#include "mqtt/connect.h"
#include "mqtt/packet.h"
#include "proxy/log.h"
#include "proxy/session.h"
#include "proxy/worker.h"

static void log_refusal(struct session *s, const char *reason, const char *detail)
{
	char peer[80];

	if (!log_enabled(LOG_INFO))
		return;
	address_format(&s->addr.sa, sizeof(s->addr), peer, sizeof(peer));
	log_msg(LOG_INFO, "refuse peer=%s mqtt=%u reason=%s%s%s%s", peer, s->mqtt_version, reason,
	        detail ? " detail=\"" : "", detail ? detail : "", detail ? "\"" : "");
}

/*
 * Sends the refusing CONNACK for the client's version (when that version has
 * a code for |refusal|; refusal < 0 means "server unavailable") and closes.
 * The broker is never contacted, or its half-open connection is dropped.
 */
void session_refuse(struct session *s, int refusal, const char *reason)
{
	uint8_t pkt[8];
	enum mqtt_refusal why = refusal < 0 ? MQTT_REFUSE_SERVER_UNAVAILABLE : (enum mqtt_refusal)refusal;
	size_t n = 0;

	if (s->mqtt_version != 0)
		n = mqtt_connack_build(s->mqtt_version, why, pkt, sizeof(pkt));
	session_close_upstream(s);
	if (s->to_up) {
		evbuffer_free(s->to_up);
		s->to_up = NULL;
	}
	if (n > 0 && !(s->flags & F_CLIENT_DEAD)) {
		if (s->to_client == NULL)
			s->to_client = evbuffer_new();
		if (s->to_client == NULL || evbuffer_add(s->to_client, pkt, n) != 0)
			s->flags |= F_CLIENT_DEAD;
	}
	session_close(s, reason);
	/* Push the CONNACK out now; the close finishes once it is written. */
	forward_client_out(s);
}

static void refuse_parse_error(struct session *s, enum mqtt_connect_error e, const char *why)
{
	switch (e) {
	case MQTT_CONNECT_BAD_PROTOCOL:
		/* A level we do not speak gets the 3.1.1 answer (code 1), which
		 * every version's client can read, unless it claimed 5.0. */
		if (s->mqtt_version != MQTT_V5)
			s->mqtt_version = MQTT_V311;
		log_refusal(s, "bad_protocol", why);
		session_refuse(s, MQTT_REFUSE_UNSUPPORTED_VERSION, "bad_protocol");
		break;
	case MQTT_CONNECT_BAD_CLIENT_ID:
		log_refusal(s, "bad_client_id", why);
		session_refuse(s, MQTT_REFUSE_BAD_CLIENT_ID, "bad_client_id");
		break;
	case MQTT_CONNECT_PROTOCOL_ERROR:
		log_refusal(s, "malformed_connect", why);
		session_refuse(s, MQTT_REFUSE_PROTOCOL_ERROR, "malformed_connect");
		break;
	default:
		log_refusal(s, "malformed_connect", why);
		session_refuse(s, MQTT_REFUSE_MALFORMED, "malformed_connect");
		break;
	}
}

static void keep_client_id(struct session *s, const struct mqtt_connect *c)
{
	char buf[200];

	log_escape(buf, sizeof(buf), c->client_id.ptr, c->client_id.len);
	s->client_id = strdup(buf);
}

void session_parse_connect(struct session *s)
{
	size_t len = s->to_up ? evbuffer_get_length(s->to_up) : 0;
	size_t hlen = len < MQTT_MAX_HEADER_LEN ? len : MQTT_MAX_HEADER_LEN;
	struct mqtt_connect c;
	struct mqtt_frame f;
	enum mqtt_frame_result fr;
	enum mqtt_connect_error ce;
	const char *why = NULL;
	const uint8_t *p;

	if (len == 0)
		return;
	p = evbuffer_pullup(s->to_up, (ssize_t)hlen);
	/* [MQTT-3.1.0-1] the first packet from the client must be CONNECT. */
	if ((p[0] >> 4) != MQTT_CONNECT) {
		log_refusal(s, "not_connect", NULL);
		session_refuse(s, MQTT_REFUSE_PROTOCOL_ERROR, "not_connect");
		return;
	}
	fr = mqtt_frame_parse(p, hlen, s->w->proxy->max_connect_size, &f);
	if (fr == MQTT_FRAME_NEED_MORE)
		return;
	if (fr == MQTT_FRAME_MALFORMED) {
		log_refusal(s, "malformed_connect", "bad remaining length");
		session_refuse(s, MQTT_REFUSE_MALFORMED, "malformed_connect");
		return;
	}
	if (fr == MQTT_FRAME_TOO_LARGE) {
		size_t peek = len < 64 ? len : 64;

		(void)mqtt_connect_peek_version(evbuffer_pullup(s->to_up, (ssize_t)peek), peek,
		                                &s->mqtt_version);
		if (s->mqtt_version < MQTT_V31 || s->mqtt_version > MQTT_V5)
			s->mqtt_version = 0;
		log_refusal(s, "connect_too_large", NULL);
		session_refuse(s, MQTT_REFUSE_PACKET_TOO_LARGE, "connect_too_large");
		return;
	}
	if (len < f.total_len)
		return;
	p = evbuffer_pullup(s->to_up, (ssize_t)f.total_len);
	ce = mqtt_connect_parse(p, f.total_len, &c, &why);
	if (ce != MQTT_CONNECT_OK) {
		uint8_t v = c.version;

		if (v == 0)
			(void)mqtt_connect_peek_version(p, f.total_len, &v);
		s->mqtt_version = (v >= MQTT_V31 && v <= MQTT_V5) ? v : 0;
		refuse_parse_error(s, ce, why);
		return;
	}
	s->mqtt_version = c.version;
	keep_client_id(s, &c);
	session_authenticate(s, p, f.total_len);
}

/* Authentication admitted the client: connect to the broker. */
void session_connect_parsed(struct session *s)
{
	event_del(&s->ev_timer);
	session_try_connect(s);
}

static void enter_forwarding(struct session *s)
{
	s->state = S_FORWARDING;
	event_del(&s->ev_timer);
	/* An MQTT 5 client can be told why it is disconnected (shutdown, token
	 * expiry) if the broker's packet boundaries are known: follow them. */
	if (s->mqtt_version == MQTT_V5 && s->auth == NULL)
		s->auth = calloc(1, sizeof(*s->auth));
	if (s->auth)
		s->auth->track_down = s->mqtt_version == MQTT_V5;
	session_auth_forwarding(s);
	forward_up_out(s);
}

/*
 * Whether a connecting broker socket is up, learnt by writing the CONNECT:
 * on loopback the TCP handshake has usually finished inside connect()
 * already, and the write then saves a loop turn and a getsockopt. Returns
 * 1 when connected (bytes went out), 0 while still connecting, or -1 with
 * *err set when the connection failed.
 */
static int first_write(struct session *s, int *err)
{
	socklen_t elen = sizeof(*err);

	if (s->to_up && evbuffer_get_length(s->to_up) > 0) {
		if (evbuffer_write(s->to_up, s->ufd) > 0)
			return 1;
		*err = errno;
		return (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) ? 0 : -1;
	}
	if (getsockopt(s->ufd, SOL_SOCKET, SO_ERROR, err, &elen) != 0)
		*err = errno;
	return *err == 0 ? 1 : (*err == EINPROGRESS ? 0 : -1);
}

/* First call opens the broker connection; the next (socket writable or
 * failed) completes it. */
void session_try_connect(struct session *s)
{
	char addr[160];
	int in_progress = 0, err = 0, r;

	if (s->state == S_AUTHENTICATING) {
		s->ufd = address_connect(&s->w->proxy->upstream, &in_progress);
		if (s->ufd < 0) {
			err = errno;
			goto fail;
		}
		session_assign_upstream(s);
		if (!in_progress) {
			enter_forwarding(s);
			return;
		}
		s->state = S_UPSTREAM_CONNECTING;
		r = first_write(s, &err);
		if (r > 0) {
			enter_forwarding(s);
			return;
		}
		if (r < 0)
			goto fail;
		event_add(&s->ev_timer, &s->w->proxy->upstream_timeout);
		return;
	}
	if (s->state != S_UPSTREAM_CONNECTING)
		return;
	r = first_write(s, &err);
	if (r > 0) {
		enter_forwarding(s);
		return;
	}
	if (r == 0)
		return;   /* woken early; keep waiting */
fail:
	if (log_enabled(LOG_WARN)) {
		const struct address *u = &s->w->proxy->upstream;

		address_format((const struct sockaddr *)&u->sa, u->len, addr, sizeof(addr));
		log_msg(LOG_WARN, "broker %s unreachable: %s", addr, strerror(err));
	}
	session_refuse(s, MQTT_REFUSE_SERVER_UNAVAILABLE, "broker_unreachable");
}
