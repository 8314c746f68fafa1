#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/auth/faildelay.h"

#define SLOTS 4096

struct slot {
	uint8_t addr[16];
	uint8_t len;
	uint32_t failures;
	uint64_t last_ms;
};

struct faildelay {
	pthread_mutex_t lock;
	struct slot slots[SLOTS];
};

struct faildelay *faildelay_new(void)
{
	struct faildelay *fd = calloc(1, sizeof(*fd));

	if (fd && pthread_mutex_init(&fd->lock, NULL) != 0) {
		free(fd);
		fd = NULL;
	}
	return fd;
}

void faildelay_free(struct faildelay *fd)
{
	if (fd == NULL)
		return;
	pthread_mutex_destroy(&fd->lock);
	free(fd);
}

static uint32_t hash(const uint8_t *p, size_t len)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < len; i++)
		h = (h ^ p[i]) * 16777619u;
	return h;
}

uint32_t faildelay_record(struct faildelay *fd, const void *addr, size_t len, uint64_t now_ms,
                          uint32_t base_ms)
{
	struct slot *s;
	uint64_t delay;

	if (base_ms == 0 || len == 0 || len > sizeof(s->addr))
		return 0;
	pthread_mutex_lock(&fd->lock);
	s = &fd->slots[hash(addr, len) % SLOTS];
	if (s->len != len || memcmp(s->addr, addr, len) != 0 || now_ms - s->last_ms > FAILDELAY_FORGET_MS) {
		memset(s, 0, sizeof(*s));
		memcpy(s->addr, addr, len);
		s->len = (uint8_t)len;
	}
	if (s->failures < 32)
		s->failures++;
	s->last_ms = now_ms;
	delay = (uint64_t)base_ms << (s->failures - 1);
	pthread_mutex_unlock(&fd->lock);
	return delay > FAILDELAY_MAX_MS ? FAILDELAY_MAX_MS : (uint32_t)delay;
}
