/*
 * One benchmark client's life (client.h): a state machine driven by two
 * persistent fd events (readable, writable), armed only while needed, and
 * one timer for the stage timeout, the hold and the keepalive pings.
 */
#include "bench/client.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>

#include "bench/client_msg.h"
#include "bench/jwt_mint.h"
#include "bench/mqtt_codec.h"
#include "bench/tls_client.h"
#include "bench/ws_client.h"

static void on_io(evutil_socket_t fd, short what, void *arg);
static void on_timer(evutil_socket_t fd, short what, void *arg);

static struct bench_client *client_from_arg(void *arg)
{
	struct bench_client *c = arg;

	if (c->magic != CLIENT_MAGIC)
		abort();        /* a callback on a freed client: fail loudly */
	return c;
}

void bench_client_arm(struct bench_client *c, int want_read, int want_write)
{
	if (want_read && !c->rd_on)
		event_add(&c->rd, NULL);
	else if (!want_read && c->rd_on)
		event_del(&c->rd);
	if (want_write && !c->wr_on)
		event_add(&c->wr, NULL);
	else if (!want_write && c->wr_on)
		event_del(&c->wr);
	c->rd_on = want_read;
	c->wr_on = want_write;
}

void bench_client_set_timer(struct bench_client *c, double seconds)
{
	struct timeval tv;

	tv.tv_sec = (time_t)seconds;
	tv.tv_usec = (suseconds_t)((seconds - (double)tv.tv_sec) * 1e6);
	event_add(&c->timer, &tv);
}

/* Releases the socket and the SSL and hands the client to the worker's dead
 * list; after this no callback of |c| runs again. */
static void close_now(struct bench_client *c)
{
	int was_pending = c->pending;

	if (c->state == CLIENT_CLOSED)
		return;
	if (c->state == CLIENT_CONNECTED)
		atomic_fetch_sub(&c->w->stats.active, 1);
	c->state = CLIENT_CLOSED;
	c->pending = 0;
	if (c->msg != NULL)
		bench_msg_stop(c);
	event_del(&c->rd);
	event_del(&c->wr);
	event_del(&c->timer);
	SSL_free(c->ssl);
	c->ssl = NULL;
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	bench_worker_client_closed(c->w, c, was_pending);
}

void bench_client_fail(struct bench_client *c, enum bench_error kind)
{
	if (c->state == CLIENT_CLOSED)
		return;
	bench_stats_error(&c->w->stats, kind);
	close_now(c);
}

int bench_client_flush(struct bench_client *c)
{
	enum bench_error err = BERR_TCP_OTHER;
	size_t done;

	c->write_wants_read = 0;
	while (c->out_off < c->out_len) {
		switch (bench_client_io_write(c, &c->out[c->out_off], c->out_len - c->out_off, &done, &err)) {
		case IO_OK:
			c->out_off += (uint32_t)done;
			break;
		case IO_WANT_WRITE:
			bench_client_arm(c, 1, 1);
			return 1;
		case IO_WANT_READ:
			c->write_wants_read = 1;
			bench_client_arm(c, 1, 0);
			return 1;
		case IO_CLOSED:
			bench_client_fail(c, BERR_CLOSED);
			return 0;
		case IO_FAILED:
			bench_client_fail(c, err);
			return 0;
		}
	}
	c->out_off = c->out_len = 0;
	bench_client_arm(c, 1, c->read_wants_write || c->pump_more);
	return 1;
}

struct outbuf bench_client_out_tail(struct bench_client *c)
{
	struct outbuf o;

	/* Queued bytes stay in place; new packets go after them. */
	outbuf_init(&o, &c->out[c->out_len], c->out_cap - c->out_len);
	return o;
}

