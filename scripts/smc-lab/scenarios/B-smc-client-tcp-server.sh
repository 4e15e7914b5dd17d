# smclab: kernel=k61 vms=1 also=*
# B: AF_SMC client -> plain AF_INET server over lo: SYN has the SMC option, SYN-ACK not, no CLC
# expect: connections=1 outcome=fallback path=- version=- messages=
run_single() {
	echo_local lo tcp smc 4 127.0.0.1
}
