# smclab: kernel=k7 vms=2 also=*
# S: SMC-R v2 over rxe + UEID + PNET, the server answering every SYN with a SYN cookie (net.ipv4.tcp_syncookies=2, what a SYN flood switches on): the cookie SYN-ACK carries no SMC option
# expect: outcome=fallback path=- version=- messages= decline=-
run_server() {
	run sysctl -w net.ipv4.tcp_syncookies=2
	smcr_serve 4 192.0.2.1
}
run_client() { smcr_connect 4 192.0.2.1; }
