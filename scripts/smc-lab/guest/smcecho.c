/* smcecho: minimal AF_SMC / AF_INET echo server and client for the SMC lab.
 *   smcecho server <smc|tcp|smcinet> <4|6> <addr> <port> [nconn]
 *   smcecho client <smc|tcp|smcinet> <4|6> <addr> <port> [message]
 * smc     = socket(AF_SMC, SOCK_STREAM, SMCPROTO_SMC / SMCPROTO_SMC6)
 * tcp     = socket(AF_INET/AF_INET6, SOCK_STREAM, 0)
 * smcinet = socket(AF_INET/AF_INET6, SOCK_STREAM, IPPROTO_SMC=256) (Linux >= 6.11)
 * ulp     = a TCP socket turned into SMC with setsockopt(TCP_ULP, "smc") (5.17 to 6.x; 7.0
 *           removed the smc ULP: the setsockopt fails and the socket stays TCP)
 * Environment (the pre-handshake fallbacks of net/smc):
 *   SMCECHO_TFO=connect  client: setsockopt(TCP_FASTOPEN_CONNECT) before connect()
 *   SMCECHO_TFO=sendto   client: sendto(MSG_FASTOPEN) instead of connect() + write()
 *   SMCECHO_TFO=listen   server: setsockopt(TCP_FASTOPEN, 5) on the listener
 *   SMCECHO_CONNS=N      client: N connections at once (N processes), exit 1 if any failed
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef AF_SMC
#define AF_SMC 43
#endif
#define SMCPROTO_SMC 0
#define SMCPROTO_SMC6 1
#ifndef TCP_FASTOPEN_CONNECT
#define TCP_FASTOPEN_CONNECT 30
#endif
#ifndef TCP_ULP
#define TCP_ULP 31
#endif
#ifndef MSG_FASTOPEN
#define MSG_FASTOPEN 0x20000000
#endif
#ifndef IPPROTO_SMC
#define IPPROTO_SMC 256
#endif

static int mksock(const char *kind, int v6)
{
	int fam = v6 ? AF_INET6 : AF_INET, s;
	if (!strcmp(kind, "smc"))
		s = socket(AF_SMC, SOCK_STREAM, v6 ? SMCPROTO_SMC6 : SMCPROTO_SMC);
	else if (!strcmp(kind, "smcinet"))
		s = socket(fam, SOCK_STREAM, IPPROTO_SMC);
	else
		s = socket(fam, SOCK_STREAM, 0);
	if (s >= 0 && !strcmp(kind, "ulp") && setsockopt(s, IPPROTO_TCP, TCP_ULP, "smc", 3) < 0)
		fprintf(stderr, "smcecho: setsockopt(TCP_ULP, smc): %s (staying TCP)\n", strerror(errno));
	if (s < 0) {
		fprintf(stderr, "smcecho: socket(%s,v%d): %s\n", kind, v6 ? 6 : 4, strerror(errno));
		exit(2);
	}
	return s;
}

static socklen_t mkaddr(struct sockaddr_storage *ss, int v6, const char *a, int port)
{
	memset(ss, 0, sizeof(*ss));
	if (v6) {
		struct sockaddr_in6 *s6 = (void *)ss;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		if (inet_pton(AF_INET6, a, &s6->sin6_addr) != 1) { fprintf(stderr, "bad addr %s\n", a); exit(2); }
		return sizeof(*s6);
	} else {
		struct sockaddr_in *s4 = (void *)ss;
		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		if (inet_pton(AF_INET, a, &s4->sin_addr) != 1) { fprintf(stderr, "bad addr %s\n", a); exit(2); }
		return sizeof(*s4);
	}
}

static int tfo(const char *what)
{
	const char *t = getenv("SMCECHO_TFO");
	return t && !strcmp(t, what);
}

static int client(int s, struct sockaddr_storage *ss, socklen_t sl, const char *kind, int v6,
		  const char *msg)
{
	char buf[4096];
	size_t len = strlen(msg), got = 0;
	int one = 1;
	if (tfo("connect") && setsockopt(s, IPPROTO_TCP, TCP_FASTOPEN_CONNECT, &one, sizeof(one)) < 0)
		perror("smcecho: setsockopt(TCP_FASTOPEN_CONNECT)");
	if (tfo("sendto")) {
		if (sendto(s, msg, len, MSG_FASTOPEN, (void *)ss, sl) != (ssize_t)len) {
			perror("smcecho: sendto(MSG_FASTOPEN)");
			return 1;
		}
	} else {
		if (connect(s, (void *)ss, sl) < 0) { perror("smcecho: connect"); return 1; }
		if (write(s, msg, len) != (ssize_t)len) { perror("smcecho: write"); return 1; }
	}
	while (got < len) {
		ssize_t r = read(s, buf + got, sizeof(buf) - got);
		if (r <= 0) { perror("smcecho: read"); return 1; }
		got += r;
	}
	printf("smcecho: client %s v%d got echo: %.*s\n", kind, v6 ? 6 : 4, (int)got, buf);
	close(s);
	return 0;
}

int main(int argc, char **argv)
{
	struct sockaddr_storage ss;
	char buf[4096];
	int v6, port, s, one = 1;
	socklen_t sl;

	if (argc < 6 || (strcmp(argv[1], "server") && strcmp(argv[1], "client")) ||
	    (strcmp(argv[2], "smc") && strcmp(argv[2], "tcp") && strcmp(argv[2], "smcinet") &&
	     strcmp(argv[2], "ulp"))) {
		fprintf(stderr, "usage: %s server|client smc|tcp|smcinet|ulp 4|6 addr port [nconn|msg]\n", argv[0]);
		return 2;
	}
	v6 = atoi(argv[3]) == 6;
	port = atoi(argv[5]);
	sl = mkaddr(&ss, v6, argv[4], port);
	s = mksock(argv[2], v6);
	if (!strcmp(argv[1], "server")) {
		int n = argc > 6 ? atoi(argv[6]) : 1, i;
		setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (tfo("listen")) {
			int qlen = 5;
			if (setsockopt(s, IPPROTO_TCP, TCP_FASTOPEN, &qlen, sizeof(qlen)) < 0)
				perror("smcecho: setsockopt(TCP_FASTOPEN)");
		}
		if (bind(s, (void *)&ss, sl) < 0) { perror("smcecho: bind"); return 1; }
		if (listen(s, 64) < 0) { perror("smcecho: listen"); return 1; }
		printf("smcecho: server %s v%d listening on %s port %d\n", argv[2], v6 ? 6 : 4, argv[4], port);
		fflush(stdout);
		for (i = 0; i < n; i++) {
			int c = accept(s, NULL, NULL);
			ssize_t r;
			if (c < 0) { perror("smcecho: accept"); return 1; }
			while ((r = read(c, buf, sizeof(buf))) > 0) {
				printf("smcecho: server got %zd bytes: %.*s\n", r, (int)r, buf);
				fflush(stdout);
				if (write(c, buf, r) != r) { perror("smcecho: write"); break; }
			}
			if (r < 0) perror("smcecho: read");
			close(c);
		}
		close(s);
	} else {
		const char *msg = argc > 6 ? argv[6] : "Hello, world";
		int n = getenv("SMCECHO_CONNS") ? atoi(getenv("SMCECHO_CONNS")) : 1, i, st, bad = 0;
		if (n <= 1)
			return client(s, &ss, sl, argv[2], v6, msg);
		close(s);
		for (i = 0; i < n; i++)
			if (fork() == 0)
				return client(mksock(argv[2], v6), &ss, sl, argv[2], v6, msg);
		for (i = 0; i < n; i++)
			if (wait(&st) < 0 || !WIFEXITED(st) || WEXITSTATUS(st))
				bad++;
		printf("smcecho: %d of %d clients failed\n", bad, n);
		return bad ? 1 : 0;
	}
	return 0;
}