int bench_client_send_connect(struct bench_client *c)
{
	const struct bench_options *opt = c->w->opt;
	char id[128];
	struct mqttc_connect m = { 0 };
	struct outbuf o = bench_client_out_tail(c);
	int n;

	n = snprintf(id, sizeof(id), "%s%u", opt->client_id, (unsigned)c->index);
	if (n < 0 || (size_t)n >= sizeof(id))
		n = sizeof(id) - 1;
	m.version = opt->mqtt_version;
	m.clean_start = 1;
	m.keepalive = (uint16_t)opt->keepalive;
	m.client_id = (struct slice){ (const uint8_t *)id, (size_t)n };
	if (opt->username != NULL) {
		m.has_username = 1;
		m.username = (struct slice){ (const uint8_t *)opt->username, strlen(opt->username) };
	}
	if (opt->password != NULL) {
		m.has_password = 1;
		m.password = (struct slice){ (const uint8_t *)opt->password, strlen(opt->password) };
	}
	if (c->token != NULL) {
		m.has_password = 1;
		m.password = (struct slice){ (const uint8_t *)c->token, c->token_len };
	}
	if (!mqttc_encode_connect(&o, &m)) {
		bench_client_fail(c, BERR_PROTOCOL);         /* checked at startup; cannot happen */
		return 0;
	}
	/* A held client needs its token no more. */
	free(c->token);
	c->token = NULL;
	c->out_len += (uint32_t)o.len;
	c->state = CLIENT_AWAIT_CONNACK;
	c->t_stage = bench_now_ns();
	bench_client_set_timer(c, opt->timeout);
	return bench_client_flush(c);
}

static void tls_step(struct bench_client *c)
{
	int rc, ssl_err;

	errno = 0;
	rc = SSL_do_handshake(c->ssl);
	if (rc == 1) {
		histogram_record(c->w->stats.tls_handshake, bench_now_ns() - c->t_stage);
		if (SSL_session_reused(c->ssl))
			c->w->stats.resumed++;
		if (c->ws != NULL)
			bench_ws_start(c);
		else
			bench_client_send_connect(c);
		return;
	}
	ssl_err = SSL_get_error(c->ssl, rc);
	if (ssl_err == SSL_ERROR_WANT_READ)
		bench_client_arm(c, 1, 0);
	else if (ssl_err == SSL_ERROR_WANT_WRITE)
		bench_client_arm(c, 0, 1);
	else
		bench_client_fail(c, bench_client_tls_error(c, ssl_err));
}

static void tcp_connected(struct bench_client *c)
{
	uint64_t now = bench_now_ns();

	histogram_record(c->w->stats.tcp_connect, now - c->t_start);
	c->t_stage = now;
	if (c->w->n_ssl_ctxs == 0) {
		if (c->ws != NULL)
			bench_ws_start(c);
		else
			bench_client_send_connect(c);
		return;
	}
	c->ssl = bench_tls_new(c->w->ssl_ctxs[c->index % c->w->n_ssl_ctxs], c->fd, c->w->opt->sni);
	if (c->ssl == NULL) {
		bench_client_fail(c, BERR_TLS_OTHER);
		return;
	}
	/* The ticket callback finds the worker through the client. */
	SSL_set_app_data(c->ssl, c);
	if (c->w->session != NULL)
		SSL_set_session(c->ssl, c->w->session);
	c->state = CLIENT_TLS_HANDSHAKE;
	bench_client_set_timer(c, c->w->opt->timeout);
	tls_step(c);
}

static int send_ping(struct bench_client *c)
{
	struct outbuf o = bench_client_out_tail(c);

	if (!mqttc_encode_pingreq(&o))
		return 1;               /* a write is still queued; try next period */
	c->out_len += (uint32_t)o.len;
	c->ping_outstanding = 1;
	c->t_ping = bench_now_ns();
	bench_client_set_timer(c, c->w->opt->timeout);
	return bench_client_flush(c);
}

void bench_client_ready(struct bench_client *c)
{
	if (!c->pending)
		return;
	c->pending = 0;
	bench_worker_client_connected(c->w);
}

