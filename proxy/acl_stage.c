/*
 * The topic ACL in a session (--acl-file, a token's `acl` claim): who the
 * rules are about, and the session's buffers handed to the filter
 * (acl_filter.c).
 *
 * Sessions no ACL applies to never get here past one branch: s->acl stays
 * NULL and their bytes are not parsed. A session keeps the table it was
 * admitted with: a reload changes the decisions of new connections only,
 * so that what a client was granted (a subscription already at the broker
 * stays there anyway) does not change under it mid-session.
 *
 * A stage (session_int.h): it prepares the buffers and returns outcomes;
 * the hub answers, disconnects and sends.
 */
#include <stdlib.h>
#include <string.h>

#include "mqtt/packet.h"
#include "proxy/auth/policy.h"
#include "proxy/session_int.h"
#include "proxy/worker.h"

static struct acl_io io_of(struct session *s)
{
	struct acl_io io = { &s->to_up, &s->to_client, s->end ? &s->end->down : NULL, session_blocks(s),
	                     &s->w->metrics };

	return io;
}

/* The CONNECT at the front of to_up (the one the broker gets), parsed into
 * |c|, which points into to_up until it changes. Returns its length, or 0. */
static size_t front_connect(struct session *s, struct mqtt_connect *c)
{
	uint8_t hdr[5];
	size_t have = bufq_len(&s->to_up), n = have < sizeof(hdr) ? have : sizeof(hdr);
	struct mqtt_frame fr;
	const uint8_t *pkt;

	if (n < 2 || !bufq_copyout(&s->to_up, 0, hdr, n) ||
	    mqtt_frame_parse(hdr, n, have, &fr) != MQTT_FRAME_OK || fr.type != MQTT_CONNECT ||
	    (pkt = bufq_pullup(&s->to_up, session_blocks(s), fr.total_len)) == NULL ||
	    mqtt_connect_parse(pkt, fr.total_len, c, NULL) != MQTT_CONNECT_OK)
		return 0;
	return fr.total_len;
}

enum acl_attach acl_attach(struct session *s, size_t *connect_len)
{
	const struct config *cfg = s->w->proxy->cfg;
	struct acl *claim = s->auth ? s->auth->acl : NULL, *file = NULL;
	struct auth_material *m;
	struct mqtt_connect c;
	struct slice user;
	int disconnect = 0, has_user;
	size_t len;

	if (cfg->acl_file == NULL && claim == NULL)
		return ACL_OFF;
	m = proxy_get_auth(s->w->proxy);
	if (m) {
		file = acl_ref(m->acl);
		disconnect = m->acl_disconnect;
	}
	auth_material_unref(m);
	if (file == NULL && claim == NULL)
		return ACL_OFF;
	if ((len = front_connect(s, &c)) == 0 || !end_follow(s)) {
		/* The CONNECT was parsed once already: only memory can fail. */
		acl_free(file);
		return ACL_ATTACH_OOM;
	}
	/* %u is who the auth stage decided the client is; without a policy,
	 * the username the broker sees. */
	if (s->auth && s->auth->identity) {
		user = (struct slice){ (const uint8_t *)s->auth->identity, strlen(s->auth->identity) };
		has_user = 1;
	} else {
		user = c.username;
		has_user = c.has_username;
	}
	if (claim)
		s->auth->acl = NULL;    /* the ACL state owns it from here */
	s->acl = acl_session_new(file, claim, has_user ? &user : NULL, c.client_id, c.version, disconnect);
	if (s->acl == NULL)
		return ACL_ATTACH_OOM;
	*connect_len = len;
	return ACL_ON;
}

enum acl_step acl_up(struct session *s, size_t from, struct acl_report *rep)
{
	struct acl_io io = io_of(s);
	enum acl_step r = acl_filter_up(s->acl, &io, from, rep);

	if (r == ACL_REFUSE)
		session_log_refusal(s, "protocol_error", rep->why);
	return r;
}

enum acl_down acl_down(struct session *s, size_t from)
{
	struct acl_io io;

	if (!acl_down_busy(s->acl))
		return ACL_DOWN_IDLE;
	io = io_of(s);
	return acl_filter_down(s->acl, &io, from) ? ACL_DOWN_DONE : ACL_DOWN_OOM;
}
