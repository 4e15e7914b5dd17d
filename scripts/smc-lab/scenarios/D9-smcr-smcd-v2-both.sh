# smclab: kernel=k612lo vms=2
# D9: both guests have loopback-ism (CONFIG_SMC_LO) and rxe + UEID: client proposes SMC-D v2 AND SMC-R v2 (type B); loopback-ism cannot reach another OS, so the server picks SMC-R v2
# expect: outcome=smc path=SMC-R version=2 release=1 messages=proposal,accept,confirm
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
