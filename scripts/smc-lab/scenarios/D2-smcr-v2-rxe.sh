# smclab: kernel=k612 vms=2 live=yes also=* smoke=yes
# D2: as D plus the same UEID on both guests: SMC-R v2 (RoCEv2 GIDs) CLC handshake + RDMA over UDP 4791 (6.12; on 6.1 the client finds no RDMA device, see D3)
# expect: outcome=smc path=SMC-R version=2 release=1 messages=proposal,accept,confirm
# expect@k510: outcome=fallback path=- version=- messages=decline decline=0x03030000 decline_from=client
# expect@k61: outcome=fallback path=- version=- messages=decline decline=0x03030000 decline_from=client
run_server() {
	eth_up 192.0.2.1
	rxe_up
	run smctool ueid-add SMCLAB-UEID-1
	echo_serve 4 192.0.2.1
}
run_client() {
	eth_up 192.0.2.2
	rxe_up
	run smctool ueid-add SMCLAB-UEID-1
	echo_connect 4 192.0.2.1
}
