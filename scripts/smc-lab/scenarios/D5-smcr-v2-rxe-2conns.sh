# smclab: kernel=k612 vms=2 also=*
# D5: as D2 with two sequential connections: the 2nd CLC Accept/Confirm reuse the SMC-R link group (no first contact, no LLC confirm link)
# expect: connections=2 outcome=smc path=SMC-R version=2 messages=proposal,accept,confirm
# expect@k510: connections=2 outcome=fallback path=- version=- messages=decline decline=0x03030000 decline_from=client
# expect@k61: connections=2 outcome=fallback path=- version=- messages=decline decline=0x03030000 decline_from=client
run_server() {
	eth_up 192.0.2.1
	rxe_up
	run smctool ueid-add SMCLAB-UEID-1
	echo_serve 4 192.0.2.1 2
}
run_client() {
	eth_up 192.0.2.2
	rxe_up
	run smctool ueid-add SMCLAB-UEID-1
	echo_connect 4 192.0.2.1 "Hello, world" "Hello again"
}
