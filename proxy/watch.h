/*
 * A watcher for the files a configuration loads (certificate, key, client
 * CA, CRL, users, JWT keys, the config file itself), so that a renewed
 * certificate is served without anyone sending SIGHUP.
 *
 * It watches the files' directories with inotify, not the files: tools
 * replace a file by renaming a new one over it (editors, certbot's symlinks
 * in live/) or, in Kubernetes, by swapping the "..data" symlink of a mounted
 * Secret or ConfigMap; a watch on the file would follow the old inode and
 * never see the new one. A change starts a quiet period: |fire| is called
 * once, on the watcher's own thread, when nothing watched has changed for
 * |quiet_ms| (a renewal writes the certificate and the key one after the
 * other, and a reload between the two would fail on a mismatch), or at the
 * latest ten quiet periods after the first change of a burst.
 */
#ifndef PROXY_WATCH_H
#define PROXY_WATCH_H

#include <stddef.h>

struct watch;

/* Called on the watcher's thread with the first changed path of a burst
 * (as it was given to watch_new). */
typedef void (*watch_fn)(void *arg, const char *path);

/*
 * Starts watching |paths| (|n| of them, borrowed for the call only). A path
 * that is or goes through a symlink is watched both where it is and where
 * it leads. Returns NULL with one line in |err| if inotify or the thread
 * cannot be started, or no directory could be watched.
 */
struct watch *watch_new(const char *const *paths, size_t n, unsigned quiet_ms, watch_fn fire,
                        void *arg, char *err, size_t errlen);

/* Stops the thread and frees |w|. A change seen whose quiet period had not
 * yet passed is reported at once (so that a new watcher can replace this
 * one without losing a change); |fire| is not called after it returns.
 * watch_free(NULL) is a no-op. */
void watch_free(struct watch *w);

#endif
