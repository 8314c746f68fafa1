#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include "proxy/address.h"

static int parse_unix(const char *path, struct address *out, char *err, size_t errlen)
{
	struct sockaddr_un *un = (struct sockaddr_un *)&out->sa;

	if (*path == '\0' || strlen(path) >= sizeof(un->sun_path)) {
		snprintf(err, errlen, "unix socket path is empty or too long");
		return 0;
	}
	un->sun_family = AF_UNIX;
	strcpy(un->sun_path, path);
	out->len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path) + 1);
	return 1;
}

int address_parse(const char *spec, int allow_unix, struct address *out, char *err, size_t errlen)
{
	char host[256];
	const char *port, *colon;
	struct addrinfo hints, *res = NULL;
	size_t hlen;
	int rc;

	memset(out, 0, sizeof(*out));
	if (strncmp(spec, "unix:", 5) == 0) {
		if (!allow_unix) {
			snprintf(err, errlen, "'%s': unix sockets are not allowed here", spec);
			return 0;
		}
		return parse_unix(spec + 5, out, err, errlen);
	}
	if (spec[0] == '[') {
		const char *close = strchr(spec, ']');

		if (close == NULL || close[1] != ':') {
			snprintf(err, errlen, "'%s': expected [IPV6]:PORT", spec);
			return 0;
		}
		hlen = (size_t)(close - spec - 1);
		colon = close + 1;
		spec++;
	} else {
		colon = strrchr(spec, ':');
		if (colon == NULL) {
			snprintf(err, errlen, "'%s': expected HOST:PORT", spec);
			return 0;
		}
		hlen = (size_t)(colon - spec);
	}
	port = colon + 1;
	if (hlen == 0 || hlen >= sizeof(host) || *port == '\0' || strspn(port, "0123456789") != strlen(port) ||
	    atol(port) > 65535) {
		snprintf(err, errlen, "'%s': expected HOST:PORT with a port from 0 to 65535", spec);
		return 0;
	}
	memcpy(host, spec, hlen);
	host[hlen] = '\0';
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	rc = getaddrinfo(host, port, &hints, &res);
	if (rc != 0 || res == NULL) {
		snprintf(err, errlen, "'%s': cannot resolve %s: %s", spec, host, gai_strerror(rc));
		return 0;
	}
	memcpy(&out->sa, res->ai_addr, res->ai_addrlen);
	out->len = res->ai_addrlen;
	freeaddrinfo(res);
	return 1;
}

void address_format(const struct sockaddr *sa, socklen_t len, char *out, size_t cap)
{
	char ip[INET6_ADDRSTRLEN];

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;

		inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
		snprintf(out, cap, "%s:%u", ip, ntohs(in->sin_port));
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;

		inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
		snprintf(out, cap, "[%s]:%u", ip, ntohs(in6->sin6_port));
	} else if (sa->sa_family == AF_UNIX && len > offsetof(struct sockaddr_un, sun_path)) {
		/* The kernel may fill sun_path without a NUL: bound it by |len|. */
		size_t max = len - offsetof(struct sockaddr_un, sun_path);
		const char *path = ((const struct sockaddr_un *)sa)->sun_path;

		if (max > sizeof(((struct sockaddr_un *)0)->sun_path))
			max = sizeof(((struct sockaddr_un *)0)->sun_path);
		snprintf(out, cap, "unix:%.*s", (int)strnlen(path, max), path);
	} else {
		snprintf(out, cap, "?");
	}
}

int address_connect(const struct address *a, int *in_progress)
{
	int fd = socket(a->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1;

	*in_progress = 0;
	if (fd < 0)
		return -1;
	/* MQTT packets are small and latency matters more than segment count. */
	if (a->sa.ss_family != AF_UNIX)
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (const struct sockaddr *)&a->sa, a->len) == 0)
		return fd;
	if (errno == EINPROGRESS) {
		*in_progress = 1;
		return fd;
	}
	{
		int saved = errno;

		close(fd);
		errno = saved;
	}
	return -1;
}
