#include "proxy/auth/policy.h"
#include "proxy/proxy.h"

SSL_CTX *proxy_get_ssl_ctx(struct proxy *p)
{
	SSL_CTX *ctx;

	pthread_mutex_lock(&p->lock);
	ctx = p->ssl_ctx;
	SSL_CTX_up_ref(ctx);
	pthread_mutex_unlock(&p->lock);
	return ctx;
}

void proxy_swap_ssl_ctx(struct proxy *p, SSL_CTX *ctx)
{
	SSL_CTX *old;

	pthread_mutex_lock(&p->lock);
	old = p->ssl_ctx;
	p->ssl_ctx = ctx;
	pthread_mutex_unlock(&p->lock);
	/* Each SSL holds its own reference, so live sessions are unaffected. */
	SSL_CTX_free(old);
}

struct auth_material *proxy_get_auth(struct proxy *p)
{
	struct auth_material *m;

	pthread_mutex_lock(&p->lock);
	m = auth_material_ref(p->auth);
	pthread_mutex_unlock(&p->lock);
	return m;
}

void proxy_swap_auth(struct proxy *p, struct auth_material *m)
{
	struct auth_material *old;

	pthread_mutex_lock(&p->lock);
	old = p->auth;
	p->auth = m;
	pthread_mutex_unlock(&p->lock);
	auth_material_unref(old);
}