/* Returns 0 if the client closed. */
static int on_connack(struct bench_client *c, const struct mqttc_packet *p)
{
	const struct bench_options *opt = c->w->opt;
	uint64_t now = bench_now_ns();

	histogram_record(c->w->stats.connack, now - c->t_stage);
	histogram_record(c->w->stats.total, now - c->t_start);
	if (p->reason != 0) {
		c->w->stats.refused_by_code[p->reason]++;
		bench_client_fail(c, BERR_REFUSED);
		return 0;
	}
	c->state = CLIENT_CONNECTED;
	event_del(&c->timer);
	atomic_fetch_add(&c->w->stats.connected, 1);
	atomic_fetch_add(&c->w->stats.active, 1);
	if (now > c->w->t_last_connack_ns)
		c->w->t_last_connack_ns = now;
	if (c->msg != NULL) {
		if (!bench_msg_connected(c))
			return 0;
		if (c->msg->sub_pending)
			return 1;       /* ready once the SUBACK is in */
		if (opt->keepalive > 0)
			bench_client_set_timer(c, (double)opt->keepalive);
	}
	bench_client_ready(c);
	if (c->state != CLIENT_CONNECTED)
		return 0;               /* the run ended with this CONNACK */
	if (opt->churn) {
		bench_client_disconnect(c);
		return 0;
	}
	if (opt->scenario == SCENARIO_IDLE)
		bench_client_set_timer(c, (double)opt->keepalive);
	else if (opt->hold > 0 && c->msg == NULL)
		bench_client_set_timer(c, opt->hold);
	return 1;
}

int bench_client_on_packet(struct bench_client *c, const struct mqttc_packet *p)
{
	if (c->state == CLIENT_AWAIT_CONNACK) {
		if (p->type != MQTT_CONNACK) {
			bench_client_fail(c, BERR_PROTOCOL);     /* [MQTT-3.2.0-1] CONNACK comes first */
			return 0;
		}
		return on_connack(c, p);
	}
	switch (p->type) {
	case MQTT_PINGRESP:
		if (c->ping_outstanding) {
			histogram_record(c->w->stats.ping, bench_now_ns() - c->t_ping);
			c->w->stats.pings++;
			c->ping_outstanding = 0;
			bench_client_set_timer(c, (double)c->w->opt->keepalive);
		}
		return 1;
	case MQTT_DISCONNECT:
		bench_client_fail(c, BERR_CLOSED);
		return 0;
	case MQTT_CONNACK:
		bench_client_fail(c, BERR_PROTOCOL);
		return 0;
	default:
		/* Without a message scenario nothing is subscribed: ignore the rest. */
		return c->msg == NULL || bench_msg_packet(c, p);
	}
}

static void on_io(evutil_socket_t fd, short what, void *arg)
{
	struct bench_client *c = client_from_arg(arg);
	int err = 0;
	socklen_t len = sizeof(err);

	switch (c->state) {
	case CLIENT_TCP_CONNECTING:
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
			err = errno;
		if (err != 0) {
			bench_client_fail(c, bench_client_errno_kind(err));
			return;
		}
		bench_client_arm(c, 0, 0);
		tcp_connected(c);
		return;
	case CLIENT_TLS_HANDSHAKE:
		tls_step(c);
		return;
	case CLIENT_WS_UPGRADE:
		if (((what & EV_WRITE) || c->write_wants_read) && !bench_client_flush(c))
			return;
		if (what & EV_READ)
			bench_ws_on_upgrade_readable(c);
		return;
	case CLIENT_AWAIT_CONNACK:
	case CLIENT_CONNECTED:
		if ((what & EV_WRITE) && !c->read_wants_write) {
			if (!(c->pump_more ? bench_msg_pump(c) : bench_client_flush(c)))
				return;
		}
		if ((what & EV_READ) && c->write_wants_read && !bench_client_flush(c))
			return;
		if ((what & EV_READ) || c->read_wants_write || c->read_paused)
			bench_client_on_readable(c);
		return;
	case CLIENT_CLOSED:
		return;
	}
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct bench_client *c = client_from_arg(arg);
	const struct bench_options *o = c->w->opt;

	if (c->state != CLIENT_CONNECTED || c->ping_outstanding ||
	    (c->msg != NULL && c->msg->sub_pending)) {
		bench_client_fail(c, BERR_TIMEOUT);
		return;
	}
	if (o->scenario == SCENARIO_IDLE || (c->msg != NULL && o->keepalive > 0))
		send_ping(c);
	else
		bench_client_disconnect(c);   /* --hold elapsed */
}

/* --source-ips: binds the socket to the client's share of the range. The
 * port is chosen at connect() time, so each address has its full range. */
