/* Address helpers.  See net.h. */

#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "net.h"

int
net_resolve(const char *host_port, int socktype, struct addrinfo **ai)
{
    struct addrinfo   hints;
    const char       *colon = strrchr(host_port, ':');
    char              host[256];

    if (colon == NULL) {
        return EAI_NONAME;
    }

    snprintf(host, sizeof(host), "%.*s", (int) (colon - host_port),
             host_port);
    if (host[0] == '[') {
        memmove(host, host + 1, strlen(host));
        host[strcspn(host, "]")] = '\0';
    }

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = socktype;
    hints.ai_flags = AI_PASSIVE;

    return getaddrinfo(host[0] ? host : NULL, colon + 1, &hints, ai);
}
