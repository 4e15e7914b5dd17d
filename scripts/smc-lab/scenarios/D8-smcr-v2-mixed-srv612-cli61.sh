# smclab: kernel=k612 server_kernel=k612 client_kernel=k61 vms=2
# D8: mixed kernels, 6.12 server <- 6.1 client, SMC-Rv2 over rxe with UEID + PNET
# expect: outcome=fallback path=- version=- messages=proposal,accept,confirm,decline decline=0x02010000 decline_from=server
SCN_TIMEOUT=250 # the 6.1 side hangs after Confirm (the Decline, if any, comes ~5 s later): give up after 25 s
SRVWAIT=220
run_server() {
	eth_up 192.0.2.1
	rxe_up
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
