# smclab: kernel=k612 vms=2 also=*
# F3: rxe on both, different UEIDs: SMC-Rv2 Proposal with client EID -> server Decline (EID mismatch), fallback
# expect: outcome=fallback path=- version=- messages=proposal,decline decline=0x03030000 decline_from=server
# expect@k510: outcome=fallback path=- version=- messages=decline decline=0x03030000 decline_from=client
# expect@k61: outcome=fallback path=- version=- messages=decline decline=0x03030000 decline_from=client
# expect@k612lo: outcome=fallback path=- version=- messages=proposal,decline decline=0x03030007 decline_from=server
# expect@k7: outcome=fallback path=- version=- messages=proposal,decline decline=0x03030007 decline_from=server
run_server() {
	eth_up 192.0.2.1
	rxe_up
	run smctool ueid-add SMCLAB-UEID-SERVER
	echo_serve 4 192.0.2.1
}
run_client() {
	eth_up 192.0.2.2
	rxe_up
	run smctool ueid-add SMCLAB-UEID-CLIENT
	echo_connect 4 192.0.2.1
}
