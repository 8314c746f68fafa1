#include <stdlib.h>

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

int proxy_install(struct proxy *p, struct config *cfg, SSL_CTX *ctx, struct auth_material *m)
{
	SSL_CTX *old_ctx;
	struct auth_material *old_m;

	if (cfg) {
		struct config **v = realloc(p->configs, (p->n_configs + 1) * sizeof(*v));

		if (v == NULL)
			return 0;
		p->configs = v;
		p->configs[p->n_configs++] = cfg;
	}
	pthread_mutex_lock(&p->lock);
	old_ctx = p->ssl_ctx;
	old_m = p->auth;
	p->ssl_ctx = ctx;
	p->auth = m;
	if (cfg) {
		/* Seen whole by whoever loads the pointer after this store. */
		atomic_store(&p->cfg, cfg);
		atomic_store(&p->max_buffer, (size_t)cfg->max_buffer);
		atomic_store(&p->max_connect_size, (size_t)cfg->max_connect_size);
	}
	pthread_mutex_unlock(&p->lock);
	SSL_CTX_free(old_ctx);
	auth_material_unref(old_m);
	return 1;
}

void proxy_free_configs(struct proxy *p)
{
	for (size_t i = 0; i < p->n_configs; i++) {
		config_cleanup(p->configs[i]);
		free(p->configs[i]);
	}
	free(p->configs);
	p->configs = NULL;
	p->n_configs = 0;
}
