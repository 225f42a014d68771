/* Address helpers shared by ingest (UDP) and HTTP (TCP). */

#ifndef OBS_NET_H
#define OBS_NET_H

#include <netdb.h>

/*
 * Resolves "host:port" (host may be "[v6]" or empty for any address) for a
 * passive socket of the given type; returns getaddrinfo's code.
 */
int net_resolve(const char *host_port, int socktype, struct addrinfo **ai);

#endif
