/*
 * The WebSocket stage (session_int.h): between the TLS handshake and the
 * CONNECT on a --ws-listen listener. It reads the client's HTTP/1.1
 * upgrade request from to_up (the decrypted bytes, bounded by
 * WS_UPGRADE_MAX), and answers 101 or the refusal; after that the byte
 * mover decodes frames (ws_forward.c) and to_up holds plain MQTT bytes, so
 * CONNECT parsing, auth and limits are those of a TLS client.
 *
 * The answers are written raw (ws->raw), not through to_client, whose
 * bytes the byte mover frames. Like every stage it returns an outcome and
 * never sets s->state: the hub decides.
 */
#include <stdlib.h>
#include <string.h>

#include "proxy/log.h"
#include "proxy/session_int.h"
#include "proxy/worker.h"
#include "proxy/ws_conn.h"
#include "proxy/ws_upgrade.h"

/* The largest MQTT packet (a 268,435,455-byte remaining length and its
 * 5-byte fixed header): a data frame cannot need to be longer, and one
 * that claims to be is refused with 1009 before any of it is read. */
#define WS_FRAME_MAX ((uint64_t)268435455 + 5)

int ws_stage_start(struct session *s)
{
	struct ws_conn *w = calloc(1, sizeof(*w));

	if (w == NULL)
		return 0;
	ws_decoder_init(&w->dec, WS_FRAME_MAX);
	s->ws = w;
	return 1;
}

void ws_conn_free(struct ws_conn *w)
{
	if (w == NULL)
		return;
	ws_raw_clear(w);
	free(w);
}

static void count(struct session *s, enum ws_upgrade_label l)
{
	if (s->ws->counted)
		return;
	s->ws->counted = 1;
	counter_add(&s->w->metrics.ws_upgrades[l], 1);
}

/* The close reason and metric of a refused upgrade. */
static const char *refusal(struct session *s, const struct ws_upgrade *u)
{
	if (u->status == 404) {
		count(s, WSU_BAD_PATH);
		return "ws_bad_path";
	}
	if (u->status == 431) {
		count(s, WSU_TOO_LARGE);
		return "ws_header_too_large";
	}
	if (u->want_version) {
		count(s, WSU_BAD_VERSION);
		return "ws_bad_version";
	}
	count(s, WSU_BAD_REQUEST);
	return "ws_bad_request";
}

int ws_raw_set(struct ws_conn *w, const void *p, size_t n)
{
	uint8_t *copy;

	if (n == 0 || n > WS_RAW_MAX || (copy = malloc(n)) == NULL)
		return 0;
	memcpy(copy, p, n);
	free(w->raw);
	w->raw = copy;
	w->raw_len = (uint16_t)n;
	w->raw_busy = 0;
	return 1;
}

void ws_raw_clear(struct ws_conn *w)
{
	free(w->raw);
	w->raw = NULL;
	w->raw_len = 0;
	w->raw_busy = 0;
}

/* The byte mover counted the request's bytes as client->broker plaintext
 * (it reads them before anyone knows they are HTTP): they are not MQTT and
 * never reach the broker, so they come off the session's and the
 * worker's counts. */
static void uncount(struct session *s, size_t n)
{
	n = n < s->bytes_in ? n : (size_t)s->bytes_in;
	s->bytes_in -= n;
	counter_add(&s->w->metrics.bytes[BYTES_CLIENT_TO_BROKER], (uint64_t)0 - n);
}

enum ws_step ws_stage_upgrade(struct session *s, const char **reason)
{
	struct ws_conn *w = s->ws;
	struct ws_upgrade u;
	size_t have = bufq_len(&s->to_up);
	const uint8_t *head;
	char answer[WS_RAW_MAX];

	if (have == 0)
		return WS_STEP_NEED_MORE;
	if ((head = bufq_pullup(&s->to_up, session_blocks(s), have)) == NULL)
		return WS_STEP_OOM;
	switch (ws_upgrade_parse(head, have, s->w->proxy->cfg->ws_path, WS_UPGRADE_MAX, &u)) {
	case WS_UPGRADE_NEED_MORE:
		return WS_STEP_NEED_MORE;
	case WS_UPGRADE_REFUSE:
		*reason = refusal(s, &u);
		session_log_refusal(s, *reason, u.why);
		uncount(s, have);
		bufq_clear(&s->to_up, session_blocks(s));
		/* Without memory for the answer the close alone says it. */
		(void)ws_raw_set(w, answer, ws_upgrade_refuse(&u, answer, sizeof(answer)));
		return WS_STEP_REFUSE;
	case WS_UPGRADE_OK:
		break;
	}
	if (!ws_raw_set(w, answer, ws_upgrade_accept(&u, answer, sizeof(answer))))
		return WS_STEP_OOM;
	count(s, WSU_OK);
	bufq_drain(&s->to_up, session_blocks(s), u.request_len);
	uncount(s, u.request_len);
	/* What followed the request is frames: the byte mover decodes them
	 * (ws_forward_rest), as it will decode all that comes next. */
	w->upgraded = 1;
	return WS_STEP_OK;
}

void ws_stage_abandoned(struct session *s, const char *reason)
{
	if (s->ws == NULL)
		return;
	uncount(s, bufq_len(&s->to_up));
	count(s, reason && strcmp(reason, "ws_upgrade_timeout") == 0 ? WSU_TIMEOUT : WSU_ABORTED);
}

void ws_stage_close(struct session *s, uint16_t code)
{
	struct ws_conn *w = s->ws;

	if (w == NULL || !w->upgraded || w->close != WS_CLOSE_NONE)
		return;
	w->close_len = (uint8_t)ws_close_frame(w->close_frame, code);
	w->close = WS_CLOSE_QUEUED;
}

const char *ws_stage_end_reason(const struct session *s)
{
	return s->ws && s->ws->end_reason ? s->ws->end_reason : "client_closed";
}

size_t ws_stage_pending(const struct session *s)
{
	const struct ws_conn *w = s->ws;

	return (size_t)w->raw_len + w->hdr_len + (w->close == WS_CLOSE_QUEUED ? w->close_len : 0);
}
