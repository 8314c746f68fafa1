/*
 * `mqtls passwd`: creates and updates entries of a password file in the
 * format passwd.h reads (and mosquitto reads too).
 *
 *   mqtls passwd [-c] [--argon2id | --pbkdf2 | --sha512] FILE USER
 *   mqtls passwd [-c] [--argon2id | --pbkdf2 | --sha512] -b FILE USER PASSWORD
 *   mqtls passwd -D FILE USER
 *
 *   -c          create FILE (replacing it) instead of updating it
 *   -b          take the password from the command line (it is then visible
 *               to other local users in the process list; for scripts only)
 *   -D          delete USER's entry
 *   --argon2id  argon2id, 19 MiB, 2 passes, 1 lane (the default)
 *   --pbkdf2    PBKDF2-HMAC-SHA512, 210000 iterations, 12-byte salt ($7$,
 *               which mosquitto 2.0 and later can read; 2.0 accepts only
 *               12-byte salts)
 *   --sha512    salted SHA-512 ($6$), 12-byte salt: only for brokers
 *               older than 2.0
 *
 * Without -b the password is read from the terminal twice with echo off,
 * or as one line from standard input when that is not a terminal.
 * Other lines of the file, comments included, are kept as they are. The
 * file is replaced atomically (written to a temporary file in the same
 * directory, synced, then renamed) and always has mode 0600.
 */
#ifndef PROXY_AUTH_PASSWD_TOOL_H
#define PROXY_AUTH_PASSWD_TOOL_H

/* Runs the sub-command; argv[0] is "passwd". Messages go to stderr.
 * Returns the process exit status: 0 on success, 1 on error, 2 on a usage
 * error. */
int passwd_tool_main(int argc, char **argv);

#endif