static int bind_source(struct bench_client *c)
{
	const struct bench_options *o = c->w->opt;
	struct sockaddr_in sin;
	int one = 1;

	if (o->src_count == 0)
		return 1;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(o->src_first + c->index % o->src_count);
	setsockopt(c->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
	return bind(c->fd, (const struct sockaddr *)&sin, sizeof(sin)) == 0;
}

/* Mints the client's token; the cost is counted apart from the latencies. */
static int mint_token(struct bench_client *c)
{
	char tok[JWT_MINT_MAX];
	uint64_t t0 = bench_now_ns();

	if (!jwt_minter_mint(c->w->minter, c->index, (int64_t)time(NULL), tok, sizeof(tok), &c->token_len))
		return 0;
	c->token = malloc(c->token_len);
	if (c->token == NULL)
		return 0;
	memcpy(c->token, tok, c->token_len);
	c->w->stats.jwt_minted++;
	c->w->stats.jwt_mint_ns += bench_now_ns() - t0;
	return 1;
}

int bench_client_start(struct bench_worker *w, uint32_t index)
{
	struct bench_client *c = calloc(1, sizeof(*c));
	int one = 1;

	if (c == NULL)
		return 0;
	c->w = w;
	c->index = index;
	if (w->minter != NULL && !mint_token(c)) {
		free(c->token);
		free(c);
		return 0;
	}
	c->magic = CLIENT_MAGIC;
	c->state = CLIENT_TCP_CONNECTING;
	c->pending = 1;
	c->out = c->out_small;
	c->out_cap = sizeof(c->out_small);
	c->in = c->in_small;
	c->in_cap = sizeof(c->in_small);
	c->next = w->live;
	if (w->live != NULL)
		w->live->prev = c;
	w->live = c;
	atomic_fetch_add(&w->stats.started, 1);
	c->t_start = bench_now_ns();
	c->fd = socket(w->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	event_assign(&c->rd, w->base, c->fd, EV_READ | EV_PERSIST, on_io, c);
	event_assign(&c->wr, w->base, c->fd, EV_WRITE | EV_PERSIST, on_io, c);
	event_assign(&c->timer, w->base, -1, 0, on_timer, c);
	if (c->fd < 0) {
		bench_client_fail(c, bench_client_errno_kind(errno));
		return 1;
	}
	if (bench_scenario_messages(w->opt->scenario) && !bench_msg_attach(c)) {
		bench_client_fail(c, BERR_TCP_OTHER);
		return 1;
	}
	/* After bench_msg_attach: the frame buffer matches the output buffer. */
	if (w->opt->ws != NULL && !bench_ws_attach(c)) {
		bench_client_fail(c, BERR_TCP_OTHER);
		return 1;
	}
	if (!bind_source(c)) {
		bench_client_fail(c, bench_client_errno_kind(errno));
		return 1;
	}
	/* Small packets must not wait for Nagle: latency is what we measure.
	 * --nagle measures what clients that leave it on get. */
	if (!w->opt->nagle)
		setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	bench_client_set_timer(c, w->opt->timeout);
	if (connect(c->fd, (const struct sockaddr *)&w->addr, w->addr_len) == 0) {
		tcp_connected(c);
		return 1;
	}
	if (errno != EINPROGRESS) {
		bench_client_fail(c, bench_client_errno_kind(errno));
		return 1;
	}
	bench_client_arm(c, 0, 1);
	return 1;
}

void bench_client_disconnect(struct bench_client *c)
{
	struct outbuf o;
	size_t done;
	enum bench_error err;

	if (c->state == CLIENT_CLOSED)
		return;
	if (c->state == CLIENT_CONNECTED) {
		/* Best effort, one write: a clean DISCONNECT then close_notify. */
		o = bench_client_out_tail(c);
		if (mqttc_encode_disconnect(&o, c->w->opt->mqtt_version, 0))
			c->out_len += (uint32_t)o.len;
		if (bench_client_io_write(c, &c->out[c->out_off], c->out_len - c->out_off, &done, &err) == IO_OK &&
		    c->ssl != NULL)
			SSL_shutdown(c->ssl);
		ERR_clear_error();
	}
	close_now(c);
}

void bench_client_free(struct bench_client *c)
{
	if (c == NULL)
		return;
	bench_msg_detach(c);
	bench_ws_free(c->ws);
	free(c->token);
	c->magic = 0;
	free(c);
}
