/* pcapcap: minimal AF_PACKET capture to a classic pcap file (LINKTYPE_ETHERNET).
 *   pcapcap <ifname> <file.pcap>
 * Stops on SIGINT/SIGTERM. Like libpcap, drops PACKET_OUTGOING copies on
 * loopback devices (they would otherwise appear twice). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if_arp.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t stop;
static void onsig(int s) { (void)s; stop = 1; }

struct pcap_hdr { uint32_t magic; uint16_t vmaj, vmin; int32_t tz; uint32_t sigfigs, snaplen, linktype; };
struct rec_hdr { uint32_t sec, usec, incl, orig; };

int main(int argc, char **argv)
{
	static unsigned char buf[262144];
	struct sockaddr_ll sll;
	struct ifreq ifr;
	struct sigaction sa;
	int s, fd, isloop, n = 0;

	if (argc != 3) { fprintf(stderr, "usage: pcapcap IF FILE\n"); return 2; }
	s = socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL));
	if (s < 0) { perror("pcapcap: socket"); return 1; }
	memset(&ifr, 0, sizeof(ifr));
	strncpy(ifr.ifr_name, argv[1], IFNAMSIZ - 1);
	if (ioctl(s, SIOCGIFINDEX, &ifr) < 0) { perror("pcapcap: SIOCGIFINDEX"); return 1; }
	memset(&sll, 0, sizeof(sll));
	sll.sll_family = AF_PACKET;
	sll.sll_protocol = htons(ETH_P_ALL);
	sll.sll_ifindex = ifr.ifr_ifindex;
	if (ioctl(s, SIOCGIFHWADDR, &ifr) < 0) { perror("pcapcap: SIOCGIFHWADDR"); return 1; }
	isloop = ifr.ifr_hwaddr.sa_family == ARPHRD_LOOPBACK;
	if (bind(s, (void *)&sll, sizeof(sll)) < 0) { perror("pcapcap: bind"); return 1; }
	fd = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0) { perror("pcapcap: open"); return 1; }
	struct pcap_hdr gh = { 0xa1b2c3d4, 2, 4, 0, 0, sizeof(buf), 1 };
	if (write(fd, &gh, sizeof(gh)) != sizeof(gh)) return 1;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = onsig;   /* no SA_RESTART: recvfrom returns EINTR */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	fprintf(stderr, "pcapcap: capturing on %s (ifindex %d%s) to %s\n", argv[1], sll.sll_ifindex, isloop ? ", loopback" : "", argv[2]);
	while (!stop) {
		struct sockaddr_ll from;
		socklen_t fl = sizeof(from);
		struct timespec ts;
		ssize_t r = recvfrom(s, buf, sizeof(buf), MSG_TRUNC, (void *)&from, &fl);
		if (r < 0) { if (errno == EINTR) continue; perror("pcapcap: recvfrom"); break; }
		if (isloop && from.sll_pkttype == PACKET_OUTGOING) continue;
		clock_gettime(CLOCK_REALTIME, &ts);
		struct rec_hdr rh = { (uint32_t)ts.tv_sec, (uint32_t)(ts.tv_nsec / 1000),
				       (uint32_t)(r > (ssize_t)sizeof(buf) ? (ssize_t)sizeof(buf) : r), (uint32_t)r };
		if (write(fd, &rh, sizeof(rh)) != sizeof(rh) || write(fd, buf, rh.incl) != (ssize_t)rh.incl) { perror("pcapcap: write"); break; }
		n++;
	}
	fsync(fd);
	close(fd);
	fprintf(stderr, "pcapcap: %s: %d packets written\n", argv[1], n);
	return 0;
}
