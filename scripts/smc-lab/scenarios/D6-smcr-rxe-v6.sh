# smclab: kernel=k612 vms=2 also=*
# D6: SMC-R attempt over IPv6 with rxe + UEID: SMC-Rv2 is IPv4-only and rxe has no RoCE v1 GIDs -> client Decline, fallback
# expect: outcome=fallback path=- version=- messages=decline decline=0x03030000 decline_from=client
# expect@k612lo: outcome=fallback path=- version=- messages=proposal,decline decline=0x03030007 decline_from=server
# expect@k7: outcome=fallback path=- version=- messages=proposal,decline decline=0x03030007 decline_from=server
run_server() {
	eth_up 192.0.2.1 2001:db8::1
	rxe_up
	run smctool ueid-add SMCLAB-UEID-1
	echo_serve 6 2001:db8::1
}
run_client() {
	eth_up 192.0.2.2 2001:db8::2
	rxe_up
	run smctool ueid-add SMCLAB-UEID-1
	echo_connect 6 2001:db8::1
}
