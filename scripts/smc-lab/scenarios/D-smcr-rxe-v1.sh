# smclab: kernel=k612 vms=2 also=*
# D: two guests linked by a virtual wire, soft-RoCE (rdma_rxe) on eth0 of both, no UEID: SMC-R v1 attempt
# expect: outcome=fallback path=- version=- messages=decline decline=0x03030000 decline_from=client
# expect@k612lo: outcome=fallback path=- version=- messages=proposal,decline decline=0x03030008 decline_from=server
# expect@k7: outcome=fallback path=- version=- messages=proposal,decline decline=0x03030008 decline_from=server
run_server() {
	eth_up 192.0.2.1
	rxe_up
	echo_serve 4 192.0.2.1
}
run_client() {
	eth_up 192.0.2.2
	rxe_up
	echo_connect 4 192.0.2.1
}
