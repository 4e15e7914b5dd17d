# smclab: kernel=k7 vms=2 also=*
# S: SMC-R v2 over rxe + UEID + PNET, the server answering every SYN with a SYN cookie (net.ipv4.tcp_syncookies=2, what a SYN flood switches on): the cookie SYN-ACK carries no SMC option
# expect: outcome=fallback path=- version=- messages= decline=-
run_server() {
	eth_up 192.0.2.1
	rxe_up
	run sysctl -w net.ipv4.tcp_syncookies=2
	run smctool ueid-add SMCLAB-UEID-1
	run smctool pnet-add SMCLABNET eth0 rxe0 1
	echo_serve 4 192.0.2.1
}
run_client() {
	eth_up 192.0.2.2
	rxe_up
	run smctool ueid-add SMCLAB-UEID-1
	run smctool pnet-add SMCLABNET eth0 rxe0 1
	echo_connect 4 192.0.2.1
}
